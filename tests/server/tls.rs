//! The serving certificate over a real socket: rotation under traffic (a new certificate alone is refused
//! until its key arrives), broken files refused while the last good pair keeps serving, Secret volume
//! updates, and pairs that must not start.

use crate::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::pki::{SANS, leaf_der};
use common::{DEADLINE, Pki, Protocol, Setup, TestServer, review_bytes, wait_for, write_atomically};
use reqwest::StatusCode;
use tokio::sync::watch;
use volguard::adapters::server::start::{StartError, start};
use volguard::adapters::server::tls::TlsError;

const FAILURES: (&str, &[(&str, &str)]) = ("volguard_certificate_reloads_total", &[("result", "failure")]);
const SUCCESSES: (&str, &[(&str, &str)]) = ("volguard_certificate_reloads_total", &[("result", "success")]);

async fn cert_failures(server: &TestServer) -> f64 {
    server.metric(FAILURES.0, FAILURES.1).await
}

// ---------------------------------------------------------------------------------------------------
// Traffic that runs while certificates change

/// What a background client saw.
#[derive(Debug)]
struct TrafficReport {
    answered: u64,
    failures: Vec<String>,
    /// Whether it ran until told to stop (not out of requests or time).
    stopped_by_test: bool,
}

/// Sends reviews in a loop (at most 1000, at most [`DEADLINE`]) until `stop` turns true.
fn spawn_traffic(
    client: reqwest::Client,
    url: String,
    answered: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<TrafficReport> {
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut failures = Vec::new();
        for _ in 0..1000 {
            if *stop.borrow() {
                let answered = answered.load(Ordering::SeqCst);
                return TrafficReport {
                    answered,
                    failures,
                    stopped_by_test: true,
                };
            }
            if started.elapsed() > DEADLINE {
                break;
            }
            let sent = client
                .post(&url)
                .body(review_bytes("create-deployment"))
                .send()
                .await;
            match sent {
                Ok(response) if response.status() == StatusCode::OK => match response.bytes().await {
                    Ok(body) if body.starts_with(b"{") => {
                        answered.fetch_add(1, Ordering::SeqCst);
                    }
                    other => failures.push(format!("body: {other:?}")),
                },
                Ok(response) => failures.push(format!("status {}", response.status())),
                Err(e) => failures.push(format!("{e:?}")),
            }
            // Pacing, so the loop spans the whole rotation; not a measurement.
            let _ = tokio::time::timeout(Duration::from_millis(20), stop.changed()).await;
        }
        let answered = answered.load(Ordering::SeqCst);
        TrafficReport {
            answered,
            failures,
            stopped_by_test: false,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_under_traffic_waits_for_the_matching_key_and_drops_no_request() {
    let server = TestServer::start(Setup::default()).await;
    let old_leaf = leaf_der(&server.pki.issued.cert_pem);
    assert_eq!(server.leaf_for("localhost").await.expect("a handshake"), old_leaf);

    // One client keeps its connection (old leaf) throughout; the other handshakes for every request.
    let (stop_tx, stop_rx) = watch::channel(false);
    let kept = Arc::new(AtomicU64::new(0));
    let fresh = Arc::new(AtomicU64::new(0));
    let keep_alive = spawn_traffic(
        server.client(Protocol::Http1),
        server.url("/validate"),
        Arc::clone(&kept),
        stop_rx.clone(),
    );
    let fresh_client = reqwest::Client::builder()
        .use_preconfigured_tls(common::tls_client_config(&server.pki.ca_pem, &[b"h2"]))
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(DEADLINE)
        .build()
        .expect("the client builds");
    let new_connections = spawn_traffic(fresh_client, server.url("/validate"), Arc::clone(&fresh), stop_rx);
    wait_for("both clients to get answers", || async {
        kept.load(Ordering::SeqCst) > 0 && fresh.load(Ordering::SeqCst) > 0
    })
    .await;

    let rotated = server
        .pki
        .reissue(&["localhost", "127.0.0.1", "rotated.localhost"]);
    let generation = server.state.cert_generation();
    let failures = cert_failures(&server).await;

    // The certificate alone: it does not match the key on disk, so it is refused.
    write_atomically(&server.pki.paths().cert, &rotated.cert_pem);
    wait_for("the lone certificate to be refused", || async {
        cert_failures(&server).await > failures
    })
    .await;
    assert_eq!(server.state.cert_generation(), generation, "nothing was swapped");
    let refused = server.leaf_for("rotated.localhost").await;
    assert!(refused.is_err(), "the new SAN is not served yet: {refused:?}");
    assert_eq!(server.leaf_for("localhost").await.expect("a handshake"), old_leaf);

    // Then its key: the pair matches and is swapped in for new handshakes.
    write_atomically(&server.pki.paths().key, &rotated.key_pem);
    wait_for("the new pair to be swapped in", || async {
        server.state.cert_generation() > generation
    })
    .await;
    let new_leaf = leaf_der(&rotated.cert_pem);
    assert_eq!(
        server.leaf_for("rotated.localhost").await.expect("a handshake"),
        new_leaf
    );
    assert_eq!(server.leaf_for("localhost").await.expect("a handshake"), new_leaf);
    assert!(server.metric(SUCCESSES.0, SUCCESSES.1).await >= 1.0);

    // Both clients keep getting answers after the swap, then stop.
    let (kept_then, fresh_then) = (kept.load(Ordering::SeqCst), fresh.load(Ordering::SeqCst));
    wait_for("answers after the swap", || async {
        kept.load(Ordering::SeqCst) > kept_then + 3 && fresh.load(Ordering::SeqCst) > fresh_then + 3
    })
    .await;
    stop_tx.send(true).expect("the clients listen");
    for traffic in [keep_alive, new_connections] {
        let report = common::within("the client loop to stop", traffic)
            .await
            .expect("the loop ran");
        assert!(
            report.failures.is_empty(),
            "requests failed during rotation: {report:#?}"
        );
        assert!(
            report.stopped_by_test,
            "the loop ran out before the rotation ended: {report:#?}"
        );
        assert!(report.answered > 0, "{report:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_files_are_refused_and_the_last_good_pair_keeps_serving() {
    let server = TestServer::start(Setup::default()).await;
    let old_leaf = leaf_der(&server.pki.issued.cert_pem);
    let paths = server.pki.paths();
    let cert_pem = server.pki.issued.cert_pem.clone();
    let half_written = &cert_pem[..cert_pem.len() / 2];
    let cases: [(&std::path::Path, &str); 4] = [
        (&paths.cert, "this is not a certificate\n"),
        (&paths.cert, half_written),
        (&paths.cert, ""),
        (
            &paths.key,
            "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
        ),
    ];
    for (path, contents) in cases {
        let failures = cert_failures(&server).await;
        let generation = server.state.cert_generation();
        let original = std::fs::read(path).expect("the file exists");
        write_atomically(path, contents);
        wait_for("the broken file to be refused", || async {
            cert_failures(&server).await > failures
        })
        .await;
        assert_eq!(server.state.cert_generation(), generation, "nothing was swapped");
        assert_eq!(server.leaf_for("localhost").await.expect("a handshake"), old_leaf);
        let client = server.client(Protocol::Http2);
        let response = server
            .post(&client, "/validate", review_bytes("create-pvc-dry-run"))
            .await;
        assert_eq!(response.response()["allowed"], true);
        write_atomically(path, original);
        // Restoring the pair on disk is a successful reload of the same pair.
        wait_for("the restored pair to be reloaded", || async {
            server.state.cert_generation() > generation
        })
        .await;
    }
    // The reloader survived every bad file: a new pair still goes live.
    let rotated = server
        .pki
        .reissue(&["localhost", "127.0.0.1", "rotated.localhost"]);
    let generation = server.state.cert_generation();
    write_atomically(&paths.key, &rotated.key_pem);
    write_atomically(&paths.cert, &rotated.cert_pem);
    wait_for("the new pair", || async {
        server.state.cert_generation() > generation
    })
    .await;
    wait_for("the new leaf on new handshakes", || async {
        server.leaf_for("rotated.localhost").await.is_ok()
    })
    .await;
}

// ---------------------------------------------------------------------------------------------------
// Start-up

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_and_a_key_that_do_not_match_do_not_start() {
    let pki = Pki::new();
    let other = pki.reissue(&SANS);
    std::fs::write(pki.paths().key, other.key_pem).expect("writing the key");
    let config = common::config(&Setup::default(), &pki);
    let error = start(config, std::future::pending())
        .await
        .expect_err("the pair is refused");
    assert!(
        matches!(&error, StartError::Tls(TlsError::Mismatch { .. })),
        "{error:?}"
    );
    assert!(error.to_string().contains("do not form a pair"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_file_does_not_start() {
    let pki = Pki::new();
    std::fs::remove_file(pki.paths().key).expect("removing the key");
    let config = common::config(&Setup::default(), &pki);
    let error = start(config, std::future::pending()).await.expect_err("no key");
    assert!(
        matches!(&error, StartError::Tls(TlsError::Read { .. })),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_volume_update_swaps_the_pair() {
    // tls.crt and tls.key become links into ..data, as in a mounted kubernetes.io/tls Secret.
    let pki = Pki::new();
    let issued = pki.issued.clone();
    let mut volume = common::ProjectedVolume::create(
        &pki.dir(),
        &[
            ("tls.crt", issued.cert_pem.as_bytes()),
            ("tls.key", issued.key_pem.as_bytes()),
        ],
    );
    assert!(pki.paths().cert.is_symlink());
    let server = TestServer::start_with_pki(Setup::default(), pki).await;
    assert_eq!(
        server.leaf_for("localhost").await.expect("a handshake"),
        leaf_der(&issued.cert_pem)
    );

    let rotated = server
        .pki
        .reissue(&["localhost", "127.0.0.1", "rotated.localhost"]);
    let (generation, failures) = (server.state.cert_generation(), cert_failures(&server).await);
    volume.update(&[
        ("tls.crt", rotated.cert_pem.as_bytes()),
        ("tls.key", rotated.key_pem.as_bytes()),
    ]);
    wait_for("the swapped pair", || async {
        server.state.cert_generation() > generation
    })
    .await;
    assert_eq!(
        server.leaf_for("rotated.localhost").await.expect("a handshake"),
        leaf_der(&rotated.cert_pem)
    );
    // Certificate and key change in one swap: there is no mismatched moment to refuse.
    assert_eq!(cert_failures(&server).await, failures);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pair_changed_right_after_start_is_picked_up() {
    let server = TestServer::start(Setup::default()).await;
    // No request in between: the change may land before the reloader has looked at the files.
    let rotated = server
        .pki
        .reissue(&["localhost", "127.0.0.1", "rotated.localhost"]);
    write_atomically(&server.pki.paths().key, &rotated.key_pem);
    write_atomically(&server.pki.paths().cert, &rotated.cert_pem);
    wait_for("the pair on disk to be the one serving", || async {
        server.leaf_for("rotated.localhost").await.is_ok()
    })
    .await;
}
