//! The watches behind the cluster index, one per kind of the table, and what each has done: events,
//! relists and errors, for metrics and `/readyz`.
//!
//! Each watch applies its events to the one shared [`Index`]: a relist replaces that kind's objects at
//! once when the list is complete, so a review never sees half a list.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource as KubeResource};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::domain::lookup::Index;
use crate::domain::workload::{Kind, Resource};

/// What one watch has done, for metrics and `/readyz`: a cache fed by a stopped watch must say so.
#[derive(Debug)]
pub(super) struct WatchHealth {
    pub(super) kind: Kind,
    started: Instant,
    /// Milliseconds after `started` of the last event, plus one (0: none yet).
    last_event_ms: AtomicU64,
    /// Full relists after the first (the watch restarted: 410 Gone, or a reconnect after an error).
    pub(super) restarts: AtomicU64,
    pub(super) errors: AtomicU64,
    /// Whether the first list has been applied (or the API server does not serve the kind).
    pub(super) synced: AtomicBool,
}

impl WatchHealth {
    pub(super) fn new(kind: Kind) -> Arc<Self> {
        Arc::new(Self {
            kind,
            started: Instant::now(),
            last_event_ms: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            synced: AtomicBool::new(false),
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

/// How a watched type becomes an index entry: cut down, or dropped (a pod a controller owns, a pod that
/// finished), in which case an earlier version of it is removed.
pub(super) type Convert<K> = fn(K) -> Option<Resource>;

/// Counts the changes to what the index holds, for whoever acts on them (the background audit): bumped
/// by an event that adds, changes or removes what volguard keeps of an object, and by a relist after the
/// first; not by an event that changes only what the cut-down copy leaves out (status, resourceVersion).
pub(super) type Changes = Arc<tokio::sync::watch::Sender<u64>>;

/// Starts the watch of one kind; `done` is told once its first list is in the index.
pub(super) fn spawn<K>(
    client: &Client,
    index: Arc<RwLock<Index>>,
    health: Arc<WatchHealth>,
    convert: Convert<K>,
    done: tokio::sync::mpsc::UnboundedSender<Kind>,
    changes: Changes,
) where
    K: KubeResource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let stream = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut lists = 0u64;
        let mut listing: Vec<Resource> = Vec::new();
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(e) => e,
                Err(e) => {
                    health.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(kind = %health.kind, error = %e, "Watch failed; backing off and resuming");
                    continue;
                }
            };
            health.event();
            match event {
                watcher::Event::Init => listing.clear(),
                watcher::Event::InitApply(o) => listing.extend(convert(o)),
                watcher::Event::InitDone => {
                    lists += 1;
                    if lists > 1 {
                        health.restarts.fetch_add(1, Ordering::Relaxed);
                        info!(kind = %health.kind, "Watch restarted; relisted");
                    }
                    let objects = std::mem::take(&mut listing);
                    if let Ok(mut index) = index.write() {
                        index.clear_kind(health.kind);
                        for o in objects {
                            index.insert(o);
                        }
                    }
                    if !health.synced.swap(true, Ordering::SeqCst) {
                        let _ = done.send(health.kind);
                    } else {
                        changes.send_modify(|n| *n += 1);
                    }
                }
                watcher::Event::Apply(o) => {
                    let key = key_of(&o);
                    let converted = convert(o);
                    // Compared under the read lock (reviews keep reading): most events are status
                    // updates, which change nothing the cut-down copy keeps.
                    let unchanged = converted
                        .as_ref()
                        .is_some_and(|r| index.read().is_ok_and(|index| index.holds(r)));
                    let changed = !unchanged
                        && index.write().is_ok_and(|mut index| match converted {
                            Some(r) => {
                                index.insert(r);
                                true
                            }
                            None => remove(&mut index, health.kind, &key),
                        });
                    if changed {
                        changes.send_modify(|n| *n += 1);
                    }
                }
                watcher::Event::Delete(o) => {
                    let key = key_of(&o);
                    let removed = index
                        .write()
                        .is_ok_and(|mut index| remove(&mut index, health.kind, &key));
                    if removed {
                        changes.send_modify(|n| *n += 1);
                    }
                }
            }
        }
    });
}

fn key_of<K: KubeResource>(o: &K) -> (String, String) {
    let meta = o.meta();
    (
        crate::domain::workload::namespace_of(meta).to_owned(),
        meta.name.clone().unwrap_or_default(),
    )
}

/// Removes an object; whether the index held it.
fn remove(index: &mut Index, kind: Kind, (namespace, name): &(String, String)) -> bool {
    match kind {
        Kind::PersistentVolumeClaim => index.remove_claim(namespace, name),
        Kind::StorageClass => index.remove_storage_class(name),
        Kind::HorizontalPodAutoscaler => index.remove_autoscaler(namespace, name),
        Kind::Scale => false,
        other => other
            .workload()
            .is_some_and(|w| index.remove_workload(w, namespace, name)),
    }
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
