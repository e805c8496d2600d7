//! TLS for the webhook: rustls with a certificate that can be swapped while connections stay up.
//!
//! One `ServerConfig` resolves the serving pair through an [`ArcSwap`] on every handshake, so a reload is
//! one atomic store and existing connections keep the pair they started with. TLS 1.2 and 1.3 only; ALPN
//! offers h2 and http/1.1 (the API server speaks HTTP/1.1 with keep-alive).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::ServerConfig;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a certificate pair was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {message}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        message: String,
    },
    /// No certificate in the PEM.
    #[error("{0}: no certificate found (expected PEM \"BEGIN CERTIFICATE\")")]
    NoCertificate(PathBuf),
    /// The key does not parse.
    #[error("{path}: no usable private key: {message}")]
    Key {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// The key does not belong to the certificate, or is of an unsupported type.
    #[error("certificate {cert} and key {key} do not form a pair: {message}")]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        message: String,
    },
}

/// Where the serving pair lives.
#[derive(Clone, Debug)]
pub struct PairPaths {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub key: PathBuf,
}

/// Reads and checks a certificate pair from files. Blocking: call at start-up or in `spawn_blocking`.
pub(crate) fn load_pair(paths: &PairPaths) -> Result<Arc<CertifiedKey>, TlsError> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| TlsError::Read {
            path: p.to_path_buf(),
            message: e.to_string(),
        })
    };
    pair_from_pem(&read(&paths.cert)?, &read(&paths.key)?, paths)
}

/// Checks a certificate pair given as PEM bytes (`paths` only names them in errors).
pub(crate) fn pair_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    paths: &PairPaths,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|_| TlsError::NoCertificate(paths.cert.clone()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(paths.cert.clone()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key {
        path: paths.key.clone(),
        message: e.to_string(),
    })?;
    let provider = rustls::crypto::ring::default_provider();
    let pair = CertifiedKey::from_der(certs, key, &provider).map_err(|e| TlsError::Mismatch {
        cert: paths.cert.clone(),
        key: paths.key.clone(),
        message: e.to_string(),
    })?;
    Ok(Arc::new(pair))
}

/// The current serving pair, swappable.
#[derive(Debug)]
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl CertStore {
    /// Starts with a pair.
    pub fn new(pair: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(pair),
        }
    }

    /// Serves `pair` on every new handshake from now on.
    pub(crate) fn store(&self, pair: Arc<CertifiedKey>) {
        self.current.store(pair);
    }

    /// The pair now served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// When the leaf certificate now served was issued and when it expires (Unix seconds).
    pub fn validity(&self) -> Option<(i64, i64)> {
        validity(self.current.load().cert.first()?)
    }
}

/// The `notBefore` and `notAfter` of a DER certificate, as Unix seconds.
pub fn validity(cert: &CertificateDer<'_>) -> Option<(i64, i64)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let v = parsed.validity();
    Some((v.not_before.timestamp(), v.not_after.timestamp()))
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// A rustls server config over the store: TLS 1.2 and 1.3, ALPN h2 and http/1.1.
pub(crate) fn server_config(
    store: Arc<CertStore>,
    client_ca: Option<Arc<rustls::RootCertStore>>,
) -> Result<Arc<ServerConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
    let builder = match client_ca {
        // A client certificate, when presented, must chain to this CA, or the handshake fails. A client
        // may present none (the kubelet's probes do not): the router then refuses it reviews, which only
        // a client whose certificate was verified gets (the API server's, when its AdmissionConfiguration
        // gives it one for volguard).
        Some(roots) => {
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| rustls::Error::General(format!("client CA: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The CA certificates a client certificate must chain to, from a PEM file (`--client-ca`).
pub fn client_roots(path: &Path) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let pem = std::fs::read(path).map_err(|e| TlsError::Read {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&pem) {
        let cert = cert.map_err(|_| TlsError::NoCertificate(path.to_path_buf()))?;
        roots.add(cert).map_err(|e| TlsError::Key {
            path: path.to_path_buf(),
            message: format!("not a usable CA certificate: {e}"),
        })?;
    }
    if roots.is_empty() {
        return Err(TlsError::NoCertificate(path.to_path_buf()));
    }
    Ok(Arc::new(roots))
}
