//! Looking up what a review refers to but does not carry: claims, the workloads an HPA or Scale resizes,
//! every other workload mounting the same claim or disk, the autoscalers of a workload, and the workloads
//! whose pods an affinity term may select.
//!
//! The trait is synchronous on purpose: the server answers from watch-fed caches, `check` from the files
//! it was given, tests from a map, all through the same [`Index`]. Rules stay pure.

mod index;

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;

pub(crate) use index::{GENERATED_BY, Index};

use crate::domain::workload::{Autoscaler, Disk, Resource, Workload, WorkloadKind};

/// The three answers a lookup can give.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer<T> {
    /// The object exists.
    Found(T),
    /// The object certainly does not exist.
    Missing,
    /// It could not be told (cache not synced, API server unreachable): the policy's failure mode decides.
    Unknown(String),
}

impl<T> Answer<T> {
    /// The answer with its found value mapped.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        match self {
            Answer::Found(t) => Answer::Found(f(t)),
            Answer::Missing => Answer::Missing,
            Answer::Unknown(why) => Answer::Unknown(why),
        }
    }
}

/// A volume several pods may share: a claim in its namespace, or an inline single-attach disk, which is
/// one object of the storage system whichever namespace names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VolumeKey {
    /// A PersistentVolumeClaim.
    Claim {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// An inline disk (awsElasticBlockStore, gcePersistentDisk, ...).
    Disk(Disk),
}

/// Read access to the objects a review refers to.
pub trait Lookup: Send + Sync {
    /// A PersistentVolumeClaim by namespace and name, including one a StatefulSet's volumeClaimTemplate
    /// makes for a replica it runs (`data-postgres-0`).
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>>;
    /// A workload by kind, namespace and name.
    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>>;
    /// Every workload whose pods mount `volume` (the StatefulSets whose templates make a claim included),
    /// except those a controller volguard reads owns: their pods are counted through that controller.
    fn users(&self, volume: &VolumeKey) -> Answer<Vec<Arc<Workload>>>;
    /// Every workload in `namespace` but the controlled ones: whose pods a pod-affinity term may select.
    fn workloads_in(&self, namespace: &str) -> Answer<Vec<Arc<Workload>>>;
    /// The names of the claims in `namespace` beginning with `prefix` that some workload mounts (a
    /// StatefulSet asks for `<template>-<name>-`: which of its replicas' claims others mount too).
    fn mounted_claims(&self, namespace: &str, prefix: &str) -> Answer<Vec<String>>;
    /// The HorizontalPodAutoscalers resizing a workload.
    fn autoscalers(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Vec<Arc<Autoscaler>>>;
    /// Whether a controller volguard reads owns the workload (and exists), so that the workload is judged
    /// through it: a Deployment's ReplicaSet, a CronJob's Job, a ReplicaSet's pod.
    fn is_controlled(&self, workload: &Workload) -> Answer<bool>;
    /// A StorageClass by name, or (`None`) the cluster's default class: Missing when there is none.
    fn storage_class(&self, name: Option<&str>) -> Answer<Arc<StorageClass>>;
    /// Where objects are looked up, for messages: "the checked files", "the cluster".
    fn scope(&self) -> &'static str;
    /// Whether the lookup can answer yet (a watch cache before its first sync cannot).
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The objects found in a set of manifest files, for `volguard check` and `volguard review -f`: they stand
/// for the cluster in every lookup.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    index: Index,
}

impl Bundle {
    /// Remembers a resource.
    pub fn insert(&mut self, resource: &Resource) {
        self.index.insert(resource.clone());
    }

    /// The index behind the bundle.
    pub fn index(&self) -> &Index {
        &self.index
    }
}

impl<'a> FromIterator<&'a Resource> for Bundle {
    fn from_iter<I: IntoIterator<Item = &'a Resource>>(iter: I) -> Self {
        let mut bundle = Bundle::default();
        for r in iter {
            bundle.insert(r);
        }
        bundle
    }
}

fn found_or_missing<T>(t: Option<T>) -> Answer<T> {
    t.map_or(Answer::Missing, Answer::Found)
}

impl Lookup for Bundle {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        found_or_missing(self.index.claim(namespace, name))
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        found_or_missing(self.index.workload(kind, namespace, name))
    }

    fn users(&self, volume: &VolumeKey) -> Answer<Vec<Arc<Workload>>> {
        Answer::Found(self.index.users(volume))
    }

    fn workloads_in(&self, namespace: &str) -> Answer<Vec<Arc<Workload>>> {
        Answer::Found(self.index.workloads_in(namespace))
    }

    fn mounted_claims(&self, namespace: &str, prefix: &str) -> Answer<Vec<String>> {
        Answer::Found(self.index.mounted_claims(namespace, prefix))
    }

    fn autoscalers(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Vec<Arc<Autoscaler>>> {
        Answer::Found(self.index.autoscalers(kind, namespace, name))
    }

    fn is_controlled(&self, workload: &Workload) -> Answer<bool> {
        Answer::Found(self.index.is_controlled(workload))
    }

    fn storage_class(&self, name: Option<&str>) -> Answer<Arc<StorageClass>> {
        found_or_missing(self.index.storage_class(name))
    }

    fn scope(&self) -> &'static str {
        "the checked files"
    }
}

/// The checked files first, then the cluster: `volguard check --cluster`. An object in the files wins over
/// the cluster's version of it (the files are what is about to be applied).
pub(crate) struct FilesThenCluster<'a> {
    files: &'a Bundle,
    cluster: &'a dyn Lookup,
}

impl<'a> FilesThenCluster<'a> {
    /// `files` answer first, then `cluster`.
    pub(crate) fn new(files: &'a Bundle, cluster: &'a dyn Lookup) -> Self {
        Self { files, cluster }
    }

    /// The cluster's workloads, each replaced by the files' version of it, plus the files' own.
    fn merged(
        &self,
        files: Vec<Arc<Workload>>,
        cluster: Answer<Vec<Arc<Workload>>>,
    ) -> Answer<Vec<Arc<Workload>>> {
        let cluster = match cluster {
            Answer::Found(c) => c,
            Answer::Missing => Vec::new(),
            Answer::Unknown(why) => return Answer::Unknown(why),
        };
        let mut out = files;
        for w in cluster {
            let meta = w.metadata();
            let name = meta.name.as_deref().unwrap_or_default();
            let ns = crate::domain::workload::namespace_of(meta);
            // The files' version, when there is one, decides whether it qualifies (and is in `out` if so).
            if self.files.index.workload(w.kind(), ns, name).is_none() {
                out.push(w);
            }
        }
        out.sort_by_key(|w| w.object_ref());
        Answer::Found(out)
    }
}

impl Lookup for FilesThenCluster<'_> {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        match self.files.claim(namespace, name) {
            Answer::Missing => self.cluster.claim(namespace, name),
            found => found,
        }
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        match self.files.workload(kind, namespace, name) {
            Answer::Missing => self.cluster.workload(kind, namespace, name),
            found => found,
        }
    }

    fn users(&self, volume: &VolumeKey) -> Answer<Vec<Arc<Workload>>> {
        self.merged(self.files.index.users(volume), self.cluster.users(volume))
    }

    fn workloads_in(&self, namespace: &str) -> Answer<Vec<Arc<Workload>>> {
        self.merged(
            self.files.index.workloads_in(namespace),
            self.cluster.workloads_in(namespace),
        )
    }

    fn mounted_claims(&self, namespace: &str, prefix: &str) -> Answer<Vec<String>> {
        let mut out = self.files.index.mounted_claims(namespace, prefix);
        match self.cluster.mounted_claims(namespace, prefix) {
            Answer::Found(more) => out.extend(more),
            Answer::Missing => {}
            Answer::Unknown(why) => return Answer::Unknown(why),
        }
        out.sort();
        out.dedup();
        Answer::Found(out)
    }

    fn autoscalers(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Vec<Arc<Autoscaler>>> {
        let mut out = self.files.index.autoscalers(kind, namespace, name);
        match self.cluster.autoscalers(kind, namespace, name) {
            Answer::Found(more) => {
                for a in more {
                    if !out.iter().any(|f| f.metadata.name == a.metadata.name) {
                        out.push(a);
                    }
                }
            }
            Answer::Missing => {}
            Answer::Unknown(why) => return Answer::Unknown(why),
        }
        Answer::Found(out)
    }

    fn is_controlled(&self, workload: &Workload) -> Answer<bool> {
        if self.files.index.is_controlled(workload) {
            return Answer::Found(true);
        }
        self.cluster.is_controlled(workload)
    }

    fn storage_class(&self, name: Option<&str>) -> Answer<Arc<StorageClass>> {
        match self.files.storage_class(name) {
            Answer::Missing => self.cluster.storage_class(name),
            found => found,
        }
    }

    fn scope(&self) -> &'static str {
        "the checked files or the cluster"
    }

    fn readiness(&self) -> Result<(), String> {
        self.cluster.readiness()
    }
}

/// Answers fetched for one review (a claim or owner the cache had not seen yet, fetched directly),
/// consulted before the base lookup.
#[derive(Clone, Debug, Default)]
pub struct Prefetched {
    claims: HashMap<(String, String), Answer<Arc<PersistentVolumeClaim>>>,
    workloads: HashMap<(WorkloadKind, String, String), Answer<Arc<Workload>>>,
}

impl Prefetched {
    /// Records the answer for a claim.
    pub fn claim(&mut self, namespace: &str, name: &str, answer: Answer<Arc<PersistentVolumeClaim>>) {
        self.claims
            .insert((namespace.to_owned(), name.to_owned()), answer);
    }

    /// Records the answer for a workload.
    pub fn workload(
        &mut self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        answer: Answer<Arc<Workload>>,
    ) {
        self.workloads
            .insert((kind, namespace.to_owned(), name.to_owned()), answer);
    }

    /// Whether nothing was fetched.
    pub fn is_empty(&self) -> bool {
        self.claims.is_empty() && self.workloads.is_empty()
    }
}

/// A base lookup with prefetched answers on top.
pub(crate) struct Overlay<'a> {
    base: &'a dyn Lookup,
    extra: Prefetched,
}

impl<'a> Overlay<'a> {
    /// `extra` answers first, then `base`.
    pub(crate) fn new(base: &'a dyn Lookup, extra: Prefetched) -> Self {
        Self { base, extra }
    }
}

impl Lookup for Overlay<'_> {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        match self.extra.claims.get(&(namespace.to_owned(), name.to_owned())) {
            // A fetched 404 may still be a claim a StatefulSet will make: the base knows those.
            Some(Answer::Missing) | None => self.base.claim(namespace, name),
            Some(a) => a.clone(),
        }
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        match self
            .extra
            .workloads
            .get(&(kind, namespace.to_owned(), name.to_owned()))
        {
            Some(a) => a.clone(),
            None => self.base.workload(kind, namespace, name),
        }
    }

    fn users(&self, volume: &VolumeKey) -> Answer<Vec<Arc<Workload>>> {
        self.base.users(volume)
    }

    fn workloads_in(&self, namespace: &str) -> Answer<Vec<Arc<Workload>>> {
        self.base.workloads_in(namespace)
    }

    fn mounted_claims(&self, namespace: &str, prefix: &str) -> Answer<Vec<String>> {
        self.base.mounted_claims(namespace, prefix)
    }

    fn autoscalers(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Vec<Arc<Autoscaler>>> {
        self.base.autoscalers(kind, namespace, name)
    }

    fn is_controlled(&self, workload: &Workload) -> Answer<bool> {
        // An owner the cache had not seen yet, fetched for this review.
        if let Some(owner) = workload.controller()
            && let Some(kind) = WorkloadKind::from_kind_name(&owner.kind)
            && let Some(Answer::Found(o)) = self.extra.workloads.get(&(
                kind,
                crate::domain::workload::namespace_of(workload.metadata()).to_owned(),
                owner.name.clone(),
            ))
            && o.metadata().uid.as_deref().is_none_or(|u| u == owner.uid)
        {
            return Answer::Found(true);
        }
        self.base.is_controlled(workload)
    }

    fn storage_class(&self, name: Option<&str>) -> Answer<Arc<StorageClass>> {
        self.base.storage_class(name)
    }

    fn scope(&self) -> &'static str {
        self.base.scope()
    }

    fn readiness(&self) -> Result<(), String> {
        self.base.readiness()
    }
}

/// Fetching, ahead of a review, what the cache does not hold yet. Asynchronous, unlike [`Lookup`]: it runs
/// in the handler before the (synchronous, pure) rules.
pub trait Prefetch: Send + Sync {
    /// The answers a review of `resource` will need that the cache cannot give.
    fn prefetch<'a>(
        &'a self,
        resource: &'a Resource,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Prefetched> + Send + 'a>>;
}
