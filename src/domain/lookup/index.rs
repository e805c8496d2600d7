//! An in-memory index of claims, workloads and autoscalers, keyed the ways reviews look them up: by name,
//! by the volume a workload's pods mount, by namespace, and by the workload an autoscaler resizes.
//!
//! One index answers for the checked files (`check`, `review -f`) and, filled by watches, for the cluster
//! (`serve`), so both see the same users of a claim, the same generated claims and the same owners.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;

use super::VolumeKey;
use crate::domain::workload::{
    Autoscaler, Disk, Footprint, PerPodSource, Resource, Workload, WorkloadKind, namespace_of,
};

type WorkloadKey = (String, WorkloadKind, String);

/// A workload and what it is indexed under, so that replacing or removing it undoes exactly that.
#[derive(Clone, Debug)]
struct Entry {
    workload: Arc<Workload>,
    claims: Vec<String>,
    disks: Vec<Disk>,
}

/// Claims, workloads and autoscalers, indexed.
#[derive(Clone, Debug, Default)]
pub struct Index {
    claims: BTreeMap<(String, String), Arc<PersistentVolumeClaim>>,
    workloads: BTreeMap<WorkloadKey, Entry>,
    autoscalers: BTreeMap<(String, String), Arc<Autoscaler>>,
    /// StorageClasses by name (cluster-scoped).
    classes: BTreeMap<String, Arc<StorageClass>>,
    /// (namespace, claim) → the workloads whose pod spec mounts it.
    claim_users: BTreeMap<(String, String), BTreeSet<(WorkloadKind, String)>>,
    /// disk → the workloads whose pod spec names it, in any namespace.
    disk_users: BTreeMap<Disk, BTreeSet<WorkloadKey>>,
    /// the target (namespace, kind, name) → the autoscalers resizing it.
    scaled_by: BTreeMap<WorkloadKey, BTreeSet<String>>,
}

fn name_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

impl Index {
    /// Adds (or replaces) a resource; a Scale is not kept (it is a request, not an object).
    pub fn insert(&mut self, resource: Resource) {
        match resource {
            Resource::Claim(c) => {
                let key = (namespace_of(&c.metadata).to_owned(), name_of(&c.metadata));
                self.claims.insert(key, Arc::new(c));
            }
            Resource::Workload(w) => self.insert_workload(Arc::new(w)),
            Resource::Autoscaler(a) => self.insert_autoscaler(Arc::new(a)),
            Resource::Scale(_) => {}
            Resource::StorageClass(c) => {
                self.classes.insert(name_of(&c.metadata), Arc::new(c));
            }
        }
    }

    /// Whether the index holds this very resource (an equal copy under its name): a watch event that
    /// changes nothing volguard keeps (a status update, a new resourceVersion) changes no judgement.
    pub fn holds(&self, resource: &Resource) -> bool {
        match resource {
            Resource::Claim(c) => self
                .claims
                .get(&(namespace_of(&c.metadata).to_owned(), name_of(&c.metadata)))
                .is_some_and(|held| **held == *c),
            Resource::Workload(w) => self
                .workload(w.kind(), namespace_of(w.metadata()), &name_of(w.metadata()))
                .is_some_and(|held| *held == *w),
            Resource::Autoscaler(a) => self
                .autoscalers
                .get(&(namespace_of(&a.metadata).to_owned(), name_of(&a.metadata)))
                .is_some_and(|held| **held == *a),
            Resource::StorageClass(c) => self
                .classes
                .get(&name_of(&c.metadata))
                .is_some_and(|held| **held == *c),
            Resource::Scale(_) => true,
        }
    }

    /// Adds (or replaces) a workload.
    pub(crate) fn insert_workload(&mut self, workload: Arc<Workload>) {
        let ns = namespace_of(workload.metadata()).to_owned();
        let name = name_of(workload.metadata());
        let kind = workload.kind();
        self.remove_workload(kind, &ns, &name);
        let volumes = workload.pod_spec().and_then(|s| s.volumes.as_ref());
        let mut claims = Vec::new();
        let mut disks = Vec::new();
        if let Ok(fp) = Footprint::of(&workload) {
            claims = fp.claims.iter().map(|c| c.claim.clone()).collect();
            disks = fp.disks.iter().map(|d| d.disk.clone()).collect();
        } else if let Some(volumes) = volumes {
            // A footprint that cannot be read (a bad maxSurge) still mounts what it mounts.
            claims = volumes
                .iter()
                .filter_map(|v| v.persistent_volume_claim.as_ref().map(|p| p.claim_name.clone()))
                .collect();
        }
        for c in &claims {
            self.claim_users
                .entry((ns.clone(), c.clone()))
                .or_default()
                .insert((kind, name.clone()));
        }
        for d in &disks {
            self.disk_users
                .entry(d.clone())
                .or_default()
                .insert((ns.clone(), kind, name.clone()));
        }
        self.workloads.insert(
            (ns, kind, name),
            Entry {
                workload,
                claims,
                disks,
            },
        );
    }

    /// Adds (or replaces) an autoscaler.
    pub(crate) fn insert_autoscaler(&mut self, hpa: Arc<Autoscaler>) {
        let ns = namespace_of(&hpa.metadata).to_owned();
        let name = name_of(&hpa.metadata);
        self.remove_autoscaler(&ns, &name);
        if let Some(kind) = WorkloadKind::from_kind_name(&hpa.target.kind) {
            self.scaled_by
                .entry((ns.clone(), kind, hpa.target.name.clone()))
                .or_default()
                .insert(name.clone());
        }
        self.autoscalers.insert((ns, name), hpa);
    }

    /// Removes a StorageClass; whether it was held.
    pub(crate) fn remove_storage_class(&mut self, name: &str) -> bool {
        self.classes.remove(name).is_some()
    }

    /// A StorageClass by name, or (`None`) the default class.
    pub fn storage_class(&self, name: Option<&str>) -> Option<Arc<StorageClass>> {
        match name {
            Some(n) => self.classes.get(n).cloned(),
            None => crate::domain::storage::newest_default(self.classes.values()),
        }
    }

    /// How many StorageClasses are held.
    pub fn storage_classes(&self) -> usize {
        self.classes.len()
    }

    /// Removes a claim; whether it was held.
    pub(crate) fn remove_claim(&mut self, namespace: &str, name: &str) -> bool {
        self.claims
            .remove(&(namespace.to_owned(), name.to_owned()))
            .is_some()
    }

    /// Removes a workload and its index entries; whether it was held.
    pub(crate) fn remove_workload(&mut self, kind: WorkloadKind, namespace: &str, name: &str) -> bool {
        let key = (namespace.to_owned(), kind, name.to_owned());
        let Some(old) = self.workloads.remove(&key) else {
            return false;
        };
        for c in old.claims {
            let k = (namespace.to_owned(), c);
            if let Some(set) = self.claim_users.get_mut(&k) {
                set.remove(&(kind, name.to_owned()));
                if set.is_empty() {
                    self.claim_users.remove(&k);
                }
            }
        }
        for d in old.disks {
            if let Some(set) = self.disk_users.get_mut(&d) {
                set.remove(&key);
                if set.is_empty() {
                    self.disk_users.remove(&d);
                }
            }
        }
        true
    }

    /// Removes an autoscaler; whether it was held.
    pub(crate) fn remove_autoscaler(&mut self, namespace: &str, name: &str) -> bool {
        let Some(old) = self.autoscalers.remove(&(namespace.to_owned(), name.to_owned())) else {
            return false;
        };
        if let Some(kind) = WorkloadKind::from_kind_name(&old.target.kind) {
            let k = (namespace.to_owned(), kind, old.target.name.clone());
            if let Some(set) = self.scaled_by.get_mut(&k) {
                set.remove(name);
                if set.is_empty() {
                    self.scaled_by.remove(&k);
                }
            }
        }
        true
    }

    /// Removes every object of one kind (before a relist of that kind replaces them).
    pub(crate) fn clear_kind(&mut self, kind: crate::domain::workload::Kind) {
        use crate::domain::workload::Kind;
        match kind {
            Kind::PersistentVolumeClaim => self.claims.clear(),
            Kind::StorageClass => self.classes.clear(),
            Kind::HorizontalPodAutoscaler => {
                self.autoscalers.clear();
                self.scaled_by.clear();
            }
            Kind::Scale => {}
            other => {
                let Some(w) = other.workload() else { return };
                let keys: Vec<WorkloadKey> = self
                    .workloads
                    .keys()
                    .filter(|(_, k, _)| *k == w)
                    .cloned()
                    .collect();
                for (ns, k, name) in keys {
                    self.remove_workload(k, &ns, &name);
                }
            }
        }
    }

    /// How many objects of each kind are held: claims, workloads, autoscalers.
    pub fn len(&self) -> (usize, usize, usize) {
        (self.claims.len(), self.workloads.len(), self.autoscalers.len())
    }

    /// Whether the index holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == (0, 0, 0) && self.classes.is_empty()
    }

    /// How many workloads of `kind` are held.
    pub fn count(&self, kind: WorkloadKind) -> usize {
        self.workloads.keys().filter(|(_, k, _)| *k == kind).count()
    }

    /// A workload by kind and name.
    pub fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Option<Arc<Workload>> {
        self.workloads
            .get(&(namespace.to_owned(), kind, name.to_owned()))
            .map(|e| Arc::clone(&e.workload))
    }

    /// A claim by name: one that exists, or one a StatefulSet's volumeClaimTemplate makes for a replica it
    /// runs (`<template>-<statefulset>-<ordinal>`), as the StatefulSet controller will create it.
    pub fn claim(&self, namespace: &str, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
        if let Some(c) = self.claims.get(&(namespace.to_owned(), name.to_owned())) {
            return Some(Arc::clone(c));
        }
        self.statefulsets_in(namespace)
            .find_map(|set| generated_claim(&set, name))
    }

    fn statefulsets_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = Arc<Workload>> + 'a {
        let start = (namespace.to_owned(), WorkloadKind::StatefulSet, String::new());
        self.workloads
            .range(start..)
            .take_while(move |((ns, k, _), _)| ns == namespace && *k == WorkloadKind::StatefulSet)
            .map(|(_, e)| Arc::clone(&e.workload))
    }

    /// Whether a controller volguard reads owns the workload, and exists: its pods are then that
    /// controller's, judged through it (a Deployment's ReplicaSets, a CronJob's Jobs, a ReplicaSet's pods).
    pub fn is_controlled(&self, workload: &Workload) -> bool {
        let Some(owner) = workload.controller() else {
            return false;
        };
        let Some(kind) = WorkloadKind::from_kind_name(&owner.kind) else {
            return false;
        };
        let ns = namespace_of(workload.metadata());
        self.workload(kind, ns, &owner.name).is_some_and(|o| {
            // Where both carry a uid it must match: a reference to a deleted and recreated owner is stale.
            o.metadata().uid.as_deref().is_none_or(|uid| uid == owner.uid) || owner.uid.is_empty()
        })
    }

    /// The workloads (not controlled, see [`Index::is_controlled`]) whose pods mount `volume`, including
    /// the StatefulSets whose volumeClaimTemplates make the claim, sorted by kind and name.
    pub fn users(&self, volume: &VolumeKey) -> Vec<Arc<Workload>> {
        let mut out: Vec<Arc<Workload>> = match volume {
            VolumeKey::Claim { namespace, name } => {
                let mounting = self
                    .claim_users
                    .get(&(namespace.clone(), name.clone()))
                    .into_iter()
                    .flatten()
                    .filter_map(|(kind, n)| self.workload(*kind, namespace, n));
                let generating = self
                    .statefulsets_in(namespace)
                    .filter(|set| generated_claim(set, name).is_some());
                let mut all: Vec<Arc<Workload>> = mounting.chain(generating).collect();
                all.dedup_by(|a, b| Arc::ptr_eq(a, b));
                all
            }
            VolumeKey::Disk(disk) => self
                .disk_users
                .get(disk)
                .into_iter()
                .flatten()
                .filter_map(|(ns, kind, n)| self.workload(*kind, ns, n))
                .collect(),
        };
        out.retain(|w| !self.is_controlled(w));
        out.sort_by_key(|w| w.object_ref());
        out.dedup_by(|a, b| a.object_ref() == b.object_ref());
        out
    }

    /// The names of the claims in `namespace` starting with `prefix` that some workload's pod spec mounts.
    pub fn mounted_claims(&self, namespace: &str, prefix: &str) -> Vec<String> {
        self.claim_users
            .range((namespace.to_owned(), prefix.to_owned())..)
            .take_while(|((ns, c), _)| ns == namespace && c.starts_with(prefix))
            .map(|((_, c), _)| c.clone())
            .collect()
    }

    /// The workloads in a namespace that no controller volguard reads owns.
    pub fn workloads_in(&self, namespace: &str) -> Vec<Arc<Workload>> {
        let start = (namespace.to_owned(), WorkloadKind::Deployment, String::new());
        self.workloads
            .range(start..)
            .take_while(|((ns, _, _), _)| ns == namespace)
            .map(|(_, e)| Arc::clone(&e.workload))
            .filter(|w| !self.is_controlled(w))
            .collect()
    }

    /// Every workload that no controller volguard reads owns, by namespace, kind and name (`audit`).
    pub fn judged_workloads(&self) -> Vec<Arc<Workload>> {
        self.workloads
            .values()
            .map(|e| Arc::clone(&e.workload))
            .filter(|w| !self.is_controlled(w))
            .collect()
    }

    /// The autoscalers resizing a workload.
    pub fn autoscalers(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Vec<Arc<Autoscaler>> {
        self.scaled_by
            .get(&(namespace.to_owned(), kind, name.to_owned()))
            .into_iter()
            .flatten()
            .filter_map(|n| self.autoscalers.get(&(namespace.to_owned(), n.clone())))
            .cloned()
            .collect()
    }
}

/// The annotation on a claim volguard knows only as one a StatefulSet will make (it does not exist yet).
pub(crate) const GENERATED_BY: &str = "volguard.io/generated-by";

/// The claim a StatefulSet's volumeClaimTemplate makes for one of its replicas, if `name` is one: the
/// template's spec under the claim's name.
fn generated_claim(set: &Workload, name: &str) -> Option<Arc<PersistentVolumeClaim>> {
    let Workload::StatefulSet(sts) = set else {
        return None;
    };
    let fp = Footprint::of(set).ok()?;
    let (_, template) = fp.replica_claim(name)?;
    debug_assert_eq!(template.source, PerPodSource::ClaimTemplate);
    let t = sts
        .spec
        .as_ref()?
        .volume_claim_templates
        .iter()
        .flatten()
        .find(|t| t.metadata.name.as_deref() == Some(template.name.as_str()))?;
    let mut claim = t.clone();
    claim.metadata.name = Some(name.to_owned());
    claim.metadata.namespace = Some(namespace_of(set.metadata()).to_owned());
    claim.metadata.annotations = Some(std::collections::BTreeMap::from([(
        GENERATED_BY.to_owned(),
        format!("StatefulSet {}", set.object_ref().name),
    )]));
    claim.status = None;
    Some(Arc::new(claim))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::{Decoded, decode};
    use serde_json::json;

    fn resource(v: serde_json::Value) -> Resource {
        match decode(v) {
            Ok(Decoded::Resource(r)) => *r,
            other => panic!("{other:?}"),
        }
    }

    fn deployment(name: &str, claim: &str) -> Resource {
        resource(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}")},
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}}}))
    }

    fn replica_set(name: &str, owner: Option<(&str, &str)>) -> Resource {
        let mut meta = json!({"name": name, "namespace": "shop"});
        if let Some((kind, owner)) = owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": owner,
                "uid": format!("uid-{owner}"), "controller": true}]);
        }
        resource(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta,
            "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}}}),
        )
    }

    fn names(ws: &[Arc<Workload>]) -> Vec<String> {
        ws.iter().map(|w| w.object_ref().to_string()).collect()
    }

    fn claim(ns: &str, name: &str) -> VolumeKey {
        VolumeKey::Claim {
            namespace: ns.into(),
            name: name.into(),
        }
    }

    #[test]
    fn holds_an_equal_copy_only_and_removal_says_what_it_removed() {
        let mut index = Index::default();
        let web = deployment("web", "data");
        assert!(!index.holds(&web));
        index.insert(web.clone());
        assert!(index.holds(&web));
        assert!(!index.holds(&deployment("web", "other")), "a changed pod spec");
        assert!(!index.holds(&deployment("api", "data")), "another name");
        let pvc = resource(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"]}}));
        assert!(!index.holds(&pvc));
        index.insert(pvc.clone());
        assert!(index.holds(&pvc));
        assert!(index.remove_claim("shop", "data"));
        assert!(!index.remove_claim("shop", "data"));
        assert!(index.remove_workload(WorkloadKind::Deployment, "shop", "web"));
        assert!(!index.remove_workload(WorkloadKind::Deployment, "shop", "web"));
        assert!(!index.holds(&web));
    }

    #[test]
    fn users_follow_replacement_and_removal_and_skip_controlled_objects() {
        let mut index = Index::default();
        index.insert(deployment("web", "data"));
        index.insert(replica_set("web-abc", Some(("Deployment", "web"))));
        index.insert(replica_set("orphan", Some(("Deployment", "gone"))));
        index.insert(replica_set("plain", None));
        assert_eq!(
            names(&index.users(&claim("shop", "data"))),
            [
                "Deployment shop/web",
                "ReplicaSet shop/orphan",
                "ReplicaSet shop/plain"
            ]
        );
        index.insert(deployment("web", "other"));
        assert_eq!(
            names(&index.users(&claim("shop", "other"))),
            ["Deployment shop/web"]
        );
        assert_eq!(
            names(&index.users(&claim("shop", "data"))),
            ["ReplicaSet shop/orphan", "ReplicaSet shop/plain"],
            "web-abc is still web's, judged through it"
        );
        index.remove_workload(WorkloadKind::Deployment, "shop", "web");
        assert!(index.users(&claim("shop", "other")).is_empty());
        assert_eq!(
            names(&index.users(&claim("shop", "data"))),
            [
                "ReplicaSet shop/orphan",
                "ReplicaSet shop/plain",
                "ReplicaSet shop/web-abc"
            ],
            "with web gone, nothing volguard sees controls web-abc: it is judged on its own"
        );
        assert_eq!(index.count(WorkloadKind::ReplicaSet), 3);
    }

    #[test]
    fn statefulset_templates_make_claims_for_the_replicas_they_run() {
        let mut index = Index::default();
        index.insert(resource(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "pg", "namespace": "db"},
            "spec": {"replicas": 2, "serviceName": "pg", "selector": {}, "template": {"spec": {
                "containers": [{"name": "pg", "image": "postgres"}]}},
              "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]}})));
        let c = index.claim("db", "data-pg-1").expect("replica 1's claim");
        assert_eq!(c.metadata.name.as_deref(), Some("data-pg-1"));
        assert_eq!(
            c.spec.as_ref().unwrap().access_modes.as_deref(),
            Some(&["ReadWriteOnce".to_owned()][..])
        );
        assert!(index.claim("db", "data-pg-2").is_none(), "no third replica");
        assert!(index.claim("db", "data-pg-01").is_none());
        assert!(index.claim("other", "data-pg-0").is_none());
        assert_eq!(
            names(&index.users(&claim("db", "data-pg-0"))),
            ["StatefulSet db/pg"]
        );
    }
}
