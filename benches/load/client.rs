//! The load generator's client: HTTP/1.1 keep-alive connections over rustls (ring) trusting only the
//! server's dev CA, as the API server calls a webhook, and one review exchange with every answer checked.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long one exchange may take before it counts as an error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// One keep-alive connection.
pub type Connection = SendRequest<Full<Bytes>>;

/// A captured review with its uid replaced per request, as the API server gives every review its own.
pub struct ReviewTemplate {
    before: Vec<u8>,
    after: Vec<u8>,
}

const UID_MARK: &str = "@@uid@@";

impl ReviewTemplate {
    /// From an AdmissionReview request file, re-encoded compactly (the API server sends compact JSON).
    pub fn from_file(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self::from_review(serde_json::from_str(&text).expect("the review is JSON"))
    }

    /// From an AdmissionReview request, encoded compactly.
    pub fn from_review(mut review: serde_json::Value) -> Self {
        review["request"]["uid"] = UID_MARK.into();
        let body = serde_json::to_string(&review).expect("JSON serializes");
        let (before, after) = body.split_once(UID_MARK).expect("the uid mark is in the body");
        Self {
            before: before.as_bytes().to_vec(),
            after: after.as_bytes().to_vec(),
        }
    }

    /// No review: for a target only probed (`/readyz`).
    pub fn empty() -> Self {
        Self {
            before: Vec::new(),
            after: Vec::new(),
        }
    }

    /// The body length, for the report.
    pub fn len(&self) -> usize {
        self.before.len() + 36 + self.after.len()
    }

    /// A body with this uid.
    pub fn body(&self, uid: &str) -> Bytes {
        let mut body = Vec::with_capacity(self.before.len() + uid.len() + self.after.len());
        body.extend_from_slice(&self.before);
        body.extend_from_slice(uid.as_bytes());
        body.extend_from_slice(&self.after);
        body.into()
    }
}

/// A UUID-shaped uid, unique per (`stream`, `sequence`).
pub fn uid(stream: u64, sequence: u64) -> String {
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        stream & 0xffff_ffff,
        sequence & 0xffff_ffff_ffff
    )
}

/// Where reviews go and what every answer must say.
pub struct Target {
    /// The server's HTTPS address (127.0.0.1).
    pub addr: SocketAddr,
    connector: TlsConnector,
    /// The review sent.
    pub review: ReviewTemplate,
    /// Where it is sent: `/validate` or `/mutate`.
    pub path: &'static str,
    /// The `allowed` every answer must carry.
    pub allowed: bool,
}

impl Target {
    /// A target trusting only the CA in `ca` (PEM).
    pub fn new(addr: SocketAddr, ca: &Path, review: ReviewTemplate, allowed: bool) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca).expect("the CA file is readable") {
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
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self {
            addr,
            connector: TlsConnector::from(Arc::new(config)),
            review,
            path: "/validate",
            allowed,
        }
    }

    /// A new TLS connection speaking HTTP/1.1, kept alive across requests.
    pub async fn connect(&self) -> Result<Connection, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let name = ServerName::from(self.addr.ip());
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| format!("HTTP/1.1 handshake: {e}"))?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes the connection.
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole answer, within [`REQUEST_TIMEOUT`].
    pub async fn exchange(
        &self,
        conn: &mut Connection,
        method: &str,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), String> {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string())
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            conn.ready().await.map_err(|e| format!("connection: {e}"))?;
            let response = conn
                .send_request(request)
                .await
                .map_err(|e| format!("send: {e}"))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("body: {e}"))?;
            Ok((status, body.to_bytes()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
    }

    /// Checks one /validate answer: 200, the uid sent, and the expected `allowed`.
    pub fn check(&self, uid: &str, status: StatusCode, body: &[u8]) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Answer {
            response: Response,
        }
        #[derive(Deserialize)]
        struct Response {
            uid: String,
            allowed: bool,
        }
        if status != StatusCode::OK {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(body)));
        }
        let answer: Answer = serde_json::from_slice(body).map_err(|e| format!("answer: {e}"))?;
        if answer.response.uid != uid {
            return Err(format!("uid {:?} answered for {uid:?}", answer.response.uid));
        }
        if answer.response.allowed != self.allowed {
            return Err(format!(
                "allowed: {} (expected {})",
                answer.response.allowed, self.allowed
            ));
        }
        Ok(())
    }

    /// Sends one review with `uid` and checks the answer; returns when the answer was read (before the
    /// check, so checking costs no latency) and whether it was right.
    pub async fn review(&self, conn: &mut Connection, uid: &str) -> (Instant, Result<(), String>) {
        let answer = self
            .exchange(conn, "POST", self.path, self.review.body(uid))
            .await;
        let done = Instant::now();
        (
            done,
            answer.and_then(|(status, body)| self.check(uid, status, &body)),
        )
    }
}
