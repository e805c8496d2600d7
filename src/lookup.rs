//! Looking up the objects a rule needs but the reviewed object only names: claims, and the workloads an
//! HPA or a Scale resizes.
//!
//! The trait is synchronous on purpose: the server answers from a watch-fed cache (kube-rs's reflector
//! `Store::get` is synchronous), `check` from the files it was given, tests from a map. Rules stay pure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use crate::manifest::{self, ManifestError};
use crate::workload::{DEFAULT_NAMESPACE, Decoded, Resource, Workload, WorkloadKind};

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

/// Read access to the objects a review refers to.
pub trait Lookup: Send + Sync {
    /// A PersistentVolumeClaim by namespace and name.
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>>;
    /// A workload by kind, namespace and name.
    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>>;
    /// The workloads (Deployments, StatefulSets, ReplicaSets not owned by a Deployment) in `namespace`
    /// whose pod template mounts claim `claim`: the reverse of [`Lookup::claim`], to judge a claim by the
    /// workloads it would break. None by default: a lookup that cannot scan workloads knows of none.
    fn workloads_mounting(&self, namespace: &str, claim: &str) -> Vec<Arc<Workload>> {
        let _ = (namespace, claim);
        Vec::new()
    }
    /// Where objects are looked up, for messages: "the checked files", "the cluster".
    fn scope(&self) -> &'static str;
    /// Whether the lookup can answer yet (a watch cache before its first sync cannot).
    fn readiness(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The claims and workloads found in a set of manifest files, for `volguard check`.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    claims: HashMap<(String, String), Arc<PersistentVolumeClaim>>,
    workloads: HashMap<(WorkloadKind, String, String), Arc<Workload>>,
}

fn key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    let ns = meta
        .namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
    (ns, meta.name.clone().unwrap_or_default())
}

impl Bundle {
    /// The claims and workloads in manifest files (a directory is read recursively for `.yaml`, `.yml`
    /// and `.json` files; `-` is standard input). Documents that are not objects volguard reads are
    /// skipped; a file that cannot be read or parsed is an error.
    pub fn read(paths: &[PathBuf]) -> Result<Self, ManifestError> {
        let mut bundle = Bundle::default();
        for path in manifest::expand_paths(paths) {
            for doc in manifest::read_path(&path?)? {
                if let Ok(Decoded::Resource(r)) = &doc.decoded {
                    bundle.insert(r);
                }
            }
        }
        Ok(bundle)
    }

    /// Remembers a resource if it is one that others refer to.
    pub fn insert(&mut self, resource: &Resource) {
        match resource {
            Resource::Claim(c) => {
                self.claims.insert(key(&c.metadata), Arc::new(c.clone()));
            }
            Resource::Workload(w) => {
                let (ns, name) = key(w.metadata());
                self.workloads.insert((w.kind(), ns, name), Arc::new(w.clone()));
            }
            Resource::Autoscaler(_) | Resource::Scale(_) => {}
        }
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

impl Lookup for Bundle {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        match self.claims.get(&(namespace.to_owned(), name.to_owned())) {
            Some(c) => Answer::Found(Arc::clone(c)),
            None => Answer::Missing,
        }
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        match self.workloads.get(&(kind, namespace.to_owned(), name.to_owned())) {
            Some(w) => Answer::Found(Arc::clone(w)),
            None => Answer::Missing,
        }
    }

    fn scope(&self) -> &'static str {
        "the checked files"
    }
}

/// The checked files first, then the cluster: `volguard check --cluster`. A claim or workload in the files
/// wins over the cluster's (the files are what is about to be applied).
pub struct FilesThenCluster<'a> {
    files: &'a Bundle,
    cluster: &'a dyn Lookup,
}

impl<'a> FilesThenCluster<'a> {
    /// `files` answer first, then `cluster`.
    pub fn new(files: &'a Bundle, cluster: &'a dyn Lookup) -> Self {
        Self { files, cluster }
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

    /// The cluster's workloads mounting the claim, except those the files replace: a workload in the files
    /// is judged itself, with the claim, so naming it again would report one problem twice.
    fn workloads_mounting(&self, namespace: &str, claim: &str) -> Vec<Arc<Workload>> {
        self.cluster
            .workloads_mounting(namespace, claim)
            .into_iter()
            .filter(|w| {
                let name = w.metadata().name.as_deref().unwrap_or_default();
                matches!(self.files.workload(w.kind(), namespace, name), Answer::Missing)
            })
            .collect()
    }

    fn scope(&self) -> &'static str {
        "the checked files or the cluster"
    }

    fn readiness(&self) -> Result<(), String> {
        self.cluster.readiness()
    }
}

/// Answers fetched for one review (a claim the cache had not seen yet, fetched directly), consulted
/// before the base lookup.
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
pub struct Overlay<'a> {
    base: &'a dyn Lookup,
    extra: Prefetched,
}

impl<'a> Overlay<'a> {
    /// `extra` answers first, then `base`.
    pub fn new(base: &'a dyn Lookup, extra: Prefetched) -> Self {
        Self { base, extra }
    }
}

impl Lookup for Overlay<'_> {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        match self.extra.claims.get(&(namespace.to_owned(), name.to_owned())) {
            Some(a) => a.clone(),
            None => self.base.claim(namespace, name),
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

    fn workloads_mounting(&self, namespace: &str, claim: &str) -> Vec<Arc<Workload>> {
        self.base.workloads_mounting(namespace, claim)
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
