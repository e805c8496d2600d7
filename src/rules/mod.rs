//! The rules: pure functions from a workload's footprint and the claims it mounts to findings.
//!
//! A rule does no I/O, no logging and knows nothing of HTTP or the CLI. It says what is wrong, why it
//! breaks at run time, and how to fix it; the policy decides what action each finding gets.

mod claim_template;
mod policy_template;
mod rollout;
mod sharing;
mod statefulset;

use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde::{Deserialize, Serialize};

use crate::access::{Sharing, effective_modes};
use crate::lookup::{Answer, Lookup};
use crate::workload::{ClaimUse, Footprint, ObjectRef, WorkloadKind};

pub use claim_template::claim_template_yaml;
pub use policy_template::policy_templates;

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
    /// A claim created (or updated) with access modes that the running workloads mounting it cannot share.
    ClaimBreaksWorkloads,
    /// A claim or workload that could not be looked up; its action comes from the failure mode.
    LookupFailed,
}

impl RuleId {
    /// Every rule, in report order.
    pub const ALL: [RuleId; 10] = [
        RuleId::SharedRwoClaim,
        RuleId::RolloutAttachDeadlock,
        RuleId::StatefulsetClaimTemplateModes,
        RuleId::StatefulsetSharedClaim,
        RuleId::StatefulsetPolicyTemplate,
        RuleId::SharedClaimWritable,
        RuleId::StatelessDeployment,
        RuleId::MissingClaim,
        RuleId::ClaimBreaksWorkloads,
        RuleId::LookupFailed,
    ];

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
            RuleId::ClaimBreaksWorkloads => "claim-breaks-workloads",
            RuleId::LookupFailed => "lookup-failed",
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
    fn new(rule: RuleId, object: &ObjectRef, message: String) -> Self {
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

    fn on(mut self, use_: &ClaimUse) -> Self {
        self.volume = Some(use_.volume.clone());
        self.claim = Some(use_.claim.clone());
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

/// What a lookup said about one shared claim.
#[derive(Clone, Debug)]
pub enum ClaimState {
    /// The claim exists; its effective access modes allow this much sharing (None: no known mode).
    Found {
        /// The claim.
        claim: Arc<PersistentVolumeClaim>,
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

/// A shared claim of the footprint with its lookup answer.
#[derive(Clone, Debug)]
pub struct ResolvedClaim<'a> {
    /// The pod template's use of the claim.
    pub use_: &'a ClaimUse,
    /// What is known of the claim.
    pub state: ClaimState,
}

impl ResolvedClaim<'_> {
    fn sharing(&self) -> Option<Sharing> {
        match &self.state {
            ClaimState::Found { sharing, .. } => *sharing,
            _ => None,
        }
    }

    fn claim(&self) -> Option<&PersistentVolumeClaim> {
        match &self.state {
            ClaimState::Found { claim, .. } => Some(claim),
            _ => None,
        }
    }
}

/// A footprint with its claims looked up: everything the rules read.
#[derive(Clone, Debug)]
pub struct Subject<'a> {
    /// The workload's footprint.
    pub footprint: &'a Footprint,
    /// Its shared claims, looked up once.
    pub claims: Vec<ResolvedClaim<'a>>,
}

impl<'a> Subject<'a> {
    /// Looks up every shared claim of the footprint.
    pub fn resolve(footprint: &'a Footprint, lookup: &dyn Lookup) -> Self {
        let claims = footprint
            .claims
            .iter()
            .map(|use_| {
                let state = match lookup.claim(&footprint.workload.namespace, &use_.claim) {
                    Answer::Found(claim) => {
                        let sharing = Sharing::of(effective_modes(&claim));
                        ClaimState::Found { claim, sharing }
                    }
                    Answer::Missing => ClaimState::Missing {
                        scope: lookup.scope(),
                    },
                    Answer::Unknown(why) => ClaimState::Unknown(why),
                };
                ResolvedClaim { use_, state }
            })
            .collect();
        Self { footprint, claims }
    }

    fn is_pinned(&self) -> bool {
        self.footprint.pinning.is_some()
    }

    fn is_kind(&self, kind: WorkloadKind) -> bool {
        self.footprint.kind == kind
    }

    /// "Deployment shop/web may run 3 pods" or, for an HPA, "HorizontalPodAutoscaler shop/web lets
    /// Deployment shop/web run 5 pods".
    fn who_runs(&self) -> String {
        let fp = self.footprint;
        if fp.subject == fp.workload {
            format!("{} may run {}", fp.workload, fp.pods)
        } else {
            format!("{} lets {} run {}", fp.subject, fp.workload, fp.pods)
        }
    }
}

/// Rule parameters, as a policy sets them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleParams {
    /// Access modes a StatefulSet volumeClaimTemplate may use.
    pub allowed_template_modes: Vec<String>,
}

impl Default for RuleParams {
    fn default() -> Self {
        Self {
            allowed_template_modes: vec![crate::access::RWO.to_owned(), crate::access::RWOP.to_owned()],
        }
    }
}

/// Rules that judge the pod template alone, whatever the replica count. An HPA or a Scale changes only
/// the count, so these stay findings of the workload: reporting them on its autoscaler would deny scaling
/// it at all, scaling to zero included. A missing claim is the workload's problem too.
const TEMPLATE_ONLY: [RuleId; 3] = [
    RuleId::StatefulsetClaimTemplateModes,
    RuleId::StatelessDeployment,
    RuleId::MissingClaim,
];

/// Runs every rule `enabled` lets through over `subject`.
pub fn check(subject: &Subject<'_>, params: &RuleParams, enabled: impl Fn(RuleId) -> bool) -> Vec<Finding> {
    let resized = subject.footprint.subject != subject.footprint.workload;
    let enabled = |rule: RuleId| enabled(rule) && !(resized && TEMPLATE_ONLY.contains(&rule));
    let mut findings = Vec::new();
    if enabled(RuleId::SharedRwoClaim) {
        sharing::shared_rwo_claim(subject, &mut findings);
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
        sharing::shared_claim_writable(subject, &mut findings);
    }
    if enabled(RuleId::StatelessDeployment) {
        statefulset::stateless_deployment(subject, &mut findings);
    }
    if enabled(RuleId::MissingClaim) {
        sharing::missing_claim(subject, &mut findings);
    }
    if enabled(RuleId::LookupFailed) {
        sharing::lookup_failed(subject, &mut findings);
    }
    findings
}

/// The rules that judge how pods share a claim: what a claim's access modes can break.
pub const SHARING: [RuleId; 3] = [
    RuleId::SharedRwoClaim,
    RuleId::StatefulsetSharedClaim,
    RuleId::SharedClaimWritable,
];

/// `claim-breaks-workloads`: the claim `subject`, as created, would break the workloads mounting it; each
/// entry is a workload's own finding about the claim.
pub fn claim_breaks_workloads(subject: &ObjectRef, broken: &[Finding]) -> Finding {
    let mut names: Vec<String> = broken.iter().map(|f| f.object.to_string()).collect();
    names.dedup();
    let reasons: Vec<&str> = broken.iter().map(|f| f.message.as_str()).collect();
    let claim = broken.iter().find_map(|f| f.claim.clone());
    let mode = broken.iter().find_map(|f| f.access_mode.clone());
    let mut f = Finding::new(
        RuleId::ClaimBreaksWorkloads,
        subject,
        format!(
            "{subject} is mounted by running workloads that will break with these access modes: {}. {}",
            names.join(", "),
            reasons.join(" ")
        ),
    )
    .fix(
        "Create the claim with an access mode its workloads can share (ReadWriteMany, or ReadOnlyMany \
         mounted readOnly: true), or scale those workloads to one pod before they next start."
            .to_owned(),
    );
    f.claim = claim;
    f.access_mode = mode;
    f
}

/// The finding for an HPA or Scale whose target workload could not be looked up.
pub fn target_lookup_failed(subject: &ObjectRef, target: &str, why: &str) -> Finding {
    Finding::new(
        RuleId::LookupFailed,
        subject,
        format!("volguard could not look up {target}, which {subject} resizes: {why}"),
    )
}
