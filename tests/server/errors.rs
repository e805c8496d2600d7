//! What the server answers when it cannot answer a review: bodies that are not AdmissionReviews get a
//! 4xx with a short JSON error naming the problem (never axum's plain text), routes and methods it does
//! not serve get JSON 404 and 405, and a panicking handler gets a 500 without taking the server down.

use crate::common;

use std::sync::Arc;

use common::{Protocol, Reply, Setup, TestServer, get, review_bytes, review_json, to_vec};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use reqwest::StatusCode;
use volguard::adapters::server::routes::MAX_BODY_BYTES;
use volguard::domain::lookup::{Answer, Lookup};
use volguard::domain::workload::{Workload, WorkloadKind};

async fn validate_raw(body: impl Into<reqwest::Body>) -> Reply {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    server.post(&client, "/validate", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_is_not_json_is_a_400() {
    let error = validate_raw("this is not JSON")
        .await
        .error(StatusCode::BAD_REQUEST);
    assert!(
        error.starts_with("the body is not an AdmissionReview:"),
        "{error}"
    );
    let error = validate_raw("").await.error(StatusCode::BAD_REQUEST);
    assert!(
        error.starts_with("the body is not an AdmissionReview:"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_of_another_version_or_kind_is_a_400() {
    let mut v1beta1 = review_json("create-deployment");
    v1beta1["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let error = validate_raw(to_vec(&v1beta1))
        .await
        .error(StatusCode::BAD_REQUEST);
    assert!(
        error.contains("expected apiVersion admission.k8s.io/v1"),
        "{error}"
    );
    assert!(error.contains("\"admission.k8s.io/v1beta1\""), "{error}");

    let mut status = review_json("create-deployment");
    status["kind"] = "Status".into();
    let error = validate_raw(to_vec(&status)).await.error(StatusCode::BAD_REQUEST);
    assert!(error.contains("kind AdmissionReview"), "{error}");
    assert!(error.contains("\"Status\""), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_without_request_is_a_400() {
    let mut review = review_json("create-deployment");
    review.as_object_mut().expect("an object").remove("request");
    let error = validate_raw(to_vec(&review)).await.error(StatusCode::BAD_REQUEST);
    assert_eq!(error, "the AdmissionReview has no request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_that_does_not_decode_as_its_kind_is_a_400() {
    let mut review = review_json("create-deployment");
    review["request"]["object"]["spec"]["replicas"] = "three".into();
    let error = validate_raw(to_vec(&review)).await.error(StatusCode::BAD_REQUEST);
    assert!(
        error.starts_with("the request's object does not decode as Deployment:"),
        "{error}"
    );
    assert!(error.contains("\"three\""), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_object_that_does_not_decode_is_named_as_such() {
    let mut review = review_json("update-deployment-image");
    review["request"]["oldObject"]["spec"]["replicas"] = "three".into();
    let error = validate_raw(to_vec(&review)).await.error(StatusCode::BAD_REQUEST);
    assert!(
        error.starts_with("the request's oldObject does not decode as Deployment:"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_uid_is_not_blamed_on_the_object() {
    let mut review = review_json("create-deployment");
    review["request"]
        .as_object_mut()
        .expect("an object")
        .remove("uid");
    let error = validate_raw(to_vec(&review)).await.error(StatusCode::BAD_REQUEST);
    assert!(
        error.starts_with("the body is not an AdmissionReview:"),
        "{error}"
    );
    assert!(error.contains("uid"), "{error}");
}

/// The captured Deployment review padded with trailing whitespace to exactly `len` bytes.
fn padded_review(len: usize) -> Vec<u8> {
    let mut body = review_bytes("create-deployment");
    assert!(body.len() < len);
    body.resize(len, b' ');
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_exactly_the_limit_is_read_and_one_byte_more_is_refused_before_it_is_read() {
    let server = TestServer::start(Setup::default()).await;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let client = server.client(protocol);
        let response = server
            .post(&client, "/validate", padded_review(MAX_BODY_BYTES))
            .await
            .response();
        assert_eq!(response["allowed"], false, "{protocol:?}: {response:#}");
    }
    // Declared too long: refused from its Content-Length, unread. HTTP/2 gets the 413; an HTTP/1.1
    // client still writing may see the connection closed first.
    let before = server
        .metric("volguard_refused_total", &[("reason", "body_too_large")])
        .await;
    let client = server.client(Protocol::Http2);
    let error = server
        .post(&client, "/validate", padded_review(MAX_BODY_BYTES + 1))
        .await
        .error(StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error.contains(&MAX_BODY_BYTES.to_string()), "{error}");
    let http1 = server.client(Protocol::Http1);
    let sent = http1
        .post(server.url("/validate"))
        .header("content-type", "application/json")
        .body(padded_review(MAX_BODY_BYTES + 1))
        .send()
        .await;
    if let Ok(response) = sent {
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let after = server
        .metric("volguard_refused_total", &[("reason", "body_too_large")])
        .await;
    assert_eq!(after - before, 2.0, "both refusals counted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_route_is_a_json_404() {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    let error = get(&client, &server.url("/nope"))
        .await
        .error(StatusCode::NOT_FOUND);
    assert!(error.contains("POST /validate"), "{error}");
    let error = server
        .post(&client, "/admission", review_bytes("create-pvc"))
        .await
        .error(StatusCode::NOT_FOUND);
    assert!(error.contains("POST /validate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_on_a_known_route_is_a_json_405() {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    for path in ["/validate", "/mutate"] {
        let reply = get(&client, &server.url(path)).await;
        let error = reply.error(StatusCode::METHOD_NOT_ALLOWED);
        assert!(error.contains("POST /validate"), "{error}");
        let allow = reply.headers.get("allow").and_then(|v| v.to_str().ok());
        assert_eq!(allow, Some("POST"), "{path}");
    }
    let reply = server.post(&client, "/healthz", "").await;
    assert!(
        reply
            .error(StatusCode::METHOD_NOT_ALLOWED)
            .contains("GET /healthz")
    );
}

/// A lookup that panics when asked for a claim: a bug in a handler's dependencies.
struct PanickingLookup;

impl Lookup for PanickingLookup {
    fn claim(&self, _: &str, _: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        panic!("the claim lookup exploded (on purpose, in a test)");
    }
    fn workload(&self, _: WorkloadKind, _: &str, _: &str) -> Answer<Arc<Workload>> {
        Answer::Missing
    }
    fn users(&self, _: &volguard::domain::lookup::VolumeKey) -> Answer<Vec<Arc<Workload>>> {
        Answer::Found(Vec::new())
    }
    fn workloads_in(&self, _: &str) -> Answer<Vec<Arc<Workload>>> {
        Answer::Found(Vec::new())
    }
    fn mounted_claims(&self, _: &str, _: &str) -> Answer<Vec<String>> {
        Answer::Found(Vec::new())
    }
    fn autoscalers(
        &self,
        _: WorkloadKind,
        _: &str,
        _: &str,
    ) -> Answer<Vec<Arc<volguard::domain::workload::Autoscaler>>> {
        Answer::Found(Vec::new())
    }
    fn is_controlled(&self, _: &Workload) -> Answer<bool> {
        Answer::Found(false)
    }
    fn storage_class(&self, _: Option<&str>) -> Answer<Arc<k8s_openapi::api::storage::v1::StorageClass>> {
        Answer::Missing
    }
    fn scope(&self) -> &'static str {
        "a panicking test lookup"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_is_a_500_and_the_server_keeps_serving() {
    let setup = Setup {
        lookup: Arc::new(PanickingLookup),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let client = server.client(protocol);
        // The Deployment mounts a claim: its review looks it up.
        let error = server
            .post(&client, "/validate", review_bytes("create-deployment"))
            .await
            .error(StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !error.contains("exploded"),
            "the panic's text is not sent: {error}"
        );
        // On the same client, and on a fresh one.
        for client in [client, server.client(protocol)] {
            let healthz = get(&client, &server.url("/healthz")).await;
            assert_eq!(healthz.status, StatusCode::OK);
            let response = server
                .post(&client, "/validate", review_bytes("create-pvc"))
                .await
                .response();
            assert_eq!(response["allowed"], true);
        }
    }
}
