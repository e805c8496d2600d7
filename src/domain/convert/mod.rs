//! `volguard convert`: a Deployment whose replicas need a claim each becomes a StatefulSet, with the
//! plan that moves today's data to the StatefulSet's first replica.
//!
//! Pure: the Deployment, its claims, their PersistentVolumes, HPAs and Services come in, the StatefulSet,
//! its headless Service, the retargeted HPA, the ordinal-0 claims and the data plan ([`plan::Plan`]) come
//! out. Nothing is applied. A StatefulSet's replica `i` mounts the claim `<template>-<statefulset>-<i>`
//! (<https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#volume-claim-templates>), so
//! the claim holding today's data is not the one ordinal 0 will mount: the plan rebinds its volume to a
//! claim of that name, or copies the data when the volume is not known.

pub mod plan;
mod service;
mod volumes;

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
    StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub use plan::Plan;
pub(crate) use service::strip_server_set;
pub use volumes::{ClaimMove, Kept, KeptReason, Move};

/// The access mode each replica's own claim gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TemplateMode {
    /// `ReadWriteOnce`: one node (the default; every provisioner offers it).
    ReadWriteOnce,
    /// `ReadWriteOncePod`: one pod (Kubernetes 1.29+, CSI volumes only).
    ReadWriteOncePod,
}

impl TemplateMode {
    /// The mode as written in a claim.
    pub fn as_str(self) -> &'static str {
        match self {
            TemplateMode::ReadWriteOnce => crate::domain::access::RWO,
            TemplateMode::ReadWriteOncePod => crate::domain::access::RWOP,
        }
    }
}

/// `spec.podManagementPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PodManagement {
    /// One pod at a time, each Ready before the next starts (the default).
    OrderedReady,
    /// All pods at once.
    Parallel,
}

impl PodManagement {
    fn as_str(self) -> &'static str {
        match self {
            PodManagement::OrderedReady => "OrderedReady",
            PodManagement::Parallel => "Parallel",
        }
    }
}

/// How to convert.
pub struct Options<'a> {
    /// The access mode of the volumeClaimTemplates.
    pub mode: TemplateMode,
    /// The StatefulSet's podManagementPolicy.
    pub pod_management: PodManagement,
    /// What each claim's class can give.
    pub classes: &'a crate::domain::storage::Classes,
    /// Whether the API server knows `persistentVolumeClaimRetentionPolicy` (Kubernetes 1.27+): `false`
    /// leaves it out, since kubectl refuses a field its server's schema does not have.
    pub retention_policy: bool,
}

/// What convert reads: the Deployment and what the cluster (or the files) hold around it.
#[derive(Clone, Debug, Default)]
pub struct Input {
    /// The Deployment to convert.
    pub deployment: Deployment,
    /// Claims in the Deployment's namespace (others are ignored).
    pub claims: Vec<PersistentVolumeClaim>,
    /// PersistentVolumes (those bound to the Deployment's claims are used).
    pub volumes: Vec<PersistentVolume>,
    /// HorizontalPodAutoscalers, as written (any `autoscaling` version): those targeting the Deployment
    /// are retargeted.
    pub autoscalers: Vec<serde_json::Value>,
    /// Services in the namespace: a headless one selecting the pods is reused.
    pub services: Vec<Service>,
    /// StorageClasses: what the claims' classes can give (none: unknown, nothing is refused on a guess).
    pub classes: Vec<k8s_openapi::api::storage::v1::StorageClass>,
}

/// The converted objects and the plan.
#[derive(Clone, Debug)]
pub struct Conversion {
    /// The StatefulSet.
    pub statefulset: StatefulSet,
    /// The headless Service: `Some` when one must be created, `None` when `reused` names the input's.
    pub service: Option<Service>,
    /// The headless Service of the input reused as `serviceName`.
    pub reused_service: Option<String>,
    /// HPAs retargeted to the StatefulSet.
    pub autoscalers: Vec<serde_json::Value>,
    /// The claims ordinal 0 will mount, to create before the StatefulSet.
    pub ordinal_claims: Vec<PersistentVolumeClaim>,
    /// Each per-replica claim and how its data moves.
    pub moves: Vec<ClaimMove>,
    /// Volumes kept as they are in the pod template, and why.
    pub kept: Vec<Kept>,
    /// Why the StatefulSet is shaped as it is, one sentence each.
    pub rationale: Vec<String>,
    /// The data plan.
    pub plan: Plan,
}

/// Why a Deployment cannot be converted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// The Deployment has no name.
    #[error("the Deployment has no metadata.name")]
    Unnamed,
    /// The Deployment has no pod template spec.
    #[error("Deployment {0} has no spec.template.spec")]
    NoPodSpec(String),
    /// A claim the pod template mounts is not in the input.
    #[error(
        "Deployment {deployment} mounts claim {claim} (volume {volume}), which is not in the input: add the \
         claim's manifest to the files (kubectl get pvc {claim} -o yaml); with --cluster, create the claim or \
         correct claimName"
    )]
    MissingClaim {
        /// The Deployment.
        deployment: String,
        /// The pod volume.
        volume: String,
        /// The claim.
        claim: String,
    },
    /// No volume would become a volumeClaimTemplate: a StatefulSet is not needed.
    #[error(
        "Deployment {0} has no ReadWriteOnce or ReadWriteOncePod claim that each replica needs for itself: it \
         needs no StatefulSet (its volumes can be shared as they are)"
    )]
    NothingPerReplica(String),
    /// A claim's class cannot give the mode asked for its template.
    #[error(
        "claim {claim}'s storage class {class} cannot give {mode}: choose another --access-mode, or move the \
         data to a class that can"
    )]
    ModeNotGiven {
        /// The claim.
        claim: String,
        /// The class.
        class: String,
        /// The access mode.
        mode: String,
    },
}

/// Annotations the Deployment's controller or kubectl own: not carried to the StatefulSet.
const DROPPED_ANNOTATIONS: [&str; 2] = [
    "deployment.kubernetes.io/revision",
    crate::domain::workload::LAST_APPLIED,
];

/// Converts the Deployment of `input` into a StatefulSet with its data plan.
pub fn convert(input: &Input, options: &Options<'_>) -> Result<Conversion, ConvertError> {
    let d = &input.deployment;
    let name = d.metadata.name.clone().ok_or(ConvertError::Unnamed)?;
    let namespace = crate::domain::workload::namespace_of(&d.metadata).to_owned();
    let spec = d.spec.clone().unwrap_or_default();
    let mut template = spec.template.clone();
    let pod = template
        .spec
        .as_mut()
        .ok_or_else(|| ConvertError::NoPodSpec(name.clone()))?;
    let split = volumes::split(&name, &namespace, pod, input, options)?;
    if split.moves.is_empty() {
        return Err(ConvertError::NothingPerReplica(name));
    }
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let (service, reused_service) = service::headless(&name, &namespace, &labels, pod, &input.services);
    let service_name = reused_service
        .clone()
        .or_else(|| service.as_ref().and_then(|s| s.metadata.name.clone()))
        .unwrap_or_default();
    let replicas = spec.replicas.unwrap_or(1);
    let selector_labels = spec.selector.match_labels.clone().unwrap_or_default();
    let ordinal_claims: Vec<PersistentVolumeClaim> = split
        .moves
        .iter()
        .map(|m| volumes::ordinal_claim(m, &namespace, &selector_labels))
        .collect();
    let annotations: BTreeMap<String, String> = d
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !DROPPED_ANNOTATIONS.contains(&k.as_str()))
        .collect();
    let statefulset = StatefulSet {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(namespace.clone()),
            labels: d.metadata.labels.clone(),
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(StatefulSetSpec {
            replicas: Some(replicas),
            selector: spec.selector.clone(),
            service_name: Some(service_name.clone()),
            template,
            volume_claim_templates: Some(split.moves.iter().map(|m| m.template.clone()).collect()),
            pod_management_policy: Some(options.pod_management.as_str().to_owned()),
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("RollingUpdate".to_owned()),
                rolling_update: None,
            }),
            persistent_volume_claim_retention_policy: options.retention_policy.then(|| {
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some("Retain".to_owned()),
                    when_scaled: Some("Retain".to_owned()),
                }
            }),
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
            ..StatefulSetSpec::default()
        }),
        status: None,
    };
    let autoscalers = service::retarget(&name, &namespace, &input.autoscalers);
    let rationale = rationale(
        &name,
        replicas,
        &spec,
        options,
        &service_name,
        reused_service.is_some(),
        &split,
        !autoscalers.is_empty(),
    );
    let plan = plan::build(&plan::Subject {
        namespace: &namespace,
        deployment: &name,
        replicas,
        selector: &selector_labels,
        moves: &split.moves,
        ordinal_claims: &ordinal_claims,
        statefulset: &name,
        autoscaled: !autoscalers.is_empty(),
    });
    Ok(Conversion {
        statefulset,
        service,
        reused_service,
        autoscalers,
        ordinal_claims,
        moves: split.moves,
        kept: split.kept,
        rationale,
        plan,
    })
}

#[allow(clippy::too_many_arguments)]
fn rationale(
    name: &str,
    replicas: i32,
    spec: &k8s_openapi::api::apps::v1::DeploymentSpec,
    options: &Options<'_>,
    service_name: &str,
    reused: bool,
    split: &volumes::Split,
    autoscaled: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    for m in &split.moves {
        out.push(format!(
            "volume {}: claim {} becomes volumeClaimTemplate {} ({}): replica i mounts its own claim {}-{name}-i",
            m.volume, m.claim, m.volume, options.mode.as_str(), m.volume
        ));
    }
    for k in &split.kept {
        out.push(format!("volume {}: kept as a volume, {}", k.volume, k.reason));
    }
    if replicas > 1 {
        out.push(format!(
            "replicas {replicas}: only ordinal 0 gets today's data; {}",
            plan::later_ordinals(replicas)
        ));
    }
    out.push(if reused {
        format!("serviceName {service_name}: the headless Service of the input that selects these pods")
    } else {
        format!(
            "serviceName {service_name}: a new headless Service (clusterIP: None) that gives each pod a stable DNS \
             name, <pod>.{service_name}"
        )
    });
    out.push(if options.retention_policy {
        "persistentVolumeClaimRetentionPolicy whenDeleted: Retain, whenScaled: Retain: deleting or scaling down \
         the StatefulSet never deletes a claim, so no data goes with a mistake (Kubernetes 1.27+)"
            .to_owned()
    } else {
        "persistentVolumeClaimRetentionPolicy left out: this API server predates it (Kubernetes 1.27); its \
         StatefulSets never delete their claims, as Retain would say"
            .to_owned()
    });
    out.push(match options.pod_management {
        PodManagement::OrderedReady => {
            "podManagementPolicy OrderedReady: pods start one at a time, each Ready before the next, and stop in \
             reverse order: ordinal 0, which holds today's data, is always first (--pod-management-policy \
             Parallel when the replicas do not depend on each other)"
                .to_owned()
        }
        PodManagement::Parallel => {
            "podManagementPolicy Parallel: pods start and stop together, as the Deployment's did; use it only when \
             the replicas do not depend on each other"
                .to_owned()
        }
    });
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    out.push(format!(
        "updateStrategy RollingUpdate: one pod at a time, highest ordinal first, each replaced only after the old \
         one stopped, so a ReadWriteOnce claim is never wanted by two pods at once{}",
        if recreate {
            " (as the Deployment's Recreate strategy meant to ensure)"
        } else {
            ""
        }
    ));
    if autoscaled {
        out.push("HorizontalPodAutoscaler: scaleTargetRef now points at the StatefulSet".to_owned());
    }
    out
}

/// An object as YAML, for the plan's heredocs (serializing k8s-openapi types and JSON values cannot fail;
/// if it ever did, the plan says so where the object would be).
pub(crate) fn to_yaml<T: serde::Serialize>(value: &T) -> String {
    serde_saphyr::to_string(value)
        .unwrap_or_else(|e| format!("# volguard could not write this object: {e}\n"))
}

#[cfg(test)]
mod tests;
