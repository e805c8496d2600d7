//! `volguard certs`: the files it writes, and a real TLS handshake (rustls, trusting only the CA) for
//! every name the API server may dial.

use crate::cli_common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use cli_common::{run, volguard};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned};

const SANS: [&str; 4] = [
    "volguard",
    "volguard.guard",
    "volguard.guard.svc",
    "volguard.guard.svc.cluster.local",
];

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Serves the issued pair on 127.0.0.1 (whatever name the client asks for) and answers "ok".
fn serve(dir: &Path) -> u16 {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("tls.crt"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).unwrap();
    let config = Arc::new(
        ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let mut tls = StreamOwned::new(ServerConnection::new(config).unwrap(), sock);
                // A client that refuses the certificate ends the handshake: nothing to answer then.
                if tls.write_all(b"ok").is_ok() {
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            });
        }
    });
    port
}

/// Connects with SNI `name`, trusting only `ca.crt`; Ok(answer) when the handshake verifies.
fn handshake(port: u16, ca: &Path, name: &str) -> Result<String, std::io::Error> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let conn =
        ClientConnection::new(Arc::new(config), ServerName::try_from(name.to_owned()).unwrap()).unwrap();
    let mut tls = StreamOwned::new(conn, TcpStream::connect(("127.0.0.1", port))?);
    let mut answer = String::new();
    tls.read_to_string(&mut answer)?;
    Ok(answer)
}

fn certs(out: &Path) -> cli_common::Run {
    run(volguard([
        "certs".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--service".as_ref(),
        "volguard".as_ref(),
        "--namespace".as_ref(),
        "guard".as_ref(),
        "--days".as_ref(),
        "2".as_ref(),
    ]))
}

#[test]
fn the_serving_certificate_verifies_for_every_service_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let result = certs(&out);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let port = serve(&out);
    for san in SANS {
        assert_eq!(
            handshake(port, &out.join("ca.crt"), san).unwrap(),
            "ok",
            "SNI {san}"
        );
    }
    for other in ["localhost", "volguard.other.svc", "guard.volguard.svc"] {
        let err = handshake(port, &out.join("ca.crt"), other).expect_err(other);
        assert!(
            err.to_string().contains("certificate not valid for name"),
            "{other}: {err}"
        );
    }
    // Trusting another CA fails too: the pair is bound to this CA.
    let stranger = dir.path().join("stranger.crt");
    std::fs::write(
        &stranger,
        volguard::adapters::certs::Ca::generate("stranger", 1)
            .unwrap()
            .pem,
    )
    .unwrap();
    assert!(handshake(port, &stranger, SANS[2]).is_err());
}

#[test]
fn files_keys_and_the_ca_bundle() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    std::fs::create_dir_all(&out).unwrap();
    // A key file left wide open by something else is narrowed.
    std::fs::write(out.join("tls.key"), "old").unwrap();
    std::fs::set_permissions(out.join("tls.key"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let result = certs(&out);
    assert_eq!(result.code, 0, "{}", result.stderr);
    let mode = std::fs::metadata(out.join("tls.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let ca = std::fs::read_to_string(out.join("ca.crt")).unwrap();
    let b64 = std::fs::read_to_string(out.join("ca.b64")).unwrap();
    assert_eq!(b64, result.stdout, "the caBundle is printed as written");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim_end())
        .unwrap();
    assert_eq!(decoded, ca.as_bytes());
    assert!(!b64.trim_end().contains('\n'), "one line, ready for caBundle");
    assert!(
        result.stderr.contains("volguard.guard.svc.cluster.local"),
        "{}",
        result.stderr
    );
    // The CA's key is never written.
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["ca.b64", "ca.crt", "tls.crt", "tls.key"]);
}

#[test]
fn certs_usage_errors_exit_2() {
    for args in [
        vec!["certs", "--service", "volguard", "--namespace", "guard"],
        vec!["certs", "--out", "x", "--namespace", "guard"],
        vec![
            "certs",
            "--out",
            "x",
            "--service",
            "v",
            "--namespace",
            "g",
            "--days",
            "0",
        ],
    ] {
        let out = run(volguard(&args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
    }
}

#[test]
fn api_server_client_pair_is_what_serve_client_ca_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let run = run(volguard([
        "certs".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
        "--service".as_ref(),
        "volguard".as_ref(),
        "--namespace".as_ref(),
        "guard".as_ref(),
        "--api-server-client".as_ref(),
    ]));
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "apiserver-client.key (client pair for the API server; serve with --client-ca {})",
            out.join("ca.crt").display()
        )),
        "{}",
        run.stderr
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("apiserver-client.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The verifier `serve --client-ca ca.crt` builds (rustls' WebPKI client verifier over ca.crt).
    let roots = volguard::adapters::server::tls::client_roots(&out.join("ca.crt")).unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
        .build()
        .unwrap();
    let leaf = |file: &str| CertificateDer::from_pem_file(out.join(file)).unwrap();
    let now = rustls::pki_types::UnixTime::now();
    assert!(
        verifier
            .verify_client_cert(&leaf("apiserver-client.crt"), &[], now)
            .is_ok()
    );
    // The serving certificate is for serving only: not a client certificate.
    let err = verifier
        .verify_client_cert(&leaf("tls.crt"), &[], now)
        .unwrap_err();
    assert!(format!("{err:?}").contains("InvalidPurpose"), "{err:?}");
}
