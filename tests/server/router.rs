//! In-process router tests: one concurrency limit for all reviews (probes outside it), and prefetched lookups.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;
use volguard::adapters::server::{AppState, Limits, router};
use volguard::domain::lookup::Bundle;
use volguard::domain::policy::PolicySet;

use crate::common;

fn review_request(path: &str, body: Body) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(body)
        .expect("request")
}

#[tokio::test]
async fn one_slot_is_shared_by_validate_and_mutate_but_not_by_probes() {
    let state = Arc::new(AppState::new(
        PolicySet::builtin().expect("policy"),
        Arc::new(Bundle::default()),
        None,
    ));
    let app = router(
        state,
        Limits {
            request_timeout: Duration::from_secs(30),
            concurrency: 1,
            ..Limits::default()
        },
    );
    let review = common::review_bytes("create-pvc");

    // /validate takes the only slot and holds it while its body has not arrived.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(1);
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    let slow = tokio::spawn(app.clone().oneshot(review_request("/validate", body)));
    tokio::task::yield_now().await;

    let mutate = tokio::spawn(
        app.clone()
            .oneshot(review_request("/mutate", Body::from(review.clone()))),
    );
    let healthz = app
        .clone()
        .oneshot(Request::get("/healthz").body(Body::empty()).expect("request"));
    let healthz = common::within("healthz beside a busy review slot", healthz)
        .await
        .expect("infallible");
    assert_eq!(healthz.status(), StatusCode::OK);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert!(
        !mutate.is_finished(),
        "/mutate must wait for the slot /validate holds"
    );

    tx.send(Ok(review)).await.expect("body");
    drop(tx);
    let slow = common::within("the held review", slow)
        .await
        .expect("task")
        .expect("infallible");
    assert_eq!(slow.status(), StatusCode::OK);
    let mutate = common::within("the waiting review", mutate)
        .await
        .expect("task")
        .expect("infallible");
    assert_eq!(mutate.status(), StatusCode::OK);
}

/// A cache that has not seen the claim yet, and a prefetch that fetches it.
struct Fetches(volguard::domain::workload::Resource);

impl volguard::domain::lookup::Prefetch for Fetches {
    fn prefetch<'a>(
        &'a self,
        _resource: &'a volguard::domain::workload::Resource,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = volguard::domain::lookup::Prefetched> + Send + 'a>>
    {
        Box::pin(async move {
            let mut out = volguard::domain::lookup::Prefetched::default();
            if let volguard::domain::workload::Resource::Claim(c) = &self.0 {
                out.claim(
                    "shop",
                    "web-data",
                    volguard::domain::lookup::Answer::Found(Arc::new(c.clone())),
                );
            }
            out
        })
    }
}

#[tokio::test]
async fn a_claim_the_cache_has_not_seen_is_fetched_before_the_rules_run() {
    let empty_cache = Arc::new(Bundle::default());
    let mut state = AppState::new(PolicySet::builtin().expect("policy"), empty_cache, None);
    let app_without = router(
        Arc::new(AppState::new(
            PolicySet::builtin().expect("policy"),
            Arc::new(Bundle::default()),
            None,
        )),
        Limits::default(),
    );
    state.prefetch = Some(Arc::new(Fetches(common::object_of("create-pvc"))));
    let app = router(Arc::new(state), Limits::default());
    let review = common::review_bytes("create-deployment");

    let answer = |app: axum::Router| {
        let review = review.clone();
        async move {
            let response = app
                .oneshot(review_request("/validate", Body::from(review)))
                .await
                .expect("infallible");
            assert_eq!(response.status(), StatusCode::OK);
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .expect("body");
            serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")
        }
    };
    // Without the fetch the claim is missing: a warning, and the shared RWO claim goes unnoticed.
    let without = answer(app_without).await;
    assert_eq!(without["response"]["allowed"], true, "{without}");
    assert!(
        without["response"]["warnings"][0]
            .as_str()
            .expect("warning")
            .starts_with("[missing-claim]")
    );
    // With it, the Deployment is judged on the claim's real access mode.
    let with = answer(app).await;
    assert_eq!(with["response"]["allowed"], false, "{with}");
    let message = with["response"]["status"]["message"].as_str().expect("message");
    assert!(message.contains("[shared-rwo-claim]"), "{message}");
}

/// The load benchmark's baseline (`serve --baseline-allow-all`) answers through the same router: allowed,
/// with the request's uid, without judging the object; a body without a request is still a 400.
#[tokio::test]
async fn the_benchmark_baseline_allows_every_review_with_its_uid() {
    let mut state = AppState::new(
        PolicySet::builtin().expect("policy"),
        Arc::new(Bundle::default()),
        None,
    );
    state.baseline_allow_all = true;
    let app = router(Arc::new(state), Limits::default());
    // Judged, this review is denied (see server_goldens.rs); the baseline does not look.
    let review = common::review_json("create-deployment");
    let uid = review["request"]["uid"].as_str().expect("uid").to_owned();
    for path in ["/validate", "/mutate"] {
        let response = app
            .clone()
            .oneshot(review_request(path, Body::from(common::to_vec(&review))))
            .await
            .expect("infallible");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(
            answer,
            serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": uid, "allowed": true}
            }),
            "{path}"
        );
    }
    let response = app
        .oneshot(review_request(
            "/validate",
            Body::from(r#"{"kind":"AdmissionReview"}"#),
        ))
        .await
        .expect("infallible");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}
