//! Looking up claims, workloads and autoscalers in a live cluster, from one watch-fed [`Index`].
//!
//! Every kind of the table of kinds that `serve` caches is listed and watched in all namespaces; each
//! object is cut down to what the rules read ([`trim`]) before it is indexed. Reviews never wait on the
//! API server: each lookup reads the index, synchronously, so rules stay pure. Until every watch has
//! listed once the answer is `Unknown` (the policy's failure mode decides) and `/readyz` says why. A kind
//! the API server does not serve (batch/v1 CronJob before Kubernetes 1.21) holds nothing. Watch errors back
//! off and resume; they are logged and counted. See <https://kube.rs/controllers/reflectors/>.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, ReplicationController};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use tracing::info;

use crate::domain::lookup::{Answer, Index, Lookup, VolumeKey};
use crate::domain::workload::{Autoscaler, KINDS, Kind, Resource, Workload, WorkloadKind};

mod fetches;
mod prefetch;
mod trim;
mod watch;

pub(crate) use watch::CacheStats;
use watch::WatchHealth;

/// The cluster's claims, workloads and autoscalers, kept up to date by watches.
#[derive(Clone)]
pub struct ClusterLookup {
    client: Option<Client>,
    get_timeout: Duration,
    index: Arc<RwLock<Index>>,
    health: Arc<Vec<Arc<WatchHealth>>>,
    /// Set once every watch has listed (or its kind is not served).
    synced: tokio::sync::watch::Receiver<bool>,
    /// Direct GETs of what the caches have not seen yet.
    fetches: Arc<fetches::Fetches>,
    /// Bumped when a watch changes what the index holds ([`watch::Changes`]).
    changes: watch::Changes,
}

/// GETs to the API server in flight at once, over every review.
const CONCURRENT_GETS: usize = 8;

impl std::fmt::Debug for ClusterLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLookup")
            .field("synced", &self.is_synced())
            .finish_non_exhaustive()
    }
}

/// The kinds `serve` caches: the table's rows with a watch version.
fn watched() -> impl Iterator<Item = Kind> {
    KINDS.iter().filter(|k| k.watch.is_some()).map(|k| k.kind)
}

fn workload<K>(wrap: fn(K) -> Workload) -> impl Fn(K) -> Option<Resource> {
    move |k| {
        let mut w = wrap(k);
        trim::workload(&mut w);
        Some(Resource::Workload(w))
    }
}

/// A pod that a controller volguard reads owns is that controller's (judged and counted through it); a
/// pod that has finished holds no volume. Neither is cached.
fn bare_pod(p: Pod) -> Option<Resource> {
    let owned = p
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && WorkloadKind::from_kind_name(&o.kind).is_some());
    let finished = matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if owned || finished {
        return None;
    }
    let mut w = Workload::Pod(p);
    trim::workload(&mut w);
    Some(Resource::Workload(w))
}

fn claim(mut c: PersistentVolumeClaim) -> Option<Resource> {
    trim::claim(&mut c);
    Some(Resource::Claim(c))
}

fn storage_class(mut c: StorageClass) -> Option<Resource> {
    trim::storage_class(&mut c);
    Some(Resource::StorageClass(c))
}

fn autoscaler(h: HorizontalPodAutoscaler) -> Option<Resource> {
    let mut a = Autoscaler::from_v1(h);
    trim::autoscaler(&mut a);
    Some(Resource::Autoscaler(a))
}

impl ClusterLookup {
    /// Starts watching every cached kind the API server serves, in every namespace. A claim or workload
    /// the caches do not hold yet is fetched directly, waiting at most `get_timeout`.
    pub fn start(client: Client, get_timeout: Duration) -> Self {
        let health: Vec<Arc<WatchHealth>> = watched().map(WatchHealth::new).collect();
        let index = Arc::new(RwLock::new(Index::default()));
        let (tx, rx) = tokio::sync::watch::channel(false);
        let this = Self {
            client: Some(client.clone()),
            get_timeout,
            index: Arc::clone(&index),
            health: Arc::new(health),
            synced: rx,
            fetches: Arc::new(fetches::Fetches::new(CONCURRENT_GETS)),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        };
        let health = Arc::clone(&this.health);
        let changes = Arc::clone(&this.changes);
        tokio::spawn(async move {
            let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
            for h in health.iter() {
                if !served(&client, h.kind).await {
                    info!(kind = %h.kind, "Not served by this API server; nothing to watch");
                    h.synced.store(true, Ordering::SeqCst);
                    continue;
                }
                start_watch(&client, &index, h, done_tx.clone(), &changes);
            }
            drop(done_tx);
            let mut waiting: BTreeSet<Kind> = health
                .iter()
                .filter(|h| !h.synced.load(Ordering::SeqCst))
                .map(|h| h.kind)
                .collect();
            while !waiting.is_empty() {
                match done_rx.recv().await {
                    Some(kind) => {
                        waiting.remove(&kind);
                    }
                    None => return,
                }
            }
            let _ = tx.send(true);
            let (claims, workloads, autoscalers) = index.read().map(|i| i.len()).unwrap_or_default();
            info!(claims, workloads, autoscalers, "Cluster caches synced");
        });
        this
    }

    /// A lookup over objects given by the caller (benchmarks, tests): synced, and with no client, so a
    /// cache miss is never fetched. Objects are cut down as the watches cut them.
    pub fn from_objects(objects: impl IntoIterator<Item = Resource>) -> Self {
        let mut index = Index::default();
        for mut o in objects {
            match &mut o {
                Resource::Workload(w) => trim::workload(w),
                Resource::Claim(c) => trim::claim(c),
                Resource::Autoscaler(a) => trim::autoscaler(a),
                Resource::StorageClass(c) => trim::storage_class(c),
                Resource::Scale(_) => {}
            }
            index.insert(o);
        }
        let health: Vec<Arc<WatchHealth>> = watched().map(WatchHealth::new).collect();
        Self {
            client: None,
            get_timeout: Duration::ZERO,
            index: Arc::new(RwLock::new(index)),
            health: Arc::new(health),
            synced: tokio::sync::watch::channel(true).1,
            fetches: Arc::new(fetches::Fetches::new(CONCURRENT_GETS)),
            changes: Arc::new(tokio::sync::watch::channel(0).0),
        }
    }

    /// A receiver that is told when a watch changes what the caches hold (an object added, changed in
    /// what volguard keeps of it, or removed; a relist). Its value counts the changes.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Waits until every cache has had its first full list; false if a watch ended before that.
    pub async fn wait_synced(&self) -> bool {
        let mut synced = self.synced.clone();
        synced.wait_for(|s| *s).await.is_ok()
    }

    /// Whether every cache has had its first full list.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Watch errors seen so far, over every cache (each one backed off and resumed).
    pub fn watch_errors(&self) -> u64 {
        self.health.iter().map(|h| h.errors.load(Ordering::Relaxed)).sum()
    }

    /// Every cached workload that no controller volguard reads owns, by namespace, kind and name: what
    /// `volguard audit` judges. Unknown until the caches have synced.
    pub fn judged_workloads(&self) -> Answer<Vec<Arc<Workload>>> {
        self.read(Index::judged_workloads)
    }

    /// Each cache's size, age and watch restarts and errors.
    pub fn stats(&self) -> Vec<CacheStats> {
        let index = self.index.read();
        self.health
            .iter()
            .map(|h| {
                let objects = index.as_ref().map_or(0, |i| match h.kind {
                    Kind::PersistentVolumeClaim => i.len().0,
                    Kind::StorageClass => i.storage_classes(),
                    Kind::HorizontalPodAutoscaler => i.len().2,
                    k => k.workload().map_or(0, |w| i.count(w)),
                });
                CacheStats {
                    kind: h.kind.as_str(),
                    objects,
                    since_last_event: h.since_last_event(),
                    watch_restarts: h.restarts.load(Ordering::Relaxed),
                    watch_errors: h.errors.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Runs `f` over the index once it has synced; Unknown before, or if the index is unusable.
    fn read<T>(&self, f: impl FnOnce(&Index) -> T) -> Answer<T> {
        if !self.is_synced() {
            return Answer::Unknown("the cluster cache has not synced yet".to_owned());
        }
        match self.index.read() {
            Ok(index) => Answer::Found(f(&index)),
            Err(_) => Answer::Unknown("the cluster cache is unusable (a writer panicked)".to_owned()),
        }
    }

    fn get<T>(&self, f: impl FnOnce(&Index) -> Option<T>) -> Answer<T> {
        match self.read(f) {
            Answer::Found(Some(t)) => Answer::Found(t),
            Answer::Found(None) => Answer::Missing,
            Answer::Missing => Answer::Missing,
            Answer::Unknown(why) => Answer::Unknown(why),
        }
    }
}

fn start_watch(
    client: &Client,
    index: &Arc<RwLock<Index>>,
    health: &Arc<WatchHealth>,
    done: tokio::sync::mpsc::UnboundedSender<Kind>,
    changes: &watch::Changes,
) {
    let (index, health, changes) = (Arc::clone(index), Arc::clone(health), Arc::clone(changes));
    match health.kind {
        Kind::Deployment => {
            watch::spawn::<Deployment>(client, index, health, workload_of::<Deployment>, done, changes)
        }
        Kind::StatefulSet => {
            watch::spawn::<StatefulSet>(client, index, health, workload_of::<StatefulSet>, done, changes)
        }
        Kind::DaemonSet => {
            watch::spawn::<DaemonSet>(client, index, health, workload_of::<DaemonSet>, done, changes)
        }
        Kind::ReplicaSet => {
            watch::spawn::<ReplicaSet>(client, index, health, workload_of::<ReplicaSet>, done, changes)
        }
        Kind::ReplicationController => watch::spawn::<ReplicationController>(
            client,
            index,
            health,
            workload_of::<ReplicationController>,
            done,
            changes,
        ),
        Kind::Job => watch::spawn::<Job>(client, index, health, workload_of::<Job>, done, changes),
        Kind::CronJob => {
            watch::spawn::<CronJob>(client, index, health, workload_of::<CronJob>, done, changes)
        }
        Kind::Pod => watch::spawn::<Pod>(client, index, health, bare_pod, done, changes),
        Kind::PersistentVolumeClaim => {
            watch::spawn::<PersistentVolumeClaim>(client, index, health, claim, done, changes);
        }
        Kind::HorizontalPodAutoscaler => {
            watch::spawn::<HorizontalPodAutoscaler>(client, index, health, autoscaler, done, changes);
        }
        Kind::StorageClass => {
            watch::spawn::<StorageClass>(client, index, health, storage_class, done, changes);
        }
        Kind::Scale => {}
    }
}

/// The typed objects the watches read, as workloads.
trait IntoWorkload {
    fn into_workload(self) -> Workload;
}

macro_rules! into_workload {
    ($($t:ident),*) => {$(
        impl IntoWorkload for $t {
            fn into_workload(self) -> Workload {
                Workload::$t(self)
            }
        }
    )*};
}
into_workload!(
    Deployment,
    StatefulSet,
    DaemonSet,
    ReplicaSet,
    ReplicationController,
    Job,
    CronJob
);

fn workload_of<K: IntoWorkload>(k: K) -> Option<Resource> {
    workload(K::into_workload)(k)
}

/// Whether the API server serves the kind in the version the table watches (asked once, at start).
async fn served(client: &Client, kind: Kind) -> bool {
    let info = kind.info();
    let (Some(version), Some(resource)) = (info.watch, info.resource) else {
        return false;
    };
    let list = if info.group.is_empty() {
        client.list_core_api_resources(version).await
    } else {
        client
            .list_api_group_resources(&crate::domain::workload::api_version(info.group, version))
            .await
    };
    match list {
        Ok(list) => list.resources.iter().any(|r| r.name == resource),
        // Not found: the group/version is not served. Any other error: try the watch, which says more.
        Err(kube::Error::Api(e)) if e.code == 404 => false,
        Err(_) => true,
    }
}

impl Lookup for ClusterLookup {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        self.get(|i| i.claim(namespace, name))
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        self.get(|i| i.workload(kind, namespace, name))
    }

    fn users(&self, volume: &VolumeKey) -> Answer<Vec<Arc<Workload>>> {
        self.read(|i| i.users(volume))
    }

    fn workloads_in(&self, namespace: &str) -> Answer<Vec<Arc<Workload>>> {
        self.read(|i| i.workloads_in(namespace))
    }

    fn mounted_claims(&self, namespace: &str, prefix: &str) -> Answer<Vec<String>> {
        self.read(|i| i.mounted_claims(namespace, prefix))
    }

    fn autoscalers(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Vec<Arc<Autoscaler>>> {
        self.read(|i| i.autoscalers(kind, namespace, name))
    }

    fn is_controlled(&self, workload: &Workload) -> Answer<bool> {
        self.read(|i| i.is_controlled(workload))
    }

    fn storage_class(&self, name: Option<&str>) -> Answer<Arc<StorageClass>> {
        self.get(|i| i.storage_class(name))
    }

    fn scope(&self) -> &'static str {
        "the cluster"
    }

    fn readiness(&self) -> Result<(), String> {
        if self.is_synced() {
            return Ok(());
        }
        let waiting: Vec<&str> = self
            .health
            .iter()
            .filter(|h| !h.synced.load(Ordering::SeqCst))
            .map(|h| h.kind.as_str())
            .collect();
        Err(format!(
            "waiting for the first list of {} ({} watch errors so far)",
            waiting.join(", "),
            self.watch_errors()
        ))
    }
}

/// A client from a kubeconfig path and context, or the default chain (in-cluster, then `KUBECONFIG`).
pub async fn client(
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
) -> Result<Client, kube::Error> {
    let options = kube::config::KubeConfigOptions {
        context: context.map(str::to_owned),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(kube::Error::InferKubeconfig)?;
            kube::Config::from_custom_kubeconfig(kc, &options)
                .await
                .map_err(kube::Error::InferKubeconfig)?
        }
        None if context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(kube::Error::InferKubeconfig)?,
        None => kube::Config::infer().await.map_err(kube::Error::InferConfig)?,
    };
    Client::try_from(config)
}
