//! A test PKI: a CA made with `volguard::adapters::certs::Ca` (ECDSA P-256) and a serving pair for
//! `localhost` and `127.0.0.1`, written into a temporary directory as `tls.crt` and `tls.key`.

use std::path::PathBuf;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tempfile::TempDir;
use volguard::adapters::certs::{self, Ca, Issued};
use volguard::adapters::server::tls::PairPaths;

/// The SANs every test leaf carries: the server is reached as `127.0.0.1`, handshakes name `localhost`.
pub const SANS: [&str; 2] = ["localhost", "127.0.0.1"];

/// A CA, the serving pair it issued, and where that pair lives.
pub struct Pki {
    /// The CA that signs every leaf of this PKI.
    pub ca: Ca,
    /// The CA certificate: the only root test clients trust.
    pub ca_pem: String,
    /// The pair written at start.
    pub issued: Issued,
    dir: TempDir,
}

impl Pki {
    /// A new CA and an ECDSA leaf for [`SANS`].
    pub fn new() -> Self {
        let ca = Ca::generate("volguard-test CA", 1).expect("the CA generates");
        let issued = issue(&ca, &SANS);
        let dir = tempfile::tempdir().expect("a temporary directory");
        certs::write(dir.path(), &issued).expect("the pair is written");
        Self {
            ca_pem: ca.pem.clone(),
            ca,
            issued,
            dir,
        }
    }

    /// A PKI serving a pair made elsewhere (another key type), trusted through `ca_pem`.
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Self {
        let mut pki = Self::new();
        pki.ca_pem = ca_pem.to_owned();
        pki.issued = Issued {
            ca_pem: ca_pem.to_owned(),
            cert_pem: cert_pem.to_owned(),
            key_pem: key_pem.to_owned(),
        };
        std::fs::write(pki.paths().cert, cert_pem).expect("writing the certificate");
        std::fs::write(pki.paths().key, key_pem).expect("writing the key");
        pki
    }

    /// The directory holding `tls.crt` and `tls.key`.
    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// The serving pair's files.
    pub fn paths(&self) -> PairPaths {
        PairPaths {
            cert: self.dir.path().join("tls.crt"),
            key: self.dir.path().join("tls.key"),
        }
    }

    /// A new ECDSA leaf from the same CA.
    pub fn reissue(&self, sans: &[&str]) -> Issued {
        issue(&self.ca, sans)
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

fn issue(ca: &Ca, sans: &[&str]) -> Issued {
    let sans: Vec<String> = sans.iter().map(|s| (*s).to_owned()).collect();
    ca.issue("volguard-test", &sans, 1).expect("the leaf is issued")
}

/// The DER of the first certificate in a PEM chain.
pub fn leaf_der(cert_pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(cert_pem.as_bytes()).expect("a PEM certificate")
}
