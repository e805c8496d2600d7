//! Fetching, once and with a timeout, what the caches have not seen yet: a claim, scale target or owner
//! created a moment ago, before its watch event arrived.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, ReplicationController};
use kube::{Api, Client, Resource as KubeResource};
use serde::de::DeserializeOwned;

use super::ClusterLookup;
use super::fetches::Fetched;
use crate::domain::lookup::{Answer, Lookup, Prefetch, Prefetched};
use crate::domain::workload::{Footprint, Kind, Resource, ScaleRequest, Workload, WorkloadKind};

/// At most this many claims are fetched for one review: the others the caches have not seen count as
/// missing (a crafted object naming a thousand claims costs the API server sixteen GETs, once).
const MAX_GETS_PER_REVIEW: usize = 16;

/// One direct GET, bounded by `timeout`: Found, Missing (404), or Unknown with the reason.
async fn fetch<K>(client: Option<Client>, namespace: String, name: String, timeout: Duration) -> Answer<K>
where
    K: KubeResource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let Some(client) = client else {
        return Answer::Missing;
    };
    let (namespace, name) = (namespace.as_str(), name.as_str());
    let api: Api<K> = Api::namespaced(client, namespace);
    match tokio::time::timeout(timeout, api.get_opt(name)).await {
        Ok(Ok(Some(o))) => Answer::Found(o),
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
        let (c, t) = (self.client.clone(), self.get_timeout);
        let (ns, n) = (namespace.to_owned(), name.to_owned());
        let get = move || async move {
            let found = match kind {
                WorkloadKind::Deployment => fetch::<Deployment>(c, ns, n, t).await.map(Workload::Deployment),
                WorkloadKind::StatefulSet => {
                    fetch::<StatefulSet>(c, ns, n, t).await.map(Workload::StatefulSet)
                }
                WorkloadKind::DaemonSet => fetch::<DaemonSet>(c, ns, n, t).await.map(Workload::DaemonSet),
                WorkloadKind::ReplicaSet => fetch::<ReplicaSet>(c, ns, n, t).await.map(Workload::ReplicaSet),
                WorkloadKind::ReplicationController => fetch::<ReplicationController>(c, ns, n, t)
                    .await
                    .map(Workload::ReplicationController),
                WorkloadKind::Job => fetch::<Job>(c, ns, n, t).await.map(Workload::Job),
                WorkloadKind::CronJob => fetch::<CronJob>(c, ns, n, t).await.map(Workload::CronJob),
                // A pod owns nothing and is never a scale target.
                WorkloadKind::Pod => Answer::Missing,
            };
            found.map(|mut w| {
                super::trim::workload(&mut w);
                Fetched::Workload(Arc::new(w))
            })
        };
        let key = (Kind::from(kind).as_str(), namespace.to_owned(), name.to_owned());
        match self.fetches.get(key, self.get_timeout, get).await {
            Answer::Found(Fetched::Workload(w)) => Answer::Found(w),
            Answer::Found(Fetched::Claim(_)) | Answer::Missing => Answer::Missing,
            Answer::Unknown(why) => Answer::Unknown(why),
        }
    }

    async fn fetch_claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        let (c, t) = (self.client.clone(), self.get_timeout);
        let (ns, n) = (namespace.to_owned(), name.to_owned());
        let get = move || async move {
            fetch::<PersistentVolumeClaim>(c, ns, n, t)
                .await
                .map(|mut claim| {
                    super::trim::claim(&mut claim);
                    Fetched::Claim(Arc::new(claim))
                })
        };
        let key = ("PersistentVolumeClaim", namespace.to_owned(), name.to_owned());
        match self.fetches.get(key, self.get_timeout, get).await {
            Answer::Found(Fetched::Claim(c)) => Answer::Found(c),
            Answer::Found(Fetched::Workload(_)) | Answer::Missing => Answer::Missing,
            Answer::Unknown(why) => Answer::Unknown(why),
        }
    }

    /// A workload from the cache or, when the cache has not seen it, fetched and recorded in `out`.
    async fn workload_or_fetch(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        out: &mut Prefetched,
    ) -> Answer<Arc<Workload>> {
        match self.workload(kind, namespace, name) {
            Answer::Missing => {
                let fetched = self.fetch_workload(kind, namespace, name).await;
                out.workload(kind, namespace, name, fetched.clone());
                fetched
            }
            cached => cached,
        }
    }

    /// The workload behind an HPA or Scale, from the cache or fetched.
    async fn target(
        &self,
        kinds: &[WorkloadKind],
        namespace: &str,
        name: &str,
        out: &mut Prefetched,
    ) -> Option<Arc<Workload>> {
        for kind in kinds {
            match self.workload_or_fetch(*kind, namespace, name, out).await {
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
                        None => WorkloadKind::SCALABLE.to_vec(),
                    };
                    let Some(w) = self.target(&kinds, &namespace, &name, &mut out).await else {
                        return out;
                    };
                    target = w;
                    &target
                }
                Resource::Claim(_) | Resource::StorageClass(_) => return out,
            };
            // An owner created a moment before its ReplicaSet, Job or pod: without it, the object would be
            // judged on its own instead of through it.
            if let Some(owner) = workload.controller()
                && let Some(kind) = WorkloadKind::from_kind_name(&owner.kind)
            {
                let owner_name = owner.name.clone();
                let _ = self
                    .workload_or_fetch(kind, &namespace, &owner_name, &mut out)
                    .await;
            }
            let Ok(footprint) = Footprint::of(workload) else {
                return out;
            };
            // The claims the caches have not seen, a bounded number of them, fetched together.
            let unseen: Vec<&str> = footprint
                .claims
                .iter()
                .map(|u| u.claim.as_str())
                .filter(|c| matches!(self.claim(&namespace, c), Answer::Missing))
                .take(MAX_GETS_PER_REVIEW)
                .collect();
            let answers =
                futures_util::future::join_all(unseen.iter().map(|c| self.fetch_claim(&namespace, c))).await;
            for (claim, answer) in unseen.into_iter().zip(answers) {
                out.claim(&namespace, claim, answer);
            }
            out
        })
    }
}
