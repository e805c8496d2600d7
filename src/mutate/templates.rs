//! Claim templates a policy gives every StatefulSet it selects.
//!
//! [`survey`] compares a StatefulSet with the policy's templates; [`apply`] (the mutating path) adds what
//! is missing and can be added, and the `statefulset-policy-template` rule (the validating path) reports
//! what cannot: a template that contradicts the policy, a mount path another volume already uses, or a
//! template missing from a StatefulSet that already exists. What the user wrote is never overwritten.
//! See <https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#volume-claim-templates>.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy};
use k8s_openapi::api::core::v1::{Container, PersistentVolumeClaim, PodSpec};

use super::{Change, ClaimTemplate, Stage};
use crate::policy::Policy;

/// How a StatefulSet stands against one policy template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateState {
    /// The StatefulSet has a volumeClaimTemplate of this name.
    Present {
        /// How the user's template differs from the policy's (access modes, storage class).
        contradictions: Vec<String>,
        /// Containers that should mount it, do not, and can.
        unmounted: Vec<String>,
        /// Containers that should mount it but use its mount path for another volume.
        conflicts: Vec<String>,
    },
    /// The StatefulSet has no such template.
    Absent {
        /// The containers that would mount it.
        containers: Vec<String>,
        /// Why it cannot be added as it stands (empty: it can).
        conflicts: Vec<String>,
    },
}

/// Compares a StatefulSet with one policy template.
pub fn survey(set: &StatefulSet, template: &ClaimTemplate) -> TemplateState {
    let spec = set.spec.as_ref();
    let pod = spec.and_then(|s| s.template.spec.as_ref());
    let user = spec
        .and_then(|s| s.volume_claim_templates.as_ref())
        .into_iter()
        .flatten()
        .find(|t| t.metadata.name.as_deref() == Some(template.name.as_str()));
    let containers = target_containers(pod, template);
    let mut conflicts = Vec::new();
    if containers.is_empty() {
        conflicts.push(if template.containers.is_empty() {
            "the pod template has no containers".to_owned()
        } else {
            format!(
                "the pod template has none of the containers {}",
                quoted(&template.containers)
            )
        });
    }
    let mut unmounted = Vec::new();
    let mut targets = Vec::new();
    for c in &containers {
        let mounts = c.volume_mounts.as_deref().unwrap_or_default();
        if mounts.iter().any(|m| m.name == template.name) {
            continue;
        }
        match mounts.iter().find(|m| m.mount_path == template.mount_path) {
            Some(other) => conflicts.push(format!(
                "container \"{}\" already mounts volume \"{}\" at {}",
                c.name, other.name, template.mount_path
            )),
            None => unmounted.push(c.name.clone()),
        }
        targets.push(c.name.clone());
    }
    match user {
        Some(user) => TemplateState::Present {
            contradictions: contradictions(user, template),
            unmounted,
            conflicts,
        },
        None => {
            let volumes = pod.and_then(|p| p.volumes.as_deref()).unwrap_or_default();
            if volumes.iter().any(|v| v.name == template.name) {
                conflicts.push(format!(
                    "the pod template already has a volume named \"{}\"",
                    template.name
                ));
            }
            TemplateState::Absent {
                containers: targets,
                conflicts,
            }
        }
    }
}

/// The containers a template is for: the named ones that exist, or every container.
fn target_containers<'a>(pod: Option<&'a PodSpec>, template: &ClaimTemplate) -> Vec<&'a Container> {
    pod.map(|p| p.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|c| template.containers.is_empty() || template.containers.contains(&c.name))
        .collect()
}

/// How the user's template of the same name differs from the policy's.
fn contradictions(user: &PersistentVolumeClaim, template: &ClaimTemplate) -> Vec<String> {
    let spec = user.spec.as_ref();
    let mut out = Vec::new();
    let mut modes = spec.and_then(|s| s.access_modes.clone()).unwrap_or_default();
    modes.sort();
    let mut wanted = template.access_modes.clone();
    wanted.sort();
    if modes != wanted {
        out.push(format!(
            "accessModes [{}] where the policy asks for [{}]",
            modes.join(", "),
            wanted.join(", ")
        ));
    }
    if let (Some(wanted), Some(class)) = (
        &template.storage_class,
        spec.and_then(|s| s.storage_class_name.as_ref()),
    ) && class != wanted
    {
        out.push(format!(
            "storageClassName \"{class}\" where the policy asks for \"{wanted}\""
        ));
    }
    out
}

/// `"a", "b"`.
pub(crate) fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds the selecting policies' templates a StatefulSet lacks (at creation only), their missing mounts,
/// and unset retention-policy fields. A template name is taken from the first policy that declares it.
pub(super) fn apply(set: &mut StatefulSet, stage: Stage, policies: &[&Policy], changes: &mut Vec<Change>) {
    let name = set.metadata.name.clone().unwrap_or_default();
    let mut seen: Vec<&str> = Vec::new();
    for policy in policies {
        for template in &policy.mutation.templates {
            if seen.contains(&template.name.as_str()) {
                continue;
            }
            seen.push(&template.name);
            let mount_into = match survey(set, template) {
                TemplateState::Absent {
                    containers,
                    conflicts,
                } if conflicts.is_empty() && stage == Stage::Create => {
                    if let Some(spec) = set.spec.as_mut() {
                        spec.volume_claim_templates
                            .get_or_insert_with(Vec::new)
                            .push(template.to_claim());
                    }
                    changes.push(Change {
                        rule: None,
                        field: format!("spec.volumeClaimTemplates[{}]", template.name),
                        policy: policy.name.clone(),
                        message: format!(
                            "added volumeClaimTemplate \"{}\" ({}, {}{}) to StatefulSet {name}: each replica \
                             gets a claim of its own",
                            template.name,
                            template.access_modes.join(", "),
                            template.storage,
                            template
                                .storage_class
                                .as_ref()
                                .map(|c| format!(", storageClassName {c}"))
                                .unwrap_or_default()
                        ),
                    });
                    containers
                }
                TemplateState::Present { unmounted, .. } => unmounted,
                // Not at all on UPDATE, nor over a conflict: the validating rule explains both.
                TemplateState::Absent { .. } => Vec::new(),
            };
            if mount_into.is_empty() {
                continue;
            }
            let Some(pod) = set.spec.as_mut().and_then(|s| s.template.spec.as_mut()) else {
                continue;
            };
            for c in pod.containers.iter_mut().filter(|c| mount_into.contains(&c.name)) {
                c.volume_mounts
                    .get_or_insert_with(Vec::new)
                    .push(template.to_mount());
            }
            changes.push(Change {
                rule: None,
                field: format!(
                    "spec.template.spec.containers[{}].volumeMounts[{}]",
                    mount_into.join(","),
                    template.name
                ),
                policy: policy.name.clone(),
                message: format!(
                    "mounted volumeClaimTemplate \"{}\" at {} in container{} {}",
                    template.name,
                    template.mount_path,
                    if mount_into.len() == 1 { "" } else { "s" },
                    quoted(&mount_into)
                ),
            });
        }
    }
    retention(set, policies, changes);
}

/// Sets the retention-policy fields the StatefulSet leaves unset, from the first policy that sets them.
fn retention(set: &mut StatefulSet, policies: &[&Policy], changes: &mut Vec<Change>) {
    let Some(spec) = set.spec.as_mut() else {
        return;
    };
    for policy in policies {
        let Some(wanted) = &policy.mutation.retention else {
            continue;
        };
        let current = spec.persistent_volume_claim_retention_policy.as_ref();
        let when_deleted = wanted
            .when_deleted
            .clone()
            .filter(|_| current.is_none_or(|c| c.when_deleted.is_none()));
        let when_scaled = wanted
            .when_scaled
            .clone()
            .filter(|_| current.is_none_or(|c| c.when_scaled.is_none()));
        if when_deleted.is_none() && when_scaled.is_none() {
            continue;
        }
        let mut set_fields = Vec::new();
        let current = spec
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(StatefulSetPersistentVolumeClaimRetentionPolicy::default);
        if let Some(v) = when_deleted {
            set_fields.push(format!("whenDeleted: {v}"));
            current.when_deleted = Some(v);
        }
        if let Some(v) = when_scaled {
            set_fields.push(format!("whenScaled: {v}"));
            current.when_scaled = Some(v);
        }
        changes.push(Change {
            rule: None,
            field: "spec.persistentVolumeClaimRetentionPolicy".to_owned(),
            policy: policy.name.clone(),
            message: format!(
                "set persistentVolumeClaimRetentionPolicy {}",
                set_fields.join(", ")
            ),
        });
    }
}
