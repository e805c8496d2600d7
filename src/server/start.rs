//! Starting the whole server from a configuration: policy, certificates (given or generated), the TLS
//! listener, the metrics listener and the reloader. `volguard serve` and the integration tests both start
//! it this way.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use super::metrics;
use super::reload::{self, Baseline, Watched};
use super::tls::{CertStore, PairPaths, TlsError, load_pair};
use super::{AppState, ServeError, ServeOptions, Server};
use crate::certs::{self, CertError};
use crate::lookup::{Lookup, Prefetch};
use crate::policy::{LoadError, PolicySet, load_path};

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files, reloaded when they change.
    Files(PairPaths),
    /// A dev CA and a certificate for localhost and 127.0.0.1, written into this directory.
    Generate(PathBuf),
}

/// Everything `serve` needs.
#[derive(Clone)]
pub struct Config {
    /// The HTTPS address.
    pub addr: SocketAddr,
    /// The plain-HTTP metrics address (None: no metrics listener).
    pub metrics_addr: Option<SocketAddr>,
    /// The certificate.
    pub tls: TlsSource,
    /// The policy file or directory (None: the built-in policy).
    pub policy: Option<PathBuf>,
    /// Edge behaviour.
    pub options: ServeOptions,
    /// How often watched files are re-hashed without an event.
    pub reload_poll: Duration,
    /// Where claims and scale targets are looked up.
    pub lookup: Arc<dyn Lookup>,
    /// Fetches what the lookup's cache has not seen yet, before each review (None: nothing to fetch).
    pub prefetch: Option<Arc<dyn Prefetch>>,
    /// Answer every review `allowed: true` without judging it: the load benchmark's baseline
    /// ([`baseline`](super::baseline)). Never in production.
    pub baseline_allow_all: bool,
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The policy did not load.
    #[error("loading the policy: {0}")]
    Policy(#[from] LoadError),
    /// The certificate pair did not load.
    #[error("loading the serving certificate: {0}")]
    Tls(#[from] TlsError),
    /// Dev certificates could not be made.
    #[error("generating dev certificates: {0}")]
    Certs(#[from] CertError),
    /// A listener could not start.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The metrics port could not be bound.
    #[error("binding the metrics address {addr}: {source}")]
    Metrics {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A blocking start-up task failed.
    #[error("start-up task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The HTTPS address bound.
    pub addr: SocketAddr,
    /// The metrics address bound.
    pub metrics_addr: Option<SocketAddr>,
    /// The CA bundle file, when the certificate was generated.
    pub generated_ca: Option<PathBuf>,
    /// Shared state (policy, metrics, reload generations).
    pub state: Arc<AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Waits until the server has shut down and drained.
    pub async fn wait(self) -> Result<(), tokio::task::JoinError> {
        self.task.await
    }
}

/// Loads, binds and starts serving; returns once listening. Serving stops when `shutdown` resolves.
pub async fn start(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Running, StartError> {
    // Fingerprint the files before loading them, so a change made meanwhile is reloaded, not missed.
    let certs_watched = match &config.tls {
        TlsSource::Files(paths) => Some(paths.clone()),
        TlsSource::Generate(_) => None,
    };
    let watched = Watched {
        policy: config.policy.clone(),
        certs: certs_watched,
        poll: config.reload_poll,
    };
    let baseline = Baseline::take(&watched).await;
    let policy = config.policy.clone();
    let policies = tokio::task::spawn_blocking(move || match &policy {
        Some(p) => load_path(p),
        None => PolicySet::builtin(),
    })
    .await??;
    let (pair_paths, generated_ca) = match &config.tls {
        TlsSource::Files(paths) => (paths.clone(), None),
        TlsSource::Generate(dir) => {
            let dir = dir.clone();
            let written = tokio::task::spawn_blocking(move || {
                let sans = ["localhost".to_owned(), "127.0.0.1".to_owned()];
                let issued = certs::issue("volguard-dev", &sans, 365)?;
                certs::write(&dir, &issued)
            })
            .await??;
            info!(ca = %written.ca.display(), "Generated a dev CA and serving certificate for localhost and 127.0.0.1; \
                  use the CA file as the webhook's caBundle");
            (
                PairPaths {
                    cert: written.cert,
                    key: written.key,
                },
                Some(written.ca),
            )
        }
    };
    let pair = {
        let p = pair_paths.clone();
        tokio::task::spawn_blocking(move || load_pair(&p)).await??
    };
    let store = Arc::new(CertStore::new(pair));
    let mut state = AppState::new(policies, config.lookup.clone(), Some(store));
    state.prefetch = config.prefetch.clone();
    state.baseline_allow_all = config.baseline_allow_all;
    if config.baseline_allow_all {
        tracing::warn!("Benchmark baseline: every review is allowed without being judged");
    }
    let state = Arc::new(state);
    let server = Server::bind(config.addr, Arc::clone(&state), config.options.clone()).await?;
    let addr = server.local_addr().map_err(|source| ServeError::Bind {
        addr: config.addr,
        source,
    })?;

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut metrics_addr = None;
    if let Some(m) = config.metrics_addr {
        let listener = metrics::bind(m)
            .await
            .map_err(|source| StartError::Metrics { addr: m, source })?;
        metrics_addr = listener.local_addr().ok();
        let mut rx = stop_rx.clone();
        let registry = Arc::clone(&state.metrics);
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = metrics::serve(listener, registry, stop).await {
                tracing::error!(error = %e, "Metrics listener failed");
            }
        });
    }
    let reloader = reload::spawn(Arc::clone(&state), watched, baseline);
    info!(%addr, metrics = ?metrics_addr, "Serving admission reviews on /validate and /mutate");
    let task = tokio::spawn(async move {
        server.run(shutdown).await;
        let _ = stop_tx.send(true);
        if let Some(r) = reloader {
            r.abort();
        }
    });
    Ok(Running {
        addr,
        metrics_addr,
        generated_ca,
        state,
        task,
    })
}
