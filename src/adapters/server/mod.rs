//! `volguard serve`: the HTTPS admission webhook.
//!
//! axum over tokio-rustls and hyper-util's auto (HTTP/1.1 + h2) connection builder; certificate and policy
//! hot reload; graceful shutdown that stops accepting, lets reviews in flight finish (bounded by a grace
//! period) and returns. See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.

pub mod baseline;
pub mod connections;
mod expiry;
pub mod log;
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

use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::{info, warn};

pub use connections::ConnectionLimits;
pub use routes::{Limits, router};
pub use state::AppState;

/// How the server behaves at its edges.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Request limits.
    pub limits: Limits,
    /// The webhook listener's connections.
    pub connections: ConnectionLimits,
    /// The metrics listener's connections.
    pub metrics_connections: ConnectionLimits,
    /// How long reviews in flight may take to finish after a shutdown signal.
    pub grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            connections: ConnectionLimits::webhook(),
            metrics_connections: ConnectionLimits::metrics(),
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
pub(crate) struct Server {
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<AppState>,
    options: ServeOptions,
}

impl Server {
    /// Binds `addr` with TLS from the state's certificate store; with `client_ca`, reviews come only from
    /// clients presenting a certificate that CA signed (the API server's, see `--client-ca`), while the
    /// probes stay open to the kubelet.
    pub(crate) async fn bind(
        addr: SocketAddr,
        state: Arc<AppState>,
        options: ServeOptions,
        client_ca: Option<Arc<rustls::RootCertStore>>,
    ) -> Result<Self, ServeError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })?;
        let store = state
            .certs
            .clone()
            .ok_or_else(|| rustls::Error::General("no certificate store".into()))?;
        let mut options = options;
        options.limits.require_client_cert = client_ca.is_some();
        let acceptor = TlsAcceptor::from(tls::server_config(store, client_ca)?);
        Ok(Self {
            listener,
            acceptor,
            state,
            options,
        })
    }

    /// The address actually bound (for `127.0.0.1:0`).
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves, then drains connections for at most the grace period and closes
    /// any still open.
    pub(crate) async fn run(self, shutdown: impl Future<Output = ()>) {
        let Server {
            listener,
            acceptor,
            state,
            options,
        } = self;
        let metrics = Arc::clone(&state.metrics);
        let app = router(state, options.limits);
        connections::serve(
            listener,
            Some(acceptor),
            app,
            options.connections,
            metrics,
            "webhook",
            options.grace,
            shutdown,
        )
        .await;
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn shutdown_signal() {
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
