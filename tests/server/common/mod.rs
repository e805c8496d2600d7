//! What the server tests share: a test PKI, the real server started the way `volguard serve` starts
//! it, HTTPS clients that trust only the test CA, the captured reviews, and bounded waiting.
//!
//! Every server here binds 127.0.0.1 only, and every wait has a deadline.

// Each test binary uses a different part of this module (and of what it re-exports).
#![allow(dead_code, unused_imports)]

mod client;
mod files;
mod metrics;
pub mod pki;
pub mod raw;
mod reviews;
mod server;

use std::future::Future;
use std::time::Duration;

pub use client::*;
pub use files::*;
pub use metrics::*;
pub use pki::Pki;
pub use reviews::*;
pub use server::*;

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
