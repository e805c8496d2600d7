//! The server's transport over real HTTPS: HTTP/1.1 keep-alive and h2 give the same answers, the TLS
//! clients an API server may be are served, connections that never send a request are closed, and a
//! review whose body never arrives times out with a JSON 408.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::raw;
use common::{DEADLINE, Protocol, Setup, TestServer, handshake, review_bytes, review_json, to_vec, within};
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncReadExt;
use volguard::adapters::server::ServeOptions;

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
// Connections that never send a request

fn short_header_timeout() -> Setup {
    Setup {
        options: ServeOptions {
            connections: volguard::adapters::server::ConnectionLimits {
                header_timeout: Duration::from_secs(1),
                ..volguard::adapters::server::ConnectionLimits::webhook()
            },
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2_connection_is_closed_after_the_idle_timeout() {
    let server = TestServer::start(Setup {
        options: ServeOptions {
            connections: volguard::adapters::server::ConnectionLimits {
                idle_timeout: Duration::from_millis(500),
                ..volguard::adapters::server::ConnectionLimits::webhook()
            },
            ..ServeOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let tls = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"h2"])
        .await
        .expect("the handshake succeeds");
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .expect("an h2 connection");
    let connection = tokio::spawn(connection);
    let response = sender
        .send_request(review_request("/validate", review_bytes("create-pvc")))
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200);
    response.into_body().collect().await.expect("the body");
    // h2 keeps a connection open for ever unless the server closes it (GOAWAY) once idle.
    within("the server to close the idle h2 connection", connection)
        .await
        .expect("the connection task ends")
        .ok();
    assert!(sender.is_closed(), "the connection is closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_closed_at_once_and_counted() {
    let server = TestServer::start(Setup {
        options: ServeOptions {
            connections: volguard::adapters::server::ConnectionLimits {
                max_connections: 3,
                ..volguard::adapters::server::ConnectionLimits::webhook()
            },
            ..ServeOptions::default()
        },
        ..Setup::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(
            handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"])
                .await
                .expect("a connection within the cap"),
        );
    }
    // The fourth is accepted and closed before its handshake completes.
    let over = handshake(server.addr, &server.pki.ca_pem, "localhost", &[b"http/1.1"]).await;
    assert!(over.is_err(), "a fourth connection is refused");
    common::wait_for("the refusal to be counted", || async {
        server
            .metric("volguard_refused_total", &[("reason", "connections")])
            .await
            >= 1.0
    })
    .await;
    // Once one closes, its slot is free again: a review is answered on a new connection.
    drop(held.pop());
    let client = server.client(Protocol::Http1);
    let mut answered = false;
    for _ in 0..50 {
        if let Ok(r) = client
            .post(server.url("/validate"))
            .body(review_bytes("create-pvc"))
            .send()
            .await
        {
            answered = r.status() == StatusCode::OK;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "a connection is accepted again once one has closed");
}

// ---------------------------------------------------------------------------------------------------
// Request timeout

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_whose_body_never_arrives_times_out_with_a_json_408() {
    use tokio::io::AsyncWriteExt;
    let setup = Setup {
        options: ServeOptions {
            limits: volguard::adapters::server::Limits {
                request_timeout: Duration::from_secs(1),
                ..volguard::adapters::server::Limits::default()
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
