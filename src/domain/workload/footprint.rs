//! A workload's "pod footprint": how many pods may run at once, which claims they all share, which
//! claims each pod gets for itself, and whether they are held on one node.
//!
//! Every rule reads this one view, so a Deployment, a CronJob and an HPA pointing at a StatefulSet are
//! judged by the same logic. See <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes>.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use k8s_openapi::api::core::v1::{PodSpec, Volume};

use super::ObjectRef;
use super::{Placement, Rollout, Workload, WorkloadKind};

/// How many pods of a workload may run at the same time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodCount {
    /// A fixed number: replicas, or a Job's effective parallelism.
    Exactly(u32),
    /// A CronJob with `concurrencyPolicy: Allow`: runs overlap, so at least twice one run's pods.
    Overlapping {
        /// Pods of one run.
        per_run: u32,
    },
    /// A DaemonSet: one pod on every eligible node.
    PerNode,
}

impl PodCount {
    /// Whether two or more pods may exist at the same time.
    pub(crate) fn is_multi_pod(self) -> bool {
        match self {
            PodCount::Exactly(n) => n > 1,
            PodCount::Overlapping { per_run } => per_run >= 1,
            PodCount::PerNode => true,
        }
    }
}

impl PodCount {
    /// The most pods at once, as a number: two runs for an overlapping CronJob, and "unbounded" (`u32::MAX`)
    /// for one pod on every node.
    pub fn peak(self) -> u32 {
        match self {
            PodCount::Exactly(n) => n,
            PodCount::Overlapping { per_run } => per_run.saturating_mul(2),
            PodCount::PerNode => u32::MAX,
        }
    }
}

impl fmt::Display for PodCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PodCount::Exactly(1) => f.write_str("1 pod"),
            PodCount::Exactly(n) => write!(f, "{n} pods"),
            PodCount::Overlapping { per_run } => write!(
                f,
                "{} or more pods (concurrencyPolicy Allow lets runs overlap)",
                per_run.saturating_mul(2)
            ),
            PodCount::PerNode => f.write_str("one pod on every node"),
        }
    }
}

/// One container's mount of a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The container's name (init containers included).
    pub container: String,
    /// Where the volume is mounted.
    pub mount_path: String,
    /// The volumeMount's `readOnly`.
    pub read_only: bool,
}

/// A `persistentVolumeClaim` volume of the pod template: one claim shared by every pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimUse {
    /// The volume's name in the pod spec.
    pub volume: String,
    /// The claim's name, in the workload's namespace.
    pub claim: String,
    /// The volume source's own `readOnly`.
    pub volume_read_only: bool,
    /// Every container mount of the volume.
    pub mounts: Vec<Mount>,
}

impl ClaimUse {
    /// Whether no container can write to the claim: the volume is read-only, or every mount is.
    pub(crate) fn is_read_only(&self) -> bool {
        self.volume_read_only || (!self.mounts.is_empty() && self.mounts.iter().all(|m| m.read_only))
    }

    /// The mounts that can write (none when the volume itself is read-only).
    pub(crate) fn writable_mounts(&self) -> impl Iterator<Item = &Mount> {
        self.mounts
            .iter()
            .filter(move |m| !self.volume_read_only && !m.read_only)
    }
}

/// Where a per-pod claim comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PerPodSource {
    /// A StatefulSet `volumeClaimTemplates` entry: one claim per replica, kept across restarts.
    ClaimTemplate,
    /// A generic ephemeral volume (`ephemeral.volumeClaimTemplate`): one claim per pod, deleted with it.
    Ephemeral,
}

/// A claim every pod gets for itself, so never shared.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PerPodClaim {
    /// The template's (or volume's) name.
    pub name: String,
    /// Where it comes from.
    pub source: PerPodSource,
    /// The template's `spec.accessModes`.
    pub access_modes: Vec<String>,
    /// The template's `spec.storageClassName`.
    pub storage_class: Option<String>,
    /// The template's `spec.volumeMode`.
    pub volume_mode: crate::domain::storage::VolumeMode,
}

/// A single-attach volume named inline in the pod spec rather than through a claim: an EBS volume, a
/// GCE persistent disk, an Azure disk, a Cinder volume, or an RBD, iSCSI or Fibre Channel device. Such a
/// disk is one object of the storage system, whoever mounts it: every pod that names it shares it, across
/// workloads and namespaces.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Disk {
    /// The volume source, as the pod spec names it (`awsElasticBlockStore`).
    pub source: DiskSource,
    /// What identifies the disk in its storage system (`vol-0abc`, `pool/image`).
    pub id: String,
}

/// The in-tree volume sources that attach a disk to one node at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiskSource {
    /// `awsElasticBlockStore`.
    AwsElasticBlockStore,
    /// `gcePersistentDisk`.
    GcePersistentDisk,
    /// `azureDisk`.
    AzureDisk,
    /// `cinder`.
    Cinder,
    /// `rbd`.
    Rbd,
    /// `iscsi`.
    Iscsi,
    /// `fc`.
    Fc,
}

impl DiskSource {
    /// The field name in a pod spec's volume.
    pub fn as_str(self) -> &'static str {
        match self {
            DiskSource::AwsElasticBlockStore => "awsElasticBlockStore",
            DiskSource::GcePersistentDisk => "gcePersistentDisk",
            DiskSource::AzureDisk => "azureDisk",
            DiskSource::Cinder => "cinder",
            DiskSource::Rbd => "rbd",
            DiskSource::Iscsi => "iscsi",
            DiskSource::Fc => "fc",
        }
    }

    /// Whether the disk can be attached read-only to many nodes at once when every user mounts it
    /// read-only (the in-tree plugins' ReadOnlyMany).
    pub(crate) fn read_only_many(self) -> bool {
        matches!(
            self,
            DiskSource::GcePersistentDisk | DiskSource::Rbd | DiskSource::Iscsi | DiskSource::Fc
        )
    }
}

impl fmt::Display for Disk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.source.as_str(), self.id)
    }
}

/// A pod spec volume naming an inline single-attach disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskUse {
    /// The volume's name in the pod spec.
    pub volume: String,
    /// The disk.
    pub disk: Disk,
    /// The volume source's own `readOnly`.
    pub volume_read_only: bool,
    /// Every container mount of the volume.
    pub mounts: Vec<Mount>,
}

/// Why a workload's footprint could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FootprintError {
    /// An int-or-percent field that is neither.
    #[error("`{field}` must be a non-negative integer or a percentage like \"25%\", got {value:?}")]
    InvalidIntOrPercent {
        /// The field's name.
        field: &'static str,
        /// What it held.
        value: String,
    },
    /// A Deployment strategy other than RollingUpdate or Recreate.
    #[error("unknown Deployment strategy type {0:?} (expected RollingUpdate or Recreate)")]
    UnknownStrategy(String),
    /// A negative count.
    #[error("`{field}` must not be negative, got {value}")]
    Negative {
        /// The field's name.
        field: &'static str,
        /// What it held.
        value: i32,
    },
    /// No pod template to read.
    #[error("{0} has no pod template (spec.template)")]
    NoPodTemplate(ObjectRef),
}

/// The uniform view of a workload that the rules read.
#[derive(Clone, Debug, PartialEq)]
pub struct Footprint {
    /// The object under review: the workload itself, or the HPA or Scale that resizes it.
    pub subject: ObjectRef,
    /// The workload whose pods these are.
    pub workload: ObjectRef,
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// How many pods may run at once in steady state.
    pub pods: PodCount,
    /// A Deployment's update strategy (None for other kinds).
    pub rollout: Option<Rollout>,
    /// Where the pods may be scheduled.
    pub placement: Placement,
    /// The labels the pods carry: the template's, and those the API server or controller adds before any
    /// pod exists (a Job's `batch.kubernetes.io/job-name`).
    pub labels: BTreeMap<String, String>,
    /// Claims shared by every pod.
    pub claims: Vec<ClaimUse>,
    /// Inline single-attach disks, shared by every pod.
    pub disks: Vec<DiskUse>,
    /// Claims each pod gets for itself.
    pub per_pod: Vec<PerPodClaim>,
    /// StatefulSet `spec.ordinals.start` (the first replica's ordinal; 0 by default).
    pub first_ordinal: u32,
    /// The HorizontalPodAutoscaler whose maxReplicas `pods` counts, when one raises it.
    pub scaled_by: Option<ObjectRef>,
    /// The workload's own labels (`metadata.labels`), which policies select on.
    pub object_labels: BTreeMap<String, String>,
}

fn count(value: Option<i32>, field: &'static str, default: u32) -> Result<u32, FootprintError> {
    match value {
        None => Ok(default),
        Some(v) => u32::try_from(v).map_err(|_| FootprintError::Negative { field, value: v }),
    }
}

/// The labels the Job controller's pods carry besides the template's: the API server adds them to the
/// template when the Job is created (unless `manualSelector`), before any admission webhook validates it.
const JOB_NAME_LABELS: [&str; 2] = ["batch.kubernetes.io/job-name", "job-name"];
const JOB_UID_LABELS: [&str; 2] = ["batch.kubernetes.io/controller-uid", "controller-uid"];

/// The labels a workload's pods carry: the template's, and those the API server adds to a Job's template
/// before any pod exists.
pub(crate) fn pod_labels(workload: &Workload) -> BTreeMap<String, String> {
    let mut labels = workload.pod_labels().cloned().unwrap_or_default();
    if let Workload::Job(job) = workload
        && job.spec.as_ref().and_then(|s| s.manual_selector) != Some(true)
    {
        if let Some(name) = &job.metadata.name {
            for key in JOB_NAME_LABELS {
                labels.entry(key.to_owned()).or_insert_with(|| name.clone());
            }
        }
        if let Some(uid) = &job.metadata.uid {
            for key in JOB_UID_LABELS {
                labels.entry(key.to_owned()).or_insert_with(|| uid.clone());
            }
        }
    }
    labels
}

impl Footprint {
    /// Reads a workload.
    pub fn of(workload: &Workload) -> Result<Self, FootprintError> {
        let object = workload.object_ref();
        let spec = workload
            .pod_spec()
            .ok_or_else(|| FootprintError::NoPodTemplate(object.clone()))?;
        let labels = pod_labels(workload);
        let placement = Placement::of(spec, &labels);
        let mut rollout = None;
        let mut per_pod = Vec::new();
        let mut first_ordinal = 0;
        let pods = match workload {
            Workload::Deployment(d) => {
                let spec = d.spec.as_ref();
                let replicas = count(spec.and_then(|s| s.replicas), "spec.replicas", 1)?;
                rollout = Some(Rollout::of(spec.and_then(|s| s.strategy.as_ref()))?);
                PodCount::Exactly(replicas)
            }
            Workload::StatefulSet(s) => {
                let spec = s.spec.as_ref();
                for t in spec
                    .and_then(|s| s.volume_claim_templates.as_ref())
                    .into_iter()
                    .flatten()
                {
                    let claim_spec = t.spec.as_ref();
                    per_pod.push(PerPodClaim {
                        name: t.metadata.name.clone().unwrap_or_default(),
                        source: PerPodSource::ClaimTemplate,
                        access_modes: claim_spec
                            .and_then(|c| c.access_modes.clone())
                            .unwrap_or_default(),
                        storage_class: claim_spec.and_then(|c| c.storage_class_name.clone()),
                        volume_mode: crate::domain::storage::VolumeMode::of(claim_spec),
                    });
                }
                first_ordinal = count(
                    spec.and_then(|s| s.ordinals.as_ref()).and_then(|o| o.start),
                    "spec.ordinals.start",
                    0,
                )?;
                PodCount::Exactly(count(spec.and_then(|s| s.replicas), "spec.replicas", 1)?)
            }
            Workload::ReplicaSet(r) => PodCount::Exactly(count(
                r.spec.as_ref().and_then(|s| s.replicas),
                "spec.replicas",
                1,
            )?),
            Workload::ReplicationController(r) => PodCount::Exactly(count(
                r.spec.as_ref().and_then(|s| s.replicas),
                "spec.replicas",
                1,
            )?),
            // A DaemonSet held on one node runs one pod there.
            Workload::DaemonSet(_) if placement.node().is_some() => PodCount::Exactly(1),
            Workload::DaemonSet(_) => PodCount::PerNode,
            Workload::Job(j) if j.spec.as_ref().and_then(|s| s.suspend) == Some(true) => PodCount::Exactly(0),
            Workload::Job(j) => PodCount::Exactly(job_pods(j.spec.as_ref())?),
            Workload::CronJob(c) if c.spec.as_ref().and_then(|s| s.suspend) == Some(true) => {
                PodCount::Exactly(0)
            }
            Workload::CronJob(c) => {
                let spec = c.spec.as_ref();
                let per_run = job_pods(spec.and_then(|s| s.job_template.spec.as_ref()))?;
                // Allow is the API default (also for ""): a run that outlasts the schedule overlaps the next.
                match spec.and_then(|s| s.concurrency_policy.as_deref()) {
                    None | Some("" | "Allow") => PodCount::Overlapping { per_run },
                    Some(_) => PodCount::Exactly(per_run),
                }
            }
            Workload::Pod(p) => {
                // A pod that has finished holds no volume.
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                PodCount::Exactly(u32::from(!matches!(phase, Some("Succeeded" | "Failed"))))
            }
        };
        let Volumes {
            mut claims,
            mut ephemeral,
            disks,
        } = volumes_of(spec);
        // The StatefulSet controller (updateStorage) replaces a pod volume named like a volumeClaimTemplate
        // with the replica's own claim: whatever the template's volume said is never mounted.
        let templated = |volume: &str| per_pod.iter().any(|t| t.name == volume);
        claims.retain(|c| !templated(&c.volume));
        ephemeral.retain(|e| !templated(&e.name));
        per_pod.extend(ephemeral);
        Ok(Self {
            subject: object.clone(),
            workload: object,
            kind: workload.kind(),
            pods,
            rollout,
            placement,
            labels,
            claims,
            disks,
            per_pod,
            first_ordinal,
            scaled_by: None,
            object_labels: workload.metadata().labels.clone().unwrap_or_default(),
        })
    }

    /// The same workload resized by `subject` (an HPA's maxReplicas, a Scale's replicas).
    ///
    /// The rollout keeps its fenceposts as written; the rules resolve them at the new count.
    pub(crate) fn resized(mut self, subject: ObjectRef, replicas: u32) -> Self {
        self.subject = subject;
        if self.pods != PodCount::PerNode {
            self.pods = PodCount::Exactly(replicas);
        }
        self
    }

    /// The most pods that may run at once, a rolling update's surge included.
    pub fn peak(&self) -> u32 {
        let steady = self.pods.peak();
        match (self.pods, self.rollout.and_then(|r| self.surge(r))) {
            (PodCount::Exactly(n), Some(surge)) if n > 0 => steady.saturating_add(surge),
            _ => steady,
        }
    }

    fn surge(&self, rollout: Rollout) -> Option<u32> {
        match self.pods {
            PodCount::Exactly(n) => rollout.fenceposts(n).map(|(surge, _)| surge),
            _ => None,
        }
    }

    /// The replica whose own claim (from a volumeClaimTemplate) is named `claim`, if this StatefulSet makes
    /// it: `<template>-<statefulset>-<ordinal>` with the ordinal among its replicas.
    pub(crate) fn replica_claim(&self, claim: &str) -> Option<(u32, &PerPodClaim)> {
        let PodCount::Exactly(replicas) = self.pods else {
            return None;
        };
        self.per_pod
            .iter()
            .filter(|t| t.source == PerPodSource::ClaimTemplate)
            .find_map(|t| {
                let prefix = format!("{}-{}-", t.name, self.workload.name);
                let ordinal: u32 = claim.strip_prefix(&prefix)?.parse().ok()?;
                // `0` is ordinal 0, but `00` names no replica.
                (ordinal.to_string() == claim[prefix.len()..]
                    && ordinal >= self.first_ordinal
                    && ordinal - self.first_ordinal < replicas)
                    .then_some((ordinal, t))
            })
    }
}

/// A Job runs `parallelism` pods at once (default 1), never more than the completions it still needs.
fn job_pods(spec: Option<&k8s_openapi::api::batch::v1::JobSpec>) -> Result<u32, FootprintError> {
    let parallelism = count(spec.and_then(|s| s.parallelism), "spec.parallelism", 1)?;
    match spec.and_then(|s| s.completions) {
        Some(c) => Ok(parallelism.min(count(Some(c), "spec.completions", 1)?)),
        None => Ok(parallelism),
    }
}

struct Volumes {
    claims: Vec<ClaimUse>,
    ephemeral: Vec<PerPodClaim>,
    disks: Vec<DiskUse>,
}

/// Every container's mounts, by volume name: one pass over the containers, so a pod spec with many volumes
/// and many mounts costs their sum, not their product.
fn mounts_by_volume(spec: &PodSpec) -> HashMap<&str, Vec<Mount>> {
    let mut out: HashMap<&str, Vec<Mount>> = HashMap::new();
    let containers = spec
        .init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter());
    for c in containers {
        for m in c.volume_mounts.iter().flatten() {
            out.entry(m.name.as_str()).or_default().push(Mount {
                container: c.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false),
            });
        }
    }
    out
}

fn disk_of(volume: &Volume) -> Option<(Disk, bool)> {
    let disk = |source, id: String| Disk { source, id };
    if let Some(v) = &volume.aws_elastic_block_store {
        return Some((
            disk(DiskSource::AwsElasticBlockStore, v.volume_id.clone()),
            v.read_only.unwrap_or(false),
        ));
    }
    if let Some(v) = &volume.gce_persistent_disk {
        return Some((
            disk(DiskSource::GcePersistentDisk, v.pd_name.clone()),
            v.read_only.unwrap_or(false),
        ));
    }
    if let Some(v) = &volume.azure_disk {
        return Some((
            disk(DiskSource::AzureDisk, v.disk_uri.clone()),
            v.read_only.unwrap_or(false),
        ));
    }
    if let Some(v) = &volume.cinder {
        return Some((
            disk(DiskSource::Cinder, v.volume_id.clone()),
            v.read_only.unwrap_or(false),
        ));
    }
    if let Some(v) = &volume.rbd {
        let pool = v.pool.as_deref().unwrap_or("rbd");
        return Some((
            disk(DiskSource::Rbd, format!("{pool}/{}", v.image)),
            v.read_only.unwrap_or(false),
        ));
    }
    if let Some(v) = &volume.iscsi {
        return Some((
            disk(
                DiskSource::Iscsi,
                format!("{}@{} lun {}", v.iqn, v.target_portal, v.lun),
            ),
            v.read_only.unwrap_or(false),
        ));
    }
    if let Some(v) = &volume.fc {
        let ids = match (&v.wwids, &v.target_wwns) {
            (Some(w), _) if !w.is_empty() => w.join(","),
            (_, Some(t)) => format!("{} lun {}", t.join(","), v.lun.unwrap_or(0)),
            _ => return None,
        };
        return Some((disk(DiskSource::Fc, ids), v.read_only.unwrap_or(false)));
    }
    None
}

fn volumes_of(spec: &PodSpec) -> Volumes {
    let mut mounts = mounts_by_volume(spec);
    let mut out = Volumes {
        claims: Vec::new(),
        ephemeral: Vec::new(),
        disks: Vec::new(),
    };
    for volume in spec.volumes.iter().flatten() {
        if let Some(pvc) = &volume.persistent_volume_claim {
            out.claims.push(ClaimUse {
                volume: volume.name.clone(),
                claim: pvc.claim_name.clone(),
                volume_read_only: pvc.read_only.unwrap_or(false),
                mounts: mounts.remove(volume.name.as_str()).unwrap_or_default(),
            });
        } else if let Some(eph) = &volume.ephemeral {
            let claim_spec = eph.volume_claim_template.as_ref().map(|t| &t.spec);
            out.ephemeral.push(PerPodClaim {
                name: volume.name.clone(),
                source: PerPodSource::Ephemeral,
                access_modes: claim_spec
                    .and_then(|s| s.access_modes.clone())
                    .unwrap_or_default(),
                storage_class: claim_spec.and_then(|s| s.storage_class_name.clone()),
                volume_mode: crate::domain::storage::VolumeMode::of(claim_spec),
            });
        } else if let Some((disk, volume_read_only)) = disk_of(volume) {
            out.disks.push(DiskUse {
                volume: volume.name.clone(),
                disk,
                volume_read_only,
                mounts: mounts.remove(volume.name.as_str()).unwrap_or_default(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::{Decoded, Resource, decode};
    use serde_json::json;

    fn workload(v: serde_json::Value) -> Workload {
        match decode(v) {
            Ok(Decoded::Resource(r)) => match *r {
                Resource::Workload(w) => w,
                other => panic!("not a workload: {other:?}"),
            },
            other => panic!("did not decode: {other:?}"),
        }
    }

    fn pod_spec() -> serde_json::Value {
        json!({
            "containers": [
                {"name": "app", "image": "nginx", "volumeMounts": [
                    {"name": "data", "mountPath": "/data"},
                    {"name": "scratch", "mountPath": "/tmp"}]},
                {"name": "sidecar", "image": "busybox", "volumeMounts": [
                    {"name": "data", "mountPath": "/data", "readOnly": true}]}],
            "initContainers": [{"name": "init", "image": "busybox", "volumeMounts": [
                {"name": "data", "mountPath": "/seed"}]}],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                {"name": "scratch", "ephemeral": {"volumeClaimTemplate": {"spec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}},
                {"name": "cfg", "configMap": {"name": "cfg"}}]
        })
    }

    #[test]
    fn deployment_claims_mounts_and_default_rollout() {
        let w = workload(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3, "selector": {}, "template": {"spec": pod_spec()}}}));
        let fp = Footprint::of(&w).unwrap();
        assert_eq!(fp.pods, PodCount::Exactly(3));
        assert_eq!(fp.rollout.and_then(|r| r.fenceposts(3)), Some((1, 0)));
        assert_eq!(fp.workload.to_string(), "Deployment shop/web");
        assert_eq!(fp.claims.len(), 1);
        let c = &fp.claims[0];
        assert_eq!((c.volume.as_str(), c.claim.as_str()), ("data", "web-data"));
        let containers: Vec<_> = c
            .mounts
            .iter()
            .map(|m| (m.container.as_str(), m.read_only))
            .collect();
        assert_eq!(containers, [("init", false), ("app", false), ("sidecar", true)]);
        assert!(!c.is_read_only());
        assert_eq!(fp.per_pod.len(), 1);
        assert_eq!(fp.per_pod[0].source, PerPodSource::Ephemeral);
        assert_eq!(fp.per_pod[0].access_modes, ["ReadWriteOnce"]);
    }

    #[test]
    fn unset_replicas_is_one() {
        let w = workload(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r"},
            "spec": {"selector": {}, "template": {"spec": pod_spec()}}}),
        );
        assert_eq!(Footprint::of(&w).unwrap().pods, PodCount::Exactly(1));
    }

    #[test]
    fn job_parallelism_is_capped_by_completions() {
        let job = |p: i32, c: Option<i32>| {
            let mut spec = json!({"parallelism": p, "template": {"spec": pod_spec()}});
            if let Some(c) = c {
                spec["completions"] = json!(c);
            }
            workload(
                json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"}, "spec": spec}),
            )
        };
        assert_eq!(Footprint::of(&job(4, None)).unwrap().pods, PodCount::Exactly(4));
        assert_eq!(
            Footprint::of(&job(4, Some(2))).unwrap().pods,
            PodCount::Exactly(2)
        );
        assert_eq!(Footprint::of(&job(0, None)).unwrap().pods, PodCount::Exactly(0));
    }

    #[test]
    fn cronjob_allow_overlaps_and_forbid_does_not() {
        let cron = |policy: Option<&str>| {
            let mut spec = json!({"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec()}}}});
            if let Some(p) = policy {
                spec["concurrencyPolicy"] = json!(p);
            }
            workload(
                json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"}, "spec": spec}),
            )
        };
        assert_eq!(
            Footprint::of(&cron(None)).unwrap().pods,
            PodCount::Overlapping { per_run: 1 }
        );
        assert!(PodCount::Overlapping { per_run: 1 }.is_multi_pod());
        assert_eq!(
            Footprint::of(&cron(Some("Forbid"))).unwrap().pods,
            PodCount::Exactly(1)
        );
        assert_eq!(
            Footprint::of(&cron(Some("Replace"))).unwrap().pods,
            PodCount::Exactly(1)
        );
    }

    #[test]
    fn statefulset_templates_are_per_pod() {
        let w = workload(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pg"},
            "spec": {"replicas": 3, "serviceName": "pg", "selector": {}, "template": {"spec": {
                "containers": [{"name": "pg", "image": "postgres", "volumeMounts": [{"name": "pgdata", "mountPath": "/var/lib/postgresql"}]}]}},
              "volumeClaimTemplates": [{"metadata": {"name": "pgdata"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "storageClassName": "fast", "resources": {"requests": {"storage": "10Gi"}}}}]}}),
        );
        let fp = Footprint::of(&w).unwrap();
        assert!(fp.claims.is_empty());
        assert_eq!(fp.per_pod[0].source, PerPodSource::ClaimTemplate);
        assert_eq!(fp.per_pod[0].storage_class.as_deref(), Some("fast"));
        assert_eq!(fp.rollout, None);
    }

    #[test]
    fn statefulset_claim_template_replaces_the_pod_volume_of_its_name() {
        let w = workload(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "serviceName": "web", "selector": {}, "template": {"spec": pod_spec()},
              "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}},
                                       {"metadata": {"name": "scratch"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
        );
        let fp = Footprint::of(&w).unwrap();
        assert!(fp.claims.is_empty(), "{:?}", fp.claims);
        let sources: Vec<_> = fp.per_pod.iter().map(|p| (p.name.as_str(), &p.source)).collect();
        assert_eq!(
            sources,
            [
                ("data", &PerPodSource::ClaimTemplate),
                ("scratch", &PerPodSource::ClaimTemplate)
            ]
        );
    }

    #[test]
    fn negative_replicas_is_an_error() {
        let w = workload(
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "pg"},
            "spec": {"replicas": -1, "serviceName": "pg", "selector": {}, "template": {"spec": pod_spec()}}}),
        );
        assert_eq!(
            Footprint::of(&w),
            Err(FootprintError::Negative {
                field: "spec.replicas",
                value: -1
            })
        );
    }
}
