//! Which pod volumes become volumeClaimTemplates and which stay volumes, and the claim ordinal 0 mounts.
//!
//! A claim each replica needs for itself is a ReadWriteOnce (or ReadWriteOncePod) claim a container writes
//! to. A claim meant to be shared (ReadWriteMany, ReadOnlyMany, or mounted read-only everywhere) stays one
//! claim, mounted by every replica, as do emptyDir, configMap, secret and every other volume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{ConvertError, Input, Options};
use crate::domain::access::{ROX, RWX};

/// A claim that becomes a volumeClaimTemplate, and how its data reaches ordinal 0.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimMove {
    /// The pod volume (and the template's name).
    pub volume: String,
    /// The claim the Deployment mounts today.
    pub claim: String,
    /// That claim as it would be written again (name, labels, spec; nothing the server set).
    pub original: PersistentVolumeClaim,
    /// The volumeClaimTemplate.
    pub template: PersistentVolumeClaim,
    /// `<template>-<statefulset>-0`: the claim ordinal 0 mounts.
    pub ordinal_claim: String,
    /// How the data moves.
    pub how: Move,
}

/// How the data of a claim reaches the ordinal-0 claim.
#[derive(Clone, Debug, PartialEq)]
pub enum Move {
    /// The volume is known: released from the old claim and bound to the new one by `volumeName`.
    Rebind {
        /// The PersistentVolume.
        volume: String,
        /// Its reclaim policy, when the PersistentVolume was read.
        reclaim_policy: Option<String>,
        /// Its storage class (`""` for none), when the PersistentVolume was read: the new claim must name
        /// the same, or the default class would be written into it and it would never bind.
        class: Option<String>,
        /// Its access modes, when read and lacking the template's mode: the mode to add for binding.
        add_mode: Option<String>,
    },
    /// The volume is not known: a Job copies the data into a new volume.
    Copy {
        /// Why the volume cannot be rebound.
        why: String,
    },
}

/// A volume kept in the pod template as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// The pod volume.
    pub volume: String,
    /// Why.
    pub reason: KeptReason,
}

/// Why a volume stays a volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeptReason {
    /// A claim whose access modes say it is shared.
    SharedClaim(String, String),
    /// A claim every container mounts read-only (or the volume is `readOnly`).
    ReadOnlyClaim(String),
    /// Not a claim (emptyDir, configMap, secret, …).
    NotAClaim(&'static str),
}

impl std::fmt::Display for KeptReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeptReason::SharedClaim(claim, mode) => {
                write!(f, "claim {claim} is {mode}: one claim shared by every replica")
            }
            KeptReason::ReadOnlyClaim(claim) => {
                write!(
                    f,
                    "claim {claim} is mounted read-only by every container: shared by every replica"
                )
            }
            KeptReason::NotAClaim(kind) => write!(f, "{kind}: each pod gets its own, as before"),
        }
    }
}

pub(super) struct Split {
    pub(super) moves: Vec<ClaimMove>,
    pub(super) kept: Vec<Kept>,
}

/// Sorts the pod's volumes, removing from `pod.volumes` those that become templates.
pub(super) fn split(
    statefulset: &str,
    namespace: &str,
    pod: &mut PodSpec,
    input: &Input,
    options: &Options<'_>,
) -> Result<Split, ConvertError> {
    let mut out = Split {
        moves: Vec::new(),
        kept: Vec::new(),
    };
    let mut remaining = Vec::new();
    for volume in pod.volumes.take().unwrap_or_default() {
        let Some(source) = &volume.persistent_volume_claim else {
            out.kept.push(Kept {
                volume: volume.name.clone(),
                reason: KeptReason::NotAClaim(kind_of(&volume)),
            });
            remaining.push(volume);
            continue;
        };
        let claim = input
            .claims
            .iter()
            .find(|c| {
                c.metadata.name.as_deref() == Some(&source.claim_name)
                    && c.metadata.namespace.as_deref().is_none_or(|n| n == namespace)
            })
            .ok_or_else(|| ConvertError::MissingClaim {
                deployment: statefulset.to_owned(),
                volume: volume.name.clone(),
                claim: source.claim_name.clone(),
            })?;
        let spec = claim.spec.clone().unwrap_or_default();
        let modes = spec.access_modes.clone().unwrap_or_default();
        let shared = [RWX, ROX].into_iter().find(|m| modes.iter().any(|x| x == m));
        let reason = if let Some(mode) = shared {
            Some(KeptReason::SharedClaim(
                source.claim_name.clone(),
                mode.to_owned(),
            ))
        } else if source.read_only == Some(true) || read_only_everywhere(pod, &volume.name) {
            Some(KeptReason::ReadOnlyClaim(source.claim_name.clone()))
        } else {
            None
        };
        if let Some(reason) = reason {
            out.kept.push(Kept {
                volume: volume.name.clone(),
                reason,
            });
            remaining.push(volume);
            continue;
        }
        let mode = options.mode.as_str();
        let class = spec.storage_class_name.as_deref();
        let volume_mode = crate::domain::storage::VolumeMode::of(Some(&spec));
        if options.classes.gives(class, mode, volume_mode) == Some(false) {
            return Err(ConvertError::ModeNotGiven {
                claim: source.claim_name.clone(),
                class: class.unwrap_or("(the default class)").to_owned(),
                mode: mode.to_owned(),
            });
        }
        out.moves.push(ClaimMove {
            ordinal_claim: format!("{}-{statefulset}-0", volume.name),
            template: template(&volume.name, &spec, mode),
            how: how_to_move(claim, &input.volumes, mode),
            volume: volume.name.clone(),
            claim: source.claim_name.clone(),
            original: as_written(claim),
        });
    }
    pod.volumes = (!remaining.is_empty()).then_some(remaining);
    Ok(out)
}

/// A claim without what the server set: its name, labels and the spec a user writes.
fn as_written(claim: &PersistentVolumeClaim) -> PersistentVolumeClaim {
    let spec = claim.spec.clone().unwrap_or_default();
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: claim.metadata.name.clone(),
            labels: claim.metadata.labels.clone(),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: spec.access_modes,
            storage_class_name: spec.storage_class_name,
            volume_mode: spec.volume_mode,
            resources: spec.resources,
            selector: spec.selector,
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

/// Whether every container mounting the volume mounts it read-only.
fn read_only_everywhere(pod: &PodSpec, volume: &str) -> bool {
    let mut mounts = pod
        .containers
        .iter()
        .chain(pod.init_containers.iter().flatten())
        .flat_map(|c| c.volume_mounts.iter().flatten())
        .filter(|m| m.name == volume)
        .peekable();
    mounts.peek().is_some() && mounts.all(|m| m.read_only == Some(true))
}

fn kind_of(v: &k8s_openapi::api::core::v1::Volume) -> &'static str {
    if v.empty_dir.is_some() {
        "emptyDir"
    } else if v.config_map.is_some() {
        "configMap"
    } else if v.secret.is_some() {
        "secret"
    } else if v.projected.is_some() {
        "projected"
    } else if v.ephemeral.is_some() {
        "generic ephemeral volume"
    } else if v.host_path.is_some() {
        "hostPath"
    } else if v.downward_api.is_some() {
        "downwardAPI"
    } else {
        "a volume that is not a claim"
    }
}

/// The volumeClaimTemplate: the claim's size, class and volumeMode, one access mode.
fn template(volume: &str, spec: &PersistentVolumeClaimSpec, mode: &str) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(volume.to_owned()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec![mode.to_owned()]),
            storage_class_name: spec.storage_class_name.clone(),
            volume_mode: spec.volume_mode.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: spec.resources.as_ref().and_then(|r| r.requests.clone()),
                limits: None,
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        status: None,
    }
}

/// Rebind when the claim's volume is known (its `spec.volumeName`, or a PersistentVolume whose claimRef
/// names it); otherwise copy.
fn how_to_move(claim: &PersistentVolumeClaim, volumes: &[PersistentVolume], mode: &str) -> Move {
    let name = claim.metadata.name.as_deref().unwrap_or_default();
    let namespace = claim.metadata.namespace.as_deref();
    let by_ref = volumes.iter().find(|pv| {
        pv.spec
            .as_ref()
            .and_then(|s| s.claim_ref.as_ref())
            .is_some_and(|r| {
                r.name.as_deref() == Some(name)
                    && (namespace.is_none() || r.namespace.as_deref() == namespace)
            })
    });
    let volume_name = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .filter(|v| !v.is_empty())
        .or_else(|| by_ref.and_then(|pv| pv.metadata.name.clone()));
    let Some(volume_name) = volume_name else {
        return Move::Copy {
            why: format!(
                "claim {name} names no volume (spec.volumeName) and no PersistentVolume in the input is bound \
                 to it, so its volume cannot be rebound: give the PersistentVolume (kubectl get pv \
                 <name> -o yaml) or use --cluster to rebind instead of copying"
            ),
        };
    };
    let pv = volumes
        .iter()
        .find(|pv| pv.metadata.name.as_deref() == Some(&volume_name));
    let pv_spec = pv.and_then(|pv| pv.spec.as_ref());
    let add_mode = pv_spec
        .and_then(|s| s.access_modes.as_ref())
        .filter(|modes| !modes.iter().any(|m| m == mode))
        .map(|_| mode.to_owned());
    Move::Rebind {
        volume: volume_name,
        reclaim_policy: pv_spec.and_then(|s| s.persistent_volume_reclaim_policy.clone()),
        class: pv_spec.map(|s| s.storage_class_name.clone().unwrap_or_default()),
        add_mode,
    }
}

/// The claim ordinal 0 mounts: the template's spec, bound to the old volume when it is rebound, labelled
/// with the StatefulSet's selector as its controller labels the claims it creates.
pub(super) fn ordinal_claim(
    m: &ClaimMove,
    namespace: &str,
    selector: &BTreeMap<String, String>,
) -> PersistentVolumeClaim {
    let mut spec = m.template.spec.clone().unwrap_or_default();
    if let Move::Rebind { volume, class, .. } = &m.how {
        spec.volume_name = Some(volume.clone());
        if class.is_some() {
            spec.storage_class_name = class.clone();
        }
    }
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(m.ordinal_claim.clone()),
            namespace: Some(namespace.to_owned()),
            labels: (!selector.is_empty()).then(|| selector.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    }
}
