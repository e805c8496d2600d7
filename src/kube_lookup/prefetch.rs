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
use crate::lookup::{Answer, Lookup, Prefetch, Prefetched};
use crate::workload::{Footprint, Resource, ScaleRequest, Workload, WorkloadKind};

/// One direct GET, bounded by `timeout`: Found, Missing (404), or Unknown with the reason.
async fn fetch<K>(client: Option<&Client>, namespace: &str, name: &str, timeout: Duration) -> Answer<K>
where
    K: KubeResource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    let Some(client) = client else {
        return Answer::Missing;
    };
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
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
        let (c, t) = (self.client.as_ref(), self.get_timeout);
        let found = match kind {
            WorkloadKind::Deployment => fetch::<Deployment>(c, namespace, name, t)
                .await
                .map(Workload::Deployment),
            WorkloadKind::StatefulSet => fetch::<StatefulSet>(c, namespace, name, t)
                .await
                .map(Workload::StatefulSet),
            WorkloadKind::DaemonSet => fetch::<DaemonSet>(c, namespace, name, t)
                .await
                .map(Workload::DaemonSet),
            WorkloadKind::ReplicaSet => fetch::<ReplicaSet>(c, namespace, name, t)
                .await
                .map(Workload::ReplicaSet),
            WorkloadKind::ReplicationController => fetch::<ReplicationController>(c, namespace, name, t)
                .await
                .map(Workload::ReplicationController),
            WorkloadKind::Job => fetch::<Job>(c, namespace, name, t).await.map(Workload::Job),
            WorkloadKind::CronJob => fetch::<CronJob>(c, namespace, name, t)
                .await
                .map(Workload::CronJob),
            // A pod owns nothing and is never a scale target.
            WorkloadKind::Pod => Answer::Missing,
        };
        found.map(|mut w| {
            super::trim::workload(&mut w);
            Arc::new(w)
        })
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
                Resource::Claim(_) => return out,
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
            for use_ in &footprint.claims {
                if matches!(self.claim(&namespace, &use_.claim), Answer::Missing) {
                    let answer = fetch::<PersistentVolumeClaim>(
                        self.client.as_ref(),
                        &namespace,
                        &use_.claim,
                        self.get_timeout,
                    )
                    .await
                    .map(|mut c| {
                        super::trim::claim(&mut c);
                        Arc::new(c)
                    });
                    out.claim(&namespace, &use_.claim, answer);
                }
            }
            out
        })
    }
}
