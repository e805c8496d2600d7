//! Health, readiness and metrics: what kubelet probes and Prometheus see.

use crate::common;

use std::sync::Arc;

use common::{Protocol, Setup, TestServer, captured_bundle, get, review_bytes, sample};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use reqwest::StatusCode;
use volguard::domain::lookup::{Answer, Lookup};
use volguard::domain::workload::{Workload, WorkloadKind};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_200() {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    for path in ["/healthz", "/readyz"] {
        let reply = get(&client, &server.url(path)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(&reply.body[..], b"ok", "{path}");
    }
}

/// The captured objects, behind a cache that has not synced yet.
struct NotSynced(Arc<dyn Lookup>);

impl Lookup for NotSynced {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        self.0.claim(namespace, name)
    }
    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        self.0.workload(kind, namespace, name)
    }
    crate::delegate_lookup!();
    fn scope(&self) -> &'static str {
        "a cache that is not synced"
    }
    fn readiness(&self) -> Result<(), String> {
        Err("the claim cache has not synced".into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_a_json_503_until_the_lookup_is_ready() {
    let setup = Setup {
        lookup: Arc::new(NotSynced(captured_bundle())),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let client = server.client(Protocol::Http1);
    let error = get(&client, &server.url("/readyz"))
        .await
        .error(StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error, "the claim cache has not synced");
    assert_eq!(get(&client, &server.url("/healthz")).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_reviews_by_path_operation_kind_and_decision() {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    let reviews = "volguard_admission_reviews_total";
    let denied = [
        ("path", "validate"),
        ("operation", "CREATE"),
        ("kind", "Deployment"),
        ("decision", "denied"),
    ];
    assert_eq!(server.metric(reviews, &denied).await, 0.0);

    for _ in 0..2 {
        server
            .post(&client, "/validate", review_bytes("create-deployment"))
            .await
            .response();
    }
    server
        .post(&client, "/validate", review_bytes("update-deployment-image"))
        .await
        .response();
    server
        .post(&client, "/validate", review_bytes("delete-deployment"))
        .await
        .response();
    server
        .post(&client, "/mutate", review_bytes("create-pvc"))
        .await
        .response();
    server
        .post(&client, "/validate", "not JSON")
        .await
        .error(StatusCode::BAD_REQUEST);

    let text = server.scrape().await;
    assert_eq!(sample(&text, reviews, &denied), 2.0, "{text}");
    let warned = [
        ("path", "validate"),
        ("operation", "UPDATE"),
        ("kind", "Deployment"),
        ("decision", "warned"),
    ];
    assert_eq!(sample(&text, reviews, &warned), 1.0, "{text}");
    let deleted = [
        ("path", "validate"),
        ("operation", "DELETE"),
        ("decision", "allowed"),
    ];
    assert_eq!(sample(&text, reviews, &deleted), 1.0, "{text}");
    let mutated = [
        ("path", "mutate"),
        ("operation", "CREATE"),
        ("kind", "PersistentVolumeClaim"),
        ("decision", "allowed"),
    ];
    assert_eq!(sample(&text, reviews, &mutated), 1.0, "{text}");
    assert_eq!(sample(&text, reviews, &[("decision", "invalid")]), 1.0, "{text}");

    let findings = "volguard_admission_findings_total";
    assert_eq!(
        sample(&text, findings, &[("rule", "shared-rwo-claim")]),
        2.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, findings, &[("rule", "rollout-attach-deadlock")]),
        1.0,
        "{text}"
    );

    // The latency histogram: every answered review is observed once, in a bucket.
    let histogram = "volguard_admission_review_duration_seconds";
    let validate = [("path", "validate")];
    assert_eq!(
        sample(&text, &format!("{histogram}_count"), &validate),
        4.0,
        "{text}"
    );
    let inf = [("path", "validate"), ("le", "+Inf")];
    assert_eq!(sample(&text, &format!("{histogram}_bucket"), &inf), 4.0, "{text}");
    assert!(text.contains(&format!("# TYPE {histogram} histogram")), "{text}");
    assert!(
        sample(&text, &format!("{histogram}_sum"), &validate) > 0.0,
        "{text}"
    );
    assert_eq!(sample(&text, "volguard_policies_loaded", &[]), 1.0, "{text}");
}
