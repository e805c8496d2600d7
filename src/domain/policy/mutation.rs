//! A policy's `spec.mutate`, as the loader validated it: what `decision::mutate` may change.

use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;

use crate::domain::rules::templates::ClaimTemplate;

/// A policy's `spec.mutate`, validated by the loader.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct MutationPolicy {
    /// volumeClaimTemplates every selected StatefulSet gets at creation.
    pub templates: Vec<ClaimTemplate>,
    /// Retention policy fields to set where a StatefulSet leaves them unset.
    pub retention: Option<StatefulSetPersistentVolumeClaimRetentionPolicy>,
    /// Repair `rollout-attach-deadlock` with `strategy: Recreate`.
    pub recreate_strategy: bool,
    /// Repair `shared-claim-writable` with read-only mounts.
    pub read_only_mounts: bool,
}

impl MutationPolicy {
    /// Whether the policy asks for no mutation at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.templates.is_empty()
            && self.retention.is_none()
            && !self.recreate_strategy
            && !self.read_only_mounts
    }
}
