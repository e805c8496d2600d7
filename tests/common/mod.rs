//! What the server tests share: a test PKI, the real server started the way `volguard serve` starts
//! it, HTTPS clients that trust only the test CA, the captured reviews, and bounded waiting.
//!
//! Every server here binds 127.0.0.1 only, and every wait has a deadline.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

pub mod pki;
pub mod raw;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::{StatusCode, Version};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::client::TlsStream;
use volguard::lookup::{Bundle, Lookup};
use volguard::server::start::{Config, Running, TlsSource, start};
use volguard::server::{AppState, ServeOptions};
use volguard::workload::Resource;

pub use pki::Pki;

/// The longest any test waits for something that should happen (a reload, a response, a shutdown).
pub const DEADLINE: Duration = Duration::from_secs(20);

/// How often watched files are re-hashed in tests (the file watcher usually reacts first).
pub const RELOAD_POLL: Duration = Duration::from_millis(200);

/// Logs to the test output when `RUST_LOG` is set; a no-op otherwise.
pub fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

// ---------------------------------------------------------------------------------------------------
// Captured reviews

/// `tests/fixtures/reviews`: the AdmissionReviews a real kube-apiserver v1.20 sent, and their goldens.
pub fn reviews_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reviews")
}

/// The captured request `<name>.json`, byte for byte.
pub fn review_bytes(name: &str) -> Vec<u8> {
    let path = reviews_dir().join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The captured request `<name>.json`, as JSON to derive variants from.
pub fn review_json(name: &str) -> Value {
    serde_json::from_slice(&review_bytes(name)).expect("captured reviews are JSON")
}

/// The names of every captured request (`create-deployment`, ...), sorted.
pub fn captured_review_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(reviews_dir())
        .expect("tests/fixtures/reviews exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json") && !n.contains(".response."))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    names.sort();
    names
}

/// The object a captured request carries, decoded the way the server decodes it.
pub fn object_of(name: &str) -> Resource {
    object_in(&review_bytes(name))
}

/// The object a review body carries, decoded the way the server decodes it.
pub fn object_in(review: &[u8]) -> Resource {
    volguard::admission::parse(review)
        .expect("the review parses")
        .object
        .expect("the review carries an object volguard reads")
}

/// What the captured cluster held when the reviews were recorded: claim `shop/web-data`
/// (ReadWriteOnce), Deployment `shop/web` (3 replicas on it) and StatefulSet `db/pg`.
///
/// Claims `batch/scratch` (the Job's) and `ops/logs` (the DaemonSet's) were never created in the
/// capture, so they are deliberately absent: those workloads get `missing-claim` warnings.
pub fn captured_objects() -> Vec<Resource> {
    ["create-pvc", "create-deployment", "create-statefulset"]
        .into_iter()
        .map(object_of)
        .collect()
}

/// [`captured_objects`] as a lookup.
pub fn captured_bundle() -> Arc<dyn Lookup> {
    Arc::new(captured_objects().iter().collect::<Bundle>())
}

/// A PersistentVolumeClaim like the captured `web-data`, renamed and with other access modes.
pub fn claim(namespace: &str, name: &str, modes: &[&str]) -> Resource {
    let mut review = review_json("create-pvc");
    let object = &mut review["request"]["object"];
    object["metadata"]["name"] = name.into();
    object["metadata"]["namespace"] = namespace.into();
    object["spec"]["accessModes"] = modes.iter().map(|m| Value::from(*m)).collect();
    review["request"]["namespace"] = namespace.into();
    review["request"]["name"] = name.into();
    object_in(&serde_json::to_vec(&review).expect("JSON serializes"))
}

// ---------------------------------------------------------------------------------------------------
// The server

/// How a test server is configured.
pub struct Setup {
    /// Where claims and scale targets are looked up.
    pub lookup: Arc<dyn Lookup>,
    /// The policy file or directory (None: the built-in policy).
    pub policy: Option<PathBuf>,
    /// Edge behaviour (timeouts, grace).
    pub options: ServeOptions,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            lookup: captured_bundle(),
            policy: None,
            options: ServeOptions::default(),
        }
    }
}

/// The real server, started through `server::start::start` on 127.0.0.1:0, with its PKI.
pub struct TestServer {
    /// The CA and the serving pair's files.
    pub pki: Pki,
    /// The HTTPS address.
    pub addr: SocketAddr,
    /// The plain-HTTP metrics address.
    pub metrics_addr: SocketAddr,
    /// The server's state (policy and certificate generations, metrics).
    pub state: Arc<AppState>,
    running: Option<Running>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl TestServer {
    /// Starts a server with a fresh PKI.
    pub async fn start(setup: Setup) -> Self {
        Self::start_with_pki(setup, Pki::new()).await
    }

    /// Starts a server serving `pki`'s pair.
    pub async fn start_with_pki(setup: Setup, pki: Pki) -> Self {
        init_tracing();
        let config = config(&setup, &pki);
        let (tx, rx) = oneshot::channel::<()>();
        // Dropping the sender (the test ending) also shuts the server down.
        let running = start(config, async move {
            let _ = rx.await;
        })
        .await
        .expect("the server starts");
        Self {
            pki,
            addr: running.addr,
            metrics_addr: running.metrics_addr.expect("a metrics listener was asked for"),
            state: Arc::clone(&running.state),
            running: Some(running),
            shutdown: Some(tx),
        }
    }

    /// `https://127.0.0.1:<port><path>`: the leaf carries the IP address as a SAN.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:<metrics port>/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    /// A client trusting only this server's CA, speaking `protocol`.
    pub fn client(&self, protocol: Protocol) -> reqwest::Client {
        client(&self.pki.ca_pem, protocol)
    }

    /// POSTs a body to `path` and reads the whole answer.
    pub async fn post(&self, client: &reqwest::Client, path: &str, body: impl Into<reqwest::Body>) -> Reply {
        post(client, &self.url(path), body).await
    }

    /// The metrics text, scraped over plain HTTP.
    pub async fn scrape(&self) -> String {
        let client = self.client(Protocol::Http1);
        let response = client
            .get(self.metrics_url())
            .send()
            .await
            .expect("the metrics port answers");
        assert_eq!(response.status(), StatusCode::OK, "GET /metrics");
        response.text().await.expect("metrics are text")
    }

    /// One metric sample (summed over series matching `labels`), scraped over plain HTTP.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        sample(&self.scrape().await, name, labels)
    }

    /// Resolves the `shutdown` future the server was started with.
    pub fn trigger_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Takes the running server, to wait on it.
    pub fn take_running(&mut self) -> Running {
        self.running
            .take()
            .expect("the server is still owned by the test")
    }
}

/// The `Config` the server is started with: 127.0.0.1:0 for both listeners, certificate files.
pub fn config(setup: &Setup, pki: &Pki) -> Config {
    Config {
        addr: "127.0.0.1:0".parse().expect("a socket address"),
        metrics_addr: Some("127.0.0.1:0".parse().expect("a socket address")),
        tls: TlsSource::Files(pki.paths()),
        policy: setup.policy.clone(),
        options: setup.options.clone(),
        reload_poll: RELOAD_POLL,
        lookup: Arc::clone(&setup.lookup),
    }
}

// ---------------------------------------------------------------------------------------------------
// Clients

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

// ---------------------------------------------------------------------------------------------------
// Metrics

/// The sum of the samples of `name` whose labels include every pair in `labels` (0 when none).
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let matches = labels.iter().all(|(k, v)| {
                series_labels
                    .split(',')
                    .any(|pair| pair == format!("{k}=\"{v}\""))
            });
            matches.then(|| value.parse::<f64>().expect("a numeric sample"))
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------------
// Files and waiting

/// Replaces a file the way a careful writer does: a hidden temporary file in the same directory,
/// renamed over the target, so a reader never sees half of it.
pub fn write_atomically(path: &Path, bytes: impl AsRef<[u8]>) {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes).expect("writing the temporary file");
    std::fs::rename(&tmp, path).expect("renaming over the target");
}

/// Polls `check` until it holds, failing the test after [`DEADLINE`]. Polling is how the test
/// learns that something happened; it never asserts how long it took.
pub async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up after {DEADLINE:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Awaits `future`, failing the test after [`DEADLINE`].
pub async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("gave up after {DEADLINE:?} waiting for {what}"))
}

/// A directory laid out the way the kubelet projects a ConfigMap or Secret volume: every file is a
/// symlink `name -> ..data/name`, `..data` is a symlink to a timestamped directory, and an update
/// writes a new timestamped directory and swaps `..data` atomically (a rename over a temporary link).
pub struct ProjectedVolume {
    dir: PathBuf,
    version: u32,
}

impl ProjectedVolume {
    /// Projects `files` into `dir` (replacing plain files of the same names).
    pub fn create(dir: &Path, files: &[(&str, &[u8])]) -> Self {
        let mut volume = Self {
            dir: dir.to_path_buf(),
            version: 0,
        };
        let data = volume.write_version(files);
        std::os::unix::fs::symlink(&data, dir.join("..data")).expect("linking ..data");
        for (name, _) in files {
            let link = dir.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(Path::new("..data").join(name), &link).expect("linking a file");
        }
        volume
    }

    /// Publishes new contents: a new version directory, then one atomic swap of `..data`, then the
    /// old version is removed (as the kubelet does).
    pub fn update(&mut self, files: &[(&str, &[u8])]) {
        let old = self.version_dir(self.version);
        let data = self.write_version(files);
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(&data, &tmp).expect("linking ..data_tmp");
        std::fs::rename(&tmp, self.dir.join("..data")).expect("swapping ..data");
        std::fs::remove_dir_all(old).expect("removing the old version");
    }

    fn version_dir(&self, version: u32) -> PathBuf {
        self.dir
            .join(format!("..2026_11_24_16_27_{version:02}.000000001"))
    }

    /// Writes the next version directory; returns its name (relative, as the kubelet links it).
    fn write_version(&mut self, files: &[(&str, &[u8])]) -> PathBuf {
        self.version += 1;
        let dir = self.version_dir(self.version);
        std::fs::create_dir(&dir).expect("creating a version directory");
        for (name, contents) in files {
            std::fs::write(dir.join(name), contents).expect("writing a projected file");
        }
        PathBuf::from(dir.file_name().expect("a directory name"))
    }
}
