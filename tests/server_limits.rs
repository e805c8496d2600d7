//! The concurrency limit is one limit for all reviews, and probes stay outside it.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt as _;
use volguard::lookup::Bundle;
use volguard::policy::PolicySet;
use volguard::server::{AppState, Limits, router};

mod common;

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
