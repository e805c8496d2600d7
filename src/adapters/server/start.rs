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
use crate::adapters::certs::{self, CertError};
use crate::domain::lookup::{Lookup, Prefetch};
use crate::domain::policy::{LoadError, PolicySet, load_path};

/// Where the serving certificate comes from.
#[derive(Clone, Debug)]
pub enum TlsSource {
    /// PEM files, reloaded when they change.
    Files(PairPaths),
    /// A dev CA and a certificate for localhost and 127.0.0.1, written into this directory.
    Generate(PathBuf),
    /// A pair already loaded, whose owner swaps in new ones (self-managed TLS: the Secret's watcher).
    Managed(Arc<rustls::sign::CertifiedKey>),
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
    /// Require every client to present a certificate signed by one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
}

/// How long a generated dev certificate is valid; it is renewed after two thirds of that.
pub(crate) const DEV_CERT_DAYS: u32 = 365;

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
        TlsSource::Generate(_) | TlsSource::Managed(_) => None,
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
    let (pair, generated_ca) = match &config.tls {
        TlsSource::Managed(pair) => (Arc::clone(pair), None),
        TlsSource::Files(paths) => {
            let p = paths.clone();
            (tokio::task::spawn_blocking(move || load_pair(&p)).await??, None)
        }
        TlsSource::Generate(dir) => {
            let dir = dir.clone();
            let written = tokio::task::spawn_blocking(move || dev_pair(&dir)).await??;
            info!(ca = %written.ca.display(), "Serving a dev certificate for localhost and 127.0.0.1; use the CA file \
                  as the webhook's caBundle");
            let p = PairPaths {
                cert: written.cert,
                key: written.key,
            };
            (
                tokio::task::spawn_blocking(move || load_pair(&p)).await??,
                Some(written.ca),
            )
        }
    };
    let client_roots = match &config.client_ca {
        Some(path) => {
            let path = path.clone();
            Some(tokio::task::spawn_blocking(move || super::tls::client_roots(&path)).await??)
        }
        None => None,
    };
    let store = Arc::new(CertStore::new(pair));
    let mut state = AppState::new(policies, config.lookup.clone(), Some(store));
    state.prefetch = config.prefetch.clone();
    state.baseline_allow_all = config.baseline_allow_all;
    if config.baseline_allow_all {
        tracing::warn!("Benchmark baseline: every review is allowed without being judged");
    }
    let state = Arc::new(state);
    let server = Server::bind(
        config.addr,
        Arc::clone(&state),
        config.options.clone(),
        client_roots,
    )
    .await?;
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
        let limits = config.options.metrics_connections;
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            metrics::serve(listener, registry, limits, stop).await;
        });
    }
    let reloader = reload::spawn(Arc::clone(&state), watched, baseline);
    let expiry = tokio::spawn(watch_expiry(
        Arc::clone(&state),
        match &config.tls {
            TlsSource::Generate(dir) => Expiry::RenewDev(dir.clone()),
            TlsSource::Files(_) => Expiry::Warn,
            // The Secret's watcher exports and warns (managed_tls).
            TlsSource::Managed(_) => Expiry::Managed,
        },
    ));
    info!(%addr, metrics = ?metrics_addr, "Serving admission reviews on /validate and /mutate");
    let task = tokio::spawn(async move {
        server.run(shutdown).await;
        let _ = stop_tx.send(true);
        if let Some(r) = reloader {
            r.abort();
        }
        expiry.abort();
    });
    Ok(Running {
        addr,
        metrics_addr,
        generated_ca,
        state,
        task,
    })
}

/// The dev pair in `dir`: the one already there while it has more than a third of its life left (so the
/// CA registered as a caBundle stays valid across restarts), else a new CA and certificate.
fn dev_pair(dir: &std::path::Path) -> Result<certs::Written, StartError> {
    let existing = certs::Written::in_dir(dir);
    let paths = PairPaths {
        cert: existing.cert.clone(),
        key: existing.key.clone(),
    };
    if existing.ca.exists()
        && let Ok(pair) = load_pair(&paths)
        && let Some((not_before, not_after)) = pair.cert.first().and_then(super::tls::validity)
        && renewal_due(not_before, not_after, unix_now()) > 0
    {
        return Ok(existing);
    }
    let sans = ["localhost".to_owned(), "127.0.0.1".to_owned()];
    let issued = certs::issue("volguard-dev", &sans, DEV_CERT_DAYS)?;
    Ok(certs::write(dir, &issued)?)
}

/// Seconds since the Unix epoch (0 before it), for timestamp metrics.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Seconds until a certificate valid from `not_before` to `not_after` is two thirds through its life (0
/// when it already is).
fn renewal_due(not_before: i64, not_after: i64, now: i64) -> i64 {
    let renew_at = not_before + (not_after - not_before) * 2 / 3;
    (renew_at - now).max(0)
}

/// Who looks after the serving certificate's expiry.
enum Expiry {
    /// Files: export and warn.
    Warn,
    /// A generated dev pair: also renew it.
    RenewDev(PathBuf),
    /// Self-managed: only export here.
    Managed,
}

/// Every hour: exports the serving certificate's expiry, warns in its last 30 days, and renews a
/// generated dev certificate two thirds through its life (swapped in without a restart).
async fn watch_expiry(state: Arc<AppState>, expiry: Expiry) {
    const WARN_WITHIN: i64 = 30 * 86_400;
    let generated = match &expiry {
        Expiry::RenewDev(dir) => Some(dir.clone()),
        Expiry::Warn | Expiry::Managed => None,
    };
    loop {
        state.record_certificate_expiry();
        let validity = state.certs.as_ref().and_then(|c| c.validity());
        if let Some((not_before, not_after)) = validity
            && !matches!(expiry, Expiry::Managed)
        {
            let left = not_after - unix_now();
            if left < WARN_WITHIN {
                tracing::warn!(
                    days_left = left / 86_400,
                    "The serving certificate expires soon; renew it"
                );
            }
            if let Some(dir) = &generated
                && renewal_due(not_before, not_after, unix_now()) == 0
            {
                renew_dev(&state, dir).await;
            }
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}

async fn renew_dev(state: &Arc<AppState>, dir: &std::path::Path) {
    let dir = dir.to_path_buf();
    let renewed = tokio::task::spawn_blocking(move || -> Result<_, StartError> {
        let sans = ["localhost".to_owned(), "127.0.0.1".to_owned()];
        let issued = certs::issue("volguard-dev", &sans, DEV_CERT_DAYS)?;
        let written = certs::write(&dir, &issued)?;
        Ok(load_pair(&PairPaths {
            cert: written.cert,
            key: written.key,
        })?)
    })
    .await;
    match renewed {
        Ok(Ok(pair)) => {
            super::reload::swap_pair(state, Ok(pair), "the renewed dev certificate");
            info!("Renewed the dev certificate (register the new ca.crt as the caBundle)");
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "Could not renew the dev certificate"),
        Err(e) => tracing::warn!(error = %e, "Could not renew the dev certificate"),
    }
}

#[cfg(test)]
mod tests {
    use super::renewal_due;

    #[test]
    fn a_certificate_is_renewed_two_thirds_through_its_life() {
        let day = 86_400;
        assert_eq!(renewal_due(0, 300 * day, 100 * day), 100 * day);
        assert_eq!(renewal_due(0, 300 * day, 200 * day), 0);
        assert_eq!(renewal_due(0, 300 * day, 250 * day), 0);
    }
}
