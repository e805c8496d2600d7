//! The Kubernetes objects volguard judges, decoded once into k8s-openapi types.
//!
//! A document (from a manifest file or an AdmissionReview) is read for its `apiVersion` and `kind`, then
//! decoded straight into the typed object. Kinds volguard does not judge are reported as skipped, never
//! as errors. See <https://kubernetes.io/docs/concepts/workloads/controllers/>.

mod autoscaler;
mod decode;
mod footprint;
mod managed_fields;
mod pinning;
mod rollout;

use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

pub use autoscaler::{Autoscaler, ScaleTargetRef};
pub use decode::{DecodeError, Decoded, ObjectType, decode, decode_value, type_of};
pub use footprint::{ClaimUse, Footprint, FootprintError, Mount, PerPodClaim, PerPodSource, PodCount};
pub use managed_fields::WithoutManagedFields;
pub use pinning::Pinning;
pub use rollout::{Fencepost, Rollout, resolve_surge};

/// The namespace Kubernetes uses for a namespaced object that names none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A workload: an object whose pod template volguard reads.
// Objects are decoded once per review and moved, never copied in bulk: boxing each variant would only
// add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    /// apps/v1 Deployment.
    Deployment(Deployment),
    /// apps/v1 StatefulSet.
    StatefulSet(StatefulSet),
    /// apps/v1 DaemonSet.
    DaemonSet(DaemonSet),
    /// apps/v1 ReplicaSet.
    ReplicaSet(ReplicaSet),
    /// batch/v1 Job.
    Job(Job),
    /// batch/v1 CronJob.
    CronJob(CronJob),
}

/// Everything volguard decodes: workloads, the claims they mount, and the objects that scale them.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Resource {
    /// A workload with a pod template.
    Workload(Workload),
    /// A PersistentVolumeClaim: looked up by the rules, not judged on its own.
    Claim(PersistentVolumeClaim),
    /// A HorizontalPodAutoscaler (autoscaling/v1 or v2), judged with the workload it targets.
    Autoscaler(Autoscaler),
    /// An autoscaling/v1 Scale (the `/scale` subresource), judged with the workload it resizes.
    Scale(ScaleRequest),
}

/// A Scale object and, when known, the kind of workload it resizes.
///
/// In an AdmissionReview the resource (`deployments/scale`) says the kind; in a manifest file it is unknown
/// and the target is found by name.
#[derive(Clone, Debug, PartialEq)]
pub struct ScaleRequest {
    /// The Scale object as sent.
    pub scale: Scale,
    /// The kind of the workload behind the subresource, when the caller knows it.
    pub target_kind: Option<WorkloadKind>,
}

/// The kinds of workload volguard reads a pod template from.
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
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
}

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
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// autoscaling/v1 or v2 HorizontalPodAutoscaler.
    HorizontalPodAutoscaler,
    /// autoscaling/v1 Scale.
    Scale,
    /// core/v1 PersistentVolumeClaim.
    PersistentVolumeClaim,
}

impl Kind {
    /// The kind's name as in a manifest.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::DaemonSet => "DaemonSet",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::Scale => "Scale",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
        }
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
            WorkloadKind::Job => Kind::Job,
            WorkloadKind::CronJob => Kind::CronJob,
        }
    }
}

impl fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Kind::from(*self).fmt(f)
    }
}

impl WorkloadKind {
    /// The workload kind a scale target reference or an admission resource names, if volguard reads it.
    pub fn from_kind_name(kind: &str) -> Option<Self> {
        match kind {
            "Deployment" => Some(Self::Deployment),
            "StatefulSet" => Some(Self::StatefulSet),
            "DaemonSet" => Some(Self::DaemonSet),
            "ReplicaSet" => Some(Self::ReplicaSet),
            "Job" => Some(Self::Job),
            "CronJob" => Some(Self::CronJob),
            _ => None,
        }
    }

    /// The workload kind behind an API resource name (`deployments` for `deployments/scale`).
    pub fn from_resource(resource: &str) -> Option<Self> {
        match resource {
            "deployments" => Some(Self::Deployment),
            "statefulsets" => Some(Self::StatefulSet),
            "daemonsets" => Some(Self::DaemonSet),
            "replicasets" => Some(Self::ReplicaSet),
            "jobs" => Some(Self::Job),
            "cronjobs" => Some(Self::CronJob),
            _ => None,
        }
    }
}

/// Which object a finding is about: kind, namespace and name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// The object's kind.
    pub kind: Kind,
    /// The object's namespace (`default` when the manifest names none).
    pub namespace: String,
    /// The object's name (`generateName` plus `*` when only that is set).
    pub name: String,
}

impl ObjectRef {
    fn of(kind: Kind, meta: &ObjectMeta) -> Self {
        let name = match (&meta.name, &meta.generate_name) {
            (Some(n), _) => n.clone(),
            (None, Some(g)) => format!("{g}*"),
            (None, None) => String::from("<unnamed>"),
        };
        Self {
            kind,
            namespace: meta
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name,
        }
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

impl Workload {
    /// The workload's kind.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Deployment(_) => WorkloadKind::Deployment,
            Workload::StatefulSet(_) => WorkloadKind::StatefulSet,
            Workload::DaemonSet(_) => WorkloadKind::DaemonSet,
            Workload::ReplicaSet(_) => WorkloadKind::ReplicaSet,
            Workload::Job(_) => WorkloadKind::Job,
            Workload::CronJob(_) => WorkloadKind::CronJob,
        }
    }

    /// The workload's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Workload::Deployment(o) => &o.metadata,
            Workload::StatefulSet(o) => &o.metadata,
            Workload::DaemonSet(o) => &o.metadata,
            Workload::ReplicaSet(o) => &o.metadata,
            Workload::Job(o) => &o.metadata,
            Workload::CronJob(o) => &o.metadata,
        }
    }

    /// The workload's metadata, for the caller that knows the namespace better than the object does.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Workload::Deployment(o) => &mut o.metadata,
            Workload::StatefulSet(o) => &mut o.metadata,
            Workload::DaemonSet(o) => &mut o.metadata,
            Workload::ReplicaSet(o) => &mut o.metadata,
            Workload::Job(o) => &mut o.metadata,
            Workload::CronJob(o) => &mut o.metadata,
        }
    }

    /// The pod template every pod of the workload is made from.
    pub fn pod_template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::ReplicaSet(o) => o.spec.as_ref().and_then(|s| s.template.as_ref()),
            Workload::Job(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::CronJob(o) => o
                .spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .map(|j| &j.template),
        }
    }

    /// The reference findings about this workload carry.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::of(self.kind().into(), self.metadata())
    }

    /// The pod template, mutable (for repairs). None when the workload has none to edit.
    pub fn pod_template_mut(&mut self) -> Option<&mut PodTemplateSpec> {
        match self {
            Workload::Deployment(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::StatefulSet(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::DaemonSet(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::ReplicaSet(o) => o.spec.as_mut().and_then(|s| s.template.as_mut()),
            Workload::Job(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::CronJob(o) => o
                .spec
                .as_mut()
                .and_then(|s| s.job_template.spec.as_mut())
                .map(|j| &mut j.template),
        }
    }

    /// The workload as JSON, the way k8s-openapi writes it (apiVersion and kind included).
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        match self {
            Workload::Deployment(o) => serde_json::to_value(o),
            Workload::StatefulSet(o) => serde_json::to_value(o),
            Workload::DaemonSet(o) => serde_json::to_value(o),
            Workload::ReplicaSet(o) => serde_json::to_value(o),
            Workload::Job(o) => serde_json::to_value(o),
            Workload::CronJob(o) => serde_json::to_value(o),
        }
    }
}

impl Resource {
    /// The resource's kind.
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Workload(w) => w.kind().into(),
            Resource::Claim(_) => Kind::PersistentVolumeClaim,
            Resource::Autoscaler(_) => Kind::HorizontalPodAutoscaler,
            Resource::Scale(_) => Kind::Scale,
        }
    }

    /// The resource's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Workload(w) => w.metadata(),
            Resource::Claim(c) => &c.metadata,
            Resource::Autoscaler(a) => &a.metadata,
            Resource::Scale(s) => &s.scale.metadata,
        }
    }

    /// The resource's metadata, mutable.
    pub fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Resource::Workload(w) => w.metadata_mut(),
            Resource::Claim(c) => &mut c.metadata,
            Resource::Autoscaler(a) => &mut a.metadata,
            Resource::Scale(s) => &mut s.scale.metadata,
        }
    }

    /// The reference findings about this resource carry.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::of(self.kind(), self.metadata())
    }
}
