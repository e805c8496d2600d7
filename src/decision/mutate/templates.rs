//! Claim templates a policy gives every StatefulSet it selects.
//!
//! [`survey`](crate::domain::rules::templates::survey) compares a StatefulSet with the policy's templates;
//! [`apply`] (the mutating path) adds what is missing and can be added, and the
//! `statefulset-policy-template` rule (the validating path) reports what cannot: a template that contradicts the policy, a mount path another volume already uses, or a
//! template missing from a StatefulSet that already exists. What the user wrote is never overwritten.
//! See <https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#volume-claim-templates>.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy};

use super::{Change, Stage};
use crate::domain::policy::Policy;
use crate::domain::rules::templates::{TemplateState, quoted, survey};

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
