//! Mutation: the repairs a policy asks for, as a minimal RFC 6902 JSON patch against the object exactly as
//! it was received.
//!
//! Repairs are made on the typed object (k8s-openapi), never by walking JSON by hand. The patch is then the
//! difference between the typed object before and after, serialised the same way, so it holds only what
//! a repair changed; it is applied to the object as received, so fields volguard does not know survive.
//! The patched object must decode as its kind again, and a second pass over it changes nothing
//! (the API server may call a mutating webhook twice: `reinvocationPolicy: IfNeeded`).
//!
//! - [`templates`]: volumeClaimTemplates (and their mounts) a policy gives every StatefulSet it selects,
//!   added at creation only, and the StatefulSet's `persistentVolumeClaimRetentionPolicy` defaults.
//! - [`repairs`]: opt-in fixes of what the rules find: `strategy: Recreate` for a one-replica Deployment
//!   on a ReadWriteOnce claim, `readOnly: true` on the mounts of a shared ReadOnlyMany claim.

mod repairs;
pub mod templates;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::domain::lookup::Lookup;
use crate::domain::policy::{Policy, PolicySet, Target};
use crate::domain::rules::RuleId;
use crate::domain::workload::{DecodeError, Kind, ObjectType, Resource, Workload, type_of};

/// The annotation that records, on the object itself, which fields volguard changed: a comma-separated
/// list of [`Change::field`]s, kept across updates. `kubectl get -o yaml` then explains why the live object
/// differs from the manifest.
pub const MUTATED_ANNOTATION: &str = "volguard.io/mutated";

/// Whether the object is being created (claim templates may be added) or updated (they may not: the API
/// server forbids changing a StatefulSet's volumeClaimTemplates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// CREATE, or a manifest checked with `check --mutate`.
    Create,
    /// UPDATE.
    Update,
}

/// One change a mutation made, for warnings, logs and `check --diff`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The rule whose finding the change repairs, when it repairs one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleId>,
    /// The field changed, in a short form listed in the [`MUTATED_ANNOTATION`]
    /// (`spec.volumeClaimTemplates[data]`).
    pub field: String,
    /// The policy that asked for it.
    pub policy: String,
    /// What was changed and why.
    pub message: String,
}

/// The result of mutating one object.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mutation {
    /// The patch, against the object as received; empty when nothing changed.
    pub patch: json_patch::Patch,
    /// The object with the patch applied (None when nothing changed).
    pub object: Option<Value>,
    /// That object, decoded into its k8s-openapi type.
    pub repaired: Option<Box<Resource>>,
    /// What was changed.
    pub changes: Vec<Change>,
}

impl Mutation {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.patch.0.is_empty()
    }
}

/// Why an object could not be mutated. Each is a volguard bug or an object the API server would not
/// send, and gets the policy's failure mode.
#[derive(Debug, thiserror::Error)]
pub enum MutateError {
    /// The typed object could not be written as JSON.
    #[error("could not write the object as JSON: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The patch does not apply to the object as received.
    #[error("the patch does not apply to the object as received: {0}")]
    Patch(#[from] json_patch::PatchError),
    /// The patched object no longer decodes as its kind.
    #[error("the patched object does not decode: {0}")]
    Decode(#[from] DecodeError),
}

/// The policies that select a workload by its own kind, namespace and labels: those that judge it.
fn judging<'a>(workload: &'a Workload, policies: &'a PolicySet) -> Vec<&'a Policy> {
    let object = workload.object_ref();
    let target = Target {
        kinds: vec![Kind::from(workload.kind())],
        namespace: &object.namespace,
        labels: workload.metadata().labels.as_ref(),
    };
    policies
        .policies()
        .iter()
        .filter(|p| p.selects(&target))
        .collect()
}

/// Adds the changed fields to the [`MUTATED_ANNOTATION`], keeping those an earlier mutation recorded.
fn record(workload: &mut Workload, changes: &[Change]) {
    let annotations = workload
        .metadata_mut()
        .annotations
        .get_or_insert_with(BTreeMap::new);
    let mut fields: Vec<String> = annotations
        .get(MUTATED_ANNOTATION)
        .map(|v| {
            v.split(", ")
                .filter(|f| !f.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    fields.extend(changes.iter().map(|c| c.field.clone()));
    fields.sort();
    fields.dedup();
    annotations.insert(MUTATED_ANNOTATION.to_owned(), fields.join(", "));
}

/// Repairs `resource` as the policies selecting it ask, and the patch that makes the object as received
/// into the repaired one, without the object as received: what the mutating webhook answers. Only
/// workloads are mutated.
///
/// The patch is the difference between the typed object before and after, both decoded without the
/// fields no rule reads (`domain::workload::unread`), so it only names fields a repair changed, at paths
/// the object as received has: every field the typed object writes that is not optional is one the API
/// server requires (metadata, selector, template, containers, names), so its parents are there.
/// `tests/decision/mutate.rs` applies each patch to the object as received and judges the result again.
pub fn plan(
    resource: &Resource,
    stage: Stage,
    lookup: &dyn Lookup,
    policies: &PolicySet,
) -> Result<Mutation, MutateError> {
    let Resource::Workload(before) = resource else {
        return Ok(Mutation::default());
    };
    // Every policy that judges the workload decides its exceptions, as when it is validated; the ones
    // with repairs make them.
    let judging = judging(before, policies);
    let selecting: Vec<&Policy> = judging
        .iter()
        .copied()
        .filter(|p| !p.mutation.is_empty())
        .collect();
    if selecting.is_empty() {
        return Ok(Mutation::default());
    }
    let skipped = crate::decision::exceptions::honoured(before.metadata().annotations.as_ref(), &judging);
    let mut after = before.clone();
    let mut changes = Vec::new();
    if let Workload::StatefulSet(set) = &mut after {
        templates::apply(set, stage, &selecting, &mut changes);
    }
    repairs::apply(before, &mut after, lookup, &selecting, &skipped, &mut changes);
    if changes.is_empty() {
        return Ok(Mutation::default());
    }
    record(&mut after, &changes);
    let patch = json_patch::diff(&before.to_json()?, &after.to_json()?);
    Ok(Mutation {
        patch,
        object: None,
        // The repaired object the rules judge again is `after` itself: the patch only writes what the
        // typed repair changed, so decoding the patched JSON again would build the same object (the
        // tests compare the two).
        repaired: Some(Box::new(Resource::Workload(after))),
        changes,
    })
}

/// [`plan`], and the patch applied to `received` (the same object, as sent): the object `check --mutate`
/// prints. The patched object must still be of a kind volguard reads.
pub fn mutate(
    received: &Value,
    resource: &Resource,
    stage: Stage,
    lookup: &dyn Lookup,
    policies: &PolicySet,
) -> Result<Mutation, MutateError> {
    let mut mutation = plan(resource, stage, lookup, policies)?;
    if mutation.is_empty() {
        return Ok(mutation);
    }
    let mut object = received.clone();
    json_patch::patch(&mut object, &mutation.patch)?;
    let (api_version, kind) = type_of(&object)?;
    if ObjectType::of(api_version, kind).is_none() {
        return Err(MutateError::Decode(DecodeError::Invalid {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            message: "the patched object is no longer of a kind volguard reads".to_owned(),
        }));
    }
    mutation.object = Some(object);
    Ok(mutation)
}
