//! Faults a real kube-apiserver cannot easily produce, from an in-process fake API (axum on 127.0.0.1,
//! plain HTTP) that the real kube client of [`ClusterLookup`] talks to: a watch answered with 410 Gone,
//! a GET that is slow or fails, and the API server vanishing mid-watch. Each shows in the decision (the
//! policy's failure mode) or in the cache metrics, with the exact messages asserted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use volguard::adapters::kube_lookup::ClusterLookup;
use volguard::adapters::server::{AppState, Limits, router};
use volguard::domain::lookup::Prefetch;
use volguard::domain::policy::PolicySet;

/// How the fake answers a GET of one claim.
#[derive(Clone, Copy)]
enum ClaimGet {
    /// Answers after 5 s: longer than the lookup's timeout.
    Slow,
    /// 500 with a Status.
    Fails,
    /// 404, after 100 ms.
    NotFound,
}

struct Fake {
    get: ClaimGet,
    claim_watches: AtomicU32,
    /// GETs of one object received.
    gets: AtomicU32,
    /// Set when the API server goes away: open watches are cut.
    gone: tokio::sync::watch::Sender<bool>,
}

fn list(kind: &str, api_version: &str) -> String {
    format!(
        r#"{{"kind":"{kind}List","apiVersion":"{api_version}","metadata":{{"resourceVersion":"1"}},"items":[]}}"#
    )
}

/// What the fake serves: resource, kind, apiVersion (every kind volguard watches).
const RESOURCES: [(&str, &str, &str); 10] = [
    ("persistentvolumeclaims", "PersistentVolumeClaim", "v1"),
    ("pods", "Pod", "v1"),
    ("replicationcontrollers", "ReplicationController", "v1"),
    ("deployments", "Deployment", "apps/v1"),
    ("statefulsets", "StatefulSet", "apps/v1"),
    ("daemonsets", "DaemonSet", "apps/v1"),
    ("replicasets", "ReplicaSet", "apps/v1"),
    ("jobs", "Job", "batch/v1"),
    ("cronjobs", "CronJob", "batch/v1"),
    (
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        "autoscaling/v1",
    ),
];

/// Discovery (`/api/v1`, `/apis/apps/v1`, ...): the resources of one group version.
fn discovery(group_version: &str) -> Response {
    let resources: Vec<String> = RESOURCES
        .iter()
        .filter(|(_, _, gv)| *gv == group_version)
        .map(|(r, k, _)| {
            format!(
                r#"{{"name":"{r}","singularName":"","namespaced":true,"kind":"{k}","verbs":["get","list","watch"]}}"#
            )
        })
        .collect();
    let body = format!(
        r#"{{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"{group_version}","resources":[{}]}}"#,
        resources.join(",")
    );
    ([("content-type", "application/json")], body).into_response()
}

async fn api(State(fake): State<Arc<Fake>>, req: Request) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/api/v1" {
        return discovery("v1");
    }
    if let Some(gv) = path.strip_prefix("/apis/")
        && gv.matches('/').count() == 1
    {
        return discovery(gv);
    }
    let watch = req.uri().query().is_some_and(|q| q.contains("watch=true"));
    let last = path.rsplit('/').next().unwrap_or_default();
    let kind = match RESOURCES.iter().find(|(r, _, _)| *r == last) {
        Some((_, k, v)) => (*k, *v),
        None => {
            // A GET of one claim.
            fake.gets.fetch_add(1, Ordering::SeqCst);
            return match fake.get {
                ClaimGet::NotFound => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    (
                        StatusCode::NOT_FOUND,
                        [("content-type", "application/json")],
                        r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}"#,
                    )
                        .into_response()
                }
                ClaimGet::Slow => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    StatusCode::NOT_FOUND.into_response()
                }
                ClaimGet::Fails => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    [("content-type", "application/json")],
                    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"etcdserver: request timed out","reason":"InternalError","code":500}"#,
                )
                    .into_response(),
            };
        }
    };
    if !watch {
        return ([("content-type", "application/json")], list(kind.0, kind.1)).into_response();
    }
    // The first watch of claims ends with 410 Gone: the watcher must relist (a restart in the metrics).
    if kind.0 == "PersistentVolumeClaim" && fake.claim_watches.fetch_add(1, Ordering::SeqCst) == 0 {
        let gone = "{\"type\":\"ERROR\",\"object\":{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\",\
                    \"message\":\"too old resource version: 1 (2)\",\"reason\":\"Expired\",\"code\":410}}\n";
        return ([("content-type", "application/json")], gone).into_response();
    }
    // Other watches stay open with nothing to say, until the API server goes away.
    let mut gone = fake.gone.subscribe();
    let quiet = futures_util::stream::once(async move {
        let _ = gone.wait_for(|g| *g).await;
        Err::<bytes::Bytes, _>(std::io::Error::other("the API server went away"))
    });
    ([("content-type", "application/json")], Body::from_stream(quiet)).into_response()
}

/// Starts the fake; returns its port and the task serving it (abort it to make the API server vanish).
async fn start_fake(get: ClaimGet) -> (u16, Arc<Fake>, tokio::task::JoinHandle<()>) {
    let fake = Arc::new(Fake {
        get,
        claim_watches: AtomicU32::new(0),
        gets: AtomicU32::new(0),
        gone: tokio::sync::watch::channel(false).0,
    });
    let app = Router::new().fallback(api).with_state(Arc::clone(&fake));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.expect("fake API serves");
    });
    (port, fake, task)
}

fn client(port: u16) -> kube::Client {
    let url: axum::http::Uri = format!("http://127.0.0.1:{port}").parse().expect("url");
    kube::Client::try_from(kube::Config::new(url)).expect("client")
}

async fn synced(port: u16, get_timeout: Duration) -> ClusterLookup {
    let lookup = ClusterLookup::start(client(port), get_timeout);
    tokio::time::timeout(Duration::from_secs(10), lookup.wait_synced())
        .await
        .expect("the caches sync within 10 s");
    lookup
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn ignore_policy() -> PolicySet {
    let text = volguard::domain::policy::BUILTIN_POLICY.replace("failureMode: Fail", "failureMode: Ignore");
    assert!(text.contains("failureMode: Ignore"));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ignore.yaml");
    std::fs::write(&path, text).expect("write policy");
    volguard::domain::policy::load_path(&path).expect("policy loads")
}

/// The router over the cluster lookup, fetching what its caches have not seen.
fn app(lookup: ClusterLookup, policies: PolicySet) -> axum::Router {
    let lookup = Arc::new(lookup);
    let mut state = AppState::new(policies, lookup.clone(), None);
    let prefetch: Arc<dyn Prefetch> = lookup;
    state.prefetch = Some(prefetch);
    router(Arc::new(state), Limits::default())
}

/// Sends the recorded Deployment review (3 replicas on claim shop/web-data) through the router.
async fn review(lookup: ClusterLookup, policies: PolicySet) -> serde_json::Value {
    let app = app(lookup, policies);
    let body = std::fs::read("tests/fixtures/reviews/create-deployment.json").expect("fixture");
    let req = axum::http::Request::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from(body))
        .expect("request");
    let resp = app.oneshot(req).await.expect("answer");
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .expect("body")
        .to_bytes();
    serde_json::from_slice::<serde_json::Value>(&bytes).expect("json")["response"].clone()
}

const SLOW: &str = "volguard could not look up claim \"web-data\" (volume \"data\") of Deployment shop/web: GET \
                    PersistentVolumeClaim shop/web-data did not answer within 200 ms";

#[tokio::test]
async fn a_slow_claim_get_denies_under_failure_mode_fail() {
    let (port, _fake, _task) = start_fake(ClaimGet::Slow).await;
    let lookup = synced(port, Duration::from_millis(200)).await;
    let response = review(lookup, PolicySet::builtin().expect("policy")).await;
    assert_eq!(response["allowed"], false);
    assert_eq!(
        response["status"]["message"],
        format!("volguard denied Deployment shop/web:\n[lookup-failed] {SLOW}")
    );
}

#[tokio::test]
async fn a_slow_claim_get_allows_with_a_warning_under_failure_mode_ignore() {
    let (port, _fake, _task) = start_fake(ClaimGet::Slow).await;
    let lookup = synced(port, Duration::from_millis(200)).await;
    let response = review(lookup, ignore_policy()).await;
    assert_eq!(response["allowed"], true);
    assert_eq!(
        response["warnings"],
        serde_json::json!([format!("[lookup-failed] {SLOW}")])
    );
}

#[tokio::test]
async fn a_failing_claim_get_says_why_it_denies() {
    let (port, _fake, _task) = start_fake(ClaimGet::Fails).await;
    let lookup = synced(port, Duration::from_millis(2_000)).await;
    let response = review(lookup, PolicySet::builtin().expect("policy")).await;
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().expect("a message");
    let start = "volguard denied Deployment shop/web:\n[lookup-failed] volguard could not look up claim \
                 \"web-data\" (volume \"data\") of Deployment shop/web: GET PersistentVolumeClaim shop/web-data \
                 failed: ";
    assert!(message.starts_with(start), "{message}");
    assert!(message.contains("etcdserver: request timed out"), "{message}");
}

#[tokio::test]
async fn a_watch_answered_410_gone_relists_and_counts_a_restart() {
    let (port, fake, _task) = start_fake(ClaimGet::Fails).await;
    let lookup = synced(port, Duration::from_millis(200)).await;
    wait_for("a claim watch restart", || {
        lookup
            .stats()
            .iter()
            .any(|s| s.kind == "PersistentVolumeClaim" && s.watch_restarts >= 1)
    })
    .await;
    // The restart is counted when the 410 arrives; the watch opens again only after the relist's LIST, so
    // wait for it (bounded) instead of racing it.
    wait_for("the claim watch to be opened again", || {
        fake.claim_watches.load(Ordering::SeqCst) >= 2
    })
    .await;
    assert!(lookup.is_synced());
}

#[tokio::test]
async fn an_api_server_vanishing_mid_watch_shows_in_errors_and_cache_age() {
    let (port, fake, task) = start_fake(ClaimGet::Fails).await;
    let lookup = synced(port, Duration::from_millis(200)).await;
    let errors_before = lookup.watch_errors();
    // Stop accepting connections, then cut the open watches.
    task.abort();
    let _ = fake.gone.send(true);
    wait_for("watch errors after the API server went away", || {
        lookup.watch_errors() > errors_before
    })
    .await;
    let stats = lookup.stats();
    let deployments = stats
        .iter()
        .find(|s| s.kind == "Deployment")
        .expect("a Deployment cache");
    assert!(deployments.since_last_event.is_some(), "{stats:?}");
    // The cache still answers (stale, not empty), and the metrics say how stale.
    assert!(lookup.is_synced());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_reviews_of_one_missing_claim_cost_one_get() {
    let (port, fake, _task) = start_fake(ClaimGet::NotFound).await;
    let lookup = synced(port, Duration::from_secs(2)).await;
    let app = app(lookup, PolicySet::builtin().expect("policy"));
    let body = std::fs::read("tests/fixtures/reviews/create-deployment.json").expect("fixture");
    // Fifty reviews at once, then fifty more: one GET, its 404 shared and then remembered.
    for _ in 0..2 {
        let reviews = (0..50).map(|_| {
            let req = axum::http::Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(body.clone()))
                .expect("request");
            app.clone().oneshot(req)
        });
        for resp in futures_util::future::join_all(reviews).await {
            let resp = resp.expect("answer");
            assert_eq!(resp.status(), StatusCode::OK);
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .expect("body")
                .to_bytes();
            let answer: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
            let warnings = answer["response"]["warnings"].to_string();
            assert!(warnings.contains("[missing-claim]"), "{answer:#}");
        }
    }
    assert_eq!(
        fake.gets.load(Ordering::SeqCst),
        1,
        "one GET for a hundred reviews"
    );
}
