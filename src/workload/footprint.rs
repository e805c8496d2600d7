//! A workload's "pod footprint": how many pods may run at once, which claims they all share, which
//! claims each pod gets for itself, and whether they are held on one node.
//!
//! Every rule reads this one view, so a Deployment, a CronJob and an HPA pointing at a StatefulSet are
//! judged by the same logic. See <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes>.

use std::fmt;

use k8s_openapi::api::core::v1::{Container, PodSpec};

use super::ObjectRef;
use super::{Pinning, Rollout, Workload, WorkloadKind};

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
    pub fn is_multi_pod(self) -> bool {
        match self {
            PodCount::Exactly(n) => n > 1,
            PodCount::Overlapping { per_run } => per_run >= 1,
            PodCount::PerNode => true,
        }
    }
}

impl PodCount {
    /// Whether this is no more pods than `other` (for ratcheting: an update that does not add pods).
    pub fn is_at_most(self, other: PodCount) -> bool {
        match (self, other) {
            (PodCount::Exactly(a), PodCount::Exactly(b)) => a <= b,
            (PodCount::Overlapping { per_run: a }, PodCount::Overlapping { per_run: b }) => a <= b,
            (PodCount::Exactly(a), PodCount::Overlapping { per_run: b }) => a <= b.saturating_mul(2),
            (_, PodCount::PerNode) => true,
            _ => false,
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
    pub fn is_read_only(&self) -> bool {
        self.volume_read_only || (!self.mounts.is_empty() && self.mounts.iter().all(|m| m.read_only))
    }

    /// The mounts that can write (none when the volume itself is read-only).
    pub fn writable_mounts(&self) -> impl Iterator<Item = &Mount> {
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
    /// Whether every pod is held on one node.
    pub pinning: Option<Pinning>,
    /// Claims shared by every pod.
    pub claims: Vec<ClaimUse>,
    /// Claims each pod gets for itself.
    pub per_pod: Vec<PerPodClaim>,
}

fn count(value: Option<i32>, field: &'static str, default: u32) -> Result<u32, FootprintError> {
    match value {
        None => Ok(default),
        Some(v) => u32::try_from(v).map_err(|_| FootprintError::Negative { field, value: v }),
    }
}

impl Footprint {
    /// Reads a workload.
    pub fn of(workload: &Workload) -> Result<Self, FootprintError> {
        let object = workload.object_ref();
        let template = workload
            .pod_template()
            .ok_or_else(|| FootprintError::NoPodTemplate(object.clone()))?;
        let mut rollout = None;
        let mut per_pod = Vec::new();
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
                    });
                }
                PodCount::Exactly(count(spec.and_then(|s| s.replicas), "spec.replicas", 1)?)
            }
            Workload::ReplicaSet(r) => PodCount::Exactly(count(
                r.spec.as_ref().and_then(|s| s.replicas),
                "spec.replicas",
                1,
            )?),
            Workload::DaemonSet(_) => PodCount::PerNode,
            Workload::Job(j) => PodCount::Exactly(job_pods(j.spec.as_ref())?),
            Workload::CronJob(c) => {
                let spec = c.spec.as_ref();
                let per_run = job_pods(spec.and_then(|s| s.job_template.spec.as_ref()))?;
                // Allow is the API default: a run that outlasts the schedule overlaps the next one.
                match spec.and_then(|s| s.concurrency_policy.as_deref()) {
                    None | Some("Allow") => PodCount::Overlapping { per_run },
                    Some(_) => PodCount::Exactly(per_run),
                }
            }
        };
        let (mut claims, mut ephemeral) = template.spec.as_ref().map(volumes_of).unwrap_or_default();
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
            pinning: Pinning::of(template),
            claims,
            per_pod,
        })
    }

    /// The same workload resized by `subject` (an HPA's maxReplicas, a Scale's replicas).
    ///
    /// The rollout keeps its fenceposts as written; the rules resolve them at the new count.
    pub fn resized(mut self, subject: ObjectRef, replicas: u32) -> Self {
        self.subject = subject;
        if self.pods != PodCount::PerNode {
            self.pods = PodCount::Exactly(replicas);
        }
        self
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

fn all_containers(spec: &PodSpec) -> impl Iterator<Item = &Container> {
    spec.init_containers
        .iter()
        .flatten()
        .chain(spec.containers.iter())
}

fn volumes_of(spec: &PodSpec) -> (Vec<ClaimUse>, Vec<PerPodClaim>) {
    let mut shared = Vec::new();
    let mut ephemeral = Vec::new();
    for volume in spec.volumes.iter().flatten() {
        if let Some(pvc) = &volume.persistent_volume_claim {
            let mounts = all_containers(spec)
                .flat_map(|c| {
                    c.volume_mounts
                        .iter()
                        .flatten()
                        .filter(|m| m.name == volume.name)
                        .map(|m| Mount {
                            container: c.name.clone(),
                            mount_path: m.mount_path.clone(),
                            read_only: m.read_only.unwrap_or(false),
                        })
                })
                .collect();
            shared.push(ClaimUse {
                volume: volume.name.clone(),
                claim: pvc.claim_name.clone(),
                volume_read_only: pvc.read_only.unwrap_or(false),
                mounts,
            });
        } else if let Some(eph) = &volume.ephemeral {
            let claim_spec = eph.volume_claim_template.as_ref().map(|t| &t.spec);
            ephemeral.push(PerPodClaim {
                name: volume.name.clone(),
                source: PerPodSource::Ephemeral,
                access_modes: claim_spec
                    .and_then(|s| s.access_modes.clone())
                    .unwrap_or_default(),
                storage_class: claim_spec.and_then(|s| s.storage_class_name.clone()),
            });
        }
    }
    (shared, ephemeral)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Decoded, Resource, decode};
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
