//! Looking up claims and scale targets in a live cluster, from watch-fed caches (kube-rs reflectors).
//!
//! Reviews never wait on the API server: each lookup reads an in-memory store, synchronously, so rules stay
//! pure. Until every store has synced the answer is `Unknown` (the policy's failure mode decides) and
//! `/readyz` says why. Watch errors back off and resume; they are logged and counted.
//! See <https://kube.rs/controllers/reflectors/>.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::lookup::{Answer, Lookup};
use crate::workload::{Workload, WorkloadKind};

/// Caches of the kinds reviews refer to.
#[derive(Clone)]
pub struct ClusterLookup {
    claims: Store<PersistentVolumeClaim>,
    deployments: Store<Deployment>,
    statefulsets: Store<StatefulSet>,
    replicasets: Store<ReplicaSet>,
    synced: Arc<AtomicBool>,
    watch_errors: Arc<AtomicU64>,
}

impl std::fmt::Debug for ClusterLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterLookup")
            .field("synced", &self.synced)
            .finish_non_exhaustive()
    }
}

/// Starts one reflector; the returned store fills as the watch delivers.
fn cache<K>(client: &Client, errors: Arc<AtomicU64>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
{
    let api: Api<K> = Api::all(client.clone());
    let (reader, writer) = reflector::store();
    let kind = K::kind(&()).into_owned();
    let stream = reflector::reflector(
        writer,
        watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            // managedFields can be most of an object and no rule reads them.
            .modify(|o: &mut K| o.managed_fields_mut().clear()),
    );
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            if let Err(e) = event {
                errors.fetch_add(1, Ordering::Relaxed);
                warn!(%kind, error = %e, "Watch failed; backing off and resuming");
            }
        }
    });
    reader
}

impl ClusterLookup {
    /// Starts watching claims, Deployments, StatefulSets and ReplicaSets in every namespace.
    pub fn start(client: Client) -> Self {
        let errors = Arc::new(AtomicU64::new(0));
        let this = Self {
            claims: cache(&client, Arc::clone(&errors)),
            deployments: cache(&client, Arc::clone(&errors)),
            statefulsets: cache(&client, Arc::clone(&errors)),
            replicasets: cache(&client, Arc::clone(&errors)),
            synced: Arc::new(AtomicBool::new(false)),
            watch_errors: errors,
        };
        let stores = this.clone();
        tokio::spawn(async move {
            let ok = stores.claims.wait_until_ready().await.is_ok()
                && stores.deployments.wait_until_ready().await.is_ok()
                && stores.statefulsets.wait_until_ready().await.is_ok()
                && stores.replicasets.wait_until_ready().await.is_ok();
            if ok {
                stores.synced.store(true, Ordering::SeqCst);
                info!(claims = stores.claims.state().len(), "Cluster caches synced");
            }
        });
        this
    }

    /// Whether every cache has had its first full list.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::SeqCst)
    }

    /// Watch errors seen so far (each one backed off and resumed).
    pub fn watch_errors(&self) -> u64 {
        self.watch_errors.load(Ordering::Relaxed)
    }

    fn not_synced<T>(&self) -> Answer<T> {
        Answer::Unknown("the cluster cache has not synced yet".to_owned())
    }
}

fn get<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
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
