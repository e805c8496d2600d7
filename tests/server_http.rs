//! The server's HTTP edge over real HTTPS: HTTP/1.1 keep-alive and h2 give the same answers, bad
//! bodies get JSON 4xx errors, a panicking handler gets a 500 without taking the server down, health,
//! readiness and metrics, and connections that never send a request are closed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::raw;
use common::{
    DEADLINE, Protocol, Reply, Setup, TestServer, captured_bundle, get, handshake, review_bytes, review_json,
    sample, within,
};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use volguard::lookup::{Answer, Lookup};
use volguard::server::ServeOptions;
use volguard::server::routes::MAX_BODY_BYTES;
use volguard::workload::{Workload, WorkloadKind};

fn to_vec(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).expect("JSON serializes")
}

fn review_request(path: &str, body: Vec<u8>) -> Request<Full<Bytes>> {
    Request::post(path)
        .header("host", "127.0.0.1")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request")
}

// ---------------------------------------------------------------------------------------------------
// Protocols

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_review_gets_identical_answers_over_http1_and_h2() {
    let server = TestServer::start(Setup::default()).await;
    for name in ["create-deployment", "update-deployment-image", "create-pvc"] {
        let mut bodies = Vec::new();
        for protocol in [Protocol::Http1, Protocol::Http2] {
            // One client per protocol, several requests: the pool reuses its connection.
            let client = server.client(protocol);
            for _ in 0..3 {
                let reply = server.post(&client, "/validate", review_bytes(name)).await;
                assert_eq!(reply.status, StatusCode::OK, "{name} over {protocol:?}");
                assert_eq!(reply.version, protocol.version(), "{name} over {protocol:?}");
                bodies.push(reply.json());
            }
        }
        for body in &bodies[1..] {
            assert_eq!(body, &bodies[0], "{name}: every answer is the same");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_keep_alive_answers_several_reviews_on_one_connection() {
    let server = TestServer::start(Setup::default()).await;
    let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
        .await
        .expect("the handshake succeeds");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("an HTTP/1.1 connection");
    let connection = tokio::spawn(connection);
    let names = [
        "create-deployment",
        "create-pvc",
        "delete-deployment",
        "scale-deployment",
        "create-deployment",
    ];
    for name in names {
        within("the connection to be ready", sender.ready())
            .await
            .expect("the server keeps the connection open");
        let response = within(
            "an answer",
            sender.send_request(review_request("/validate", review_bytes(name))),
        )
        .await
        .expect("an answer on the same connection");
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(response.version(), hyper::Version::HTTP_11);
        let body = response.into_body().collect().await.expect("the body").to_bytes();
        let body: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(
            body["response"]["uid"],
            review_json(name)["request"]["uid"],
            "{name}"
        );
    }
    assert!(
        !connection.is_finished(),
        "the server did not close the connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_answers_concurrent_reviews_on_one_connection() {
    let server = TestServer::start(Setup::default()).await;
    let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"h2"])
        .await
        .expect("the handshake succeeds");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (sender, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .expect("an h2 connection");
    tokio::spawn(connection);
    let requests = (0..8).map(|i| {
        let mut sender = sender.clone();
        async move {
            let mut review = review_json("create-deployment");
            review["request"]["uid"] = format!("00000000-0000-4000-8000-00000000000{i}").into();
            let response = sender
                .send_request(review_request("/validate", to_vec(&review)))
                .await
                .expect("an answer");
            assert_eq!(response.version(), hyper::Version::HTTP_2);
            assert_eq!(response.status(), 200);
            let body = response.into_body().collect().await.expect("the body").to_bytes();
            let body: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(body["response"]["uid"], review["request"]["uid"]);
            assert_eq!(body["response"]["allowed"], false);
        }
    });
    within(
        "eight concurrent answers",
        futures_util::future::join_all(requests),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------------
// Bad input: a 4xx with a short JSON error naming the problem; never axum's plain text.

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
async fn a_body_of_exactly_3_mib_is_read_and_one_byte_more_is_a_413() {
    let server = TestServer::start(Setup::default()).await;
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let client = server.client(protocol);
        let response = server
            .post(&client, "/validate", padded_review(MAX_BODY_BYTES))
            .await
            .response();
        assert_eq!(response["allowed"], false, "{protocol:?}: {response:#}");

        let error = server
            .post(&client, "/validate", padded_review(MAX_BODY_BYTES + 1))
            .await
            .error(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(error.contains(&MAX_BODY_BYTES.to_string()), "{error}");
    }
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

// ---------------------------------------------------------------------------------------------------
// Health, readiness, metrics

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

// ---------------------------------------------------------------------------------------------------
// Connections that never send a request

fn short_header_timeout() -> Setup {
    Setup {
        options: ServeOptions {
            header_timeout: Duration::from_secs(1),
            ..ServeOptions::default()
        },
        ..Setup::default()
    }
}

/// Reads until the server closes the connection; fails the test after [`DEADLINE`].
async fn closed_by_server(mut stream: impl tokio::io::AsyncRead + Unpin) {
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(DEADLINE, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept a silent connection open for {DEADLINE:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_after_the_handshake_is_closed() {
    let server = TestServer::start(short_header_timeout()).await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[alpn])
            .await
            .expect("the handshake succeeds");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(alpn));
        closed_by_server(tls).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_half_the_h2_preface_is_closed() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(short_header_timeout()).await;
    let mut tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"h2"])
        .await
        .expect("the handshake succeeds");
    tls.write_all(b"PRI * HTTP/2.0\r\n")
        .await
        .expect("the write succeeds");
    tls.flush().await.expect("the flush succeeds");
    closed_by_server(tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_half_a_request_head_is_closed() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(short_header_timeout()).await;
    let mut tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
        .await
        .expect("the handshake succeeds");
    tls.write_all(b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("the write succeeds");
    tls.flush().await.expect("the flush succeeds");
    closed_by_server(tls).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = TestServer::start(short_header_timeout()).await;
    let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
        .await
        .expect("the handshake succeeds");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("an HTTP/1.1 connection");
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(review_request("/validate", review_bytes("create-pvc")))
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.expect("the body");
    within("the server to close the idle connection", connection)
        .await
        .expect("the connection task ends")
        .ok();
    assert!(sender.is_closed(), "the connection is closed");
}

// ---------------------------------------------------------------------------------------------------
// Request timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_whose_body_never_arrives_times_out_with_a_json_408() {
    use tokio::io::AsyncWriteExt;
    let setup = Setup {
        options: ServeOptions {
            limits: volguard::server::Limits {
                request_timeout: Duration::from_secs(1),
                ..volguard::server::Limits::default()
            },
            ..ServeOptions::default()
        },
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let mut tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
        .await
        .expect("the handshake succeeds");
    tls.write_all(raw::head_expecting_continue("/validate", 1000).as_bytes())
        .await
        .expect("the head is sent");
    tls.flush().await.expect("the head is flushed");
    let (status, _) = raw::read_head(&mut tls).await;
    assert_eq!(status, 100, "the handler is reading the body");
    // The body never comes; the request timeout answers.
    let (status, headers, body) = raw::read_response(&mut tls).await;
    assert_eq!(status, 408);
    let content_type = headers
        .iter()
        .find(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str());
    assert_eq!(content_type, Some("application/json"));
    let body: Value = serde_json::from_slice(&body).expect("a JSON error");
    assert_eq!(body["code"], 408, "{body:#}");
    assert!(
        body["error"].as_str().is_some_and(|e| e.contains("1s")),
        "{body:#}"
    );
}

// ---------------------------------------------------------------------------------------------------
// TLS clients the API server may be

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_alpn_is_served_http1() {
    let server = TestServer::start(Setup::default()).await;
    let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[])
        .await
        .expect("the handshake succeeds");
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .expect("an HTTP/1.1 connection");
    tokio::spawn(connection);
    let response = within(
        "an answer",
        sender.send_request(review_request("/validate", review_bytes("create-pvc"))),
    )
    .await
    .expect("an answer");
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls12_only_client_is_served() {
    let server = TestServer::start(Setup::default()).await;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(common::pki::leaf_der(&server.pki.ca_pem))
        .expect("the CA is a root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .expect("TLS 1.2")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .no_proxy()
        .http1_only()
        .timeout(DEADLINE)
        .build()
        .expect("the client builds");
    let response = server
        .post(&client, "/validate", review_bytes("create-deployment"))
        .await
        .response();
    assert_eq!(response["allowed"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let server = TestServer::start(Setup::default()).await;
    let stranger = common::Pki::new();
    let refused = handshake(server.addr, &stranger.ca_pem, "localhost", &[b"http/1.1"]).await;
    assert!(refused.is_err(), "a client trusting another CA must not connect");
    let client = common::client(&stranger.ca_pem, Protocol::Http1);
    let sent = client.get(server.url("/healthz")).send().await;
    assert!(sent.is_err(), "{sent:?}");
}
