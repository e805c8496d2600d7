//! The watches behind the caches, and what each has done: events, relists and errors, for metrics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource as KubeResource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

/// What one watch has done, for metrics and `/readyz`: a cache fed by a stopped watch must say so.
#[derive(Debug)]
pub(super) struct WatchHealth {
    pub(super) kind: &'static str,
    started: Instant,
    /// Milliseconds after `started` of the last event, plus one (0: none yet).
    last_event_ms: AtomicU64,
    /// Full relists after the first (the watch restarted: 410 Gone, or a reconnect after an error).
    pub(super) restarts: AtomicU64,
    pub(super) errors: AtomicU64,
}

impl WatchHealth {
    pub(super) fn new(kind: &'static str) -> Arc<Self> {
        Arc::new(Self {
            kind,
            started: Instant::now(),
            last_event_ms: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        })
    }

    fn event(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        self.last_event_ms.store(ms + 1, Ordering::Relaxed);
    }

    pub(super) fn since_last_event(&self) -> Option<Duration> {
        match self.last_event_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(
                self.started
                    .elapsed()
                    .saturating_sub(Duration::from_millis(ms - 1)),
            ),
        }
    }
}

/// Starts one reflector; the returned store fills as the watch delivers.
pub(super) fn cache<K>(client: &Client, health: Arc<WatchHealth>) -> Store<K>
where
    K: KubeResource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            // managedFields can be most of an object and no rule reads them.
            .modify(|o: &mut K| o.managed_fields_mut().clear()),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut lists = 0u64;
        while let Some(event) = stream.next().await {
            match event {
                Ok(e) => {
                    health.event();
                    if matches!(e, watcher::Event::Init) {
                        lists += 1;
                        if lists > 1 {
                            health.restarts.fetch_add(1, Ordering::Relaxed);
                            info!(kind = health.kind, "Watch restarted; relisting");
                        }
                    }
                }
                Err(e) => {
                    health.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(kind = health.kind, error = %e, "Watch failed; backing off and resuming");
                }
            }
        }
    });
    reader
}

/// One cache's state, as exported in metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheStats {
    /// The kind cached ("PersistentVolumeClaim", ...).
    pub kind: &'static str,
    /// Objects in the cache now.
    pub objects: usize,
    /// Time since the watch last delivered anything (None: nothing yet). A watch that stopped shows here.
    pub since_last_event: Option<Duration>,
    /// Full relists after the first.
    pub watch_restarts: u64,
    /// Watch errors (each backed off and resumed).
    pub watch_errors: u64,
}
