//! `serve --client-ca`: reviews only from a client presenting a certificate that CA signed (the API
//! server, given one by an AdmissionConfiguration); the probes stay open, as the kubelet presents none; a
//! certificate from any other CA fails the handshake. tests/e2e/client_ca.rs does the same through a real
//! kube-apiserver.

use crate::common;

use std::sync::Arc;

use common::{Pki, Protocol, Setup, TestServer, get, post, review_bytes};
use pretty_assertions::assert_eq;
use reqwest::StatusCode;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use volguard::adapters::certs::{Ca, Issued};

/// A client trusting the server's CA and presenting `pair`.
fn client_with(server_ca_pem: &str, pair: &Issued) -> reqwest::Client {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("the client certificate is PEM");
    let key = PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).expect("the client key is PEM");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots(server_ca_pem))
        .with_client_auth_cert(chain, key)
        .expect("a usable client certificate");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .http1_only()
        .no_proxy()
        .timeout(common::DEADLINE)
        .build()
        .expect("the client builds")
}

fn roots(ca_pem: &str) -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("PEM")).expect("a usable root");
    }
    roots
}

/// A server requiring client certificates from a CA of its own; that CA, for issuing them.
async fn server_requiring_clients() -> (TestServer, Ca, tempfile::TempDir) {
    let clients = Ca::generate("API server clients", 1).expect("the client CA generates");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("client-ca.crt");
    std::fs::write(&path, &clients.pem).expect("writing the client CA");
    let server = TestServer::start(Setup {
        client_ca: Some(path),
        ..Setup::default()
    })
    .await;
    (server, clients, dir)
}

#[tokio::test]
async fn a_client_certificate_from_the_client_ca_gets_its_review_judged() {
    let (server, clients, _dir) = server_requiring_clients().await;
    let pair = clients.issue_client("kube-apiserver", 1).expect("a client pair");
    let client = client_with(&server.pki.ca_pem, &pair);
    let reply = post(
        &client,
        &server.url("/validate"),
        review_bytes("create-deployment"),
    )
    .await;
    let response = reply.response();
    assert_eq!(response["allowed"], false, "{response:#}");
    let message = response["status"]["message"].as_str().unwrap_or("");
    assert!(
        message.starts_with("volguard denied Deployment shop/web:\n[shared-rwo-claim]"),
        "{message}"
    );
}

#[tokio::test]
async fn without_a_client_certificate_probes_answer_and_reviews_are_refused() {
    let (server, _clients, _dir) = server_requiring_clients().await;
    let anonymous = server.client(Protocol::Http1);
    // The kubelet's probes present no certificate.
    for probe in ["/healthz", "/readyz"] {
        let reply = get(&anonymous, &server.url(probe)).await;
        assert_eq!(reply.status, StatusCode::OK, "{probe}");
    }
    for path in ["/validate", "/mutate"] {
        let reply = post(&anonymous, &server.url(path), review_bytes("create-deployment")).await;
        assert_eq!(
            reply.error(StatusCode::FORBIDDEN),
            "volguard answers reviews only from clients presenting a certificate signed by its --client-ca",
            "{path}"
        );
    }
    assert_eq!(
        server
            .metric("volguard_refused_total", &[("reason", "client_certificate")])
            .await,
        2.0
    );
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_fails_the_handshake() {
    let (server, _clients, _dir) = server_requiring_clients().await;
    let stranger = Ca::generate("someone else", 1)
        .expect("a CA")
        .issue_client("kube-apiserver", 1)
        .expect("a client pair");
    let client = client_with(&server.pki.ca_pem, &stranger);
    let err = client
        .post(server.url("/validate"))
        .body(review_bytes("create-deployment"))
        .send()
        .await
        .expect_err("the handshake fails");
    let chain = format!("{err:?}");
    assert!(
        chain.contains("UnknownCA") || chain.contains("unknown ca") || chain.contains("BadCertificate"),
        "a TLS alert about the certificate: {chain}"
    );
}

#[tokio::test]
async fn without_client_ca_a_presented_certificate_is_not_needed_nor_in_the_way() {
    let server = TestServer::start_with_pki(Setup::default(), Pki::new()).await;
    let pair = Ca::generate("any", 1)
        .expect("a CA")
        .issue_client("someone", 1)
        .expect("a client pair");
    for client in [
        server.client(Protocol::Http1),
        client_with(&server.pki.ca_pem, &pair),
    ] {
        let reply = post(
            &client,
            &server.url("/validate"),
            review_bytes("create-deployment"),
        )
        .await;
        assert_eq!(reply.response()["allowed"], false);
    }
}
