//! The Kubernetes objects volguard judges, decoded once into k8s-openapi types.
//!
//! A document (from a manifest file or an AdmissionReview) is read for its `apiVersion` and `kind`, then
//! decoded straight into the typed object. Kinds volguard does not judge are reported as skipped, never
//! as errors. See <https://kubernetes.io/docs/concepts/workloads/controllers/>.

mod autoscaler;
mod decode;
mod footprint;
mod kinds;
mod limits;
mod placement;
mod rollout;
mod unread;
pub(crate) use unread::LAST_APPLIED;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::Scale;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec, ReplicationController,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;

pub use autoscaler::Autoscaler;
pub(crate) use decode::{DecodeError, ObjectType, decode_value, type_of};
pub use decode::{Decoded, decode};
pub use footprint::Mount;
pub(crate) use footprint::{ClaimUse, Disk, Footprint, FootprintError, PerPodSource, PodCount, pod_labels};
pub use kinds::{KINDS, Kind, WorkloadKind, api_version};
pub(crate) use kinds::{KindInfo, Webhook};
pub use limits::ObjectLimits;
pub(crate) use limits::{Exceeded, Limited};
pub(crate) use placement::{HOSTNAME_LABEL, HostAffinity, Placement, TermNamespaces};
pub(crate) use rollout::Rollout;

/// The namespace Kubernetes uses for a namespaced object that names none.
pub(crate) const DEFAULT_NAMESPACE: &str = "default";

/// A workload: an object whose pod spec volguard reads.
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
    /// v1 ReplicationController.
    ReplicationController(ReplicationController),
    /// v1 Pod: a bare pod, which no controller volguard reads owns.
    Pod(Pod),
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
    /// A StorageClass: what its provisioner can give the claims that name it; never judged.
    StorageClass(k8s_openapi::api::storage::v1::StorageClass),
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
            namespace: namespace_of(meta).to_owned(),
            name,
        }
    }
}

/// An object's namespace as the API server reads it: unset or empty means `default`.
pub(crate) fn namespace_of(meta: &ObjectMeta) -> &str {
    match meta.namespace.as_deref() {
        None | Some("") => DEFAULT_NAMESPACE,
        Some(ns) => ns,
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// Runs `$body` with `$o` bound to the typed object inside any workload variant.
macro_rules! each_workload {
    ($w:expr, $o:ident => $body:expr) => {
        match $w {
            Workload::Deployment($o) => $body,
            Workload::StatefulSet($o) => $body,
            Workload::DaemonSet($o) => $body,
            Workload::ReplicaSet($o) => $body,
            Workload::ReplicationController($o) => $body,
            Workload::Job($o) => $body,
            Workload::CronJob($o) => $body,
            Workload::Pod($o) => $body,
        }
    };
}

impl Workload {
    /// The workload's kind.
    pub fn kind(&self) -> WorkloadKind {
        match self {
            Workload::Deployment(_) => WorkloadKind::Deployment,
            Workload::StatefulSet(_) => WorkloadKind::StatefulSet,
            Workload::DaemonSet(_) => WorkloadKind::DaemonSet,
            Workload::ReplicaSet(_) => WorkloadKind::ReplicaSet,
            Workload::ReplicationController(_) => WorkloadKind::ReplicationController,
            Workload::Job(_) => WorkloadKind::Job,
            Workload::CronJob(_) => WorkloadKind::CronJob,
            Workload::Pod(_) => WorkloadKind::Pod,
        }
    }

    /// The workload's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        each_workload!(self, o => &o.metadata)
    }

    /// The workload's metadata, for the caller that knows the namespace better than the object does.
    pub(crate) fn metadata_mut(&mut self) -> &mut ObjectMeta {
        each_workload!(self, o => &mut o.metadata)
    }

    /// The pod template every pod of the workload is made from (None for a Pod, which is its own pod).
    pub(crate) fn pod_template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::ReplicaSet(o) => o.spec.as_ref().and_then(|s| s.template.as_ref()),
            Workload::ReplicationController(o) => o.spec.as_ref().and_then(|s| s.template.as_ref()),
            Workload::Job(o) => o.spec.as_ref().map(|s| &s.template),
            Workload::CronJob(o) => o
                .spec
                .as_ref()
                .and_then(|s| s.job_template.spec.as_ref())
                .map(|j| &j.template),
            Workload::Pod(_) => None,
        }
    }

    /// The spec of every pod the workload makes (a Pod's own spec).
    pub fn pod_spec(&self) -> Option<&PodSpec> {
        match self {
            Workload::Pod(p) => p.spec.as_ref(),
            _ => self.pod_template().and_then(|t| t.spec.as_ref()),
        }
    }

    /// The labels the workload's pods are created with, as written (see [`Footprint::labels`] for the ones
    /// controllers add).
    pub(crate) fn pod_labels(&self) -> Option<&BTreeMap<String, String>> {
        match self {
            Workload::Pod(p) => p.metadata.labels.as_ref(),
            _ => self
                .pod_template()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.labels.as_ref()),
        }
    }

    /// The pod spec, mutable (for repairs). None when the workload has none to edit.
    pub(crate) fn pod_spec_mut(&mut self) -> Option<&mut PodSpec> {
        let template = match self {
            Workload::Deployment(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::StatefulSet(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::DaemonSet(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::ReplicaSet(o) => o.spec.as_mut().and_then(|s| s.template.as_mut()),
            Workload::ReplicationController(o) => o.spec.as_mut().and_then(|s| s.template.as_mut()),
            Workload::Job(o) => o.spec.as_mut().map(|s| &mut s.template),
            Workload::CronJob(o) => o
                .spec
                .as_mut()
                .and_then(|s| s.job_template.spec.as_mut())
                .map(|j| &mut j.template),
            Workload::Pod(p) => return p.spec.as_mut(),
        };
        template.and_then(|t| t.spec.as_mut())
    }

    /// Where the pod spec sits in the object, as a field path for messages.
    pub(crate) fn pod_spec_path(&self) -> &'static str {
        match self {
            Workload::CronJob(_) => "spec.jobTemplate.spec.template.spec",
            Workload::Pod(_) => "spec",
            _ => "spec.template.spec",
        }
    }

    /// The reference findings about this workload carry.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::of(self.kind().into(), self.metadata())
    }

    /// The owner reference that marks this object's controller, if any.
    pub fn controller(&self) -> Option<&OwnerReference> {
        self.metadata()
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
    }

    /// The workload as JSON, the way k8s-openapi writes it (apiVersion and kind included).
    pub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        each_workload!(self, o => serde_json::to_value(o))
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
            Resource::StorageClass(_) => Kind::StorageClass,
        }
    }

    /// The resource's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Resource::Workload(w) => w.metadata(),
            Resource::Claim(c) => &c.metadata,
            Resource::Autoscaler(a) => &a.metadata,
            Resource::Scale(s) => &s.scale.metadata,
            Resource::StorageClass(c) => &c.metadata,
        }
    }

    /// The resource's metadata, mutable.
    pub(crate) fn metadata_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Resource::Workload(w) => w.metadata_mut(),
            Resource::Claim(c) => &mut c.metadata,
            Resource::Autoscaler(a) => &mut a.metadata,
            Resource::Scale(s) => &mut s.scale.metadata,
            Resource::StorageClass(c) => &mut c.metadata,
        }
    }

    /// The reference findings about this resource carry.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::of(self.kind(), self.metadata())
    }

    /// Gives an object that names no namespace (or `""`) the one it will be created in, as kubectl does
    /// with `--namespace` or the context's namespace.
    pub fn default_namespace(&mut self, namespace: &str) {
        let meta = self.metadata_mut();
        if meta.namespace.as_deref().is_none_or(str::is_empty) {
            meta.namespace = Some(namespace.to_owned());
        }
    }
}
