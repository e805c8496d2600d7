//! `volguard serve`: the HTTPS admission webhook.
//!
//! axum over tokio-rustls and hyper-util's auto (HTTP/1.1 + h2) connection builder; certificate and policy
//! hot reload; graceful shutdown that stops accepting, lets reviews in flight finish (bounded by a grace
//! period) and returns. See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.

pub mod baseline;
pub mod metrics;
pub mod reload;
pub mod routes;
pub mod start;
pub mod state;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

pub use routes::{Limits, router};
pub use state::AppState;

/// How the server behaves at its edges.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Request limits.
    pub limits: Limits,
    /// How long a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client has to send a request's headers: from the TLS handshake to its first request,
    /// and (HTTP/1.1) for each later one, which also bounds idle keep-alive connections.
    pub header_timeout: Duration,
    /// How long reviews in flight may take to finish after a shutdown signal.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            grace: Duration::from_secs(15),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A bound, not yet serving, webhook server.
pub struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<AppState>,
    options: ServeOptions,
}

impl Server {
    /// Binds `addr` with TLS from the state's certificate store.
    pub async fn bind(
        addr: SocketAddr,
        state: Arc<AppState>,
        options: ServeOptions,
    ) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let store = state
            .certs
            .clone()
            .ok_or_else(|| rustls::Error::General("no certificate store".into()))?;
        let acceptor = TlsAcceptor::from(tls::server_config(store)?);
        Ok(Self {
            listener,
            acceptor,
            state,
            options,
        })
    }

    /// The address actually bound (for `127.0.0.1:0`).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains connections for at most the grace period and closes
    /// any still open.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            acceptor,
            state,
            options,
        } = self;
        let app = router(state, options.limits);
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(options.header_timeout)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(20))
            .max_concurrent_streams(250);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        // Every connection's task, so the ones still open when the grace period ends can be closed.
        let mut connections = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        warn!(error = %e, "Accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let acceptor = acceptor.clone();
            // Signalled when hyper hands this connection's first request to the router.
            let first_request = Arc::new(Notify::new());
            let signal = Arc::clone(&first_request);
            let service = TowerToHyperService::new(app.clone().map_request(move |request| {
                signal.notify_one();
                request
            }));
            let builder = Arc::clone(&builder);
            let watcher = graceful.watcher();
            let (handshake_timeout, header_timeout) = (options.handshake_timeout, options.header_timeout);
            // Reap finished connections, so the set holds only the open ones and a few just closed.
            while connections.try_join_next().is_some() {}
            connections.spawn(async move {
                let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return debug!(%peer, "TLS handshake timed out"),
                };
                let conn = builder.serve_connection(TokioIo::new(tls), service).into_owned();
                let conn = watcher.watch(conn);
                tokio::pin!(conn);
                // hyper's HTTP/1.1 header timer only starts once the auto builder has read enough bytes to
                // tell HTTP/1.1 from h2, and h2 has no timer before its preface: a client that sends nothing
                // (or a few bytes) after the handshake would hold the connection for ever. Bound the wait
                // for the first request head; after it, hyper's own timers take over.
                let first = tokio::time::timeout(header_timeout, first_request.notified());
                let ended = tokio::select! {
                    ended = &mut conn => Some(ended),
                    waited = first => match waited {
                        Ok(()) => None,
                        Err(_) => return debug!(%peer, "No request within the header timeout; closing"),
                    },
                };
                let ended = match ended {
                    Some(ended) => ended,
                    None => conn.await,
                };
                if let Err(e) = ended {
                    debug!(%peer, error = %e, "Connection ended with an error");
                }
            });
        }
        drop(listener);
        info!(
            grace_seconds = options.grace.as_secs(),
            "Shutting down: no new connections, draining reviews"
        );
        tokio::select! {
            () = graceful.shutdown() => info!("All connections closed"),
            () = tokio::time::sleep(options.grace) => warn!("Grace period over; closing remaining connections"),
        }
        // Dropping a connection's task closes its socket; wait for that, so nothing outlives `run`.
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            warn!(error = %e, "Cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                warn!(error = %e, "Cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => info!("SIGINT received"),
        () = term => info!("SIGTERM received"),
    }
}
