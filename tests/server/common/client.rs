//! HTTPS clients that trust only the test CA (rustls with ring): reqwest for requests, tokio-rustls for
//! bare handshakes.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use reqwest::{StatusCode, Version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::DEADLINE;

/// Which HTTP version a client negotiates (through ALPN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// ALPN `http/1.1` only, and `http1_only`.
    Http1,
    /// ALPN `h2` only.
    Http2,
}

impl Protocol {
    /// The version a response must come back in.
    pub fn version(self) -> Version {
        match self {
            Protocol::Http1 => Version::HTTP_11,
            Protocol::Http2 => Version::HTTP_2,
        }
    }

    fn alpn(self) -> &'static [u8] {
        match self {
            Protocol::Http1 => b"http/1.1",
            Protocol::Http2 => b"h2",
        }
    }
}

/// A rustls client config (ring) whose only root is the test CA.
pub fn tls_client_config(ca_pem: &str, alpn: &[&[u8]]) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.expect("the CA is PEM"))
            .expect("the CA is a usable root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// A reqwest client trusting only `ca_pem`, speaking `protocol`, never going through a proxy.
pub fn client(ca_pem: &str, protocol: Protocol) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls_client_config(ca_pem, &[protocol.alpn()]))
        .no_proxy()
        .connect_timeout(DEADLINE)
        .timeout(DEADLINE);
    let builder = match protocol {
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder,
    };
    builder.build().expect("the client builds")
}

/// A whole answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The HTTP version it came back in.
    pub version: Version,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// Every header.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body text if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "the body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// The AdmissionResponse inside a 200 AdmissionReview answer.
    pub fn response(&self) -> Value {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "expected a 200 AdmissionReview, got {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body)
        );
        let review = self.json();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1", "{review:#}");
        assert_eq!(review["kind"], "AdmissionReview", "{review:#}");
        review["response"].clone()
    }

    /// The `error` of a JSON error answer with `status`, checking its shape.
    pub fn error(&self, status: StatusCode) -> String {
        assert_eq!(
            self.status,
            status,
            "unexpected status; body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json"),
            "error answers are JSON"
        );
        let body = self.json();
        assert_eq!(body["code"], status.as_u16(), "{body:#}");
        body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error string in {body:#}"))
            .to_owned()
    }
}

/// POSTs a body and reads the whole answer.
pub async fn post(client: &reqwest::Client, url: &str, body: impl Into<reqwest::Body>) -> Reply {
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e:?}"));
    read(response).await
}

/// GETs a path and reads the whole answer.
pub async fn get(client: &reqwest::Client, url: &str) -> Reply {
    let response = client
        .get(url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e:?}"));
    read(response).await
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let version = response.version();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let headers = response.headers().clone();
    let body = response.bytes().await.expect("the whole body arrives");
    Reply {
        status,
        version,
        content_type,
        headers,
        body,
    }
}

/// A TLS handshake with `server_name` over a fresh TCP connection to `addr`.
pub async fn handshake(
    addr: SocketAddr,
    ca_pem: &str,
    server_name: &str,
    alpn: &[&[u8]],
) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls_client_config(ca_pem, alpn)));
    let name = ServerName::try_from(server_name.to_owned()).expect("a valid server name");
    let tcp = TcpStream::connect(addr).await?;
    tokio::time::timeout(DEADLINE, connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

/// The leaf certificate a TLS connection was served.
pub fn served_leaf(tls: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server sent a certificate")
        .clone()
        .into_owned()
}
