//! The rules: pure functions from a workload's footprint and the claims it mounts to findings.
//!
//! A rule does no I/O, no logging and knows nothing of HTTP or the CLI. It says what is wrong, why it
//! breaks at run time, and how to fix it; the policy decides what action each finding gets.

mod claim_template;
mod policy_template;
mod rollout;
mod sharing;
mod statefulset;
mod storage;
pub mod templates;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde::{Deserialize, Serialize};

use crate::domain::access::{Sharing, effective_modes};
use crate::domain::footprint::ClaimFootprint;
use crate::domain::lookup::{Answer, Lookup, VolumeKey};
use crate::domain::workload::{ClaimUse, Disk, Footprint, ObjectRef, PerPodSource, WorkloadKind};

pub(crate) use claim_template::claim_template_yaml;
pub(crate) use policy_template::policy_templates;
pub(crate) use sharing::claim as claim_findings;
pub(crate) use storage::{claim as claim_class_finding, sharable_modes};

/// The stable id of every rule, as used in policies, messages, metrics and audit annotations.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum RuleId {
    /// A ReadWriteOnce/ReadWriteOncePod claim shared by pods that may run on different nodes.
    SharedRwoClaim,
    /// A one-replica Deployment whose rolling update waits on the volume its old pod holds.
    RolloutAttachDeadlock,
    /// A StatefulSet volumeClaimTemplate with an access mode the policy does not allow.
    StatefulsetClaimTemplateModes,
    /// A multi-replica StatefulSet sharing one claim from its pod template.
    StatefulsetSharedClaim,
    /// A StatefulSet without a claim template its policy declares, or with one that contradicts it.
    StatefulsetPolicyTemplate,
    /// A ReadOnlyMany claim mounted read-write by a multi-pod workload.
    SharedClaimWritable,
    /// Any persistent claim in a Deployment (opt-in).
    StatelessDeployment,
    /// A claim that does not exist.
    MissingClaim,
    /// A claim, volumeClaimTemplate or ephemeral volume asking for an access mode its StorageClass's
    /// provisioner cannot give: it never binds.
    UnsupportedAccessMode,
    /// A workload mounting a claim its StorageClass cannot provision as asked: its pods stay Pending.
    UnbindableClaim,
    /// A claim or workload that could not be looked up; its action comes from the failure mode.
    LookupFailed,
    /// A `volguard.io/skip` annotation that cannot be honoured: no reason given, or a rule it cannot name.
    InvalidSkip,
}

impl RuleId {
    /// Every rule, in report order.
    pub const ALL: [RuleId; 12] = [
        RuleId::SharedRwoClaim,
        RuleId::RolloutAttachDeadlock,
        RuleId::StatefulsetClaimTemplateModes,
        RuleId::StatefulsetSharedClaim,
        RuleId::StatefulsetPolicyTemplate,
        RuleId::SharedClaimWritable,
        RuleId::StatelessDeployment,
        RuleId::MissingClaim,
        RuleId::UnsupportedAccessMode,
        RuleId::UnbindableClaim,
        RuleId::LookupFailed,
        RuleId::InvalidSkip,
    ];

    /// Whether the rule is about the judging itself, not the object's volumes: `lookup-failed` (the
    /// failure mode's answer) and `invalid-skip` (an exception that cannot be honoured). Neither can be
    /// skipped, softened by the ratchet, or be a pass result.
    pub fn is_meta(self) -> bool {
        matches!(self, RuleId::LookupFailed | RuleId::InvalidSkip)
    }

    /// The id as written in policies and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleId::SharedRwoClaim => "shared-rwo-claim",
            RuleId::RolloutAttachDeadlock => "rollout-attach-deadlock",
            RuleId::StatefulsetClaimTemplateModes => "statefulset-claim-template-modes",
            RuleId::StatefulsetSharedClaim => "statefulset-shared-claim",
            RuleId::StatefulsetPolicyTemplate => "statefulset-policy-template",
            RuleId::SharedClaimWritable => "shared-claim-writable",
            RuleId::StatelessDeployment => "stateless-deployment",
            RuleId::MissingClaim => "missing-claim",
            RuleId::UnsupportedAccessMode => "unsupported-access-mode",
            RuleId::UnbindableClaim => "unbindable-claim",
            RuleId::LookupFailed => "lookup-failed",
            RuleId::InvalidSkip => "invalid-skip",
        }
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How firmly a rule states a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Severity {
    /// It breaks (or will break) at run time: the rule's action applies.
    Violation,
    /// It works for now but is fragile (RWO shared on a pinned node): never more than Warn.
    Advisory,
}

/// One problem found in one object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The rule that found it.
    pub rule: RuleId,
    /// Violation, or advisory (capped at Warn).
    pub severity: Severity,
    /// The object under review.
    pub object: ObjectRef,
    /// The container concerned, when one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The pod volume (or claim template) concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<String>,
    /// The claim concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// The access mode that sets the limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_mode: Option<String>,
    /// What is wrong and why it fails at run time.
    pub message: String,
    /// How to fix it, often as YAML to paste.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    /// A violation of `rule` by `object`, naming no container, volume, claim or fix.
    pub(crate) fn new(rule: RuleId, object: &ObjectRef, message: String) -> Self {
        Self {
            rule,
            severity: Severity::Violation,
            object: object.clone(),
            container: None,
            volume: None,
            claim: None,
            access_mode: None,
            message,
            fix: None,
        }
    }

    fn on(mut self, c: &ResolvedClaim) -> Self {
        self.volume = Some(c.use_.volume.clone());
        if !matches!(c.source, Source::Disk(_)) {
            self.claim = Some(c.use_.claim.clone());
        }
        self
    }

    fn mode(mut self, mode: &str) -> Self {
        self.access_mode = Some(mode.to_owned());
        self
    }

    fn fix(mut self, fix: String) -> Self {
        self.fix = Some(fix);
        self
    }

    fn advisory(mut self) -> Self {
        self.severity = Severity::Advisory;
        self
    }
}

/// What a lookup said about one shared volume.
#[derive(Clone, Debug)]
pub enum ClaimState {
    /// The claim (or disk) exists; its effective access modes allow this much sharing (None: no known mode).
    Found {
        /// The claim (None for an inline disk).
        claim: Option<Arc<PersistentVolumeClaim>>,
        /// Its sharing class.
        sharing: Option<Sharing>,
    },
    /// The claim does not exist, in the lookup's scope.
    Missing {
        /// Where it was looked for.
        scope: &'static str,
    },
    /// The lookup failed.
    Unknown(String),
}

/// What kind of shared volume a [`ResolvedClaim`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A `persistentVolumeClaim` volume of the pod spec: one claim for every pod.
    Claim,
    /// An inline single-attach disk of the pod spec.
    Disk(Disk),
    /// A StatefulSet replica's own claim (from a volumeClaimTemplate) that other workloads mount too.
    Replica(u32),
}

/// A volume the subject's pods share, with its lookup answer and everything else that mounts it.
#[derive(Clone, Debug)]
pub struct ResolvedClaim {
    /// The subject's use of it. For a disk, `claim` holds the disk's description; for a replica's claim,
    /// the claim's name and the template as the volume.
    pub use_: ClaimUse,
    /// What it is.
    pub source: Source,
    /// What is known of the claim.
    pub state: ClaimState,
    /// Every user of it, the subject first (Missing: not gathered, the verdict does not need them).
    pub users: Answer<ClaimFootprint>,
    /// The claim's StorageClass, when it has one the lookup knows.
    pub class: Option<ClassView>,
}

/// A claim's StorageClass, and the volume mode it asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClassView {
    /// The class.
    pub class: crate::domain::storage::ResolvedClass,
    /// The claim's volumeMode.
    pub volume_mode: crate::domain::storage::VolumeMode,
}

impl ResolvedClaim {
    fn sharing(&self) -> Option<Sharing> {
        match &self.state {
            ClaimState::Found { sharing, .. } => *sharing,
            _ => None,
        }
    }

    fn claim(&self) -> Option<&PersistentVolumeClaim> {
        match &self.state {
            ClaimState::Found { claim, .. } => claim.as_deref(),
            _ => None,
        }
    }

    fn footprint(&self) -> Option<&ClaimFootprint> {
        match &self.users {
            Answer::Found(cf) => Some(cf),
            _ => None,
        }
    }

    /// The volume as a message names it: `claim "data"`, `awsElasticBlockStore vol-1`.
    fn what(&self) -> String {
        match &self.source {
            Source::Disk(d) => d.to_string(),
            _ => format!("claim \"{}\"", self.use_.claim),
        }
    }
}

/// A footprint with its shared volumes looked up: everything the rules read.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    /// The workload's footprint.
    pub footprint: &'a Footprint,
    /// Its shared claims and disks, each with every other user, looked up once.
    pub claims: Vec<ResolvedClaim>,
    /// The StorageClass of each of its per-pod claims (`footprint.per_pod`, in order), when known.
    pub per_pod_classes: Vec<Option<crate::domain::storage::ResolvedClass>>,
}

impl<'a> Subject<'a> {
    /// Looks up every shared claim and disk of the footprint, who else mounts each, and, for a
    /// StatefulSet, which of its replicas' own claims other workloads mount too.
    pub fn resolve(footprint: &'a Arc<Footprint>, lookup: &dyn Lookup) -> Self {
        let namespace = footprint.workload.namespace.as_str();
        // Every volume's footprint shares this one (a workload may mount hundreds of volumes).
        let mut claims = Vec::new();
        for use_ in &footprint.claims {
            let state = claim_state(lookup.claim(namespace, &use_.claim), lookup);
            let key = VolumeKey::Claim {
                namespace: namespace.to_owned(),
                name: use_.claim.clone(),
            };
            claims.push(gathered(
                footprint,
                use_.clone(),
                Source::Claim,
                state,
                key,
                lookup,
            ));
        }
        for d in &footprint.disks {
            let key = VolumeKey::Disk(d.disk.clone());
            let use_ = ClaimUse {
                volume: d.volume.clone(),
                claim: d.disk.to_string(),
                volume_read_only: d.volume_read_only,
                mounts: d.mounts.clone(),
            };
            let mut resolved = gathered(
                footprint,
                use_,
                Source::Disk(d.disk.clone()),
                ClaimState::Found {
                    claim: None,
                    sharing: Some(Sharing::OneNode),
                },
                key,
                lookup,
            );
            // A disk that can attach read-only on many nodes does, when no user writes.
            let all_read_only = resolved
                .footprint()
                .is_some_and(|cf| cf.users.iter().all(crate::domain::footprint::User::is_read_only));
            if d.disk.source.read_only_many() && all_read_only {
                resolved.state = ClaimState::Found {
                    claim: None,
                    sharing: Some(Sharing::ReadMany),
                };
            }
            claims.push(resolved);
        }
        claims.extend(replica_claims(footprint, lookup));
        for c in &mut claims {
            c.class = class_view(c, lookup);
        }
        let per_pod_classes = footprint
            .per_pod
            .iter()
            .map(|t| {
                let request = crate::domain::storage::ClassRequest::named(t.storage_class.as_deref());
                match storage::resolve_class(&request, lookup) {
                    Answer::Found(class) => Some(class),
                    _ => None,
                }
            })
            .collect();
        Self {
            footprint,
            claims,
            per_pod_classes,
        }
    }

    fn is_kind(&self, kind: WorkloadKind) -> bool {
        self.footprint.kind == kind
    }

    /// "Deployment shop/web may run 3 pods" or, for an HPA, "HorizontalPodAutoscaler shop/web lets
    /// Deployment shop/web run 5 pods".
    fn who_runs(&self) -> String {
        who_runs(self.footprint)
    }
}

/// "Deployment shop/web may run 3 pods", with what lets it run that many.
pub(crate) fn who_runs(fp: &Footprint) -> String {
    if fp.subject != fp.workload {
        return format!("{} lets {} run {}", fp.subject, fp.workload, fp.pods);
    }
    match &fp.scaled_by {
        Some(hpa) => format!("{} may run {} (up to {hpa}'s maxReplicas)", fp.workload, fp.pods),
        None => format!("{} may run {}", fp.workload, fp.pods),
    }
}

fn claim_state(answer: Answer<Arc<PersistentVolumeClaim>>, lookup: &dyn Lookup) -> ClaimState {
    match answer {
        Answer::Found(claim) => {
            let sharing = Sharing::of(effective_modes(&claim));
            ClaimState::Found {
                claim: Some(claim),
                sharing,
            }
        }
        Answer::Missing => ClaimState::Missing {
            scope: lookup.scope(),
        },
        Answer::Unknown(why) => ClaimState::Unknown(why),
    }
}

/// A shared volume with its other users, gathered when the verdict depends on them (every mode but
/// ReadWriteMany, which any number of pods on any nodes share), and placed.
fn gathered(
    footprint: &Arc<Footprint>,
    use_: ClaimUse,
    source: Source,
    state: ClaimState,
    key: VolumeKey,
    lookup: &dyn Lookup,
) -> ResolvedClaim {
    let needs_users =
        matches!(&state, ClaimState::Found { sharing, .. } if *sharing != Some(Sharing::WriteMany));
    let users = if needs_users {
        match ClaimFootprint::gather(footprint, &key, lookup) {
            Answer::Found(mut cf) => {
                cf.place(lookup);
                Answer::Found(cf)
            }
            other => other,
        }
    } else {
        Answer::Missing
    };
    ResolvedClaim {
        use_,
        source,
        state,
        users,
        class: None,
    }
}

/// The StorageClass of a claim that was found (none for an inline disk).
fn class_view(c: &ResolvedClaim, lookup: &dyn Lookup) -> Option<ClassView> {
    let claim = c.claim()?;
    let request = crate::domain::storage::ClassRequest::of(claim);
    match storage::resolve_class(&request, lookup) {
        Answer::Found(class) => Some(ClassView {
            class,
            volume_mode: crate::domain::storage::VolumeMode::of(claim.spec.as_ref()),
        }),
        _ => None,
    }
}

/// A StatefulSet's replicas' own claims that other workloads mount too (a CronJob backing up
/// `data-postgres-0`): each is shared by that replica's pod and theirs.
fn replica_claims(footprint: &Arc<Footprint>, lookup: &dyn Lookup) -> Vec<ResolvedClaim> {
    let mut out = Vec::new();
    if footprint.kind != WorkloadKind::StatefulSet {
        return out;
    }
    let namespace = footprint.workload.namespace.as_str();
    for t in footprint
        .per_pod
        .iter()
        .filter(|t| t.source == PerPodSource::ClaimTemplate)
    {
        let prefix = format!("{}-{}-", t.name, footprint.workload.name);
        let mounted = match lookup.mounted_claims(namespace, &prefix) {
            Answer::Found(m) => m,
            _ => continue,
        };
        for name in mounted {
            let Some((ordinal, _)) = footprint.replica_claim(&name) else {
                continue;
            };
            let state = match lookup.claim(namespace, &name) {
                Answer::Missing => ClaimState::Found {
                    claim: None,
                    sharing: Sharing::of(&t.access_modes),
                },
                other => claim_state(other, lookup),
            };
            let use_ = ClaimUse {
                volume: t.name.clone(),
                claim: name.clone(),
                volume_read_only: false,
                mounts: Vec::new(),
            };
            let key = VolumeKey::Claim {
                namespace: namespace.to_owned(),
                name,
            };
            out.push(gathered(
                footprint,
                use_,
                Source::Replica(ordinal),
                state,
                key,
                lookup,
            ));
        }
    }
    out
}

/// Rule parameters, as a policy sets them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleParams {
    /// Access modes a StatefulSet volumeClaimTemplate may use.
    pub allowed_template_modes: Vec<String>,
    /// What provisioners can give: the policy's `spec.provisioners` over the built-in table.
    pub provisioners: crate::domain::storage::ProvisionerTable,
}

impl Default for RuleParams {
    fn default() -> Self {
        Self {
            allowed_template_modes: vec![
                crate::domain::access::RWO.to_owned(),
                crate::domain::access::RWOP.to_owned(),
            ],
            provisioners: crate::domain::storage::ProvisionerTable::default(),
        }
    }
}

/// Rules that judge the pod template alone, whatever the replica count. An HPA or a Scale changes only
/// the count, so these stay findings of the workload: reporting them on its autoscaler would deny scaling
/// it at all, scaling to zero included. A missing claim is the workload's problem too.
const TEMPLATE_ONLY: [RuleId; 5] = [
    RuleId::StatefulsetClaimTemplateModes,
    RuleId::StatelessDeployment,
    RuleId::MissingClaim,
    RuleId::UnsupportedAccessMode,
    RuleId::UnbindableClaim,
];

/// Runs every rule `enabled` lets through over `subject`.
pub fn check(subject: &Subject<'_>, params: &RuleParams, enabled: impl Fn(RuleId) -> bool) -> Vec<Finding> {
    let resized = subject.footprint.subject != subject.footprint.workload;
    let enabled = |rule: RuleId| enabled(rule) && !(resized && TEMPLATE_ONLY.contains(&rule));
    let mut findings = Vec::new();
    let table = &params.provisioners;
    if enabled(RuleId::SharedRwoClaim) {
        sharing::shared_rwo_claim(subject, table, &mut findings);
    }
    if enabled(RuleId::RolloutAttachDeadlock) {
        rollout::rollout_attach_deadlock(subject, &mut findings);
    }
    if enabled(RuleId::StatefulsetClaimTemplateModes) {
        statefulset::claim_template_modes(subject, &params.allowed_template_modes, &mut findings);
    }
    if enabled(RuleId::StatefulsetSharedClaim) {
        statefulset::shared_claim(subject, &mut findings);
    }
    if enabled(RuleId::SharedClaimWritable) {
        sharing::shared_claim_writable(subject, table, &mut findings);
    }
    if enabled(RuleId::StatelessDeployment) {
        statefulset::stateless_deployment(subject, &mut findings);
    }
    if enabled(RuleId::MissingClaim) {
        sharing::missing_claim(subject, &mut findings);
    }
    if enabled(RuleId::UnsupportedAccessMode) {
        storage::templates(subject, table, &mut findings);
    }
    if enabled(RuleId::UnbindableClaim) {
        storage::unbindable(subject, table, &mut findings);
    }
    if enabled(RuleId::LookupFailed) {
        sharing::lookup_failed(subject, &mut findings);
    }
    findings
}

/// The rules that judge how pods share a claim: what a claim's access modes can break. A claim created or
/// updated is judged by these, with the actions its workloads' policies give them.
pub(crate) const SHARING: [RuleId; 3] = [
    RuleId::SharedRwoClaim,
    RuleId::StatefulsetSharedClaim,
    RuleId::SharedClaimWritable,
];

/// A `lookup-failed` finding about `object`, saying what could not be looked up.
pub(crate) fn lookup_failed_on(object: &ObjectRef, message: String) -> Finding {
    Finding::new(RuleId::LookupFailed, object, message)
}

/// The finding for an HPA or Scale whose target workload could not be looked up.
pub(crate) fn target_lookup_failed(subject: &ObjectRef, target: &str, why: &str) -> Finding {
    Finding::new(
        RuleId::LookupFailed,
        subject,
        format!("volguard could not look up {target}, which {subject} resizes: {why}"),
    )
}

#[cfg(test)]
mod tests {
    use super::RuleId;

    #[test]
    fn rule_ids_order_as_listed_in_all() {
        // Reports sort results by RuleId: that is the order of RuleId::ALL.
        assert!(RuleId::ALL.windows(2).all(|w| w[0] < w[1]));
    }
}
