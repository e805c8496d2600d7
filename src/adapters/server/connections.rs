//! Accepting and serving connections, for the webhook (TLS) and the metrics listener (plain HTTP) alike:
//! a cap on open connections, deadlines for the TLS handshake and the first request, an idle timeout that
//! closes a connection with no request in flight (HTTP/1.1 keep-alive and HTTP/2 both), HTTP/2
//! keep-alive pings, and a graceful drain on shutdown bounded by a grace period.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;
use tracing::{debug, info, warn};

use super::metrics::{Metrics, Refusal};

/// How a listener treats its connections.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Connections open at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// How long a client has to finish the TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a client has to send its first request's headers (and, with HTTP/1.1, each later one's).
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The webhook's defaults: the API server keeps a pool of keep-alive connections, a few per replica.
    pub fn webhook() -> Self {
        Self {
            max_connections: 512,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
        }
    }

    /// The metrics listener's: a scraper or two.
    pub fn metrics() -> Self {
        Self {
            max_connections: 32,
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// When a connection last saw a request start or end, and how many are in flight on it.
#[derive(Debug)]
struct Activity {
    started: Instant,
    /// Milliseconds after `started`.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            started: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Option<Duration> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        Some(self.started.elapsed().saturating_sub(last))
    }
}

/// Serves `app` on `listener` (over TLS when `tls` is given) until `shutdown` resolves, then drains for at
/// most `grace` and closes what is still open.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    metrics: Arc<Metrics>,
    name: &'static str,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20))
        .max_concurrent_streams(250);
    let builder = Arc::new(builder);
    // Told to every connection on shutdown: each finishes its requests in flight and closes.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Every connection's task, so the ones still open when the grace period ends can be closed.
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    warn!(listener = name, error = %e, "Accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Reap finished connections, so the set holds only the open ones and a few just closed.
        while connections.try_join_next().is_some() {}
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.refused(Refusal::Connections);
            debug!(listener = name, %peer, "Too many connections; closing");
            drop(tcp);
            continue;
        };
        let (tls, builder, metrics) = (tls.clone(), Arc::clone(&builder), Arc::clone(&metrics));
        let watcher = stopping.clone();
        let app = app.clone();
        connections.spawn(async move {
            metrics.connection(name, 1);
            let _slot = slot;
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            // rustls has verified any certificate the client presented against --client-ca.
                            let identity = ClientIdentity {
                                verified: stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .is_some_and(|c| !c.is_empty()),
                            };
                            connection(stream, app, &builder, watcher, limits, name, peer, identity).await;
                        }
                        Ok(Err(e)) => debug!(listener = name, %peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(listener = name, %peer, "TLS handshake timed out"),
                    }
                }
                None => {
                    let identity = ClientIdentity { verified: false };
                    connection(tcp, app, &builder, watcher, limits, name, peer, identity).await;
                }
            }
            metrics.connection(name, -1);
        });
    }
    drop(listener);
    info!(
        listener = name,
        grace_seconds = grace.as_secs(),
        "Shutting down: no new connections, draining"
    );
    let _ = stop.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    match tokio::time::timeout(grace, drained).await {
        Ok(()) => info!(listener = name, "All connections closed"),
        Err(_) => warn!(
            listener = name,
            "Grace period over; closing remaining connections"
        ),
    }
    // Dropping a connection's task closes its socket; wait for that, so nothing outlives `serve`.
    connections.abort_all();
    while connections.join_next().await.is_some() {}
}

/// Who is at the other end of a connection, as far as TLS says: on every request as an extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientIdentity {
    /// The client presented a certificate and rustls verified it against `--client-ca`.
    pub verified: bool,
}

/// Serves one connection: its first request must come within the header timeout, and it is closed once
/// it has had no request in flight for the idle timeout.
#[allow(clippy::too_many_arguments)]
async fn connection<I>(
    io: I,
    app: Router,
    builder: &auto::Builder<TokioExecutor>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
    limits: ConnectionLimits,
    name: &'static str,
    peer: std::net::SocketAddr,
    identity: ClientIdentity,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Activity::new();
    // Signalled when hyper hands this connection's first request to the router.
    let first_request = Arc::new(Notify::new());
    let (signal, started, ended) = (
        Arc::clone(&first_request),
        Arc::clone(&activity),
        Arc::clone(&activity),
    );
    let service = app
        .map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(identity);
            started.in_flight.fetch_add(1, Ordering::Relaxed);
            started.touch();
            signal.notify_one();
            request
        })
        .map_response(move |response| {
            ended.in_flight.fetch_sub(1, Ordering::Relaxed);
            ended.touch();
            response
        });
    let conn = builder
        .serve_connection(TokioIo::new(io), TowerToHyperService::new(service))
        .into_owned();
    tokio::pin!(conn);
    // hyper's HTTP/1.1 header timer only starts once the auto builder has read enough bytes to tell
    // HTTP/1.1 from h2, and h2 has no timer before its preface: a client that sends nothing (or a few
    // bytes) would hold the connection for ever. Bound the wait for the first request head.
    let first = tokio::time::timeout(limits.header_timeout, first_request.notified());
    tokio::select! {
        ended = &mut conn => return log_end(ended, name, peer),
        waited = first => if waited.is_err() {
            return debug!(listener = name, %peer, "No request within the header timeout; closing");
        },
        _ = stopping.wait_for(|s| *s) => return,
    }
    // Then watch for idleness: hyper closes neither an idle h2 connection nor (between requests) waits on
    // a timer for HTTP/1.1 keep-alive by itself.
    let tick = (limits.idle_timeout / 4).max(Duration::from_millis(50));
    let mut closing = false;
    loop {
        tokio::select! {
            ended = &mut conn => return log_end(ended, name, peer),
            () = tokio::time::sleep(tick), if !closing => {
                if activity.idle_for().is_some_and(|idle| idle >= limits.idle_timeout) {
                    debug!(listener = name, %peer, "Idle; closing");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = stopping.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

fn log_end<E: std::fmt::Display>(ended: Result<(), E>, name: &'static str, peer: std::net::SocketAddr) {
    if let Err(e) = ended {
        debug!(listener = name, %peer, error = %e, "Connection ended with an error");
    }
}
