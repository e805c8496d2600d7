//! The one table of kinds volguard reads: from it come the webhook rules (`volguard manifests` and the
//! chart, checked by a test), the RBAC the cluster caches need, the closed set of `kind` metric labels and
//! the README's table. Adding a kind starts here.
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#matching-requests-rules>.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Every kind volguard decodes, as a policy's `match.kinds` names them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// v1 ReplicationController.
    ReplicationController,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 Pod: bare pods (a pod a controller volguard reads owns is judged through that controller).
    Pod,
    /// autoscaling/v1 or v2 HorizontalPodAutoscaler.
    HorizontalPodAutoscaler,
    /// autoscaling/v1 Scale.
    Scale,
    /// core/v1 PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// storage.k8s.io/v1 StorageClass: read (what a claim's class can give), never judged, so never a
    /// policy's to select.
    #[serde(skip_deserializing)]
    StorageClass,
}

/// The kinds of workload volguard reads a pod spec from.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// v1 ReplicationController.
    ReplicationController,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 Pod.
    Pod,
}

/// What volguard does with a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindInfo {
    /// The kind.
    pub kind: Kind,
    /// Its API group (`""` for the core group).
    pub group: &'static str,
    /// The versions volguard decodes (the webhook rules list these; `matchPolicy: Equivalent` converts
    /// other served versions to one of them).
    pub versions: &'static [&'static str],
    /// The API resource (`deployments`); None for Scale, which is only ever a subresource.
    pub resource: Option<&'static str>,
    /// Whether its `/scale` subresource is judged (`kubectl scale` and HPAs write there).
    pub scale: bool,
    /// The webhook entry whose rules include it.
    pub webhook: Webhook,
    /// Whether the mutating webhook sees it too (it can repair it).
    pub mutated: bool,
    /// The version `serve` lists and watches it in (None: not cached); the ClusterRole grants get, list
    /// and watch on exactly these.
    pub watch: Option<&'static str>,
}

/// Which webhook entry sees a kind's requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Webhook {
    /// `validate.volguard.io` (and `mutate.volguard.io` where [`KindInfo::mutated`]): CREATE and UPDATE.
    Objects,
    /// `pods.validate.volguard.io`: CREATE only, with its own failure policy, because every pod of every
    /// controller passes through it (only bare pods are judged).
    Pods,
    /// None of its own (Scale comes as the `/scale` of a workload).
    None,
}

impl KindInfo {
    #[cfg(test)]
    /// The `apiVersion` the kind is watched in, as written in a manifest (`apps/v1`, `v1`).
    pub(crate) fn watch_api_version(&self) -> Option<String> {
        self.watch.map(|v| api_version(self.group, v))
    }
}

/// `group/version`, or `version` for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// Every kind volguard reads, in the order the webhook rules, RBAC and README list them.
pub const KINDS: [KindInfo; 12] = [
    workload(Kind::Deployment, "apps", "deployments", true),
    workload(Kind::StatefulSet, "apps", "statefulsets", true),
    workload(Kind::DaemonSet, "apps", "daemonsets", false),
    workload(Kind::ReplicaSet, "apps", "replicasets", true),
    workload(Kind::ReplicationController, "", "replicationcontrollers", true),
    workload(Kind::Job, "batch", "jobs", false),
    workload(Kind::CronJob, "batch", "cronjobs", false),
    KindInfo {
        kind: Kind::Pod,
        group: "",
        versions: &["v1"],
        resource: Some("pods"),
        scale: false,
        webhook: Webhook::Pods,
        mutated: false,
        watch: Some("v1"),
    },
    KindInfo {
        kind: Kind::HorizontalPodAutoscaler,
        group: "autoscaling",
        versions: &["v1", "v2"],
        resource: Some("horizontalpodautoscalers"),
        scale: false,
        webhook: Webhook::Objects,
        mutated: true,
        // autoscaling/v1 is served by every Kubernetes release volguard supports (v2 only from 1.23); a v2
        // `behavior` is kept in v1 as the `autoscaling.alpha.kubernetes.io/behavior` annotation.
        watch: Some("v1"),
    },
    KindInfo {
        kind: Kind::Scale,
        group: "autoscaling",
        versions: &["v1"],
        resource: None,
        scale: false,
        webhook: Webhook::None,
        mutated: false,
        watch: None,
    },
    KindInfo {
        kind: Kind::PersistentVolumeClaim,
        group: "",
        versions: &["v1"],
        resource: Some("persistentvolumeclaims"),
        scale: false,
        webhook: Webhook::Objects,
        mutated: true,
        watch: Some("v1"),
    },
    KindInfo {
        kind: Kind::StorageClass,
        group: "storage.k8s.io",
        versions: &["v1"],
        resource: Some("storageclasses"),
        scale: false,
        // A class is read to tell what its claims can be given; a class change judges nothing.
        webhook: Webhook::None,
        mutated: false,
        watch: Some("v1"),
    },
];

const fn workload(kind: Kind, group: &'static str, resource: &'static str, scale: bool) -> KindInfo {
    KindInfo {
        kind,
        group,
        versions: &["v1"],
        resource: Some(resource),
        scale,
        webhook: Webhook::Objects,
        mutated: true,
        watch: Some("v1"),
    }
}

impl Kind {
    /// Every kind, in table order.
    pub const ALL: [Kind; 12] = {
        let mut all = [Kind::Deployment; 12];
        let mut i = 0;
        while i < KINDS.len() {
            all[i] = KINDS[i].kind;
            i += 1;
        }
        all
    };

    /// The kind's row of the table.
    pub fn info(self) -> &'static KindInfo {
        // Every Kind has a row: `every_kind_has_one_row` checks it.
        KINDS.iter().find(|k| k.kind == self).unwrap_or(&KINDS[0])
    }

    /// The kind's name as in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::ReplicationController => "ReplicationController",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::Pod => "Pod",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::Scale => "Scale",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::StorageClass => "StorageClass",
        }
    }

    /// The kind a manifest's `kind` names, if volguard reads it.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The workload kind this is, if it is one.
    pub fn workload(self) -> Option<WorkloadKind> {
        WorkloadKind::ALL.into_iter().find(|w| Kind::from(*w) == self)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<WorkloadKind> for Kind {
    fn from(k: WorkloadKind) -> Self {
        match k {
            WorkloadKind::Deployment => Kind::Deployment,
            WorkloadKind::StatefulSet => Kind::StatefulSet,
            WorkloadKind::DaemonSet => Kind::DaemonSet,
            WorkloadKind::ReplicaSet => Kind::ReplicaSet,
            WorkloadKind::ReplicationController => Kind::ReplicationController,
            WorkloadKind::Job => Kind::Job,
            WorkloadKind::CronJob => Kind::CronJob,
            WorkloadKind::Pod => Kind::Pod,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Kind::from(*self).fmt(f)
    }
}

impl WorkloadKind {
    /// Every workload kind.
    pub const ALL: [WorkloadKind; 8] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
        WorkloadKind::Job,
        WorkloadKind::CronJob,
        WorkloadKind::Pod,
    ];

    /// The kinds with a `/scale` subresource (what a Scale in a manifest file may resize).
    pub(crate) const SCALABLE: [WorkloadKind; 4] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::ReplicaSet,
        WorkloadKind::ReplicationController,
    ];

    /// The workload kind a scale target reference, an owner reference or an admission request names, if
    /// volguard reads it.
    pub(crate) fn from_kind_name(kind: &str) -> Option<Self> {
        Kind::from_name(kind).and_then(Kind::workload)
    }

    /// The workload kind behind an API resource name (`deployments` for `deployments/scale`).
    pub(crate) fn from_resource(resource: &str) -> Option<Self> {
        KINDS
            .iter()
            .find(|k| k.resource == Some(resource))
            .and_then(|k| k.kind.workload())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_row() {
        for kind in Kind::ALL {
            assert_eq!(KINDS.iter().filter(|k| k.kind == kind).count(), 1, "{kind}");
            assert_eq!(kind.info().kind, kind);
            assert_eq!(Kind::from_name(kind.as_str()), Some(kind));
        }
        for w in WorkloadKind::ALL {
            assert_eq!(Kind::from(w).workload(), Some(w));
            let info = Kind::from(w).info();
            assert_eq!(WorkloadKind::from_resource(info.resource.unwrap()), Some(w));
            assert_eq!(WorkloadKind::SCALABLE.contains(&w), info.scale, "{w}");
        }
        assert_eq!(Kind::HorizontalPodAutoscaler.workload(), None);
        assert_eq!(WorkloadKind::from_kind_name("ConfigMap"), None);
        assert_eq!(
            Kind::ReplicationController.info().watch_api_version().as_deref(),
            Some("v1")
        );
        assert_eq!(Kind::Job.info().watch_api_version().as_deref(), Some("batch/v1"));
    }
}
