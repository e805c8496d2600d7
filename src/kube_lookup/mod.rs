//! Looking up claims and scale targets in a live cluster, from watch-fed caches (kube-rs reflectors).
//!
//! Reviews never wait on the API server: each lookup reads an in-memory store, synchronously, so rules stay
//! pure. Until every store has synced the answer is `Unknown` (the policy's failure mode decides) and
//! `/readyz` says why. Watch errors back off and resume; they are logged and counted.
//! See <https://kube.rs/controllers/reflectors/>.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Client, Resource as KubeResource};
use tracing::info;

use crate::lookup::{Answer, Lookup};
use crate::workload::{Workload, WorkloadKind};

mod prefetch;
mod watch;

pub use watch::CacheStats;
use watch::{WatchHealth, cache};

/// Caches of the kinds reviews refer to.
#[derive(Clone)]
pub struct ClusterLookup {
    client: Option<Client>,
    get_timeout: Duration,
    claims: Store<PersistentVolumeClaim>,
    deployments: Store<Deployment>,
    statefulsets: Store<StatefulSet>,
    replicasets: Store<ReplicaSet>,
    health: [Arc<WatchHealth>; 4],
    /// Set once by the task that waits for every store's first list. Only that task waits on the stores:
    /// kube-runtime's `Store::wait_until_ready` did not wake a second waiter on the same store promptly
    /// (seen as a 10 s sync against the fake API), so everyone else waits on this channel.
    synced: tokio::sync::watch::Receiver<bool>,
}

impl std::fmt::Debug for ClusterLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLookup")
            .field("synced", &self.is_synced())
            .finish_non_exhaustive()
    }
}

const KINDS: [&str; 4] = ["PersistentVolumeClaim", "Deployment", "StatefulSet", "ReplicaSet"];

impl ClusterLookup {
    /// Starts watching claims, Deployments, StatefulSets and ReplicaSets in every namespace. A claim or
    /// workload the caches do not hold yet is fetched directly, waiting at most `get_timeout`.
    pub fn start(client: Client, get_timeout: Duration) -> Self {
        let health = KINDS.map(WatchHealth::new);
        let (tx, rx) = tokio::sync::watch::channel(false);
        let this = Self {
            client: Some(client.clone()),
            get_timeout,
            claims: cache(&client, Arc::clone(&health[0])),
            deployments: cache(&client, Arc::clone(&health[1])),
            statefulsets: cache(&client, Arc::clone(&health[2])),
            replicasets: cache(&client, Arc::clone(&health[3])),
            health,
            synced: rx,
        };
        let stores = this.clone();
        tokio::spawn(async move {
            let ok = stores.claims.wait_until_ready().await.is_ok()
                && stores.deployments.wait_until_ready().await.is_ok()
                && stores.statefulsets.wait_until_ready().await.is_ok()
                && stores.replicasets.wait_until_ready().await.is_ok();
            if ok {
                let _ = tx.send(true);
                info!(claims = stores.claims.state().len(), "Cluster caches synced");
            }
        });
        this
    }

    /// A lookup over stores filled by the caller (benchmarks, tests): synced, and with no client, so a
    /// cache miss is never fetched.
    pub fn from_stores(
        claims: Store<PersistentVolumeClaim>,
        deployments: Store<Deployment>,
        statefulsets: Store<StatefulSet>,
        replicasets: Store<ReplicaSet>,
    ) -> Self {
        Self {
            client: None,
            get_timeout: Duration::ZERO,
            claims,
            deployments,
            statefulsets,
            replicasets,
            health: KINDS.map(WatchHealth::new),
            synced: tokio::sync::watch::channel(true).1,
        }
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

    /// Each cache's size, age and watch restarts and errors.
    pub fn stats(&self) -> Vec<CacheStats> {
        let sizes = [
            self.claims.state().len(),
            self.deployments.state().len(),
            self.statefulsets.state().len(),
            self.replicasets.state().len(),
        ];
        self.health
            .iter()
            .zip(sizes)
            .map(|(h, objects)| CacheStats {
                kind: h.kind,
                objects,
                since_last_event: h.since_last_event(),
                watch_restarts: h.restarts.load(Ordering::Relaxed),
                watch_errors: h.errors.load(Ordering::Relaxed),
            })
            .collect()
    }

    fn not_synced<T>(&self) -> Answer<T> {
        Answer::Unknown("the cluster cache has not synced yet".to_owned())
    }
}

/// Whether a pod template mounts claim `claim` (generic ephemeral volumes are per pod: not counted).
fn mounts(template: Option<&PodTemplateSpec>, claim: &str) -> bool {
    template
        .and_then(|t| t.spec.as_ref())
        .and_then(|s| s.volumes.as_ref())
        .is_some_and(|vs| {
            vs.iter().any(|v| {
                v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|p| p.claim_name == claim)
            })
        })
}

/// Whether a Deployment owns the object: its ReplicaSets are judged through it.
fn owned_by_deployment(meta: &ObjectMeta) -> bool {
    meta.owner_references.as_ref().is_some_and(|os| {
        os.iter()
            .any(|o| o.kind == "Deployment" && o.controller == Some(true))
    })
}

fn get<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: KubeResource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

impl Lookup for ClusterLookup {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        if !self.is_synced() {
            return self.not_synced();
        }
        match get(&self.claims, namespace, name) {
            Some(c) => Answer::Found(c),
            None => Answer::Missing,
        }
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        if !self.is_synced() {
            return self.not_synced();
        }
        let found = match kind {
            WorkloadKind::Deployment => {
                get(&self.deployments, namespace, name).map(|d| Workload::Deployment((*d).clone()))
            }
            WorkloadKind::StatefulSet => {
                get(&self.statefulsets, namespace, name).map(|s| Workload::StatefulSet((*s).clone()))
            }
            WorkloadKind::ReplicaSet => {
                get(&self.replicasets, namespace, name).map(|r| Workload::ReplicaSet((*r).clone()))
            }
            // Only these kinds have a scale subresource an HPA can drive.
            _ => None,
        };
        match found {
            Some(w) => Answer::Found(Arc::new(w)),
            None => Answer::Missing,
        }
    }

    fn workloads_mounting(&self, namespace: &str, claim: &str) -> Vec<Arc<Workload>> {
        if !self.is_synced() {
            return Vec::new();
        }
        let in_ns = |m: &ObjectMeta| m.namespace.as_deref() == Some(namespace);
        let mut out = Vec::new();
        for d in self.deployments.state() {
            if in_ns(&d.metadata) && mounts(d.spec.as_ref().map(|s| &s.template), claim) {
                out.push(Arc::new(Workload::Deployment((*d).clone())));
            }
        }
        for s in self.statefulsets.state() {
            if in_ns(&s.metadata) && mounts(s.spec.as_ref().map(|s| &s.template), claim) {
                out.push(Arc::new(Workload::StatefulSet((*s).clone())));
            }
        }
        for r in self.replicasets.state() {
            if in_ns(&r.metadata)
                && !owned_by_deployment(&r.metadata)
                && mounts(r.spec.as_ref().and_then(|s| s.template.as_ref()), claim)
            {
                out.push(Arc::new(Workload::ReplicaSet((*r).clone())));
            }
        }
        // Store order is a hash map's: sort so findings name workloads in a stable order.
        out.sort_by_key(|w| w.object_ref().to_string());
        out
    }

    fn scope(&self) -> &'static str {
        "the cluster"
    }

    fn readiness(&self) -> Result<(), String> {
        if self.is_synced() {
            Ok(())
        } else {
            Err(format!(
                "waiting for the first sync of the claim and workload caches ({} watch errors so far)",
                self.watch_errors()
            ))
        }
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
