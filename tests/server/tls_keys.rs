//! The key types and encodings a cluster's PKI may hand us (ECDSA P-256 in PKCS#8 and SEC1, Ed25519,
//! RSA in PKCS#1), at start and by rotation, and the dev certificates `serve` generates itself.

use crate::common;

use common::pki::{SANS, leaf_der};
use common::{Pki, Protocol, Setup, TestServer, handshake, review_bytes, wait_for, write_atomically};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use volguard::adapters::server::start::start;

/// A CA made with rcgen directly, to sign leaves for keys `volguard::adapters::certs` does not generate.
struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "volguard-test key-types CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("a CA key");
        let pem = params.self_signed(&key).expect("the CA signs itself").pem();
        Self {
            issuer: Issuer::new(params, key),
            pem,
        }
    }

    /// A serving certificate for `key`, valid for [`SANS`] (and `extra`).
    fn leaf(&self, key: &KeyPair, extra: &[&str]) -> String {
        let sans: Vec<String> = SANS.iter().chain(extra).map(|s| (*s).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("leaf params");
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        params.signed_by(key, &self.issuer).expect("the CA signs").pem()
    }
}

fn fixture_key(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tls")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A key pair kind: the key rcgen signs with, and the PEM the server reads.
fn key_pair(kind: &str) -> (KeyPair, String) {
    match kind {
        "ecdsa-p256-pkcs8" => {
            let key = KeyPair::generate().expect("an ECDSA key");
            let pem = key.serialize_pem();
            (key, pem)
        }
        "ed25519-pkcs8" => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ED25519).expect("an Ed25519 key");
            let pem = key.serialize_pem();
            (key, pem)
        }
        "rsa-2048-pkcs1" => (
            KeyPair::from_pem(&fixture_key("rsa-2048.pkcs8.key")).expect("the RSA fixture"),
            fixture_key("rsa-2048.pkcs1.key"),
        ),
        "ecdsa-p256-sec1" => (
            KeyPair::from_pem(&fixture_key("ec-p256.pkcs8.key")).expect("the EC fixture"),
            fixture_key("ec-p256.sec1.key"),
        ),
        other => panic!("unknown key kind {other}"),
    }
}

const KEY_KINDS: [&str; 4] = [
    "ecdsa-p256-pkcs8",
    "ed25519-pkcs8",
    "rsa-2048-pkcs1",
    "ecdsa-p256-sec1",
];

async fn serves_a_review_with(kind: &str) {
    let ca = TestCa::new();
    let (key, key_pem) = key_pair(kind);
    let cert_pem = ca.leaf(&key, &[]);
    let server =
        TestServer::start_with_pki(Setup::default(), Pki::from_pem(&ca.pem, &cert_pem, &key_pem)).await;
    assert_eq!(
        server.leaf_for("localhost").await.expect("a handshake"),
        leaf_der(&cert_pem),
        "{kind}"
    );
    for protocol in [Protocol::Http1, Protocol::Http2] {
        let client = server.client(protocol);
        let reply = server
            .post(&client, "/validate", review_bytes("create-deployment"))
            .await;
        assert_eq!(reply.version, protocol.version(), "{kind}");
        assert_eq!(reply.response()["allowed"], false, "{kind}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecdsa_p256_pkcs8_pair_serves() {
    serves_a_review_with("ecdsa-p256-pkcs8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ecdsa_p256_sec1_pair_serves() {
    serves_a_review_with("ecdsa-p256-sec1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ed25519_pair_serves() {
    serves_a_review_with("ed25519-pkcs8").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_pkcs1_pair_serves() {
    serves_a_review_with("rsa-2048-pkcs1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_between_key_types_reloads() {
    let ca = TestCa::new();
    let (key, key_pem) = key_pair("ecdsa-p256-pkcs8");
    let cert_pem = ca.leaf(&key, &[]);
    let server =
        TestServer::start_with_pki(Setup::default(), Pki::from_pem(&ca.pem, &cert_pem, &key_pem)).await;
    let paths = server.pki.paths();
    for kind in KEY_KINDS.iter().rev() {
        let (key, key_pem) = key_pair(kind);
        let cert_pem = ca.leaf(&key, &[kind]);
        let generation = server.state.cert_generation();
        write_atomically(&paths.key, &key_pem);
        write_atomically(&paths.cert, &cert_pem);
        wait_for(&format!("the {kind} pair to be swapped in"), || async {
            server.state.cert_generation() > generation
        })
        .await;
        // Key first, then certificate: a watcher may see the mismatched half-way state; what is
        // finally served is the new pair.
        wait_for(&format!("the {kind} leaf on new handshakes"), || async {
            server
                .leaf_for(kind)
                .await
                .is_ok_and(|leaf| leaf == leaf_der(&cert_pem))
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_dev_certificates_serve_localhost_and_127_0_0_1() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let pki = Pki::new();
    let mut config = common::config(&Setup::default(), &pki);
    config.tls = volguard::adapters::server::start::TlsSource::Generate(dir.path().join("dev-certs"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let running = start(config, async move {
        let _ = rx.await;
    })
    .await
    .expect("the server starts with generated certificates");
    let ca_path = running.generated_ca.clone().expect("the CA file is reported");
    let ca_pem = std::fs::read_to_string(&ca_path).expect("the CA file is readable");
    for name in ["localhost", "127.0.0.1"] {
        handshake(running.addr, &ca_pem, name, &[b"h2"])
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let client = common::client(&ca_pem, Protocol::Http1);
    let reply = common::post(
        &client,
        &format!("https://{}/validate", running.addr),
        review_bytes("create-deployment"),
    )
    .await;
    assert_eq!(reply.response()["allowed"], false);
    tx.send(()).expect("the server listens");
    common::within("Running::wait()", running.wait())
        .await
        .expect("the server task ends cleanly");
}
