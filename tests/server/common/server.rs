//! The real server, started through `server::start::start` the way `volguard serve` starts it, on
//! 127.0.0.1:0 with certificate files and a metrics listener.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use reqwest::StatusCode;
use rustls_pki_types::CertificateDer;
use tokio::sync::oneshot;
use volguard::adapters::server::start::{Config, Running, TlsSource, start};
use volguard::adapters::server::{AppState, ServeOptions};
use volguard::domain::lookup::Lookup;

use super::{
    Pki, Protocol, RELOAD_POLL, Reply, captured_bundle, client, handshake, init_tracing, post, sample,
    served_leaf,
};

/// How a test server is configured.
pub struct Setup {
    /// Where claims and scale targets are looked up.
    pub lookup: Arc<dyn Lookup>,
    /// The policy file or directory (None: the built-in policy).
    pub policy: Option<PathBuf>,
    /// Edge behaviour (timeouts, grace).
    pub options: ServeOptions,
    /// A CA whose certificates clients must present (`--client-ca`).
    pub client_ca: Option<PathBuf>,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            lookup: captured_bundle(),
            policy: None,
            options: ServeOptions::default(),
            client_ca: None,
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

    /// The leaf a fresh handshake naming `server_name` is served, or why the handshake failed.
    pub async fn leaf_for(&self, server_name: &str) -> std::io::Result<CertificateDer<'static>> {
        let tls = handshake(self.addr, &self.pki.ca_pem, server_name, &[b"http/1.1"]).await?;
        Ok(served_leaf(&tls))
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
        prefetch: None,
        baseline_allow_all: false,
        client_ca: setup.client_ca.clone(),
    }
}
