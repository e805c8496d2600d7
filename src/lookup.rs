//! Looking up the objects a rule needs but the reviewed object only names: claims, and the workloads an
//! HPA or a Scale resizes.
//!
//! The trait is synchronous on purpose: the server answers from a watch-fed cache (kube-rs's reflector
//! `Store::get` is synchronous), `check` from the files it was given, tests from a map. Rules stay pure.

use std::collections::HashMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use crate::workload::{DEFAULT_NAMESPACE, Resource, Workload, WorkloadKind};

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
