//! The policy file format, `volguard.io/v1alpha1` `VolumePolicy`, exactly as users write it.
//!
//! Every struct denies unknown fields, so a typo is a load error with its line and column, never a
//! silently ignored setting. The JSON Schema at `policies/schema.json` is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::domain::workload::Kind;

/// A namespace name: a DNS label (RFC 1123), as the loader checks it.
const NAMESPACE_PATTERN: &str = "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$";

/// One policy document.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "VolumePolicy")]
pub(crate) struct PolicyDocument {
    /// Must be `volguard.io/v1alpha1`.
    pub api_version: ApiVersion,
    /// Must be `VolumePolicy`.
    pub kind: PolicyKind,
    /// The policy's name, used in messages and metrics.
    pub metadata: PolicyMetadata,
    /// What the policy selects and how it judges it.
    pub spec: PolicySpec,
}

/// `apiVersion: volguard.io/v1alpha1`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum ApiVersion {
    /// The current version.
    #[serde(rename = "volguard.io/v1alpha1")]
    V1alpha1,
}

/// `kind: VolumePolicy`.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum PolicyKind {
    /// The only kind.
    VolumePolicy,
}

/// A policy's metadata.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyMetadata {
    /// Unique among the loaded policies.
    #[schemars(with = "String", length(min = 1))]
    pub name: Spanned<String>,
    /// Free-form labels, kept for tooling.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations, kept for tooling.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What a policy selects and how it judges it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    /// The objects the policy applies to; empty selects every object volguard judges.
    #[serde(default, rename = "match")]
    pub match_: Selection,
    /// Objects taken back out of `match`: an object is excluded when every criterion set here holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<Selection>,
    /// The action of rules this policy does not list (opt-in rules stay Off unless listed).
    #[serde(default = "default_action")]
    pub default_action: Action,
    /// What to do when a claim or workload cannot be looked up (cache not synced, API server down).
    #[serde(default)]
    pub failure_mode: FailureMode,
    /// Whether an object this policy selects may skip rules with the `volguard.io/skip` annotation
    /// (and its required `volguard.io/skip-reason`). A rule's own `allowExceptions` overrides it.
    #[serde(default = "default_allow_exceptions")]
    pub allow_exceptions: bool,
    /// Per-rule settings, keyed by rule id.
    #[serde(default)]
    pub rules: RulesSpec,
    /// Repairs the mutating webhook (and `volguard check --mutate`) makes to the objects this policy
    /// selects. Nothing is changed unless it is set here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mutate: Option<MutateSpec>,
    /// What provisioners give, added to the built-in table (README, "Storage classes") or replacing a row
    /// of it: for a provisioner it does not list, or one your storage configures differently.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub provisioners: Vec<ProvisionerSpec>,
}

/// One provisioner's access modes, per volume mode.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProvisionerSpec {
    /// The provisioner, exactly as StorageClasses name it (`example.com/nas`).
    #[schemars(with = "String", length(min = 1))]
    pub name: Spanned<String>,
    /// Access modes it gives with `volumeMode: Filesystem`.
    #[serde(default)]
    pub filesystem: Vec<AccessModeName>,
    /// Access modes it gives with `volumeMode: Block` (empty: no raw block volumes).
    #[serde(default)]
    pub block: Vec<AccessModeName>,
}

/// What the mutating webhook adds or repairs. What the user set is never overwritten.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MutateSpec {
    /// volumeClaimTemplates every selected StatefulSet gets when it is created, with their mounts. An
    /// existing StatefulSet cannot change its templates: it gets a `statefulset-policy-template` finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_templates: Vec<ClaimTemplateSpec>,
    /// Fields of a StatefulSet's `persistentVolumeClaimRetentionPolicy` to set where the StatefulSet
    /// leaves them unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy: Option<RetentionPolicySpec>,
    /// Opt-in repairs of workloads that would break.
    #[serde(default)]
    pub repairs: RepairsSpec,
}

/// A volumeClaimTemplate the policy gives every selected StatefulSet, and where its pods mount it.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClaimTemplateSpec {
    /// The template's name: also the pod volume's name, and the prefix of each claim
    /// (`NAME-STATEFULSET-ORDINAL`). A DNS label.
    #[schemars(with = "String", length(min = 1, max = 63), pattern(NAMESPACE_PATTERN))]
    pub name: Spanned<String>,
    /// The claims' access modes.
    #[schemars(with = "Vec<AccessModeName>", length(min = 1))]
    pub access_modes: Spanned<Vec<AccessModeName>>,
    /// The StorageClass; unset: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub storage_class_name: Option<Spanned<String>>,
    /// The requested size, a Kubernetes quantity such as `10Gi`.
    #[schemars(with = "String", pattern(QUANTITY_PATTERN))]
    pub storage: Spanned<String>,
    /// Labels of the claims.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Where the pods mount the claim.
    pub mount: MountSpec,
}

/// A Kubernetes quantity (a subset the loader accepts: a positive decimal with an optional binary or
/// decimal suffix).
pub(crate) const QUANTITY_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$";

/// Where the pods of a StatefulSet mount a policy's claim template.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MountSpec {
    /// An absolute path in the container.
    #[schemars(with = "String", pattern("^/"))]
    pub mount_path: Spanned<String>,
    /// A relative path inside the volume to mount instead of its root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub sub_path: Option<Spanned<String>>,
    /// The containers (by name) that mount it; empty: every container of the pod (not init containers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<String>")]
    pub containers: Vec<Spanned<String>>,
}

/// `persistentVolumeClaimRetentionPolicy`: what happens to a StatefulSet's claims.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetentionPolicySpec {
    /// When the StatefulSet is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_deleted: Option<RetentionAction>,
    /// When the StatefulSet is scaled down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when_scaled: Option<RetentionAction>,
}

/// What happens to a claim its StatefulSet no longer needs.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum RetentionAction {
    /// The claim is kept (Kubernetes' default).
    Retain,
    /// The claim is deleted.
    Delete,
}

impl RetentionAction {
    /// The value as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            RetentionAction::Retain => "Retain",
            RetentionAction::Delete => "Delete",
        }
    }
}

/// Repairs, each off unless set to true.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepairsSpec {
    /// A one-replica Deployment whose rolling update would wait on its own ReadWriteOnce(Pod) volume
    /// (`rollout-attach-deadlock`) gets `strategy: {type: Recreate}`.
    #[serde(default)]
    pub recreate_strategy: bool,
    /// Read-write mounts of a ReadOnlyMany claim shared by many pods (`shared-claim-writable`) get
    /// `readOnly: true`.
    #[serde(default)]
    pub read_only_mounts: bool,
}

fn default_action() -> Action {
    Action::Deny
}

fn default_allow_exceptions() -> bool {
    true
}

/// Criteria that select objects; every criterion set must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Selection {
    /// Kinds (an HPA or Scale is also selected by the kind of the workload it resizes); empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<Kind>,
    /// Namespaces; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        with = "Vec<String>",
        inner(length(min = 1, max = 63), pattern(NAMESPACE_PATTERN))
    )]
    pub namespaces: Vec<Spanned<String>>,
    /// A label selector on the object's labels (an HPA's or Scale's: its target workload's labels).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<LabelSelector>")]
    pub selector: Option<Spanned<LabelSelector>>,
}

/// A Kubernetes label selector: `matchLabels` and `matchExpressions`, ANDed.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must have exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(with = "Vec<LabelSelectorRequirement>")]
    pub match_expressions: Vec<Spanned<LabelSelectorRequirement>>,
}

/// One set-based requirement.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    /// The label key.
    pub key: String,
    /// How the key relates to the values.
    pub operator: SelectorOperator,
    /// Required (non-empty) for In and NotIn; must be empty for Exists and DoesNotExist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// A label selector operator.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Hash)]
pub enum SelectorOperator {
    /// The label's value is one of `values`.
    In,
    /// The label is absent or its value is none of `values`.
    NotIn,
    /// The label is present.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

impl SelectorOperator {
    /// The operator as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            SelectorOperator::In => "In",
            SelectorOperator::NotIn => "NotIn",
            SelectorOperator::Exists => "Exists",
            SelectorOperator::DoesNotExist => "DoesNotExist",
        }
    }
}

/// What happens to an object a rule finds a problem in. Ordered from least to most strict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema)]
pub enum Action {
    /// The rule does not run.
    Off,
    /// Allowed; the finding is recorded in the audit log (auditAnnotations).
    Audit,
    /// Allowed; the finding is returned as a warning (kubectl prints it).
    Warn,
    /// Refused.
    Deny,
}

impl Action {
    /// The action as the reports write it: `deny`, `warn`, `audit`, `off`.
    pub fn word(self) -> &'static str {
        match self {
            Action::Off => "off",
            Action::Audit => "audit",
            Action::Warn => "warn",
            Action::Deny => "deny",
        }
    }
}

/// What to do when something a rule needs cannot be looked up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema)]
pub enum FailureMode {
    /// Deny, saying what could not be looked up and why.
    #[default]
    Fail,
    /// Allow, with a warning saying what could not be checked.
    Ignore,
}

/// The per-rule settings, keyed by the rules' stable ids. Unknown ids are load errors. A rule listed
/// without an action (`{}`, or no value at all) gets the policy's defaultAction.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesSpec {
    /// A ReadWriteOnce/ReadWriteOncePod claim shared by pods that may run on different nodes.
    #[serde(
        rename = "shared-rwo-claim",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_rwo_claim: Option<RuleSetting>,
    /// A one-replica Deployment whose rolling update waits on the volume its old pod holds.
    #[serde(
        rename = "rollout-attach-deadlock",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub rollout_attach_deadlock: Option<RuleSetting>,
    /// StatefulSet volumeClaimTemplates must use allowed access modes.
    #[serde(
        rename = "statefulset-claim-template-modes",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub statefulset_claim_template_modes: Option<TemplateModesSetting>,
    /// A multi-replica StatefulSet sharing one read-write claim from its pod template.
    #[serde(
        rename = "statefulset-shared-claim",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub statefulset_shared_claim: Option<RuleSetting>,
    /// A StatefulSet without a claim template its policy declares (`mutate.claimTemplates`), with one
    /// that contradicts it, or where the template's mount conflicts with another volume.
    #[serde(
        rename = "statefulset-policy-template",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub statefulset_policy_template: Option<RuleSetting>,
    /// A ReadOnlyMany claim mounted read-write by a multi-pod workload.
    #[serde(
        rename = "shared-claim-writable",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub shared_claim_writable: Option<RuleSetting>,
    /// Any persistent claim in a Deployment. Opt-in: Off unless listed.
    #[serde(
        rename = "stateless-deployment",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub stateless_deployment: Option<RuleSetting>,
    /// A referenced claim that does not exist: Deny, Warn, Audit, or Off (allow).
    #[serde(
        rename = "missing-claim",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub missing_claim: Option<RuleSetting>,
    /// A claim, volumeClaimTemplate or generic ephemeral volume asking for an access mode its
    /// StorageClass's provisioner cannot give: it never binds.
    #[serde(
        rename = "unsupported-access-mode",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub unsupported_access_mode: Option<RuleSetting>,
    /// A workload mounting a claim its StorageClass cannot provision as asked: its pods stay Pending.
    #[serde(
        rename = "unbindable-claim",
        default,
        deserialize_with = "listed",
        skip_serializing_if = "Option::is_none"
    )]
    pub unbindable_claim: Option<RuleSetting>,
}

/// A rule key written with no value (`stateless-deployment:`) lists the rule just as `{}` does. Plain
/// serde would read that YAML null as "not listed" and silently leave an opt-in rule Off.
fn listed<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Some(Option::<T>::deserialize(deserializer)?.unwrap_or_default()))
}

/// A rule's setting.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleSetting {
    /// The rule's action; unset: the policy's defaultAction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Whether a `volguard.io/skip` annotation may skip this rule; unset: the policy's allowExceptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_exceptions: Option<bool>,
}

/// The setting of `statefulset-claim-template-modes`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateModesSetting {
    /// The rule's action; unset: the policy's defaultAction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Whether a `volguard.io/skip` annotation may skip this rule; unset: the policy's allowExceptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_exceptions: Option<bool>,
    /// Access modes a volumeClaimTemplate may ask for; default ReadWriteOnce and ReadWriteOncePod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<AccessModeName>>", length(min = 1))]
    pub allowed_access_modes: Option<Spanned<Vec<AccessModeName>>>,
}

/// A PersistentVolumeClaim access mode.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum AccessModeName {
    /// One node, read-write.
    ReadWriteOnce,
    /// Many nodes, read-only.
    ReadOnlyMany,
    /// Many nodes, read-write.
    ReadWriteMany,
    /// One pod.
    ReadWriteOncePod,
}

impl AccessModeName {
    /// The mode as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            AccessModeName::ReadWriteOnce => crate::domain::access::RWO,
            AccessModeName::ReadOnlyMany => crate::domain::access::ROX,
            AccessModeName::ReadWriteMany => crate::domain::access::RWX,
            AccessModeName::ReadWriteOncePod => crate::domain::access::RWOP,
        }
    }
}
