//! Looking up claims and scale targets in a live cluster, from watch-fed caches (kube-rs reflectors).
//!
//! Reviews never wait on the API server: each lookup reads an in-memory store, synchronously, so rules stay
//! pure. Until every store has synced the answer is `Unknown` (the policy's failure mode decides) and
//! `/readyz` says why. Watch errors back off and resume; they are logged and counted.
//! See <https://kube.rs/controllers/reflectors/>.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource as KubeResource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::lookup::{Answer, Lookup, Prefetch, Prefetched};
use crate::workload::{Footprint, Resource, ScaleRequest, Workload, WorkloadKind};

/// Caches of the kinds reviews refer to.
#[derive(Clone)]
pub struct ClusterLookup {
    client: Client,
    get_timeout: Duration,
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
    K: KubeResource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static,
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
    /// Starts watching claims, Deployments, StatefulSets and ReplicaSets in every namespace. A claim or
    /// workload the caches do not hold yet is fetched directly, waiting at most `get_timeout`.
    pub fn start(client: Client, get_timeout: Duration) -> Self {
        let errors = Arc::new(AtomicU64::new(0));
        let this = Self {
            client: client.clone(),
            get_timeout,
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

/// One direct GET, bounded by `timeout`: Found, Missing (404), or Unknown with the reason.
async fn fetch<K>(client: &Client, namespace: &str, name: &str, timeout: Duration) -> Answer<Arc<K>>
where
    K: KubeResource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match tokio::time::timeout(timeout, api.get_opt(name)).await {
        Ok(Ok(Some(o))) => Answer::Found(Arc::new(o)),
        Ok(Ok(None)) => Answer::Missing,
        Ok(Err(e)) => Answer::Unknown(format!("GET {} {namespace}/{name} failed: {e}", K::kind(&()))),
        Err(_) => Answer::Unknown(format!(
            "GET {} {namespace}/{name} did not answer within {} ms",
            K::kind(&()),
            timeout.as_millis()
        )),
    }
}

impl ClusterLookup {
    async fn fetch_workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        let (c, t) = (&self.client, self.get_timeout);
        let wrap = |w: Workload| Arc::new(w);
        match kind {
            WorkloadKind::Deployment => match fetch::<Deployment>(c, namespace, name, t).await {
                Answer::Found(d) => Answer::Found(wrap(Workload::Deployment((*d).clone()))),
                Answer::Missing => Answer::Missing,
                Answer::Unknown(e) => Answer::Unknown(e),
            },
            WorkloadKind::StatefulSet => match fetch::<StatefulSet>(c, namespace, name, t).await {
                Answer::Found(s) => Answer::Found(wrap(Workload::StatefulSet((*s).clone()))),
                Answer::Missing => Answer::Missing,
                Answer::Unknown(e) => Answer::Unknown(e),
            },
            WorkloadKind::ReplicaSet => match fetch::<ReplicaSet>(c, namespace, name, t).await {
                Answer::Found(r) => Answer::Found(wrap(Workload::ReplicaSet((*r).clone()))),
                Answer::Missing => Answer::Missing,
                Answer::Unknown(e) => Answer::Unknown(e),
            },
            _ => Answer::Missing,
        }
    }

    /// The workload behind an HPA or Scale, from the cache or fetched; recorded in `out` when fetched.
    async fn target(
        &self,
        kinds: &[WorkloadKind],
        namespace: &str,
        name: &str,
        out: &mut Prefetched,
    ) -> Option<Arc<Workload>> {
        for kind in kinds {
            let answer = match self.workload(*kind, namespace, name) {
                Answer::Missing => {
                    let fetched = self.fetch_workload(*kind, namespace, name).await;
                    out.workload(*kind, namespace, name, fetched.clone());
                    fetched
                }
                cached => cached,
            };
            match answer {
                Answer::Found(w) => return Some(w),
                Answer::Unknown(_) => return None,
                Answer::Missing => {}
            }
        }
        None
    }
}

impl Prefetch for ClusterLookup {
    fn prefetch<'a>(
        &'a self,
        resource: &'a Resource,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Prefetched> + Send + 'a>> {
        Box::pin(async move {
            let mut out = Prefetched::default();
            // Before the first sync every answer is Unknown: the failure mode decides, nothing to fetch.
            if !self.is_synced() {
                return out;
            }
            let namespace = resource.object_ref().namespace;
            let target;
            let workload: &Workload = match resource {
                Resource::Workload(w) => w,
                Resource::Autoscaler(hpa) => {
                    let Some(kind) = WorkloadKind::from_kind_name(&hpa.target.kind) else {
                        return out;
                    };
                    let Some(w) = self.target(&[kind], &namespace, &hpa.target.name, &mut out).await else {
                        return out;
                    };
                    target = w;
                    &target
                }
                Resource::Scale(ScaleRequest { scale, target_kind }) => {
                    let name = scale.metadata.name.clone().unwrap_or_default();
                    let kinds = match target_kind {
                        Some(k) => vec![*k],
                        None => vec![
                            WorkloadKind::Deployment,
                            WorkloadKind::StatefulSet,
                            WorkloadKind::ReplicaSet,
                        ],
                    };
                    let Some(w) = self.target(&kinds, &namespace, &name, &mut out).await else {
                        return out;
                    };
                    target = w;
                    &target
                }
                Resource::Claim(_) => return out,
            };
            let Ok(footprint) = Footprint::of(workload) else {
                return out;
            };
            for use_ in &footprint.claims {
                if get(&self.claims, &namespace, &use_.claim).is_none() {
                    let answer = fetch::<PersistentVolumeClaim>(
                        &self.client,
                        &namespace,
                        &use_.claim,
                        self.get_timeout,
                    )
                    .await;
                    out.claim(&namespace, &use_.claim, answer);
                }
            }
            out
        })
    }
}
