//! The one decision function: a decoded resource (and, for an UPDATE, the object before it), a lookup, the
//! policies → findings with their actions.
//!
//! `/validate`, `/mutate`, `volguard review` and `volguard check` all call [`evaluate`] or
//! [`evaluate_update`], so one object gets one decision whoever asks, and an update is ratcheted the same
//! way by all of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde::Serialize;

use super::exceptions::{self, Exception};
use crate::domain::access::{Sharing, effective_modes};
use crate::domain::footprint::{self, ClaimFootprint};
use crate::domain::lookup::{Answer, Lookup, VolumeKey};
use crate::domain::policy::{Action, Policy, PolicySet, Target};
use crate::domain::rules::{self, ClaimState, Finding, RuleId, Severity, Subject};
use crate::domain::workload::{
    Footprint, FootprintError, Kind, ObjectRef, PodCount, Resource, ScaleRequest, Workload, WorkloadKind,
};

/// A finding with the action the policies give it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Judged {
    /// What was found.
    #[serde(flatten)]
    pub finding: Finding,
    /// The strictest action of the policies that found it.
    pub action: Action,
    /// The policy that gave that action.
    pub policy: String,
}

/// The overall answer for one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Verdict {
    /// Nothing denies or warns (audit findings may exist).
    Allow,
    /// Allowed, with warnings.
    Warn,
    /// Refused.
    Deny,
}

/// How much of a hazard an object adds to each volume it mounts: what an update may not make worse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exposure {
    /// The most pods the workload runs at once, a rolling update's surge and its autoscalers included.
    pub pods: u32,
    /// Per pod volume (or volumeClaimTemplate) name: its share of that volume.
    pub volumes: BTreeMap<String, VolumeShare>,
}

/// A workload's share of one volume.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumeShare {
    /// The claim or disk.
    pub volume: VolumeKey,
    /// Pods at once that mount it.
    pub pods: u32,
    /// Whether every pod on the volume (every user's) is held on one node.
    pub confined: bool,
    /// Whether a container writes to it.
    pub writable: bool,
}

impl VolumeShare {
    /// Whether this share is no larger a hazard than `old`: the same volume, no more pods, not less held on
    /// one node, not newly written.
    pub(crate) fn no_worse_than(&self, old: &VolumeShare) -> bool {
        self.volume == old.volume
            && self.pods <= old.pods
            && (self.confined || !old.confined)
            && (!self.writable || old.writable)
    }
}

/// The evaluation of one object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Evaluation {
    /// The object under review.
    pub object: ObjectRef,
    /// The names of the policies that selected it (none: not judged).
    pub policies: Vec<String>,
    /// Findings, with actions other than Off, in rule order.
    pub findings: Vec<Judged>,
    /// The controller the object's pods are judged through (a Deployment's ReplicaSet, a CronJob's Job).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judged_through: Option<ObjectRef>,
    /// How many pods the judged workload may run (None when there was nothing to judge).
    #[serde(skip)]
    pub pods: Option<PodCount>,
    /// What the object adds to each volume's hazard, for ratcheting an update.
    #[serde(skip)]
    pub exposure: Exposure,
    /// The rules the object skips (`volguard.io/skip`), honoured, with the reason given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<Exception>,
    /// The kind whose rules judged the object: its own, or the workload a Scale or HPA resizes.
    #[serde(skip)]
    pub judged_kind: Kind,
}

impl Evaluation {
    /// Deny if any finding denies, else Warn if any warns, else Allow.
    pub fn verdict(&self) -> Verdict {
        match self.findings.iter().map(|j| j.action).max() {
            Some(Action::Deny) => Verdict::Deny,
            Some(Action::Warn) => Verdict::Warn,
            _ => Verdict::Allow,
        }
    }

    /// The findings with a given action.
    pub(crate) fn with_action(&self, action: Action) -> impl Iterator<Item = &Judged> {
        self.findings.iter().filter(move |j| j.action == action)
    }
}

/// Why an object could not be judged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The workload's pod count or strategy could not be read.
    #[error(transparent)]
    Footprint(#[from] FootprintError),
}

/// What there is to judge about a resource.
enum Judgeable {
    /// A workload (itself, or resized by an HPA or Scale).
    Pods(Arc<Footprint>),
    /// The workload an HPA or Scale resizes could not be looked up.
    TargetUnknown { target: String, why: String },
    /// A workload (or the target of a Scale or HPA) whose pods a controller volguard reads makes.
    Controlled(ObjectRef),
    /// Nothing: a claim, or an HPA/Scale whose target does not exist or is not a kind volguard reads.
    Nothing,
}

/// The note a ratcheted finding carries.
pub const RATCHET_NOTE: &str = "Allowed because this update does not make an existing violation worse";

/// Judges a resource being created (or, with no older version at hand, as it stands) against every policy
/// that selects it.
pub fn evaluate(
    resource: &Resource,
    lookup: &dyn Lookup,
    policies: &PolicySet,
) -> Result<Evaluation, EvalError> {
    let object = resource.object_ref();
    let (judgeable, target_workload) = judgeable(resource, &object, lookup)?;
    let labels = match &target_workload {
        Some(w) => w.metadata().labels.as_ref(),
        None => resource.metadata().labels.as_ref(),
    };
    let mut kinds = vec![object.kind];
    kinds.extend(target_workload.as_ref().map(|w| Kind::from(w.kind())));
    let target = Target {
        kinds,
        namespace: &object.namespace,
        labels,
    };
    let selecting: Vec<&Policy> = policies.selecting(&target).collect();
    let applied = selecting.iter().map(|p| p.name.clone()).collect();
    let mut findings = Merged::default();
    let mut exposure = Exposure::default();
    let mut judged_through = None;
    match &judgeable {
        Judgeable::Pods(fp) if !selecting.is_empty() => {
            let subject = Subject::resolve(fp, lookup);
            exposure = exposure_of(&subject);
            for policy in &selecting {
                let found = rules::check(&subject, &policy.params, |r| policy.action(r) != Action::Off);
                for f in found {
                    merge(&mut findings, f, policy);
                }
                if let Resource::Workload(Workload::StatefulSet(set)) = resource
                    && !policy.mutation.templates.is_empty()
                    && policy.action(RuleId::StatefulsetPolicyTemplate) != Action::Off
                {
                    let templates = &policy.mutation.templates;
                    for f in rules::policy_templates(set, &object, templates, &policy.name) {
                        merge(&mut findings, f, policy);
                    }
                }
            }
        }
        Judgeable::TargetUnknown { target, why } => {
            for policy in &selecting {
                merge(
                    &mut findings,
                    rules::target_lookup_failed(&object, target, why),
                    policy,
                );
            }
        }
        Judgeable::Controlled(owner) => judged_through = Some(owner.clone()),
        _ => {}
    }
    if let Resource::Claim(claim) = resource {
        judge_claim(claim, &object, lookup, policies, &mut findings);
        judge_claim_class(claim, &object, lookup, &selecting, &mut findings);
    }
    let mut findings = findings.list;
    let annotations = match &target_workload {
        Some(w) => w.metadata().annotations.as_ref(),
        None => resource.metadata().annotations.as_ref(),
    };
    let judged_kind = match &target_workload {
        Some(w) => Kind::from(w.kind()),
        None => object.kind,
    };
    let exceptions = if judged_through.is_none() {
        exceptions::apply(&mut findings, annotations, &object, &selecting)
    } else {
        Vec::new()
    };
    findings.sort_by_key(|j| j.finding.rule);
    let pods = match &judgeable {
        Judgeable::Pods(fp) => Some(fp.pods),
        _ => None,
    };
    Ok(Evaluation {
        object,
        policies: if judged_through.is_some() {
            Vec::new()
        } else {
            applied
        },
        findings,
        judged_through,
        pods,
        exposure,
        exceptions,
        judged_kind,
    })
}

/// The rules that judged an evaluated workload, skipped ones included: a rule here with no finding and no
/// exception passed (what a policy report lists as `pass`). Those some selecting policy has on and that
/// read its kind (a Deployment's rollout, a StatefulSet's templates, for a policy with templates);
/// `lookup-failed` and `invalid-skip` only ever report a problem, never a pass. None for an object whose
/// pods were not judged, or judged through its controller. Worked out on demand: only reports ask.
pub(crate) fn checked_rules(evaluation: &Evaluation, policies: &PolicySet) -> Vec<RuleId> {
    if evaluation.judged_through.is_some() || evaluation.pods.is_none() {
        return Vec::new();
    }
    let kind = evaluation.judged_kind;
    let selecting: Vec<&Policy> = policies
        .policies()
        .iter()
        .filter(|p| evaluation.policies.contains(&p.name))
        .collect();
    let judges = |rule: RuleId, p: &Policy| {
        let about_kind = match rule {
            RuleId::RolloutAttachDeadlock | RuleId::StatelessDeployment => kind == Kind::Deployment,
            RuleId::StatefulsetClaimTemplateModes | RuleId::StatefulsetSharedClaim => {
                kind == Kind::StatefulSet
            }
            RuleId::StatefulsetPolicyTemplate => {
                kind == Kind::StatefulSet && !p.mutation.templates.is_empty()
            }
            RuleId::SharedRwoClaim
            | RuleId::SharedClaimWritable
            | RuleId::MissingClaim
            | RuleId::UnsupportedAccessMode
            | RuleId::UnbindableClaim => true,
            RuleId::LookupFailed | RuleId::InvalidSkip => false,
        };
        about_kind && p.action(rule) != Action::Off
    };
    RuleId::ALL
        .into_iter()
        .filter(|r| selecting.iter().any(|p| judges(*r, p)))
        .collect()
}

/// Judges an UPDATE: `new` as it stands, then ratcheted against `old`. A denial that the old object already
/// had is allowed with a warning when the update does not make any volume's hazard worse (a scale-down, an
/// image or label change); one the update creates or worsens (a pin removed, replicas or surge grown, a
/// volume added or written) stands.
pub(crate) fn evaluate_update(
    new: &Resource,
    old: &Resource,
    lookup: &dyn Lookup,
    policies: &PolicySet,
) -> Result<Evaluation, EvalError> {
    let mut eval = evaluate(new, lookup, policies)?;
    if eval.findings.iter().any(|j| j.action == Action::Deny)
        && let Ok(before) = evaluate(old, lookup, policies)
    {
        ratchet(&mut eval, &before);
    }
    Ok(eval)
}

/// Downgrades to Warn every denial `old` had too, on a volume whose hazard the update does not worsen.
pub fn ratchet(new: &mut Evaluation, old: &Evaluation) {
    let (new_exposure, old_exposure) = (&new.exposure, &old.exposure);
    // A lookup that failed decides nothing: the failure mode answers, update or not; a skip that cannot
    // be honoured is refused whatever the old object carried.
    let ratchetable = |j: &&mut Judged| j.action == Action::Deny && !j.finding.rule.is_meta();
    for j in new.findings.iter_mut().filter(ratchetable) {
        let existed = old.findings.iter().any(|o| {
            let (a, b) = (&o.finding, &j.finding);
            a.rule == b.rule && a.claim == b.claim && a.volume == b.volume && a.container == b.container
        });
        if !existed {
            continue;
        }
        let share = |e: &Exposure| j.finding.volume.as_ref().and_then(|v| e.volumes.get(v)).cloned();
        let no_worse = match (share(new_exposure), share(old_exposure)) {
            (Some(n), Some(o)) => n.no_worse_than(&o),
            (Some(_), None) => false,
            // A finding about the template (or a claim under review): judged on the pods alone.
            (None, _) => new_exposure.pods <= old_exposure.pods,
        };
        if no_worse {
            j.action = Action::Warn;
            j.finding.message = format!("{RATCHET_NOTE} ({}): {}", j.finding.object, j.finding.message);
        }
    }
}

/// What the subject adds to each volume it shares.
fn exposure_of(subject: &Subject<'_>) -> Exposure {
    let fp = subject.footprint;
    let mut volumes = BTreeMap::new();
    for c in &subject.claims {
        let key = match &c.source {
            rules::Source::Disk(d) => VolumeKey::Disk(d.clone()),
            _ => VolumeKey::Claim {
                namespace: fp.workload.namespace.clone(),
                name: c.use_.claim.clone(),
            },
        };
        let (pods, confined) = match &c.users {
            Answer::Found(cf) => {
                let me = &cf.users[0];
                let pods = if me.replica.is_some() { 1 } else { fp.peak() };
                // Whether every pod on the volume, the other users' included, is held on one node.
                let confined = !matches!(cf.spread(), footprint::Spread::Nodes);
                (pods, confined)
            }
            _ => (fp.peak(), fp.placement.node().is_some()),
        };
        volumes.insert(
            c.use_.volume.clone(),
            VolumeShare {
                volume: key,
                pods,
                confined,
                writable: !c.use_.is_read_only(),
            },
        );
    }
    Exposure {
        pods: fp.peak(),
        volumes,
    }
}

/// The findings so far, each once, with an index so that merging n findings costs n lookups, not n².
///
/// The index holds each finding's position and hash, not a copy of it: a finding's message and fix run
/// to a kilobyte, and copying and SipHashing each one was a tenth of a denial's decision. Findings that
/// share a hash are told apart by comparing them (`HashTable::find`).
#[derive(Default)]
struct Merged {
    list: Vec<Judged>,
    /// (hash of a finding, its position in `list`).
    index: hashbrown::HashTable<(u64, usize)>,
    hasher: foldhash::fast::RandomState,
}

impl Merged {
    /// Adds `finding`, whose hash is `hash`, with `action` from `policy`; a finding already made keeps
    /// the stricter action and the policy that gave it.
    fn add(&mut self, finding: Finding, hash: u64, action: Action, policy: &Policy) {
        let list = &mut self.list;
        match self.index.find(hash, |&(_, i)| list[i].finding == finding) {
            Some(&(_, i)) => {
                let j = &mut list[i];
                if action > j.action {
                    j.action = action;
                    j.policy = policy.name.clone();
                }
            }
            None => {
                self.index.insert_unique(hash, (hash, list.len()), |&(h, _)| h);
                list.push(Judged {
                    finding,
                    action,
                    policy: policy.name.clone(),
                });
            }
        }
    }
}

/// Adds a finding with this policy's action, keeping the strictest action for a finding already made.
fn merge(findings: &mut Merged, finding: Finding, policy: &Policy) {
    let mut action = policy.action(finding.rule);
    if finding.severity == Severity::Advisory {
        action = action.min(Action::Warn);
    }
    if action == Action::Off {
        return;
    }
    let hash = std::hash::BuildHasher::hash_one(&findings.hasher, &finding);
    findings.add(finding, hash, action, policy);
}

/// A claim being created or updated: judged with every workload that mounts it, by the sharing rules,
/// each finding with the action the policies selecting those workloads give it, so that a claim created
/// after its workloads is refused exactly when the workloads created after it would have been.
fn judge_claim(
    claim: &PersistentVolumeClaim,
    object: &ObjectRef,
    lookup: &dyn Lookup,
    policies: &PolicySet,
    findings: &mut Merged,
) {
    let key = VolumeKey::Claim {
        namespace: object.namespace.clone(),
        name: object.name.clone(),
    };
    let mut cf = match ClaimFootprint::of_claim(&key, lookup) {
        Answer::Found(cf) => cf,
        Answer::Missing => return,
        Answer::Unknown(why) => {
            let target = Target {
                kinds: vec![object.kind],
                namespace: &object.namespace,
                labels: claim.metadata.labels.as_ref(),
            };
            let msg = format!("volguard could not look up the workloads mounting {object}: {why}");
            let finding = rules::lookup_failed_on(object, msg);
            for policy in policies.selecting(&target) {
                merge(findings, finding.clone(), policy);
            }
            return;
        }
    };
    if cf.users.is_empty() {
        return;
    }
    cf.place(lookup);
    let state = ClaimState::Found {
        claim: Some(Arc::new(claim.clone())),
        sharing: Sharing::of(effective_modes(claim)),
    };
    // What the claim's class can share, for the fix: what every policy says provisioners give.
    let sharable = rules::sharable_modes(claim, lookup, policies.provisioners());
    for rule in rules::SHARING {
        let mut found = Vec::new();
        rules::claim_findings(object, &state, &cf, rule, sharable.as_deref(), &mut found);
        for (finding, workloads) in found {
            for w in &workloads {
                let labels = cf
                    .users
                    .iter()
                    .find(|u| u.workload() == w)
                    .map(|u| &u.footprint.object_labels);
                let target = Target {
                    kinds: vec![object.kind, w.kind],
                    namespace: &object.namespace,
                    labels,
                };
                for policy in policies.selecting(&target) {
                    if policy.action(rule) != Action::Off {
                        merge(findings, finding.clone(), policy);
                    }
                }
            }
        }
    }
}

/// A claim being created or updated, by itself: whether its class can give what it asks for.
fn judge_claim_class(
    claim: &PersistentVolumeClaim,
    object: &ObjectRef,
    lookup: &dyn Lookup,
    selecting: &[&Policy],
    findings: &mut Merged,
) {
    for policy in selecting {
        if policy.action(RuleId::UnsupportedAccessMode) == Action::Off {
            continue;
        }
        if let Some(f) = rules::claim_class_finding(claim, object, lookup, &policy.params.provisioners) {
            merge(findings, f, policy);
        }
    }
}

type Resolved = (Judgeable, Option<Arc<Workload>>);

fn judgeable(resource: &Resource, object: &ObjectRef, lookup: &dyn Lookup) -> Result<Resolved, EvalError> {
    let non_negative = |n: i32| u32::try_from(n).unwrap_or(0);
    match resource {
        Resource::Workload(w) => {
            if let Some(owner) = controller_of(w, lookup) {
                return Ok((Judgeable::Controlled(owner), None));
            }
            let mut fp = Footprint::of(w)?;
            // An autoscaler that cannot be looked up leaves the workload's own replicas.
            let _ = footprint::autoscale(&mut fp, w, lookup);
            Ok((Judgeable::Pods(Arc::new(fp)), None))
        }
        Resource::Claim(_) | Resource::StorageClass(_) => Ok((Judgeable::Nothing, None)),
        Resource::Autoscaler(hpa) => {
            let Some(kind) = WorkloadKind::from_kind_name(&hpa.target.kind) else {
                return Ok((Judgeable::Nothing, None));
            };
            resized(
                lookup,
                object,
                &[kind],
                &hpa.target.name,
                |current| hpa.max_pods(current),
                Autoscalers::Ignore,
            )
        }
        Resource::Scale(ScaleRequest { scale, target_kind }) => {
            let replicas = non_negative(scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
            let name = scale.metadata.name.clone().unwrap_or_default();
            let kinds = match target_kind {
                Some(k) => vec![*k],
                // A Scale in a manifest file does not say what it resizes: try the scalable kinds by name.
                None => WorkloadKind::SCALABLE.to_vec(),
            };
            // The target's autoscalers may take it further than the Scale does.
            resized(lookup, object, &kinds, &name, |_| replicas, Autoscalers::Apply)
        }
    }
}

/// The controller a workload's pods are judged through, when one volguard reads owns it and exists.
fn controller_of(workload: &Workload, lookup: &dyn Lookup) -> Option<ObjectRef> {
    let owner = workload.controller()?;
    let kind = WorkloadKind::from_kind_name(&owner.kind)?;
    match lookup.is_controlled(workload) {
        Answer::Found(true) => Some(ObjectRef {
            kind: kind.into(),
            namespace: crate::domain::workload::namespace_of(workload.metadata()).to_owned(),
            name: owner.name.clone(),
        }),
        _ => None,
    }
}

/// Whether a resized workload's own autoscalers still apply: after a Scale they do (they may take it
/// further); for an HPA the HPA itself is what resizes it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Autoscalers {
    Apply,
    Ignore,
}

fn resized(
    lookup: &dyn Lookup,
    object: &ObjectRef,
    kinds: &[WorkloadKind],
    name: &str,
    replicas: impl Fn(u32) -> u32,
    autoscalers: Autoscalers,
) -> Result<Resolved, EvalError> {
    for kind in kinds {
        match lookup.workload(*kind, &object.namespace, name) {
            Answer::Found(w) => {
                if let Some(owner) = controller_of(&w, lookup) {
                    return Ok((Judgeable::Controlled(owner), Some(w)));
                }
                let fp = Footprint::of(&w)?;
                let current = match fp.pods {
                    PodCount::Exactly(n) => n,
                    _ => 0,
                };
                let mut fp = fp.resized(object.clone(), replicas(current));
                if autoscalers == Autoscalers::Apply {
                    // An autoscaler that cannot be looked up leaves the replicas resized.
                    let _ = footprint::autoscale(&mut fp, &w, lookup);
                }
                return Ok((Judgeable::Pods(Arc::new(fp)), Some(w)));
            }
            Answer::Unknown(why) => {
                let target = format!("{kind} {}/{name}", object.namespace);
                return Ok((Judgeable::TargetUnknown { target, why }, None));
            }
            Answer::Missing => {}
        }
    }
    Ok((Judgeable::Nothing, None))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::lookup::Bundle;
    use crate::domain::policy::{PolicySet, load_str};
    use crate::domain::workload::{Decoded, decode};

    fn policies(text: &str) -> PolicySet {
        PolicySet::new(load_str(text, "test").unwrap())
    }

    #[test]
    fn a_template_rule_is_checked_only_where_one_policy_has_both_templates_and_the_rule_on() {
        let Ok(Decoded::Resource(set)) = decode(serde_json::json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "namespace": "db"},
            "spec": {"serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}},
                    "spec": {"containers": [{"name": "postgres", "image": "postgres"}]}}}
        })) else {
            panic!("decodes")
        };
        let templates = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: templates\n\
                         spec:\n  rules:\n    statefulset-policy-template: {action: Off}\n  mutate:\n    \
                         claimTemplates:\n      - name: backup\n        accessModes: [ReadWriteOnce]\n        \
                         storage: 5Gi\n        mount:\n          mountPath: /backup\n";
        let plain =
            "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: plain\nspec: {}\n";
        let checked = |text: &str| {
            let set_of = policies(text);
            let evaluation = evaluate(&set, &Bundle::default(), &set_of).unwrap();
            checked_rules(&evaluation, &set_of).contains(&RuleId::StatefulsetPolicyTemplate)
        };
        // One policy has the templates but the rule off, the other the rule on but no templates.
        assert!(!checked(&format!("{templates}---\n{plain}")));
        // One policy with both.
        assert!(checked(&templates.replace(
            "statefulset-policy-template: {action: Off}",
            "statefulset-policy-template: {action: Deny}"
        )));
    }

    #[test]
    fn a_scale_is_judged_at_the_most_pods_the_targets_autoscaler_allows() {
        let resource = |v: serde_json::Value| match decode(v) {
            Ok(Decoded::Resource(r)) => *r,
            other => panic!("{other:?}"),
        };
        let claim = resource(
            serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        );
        let web = resource(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "containers": [{"name": "web", "image": "nginx",
                        "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}}}));
        let hpa = resource(
            serde_json::json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                "minReplicas": 1, "maxReplicas": 4}}),
        );
        let scale = resource(
            serde_json::json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 1}}),
        );
        let set = PolicySet::builtin().unwrap();
        let shared = |lookup: &Bundle| -> Vec<String> {
            evaluate(&scale, lookup, &set)
                .unwrap()
                .findings
                .iter()
                .filter(|j| j.finding.rule == RuleId::SharedRwoClaim)
                .map(|j| j.finding.message.clone())
                .collect()
        };
        // One replica and no autoscaler: nothing shared.
        assert_eq!(
            shared(&[&claim, &web].into_iter().collect()),
            Vec::<String>::new()
        );
        // The autoscaler may take the Deployment to 4 pods, whatever the Scale says.
        let found = shared(&[&claim, &web, &hpa].into_iter().collect());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "Scale shop/web lets Deployment shop/web run 4 pods that all mount claim \"data\""
            ),
            "{}",
            found[0]
        );
    }

    #[test]
    fn merging_keeps_each_finding_once_with_the_strictest_action_even_when_hashes_collide() {
        let object = ObjectRef {
            kind: crate::domain::workload::Kind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
        };
        let finding = |msg: &str| Finding::new(RuleId::SharedRwoClaim, &object, msg.into());
        let (a, b, c) = (finding("a"), finding("b"), finding("c"));
        // Three different findings under one hash, as a collision would leave them: each kept once, each
        // with the strictest action it was given.
        let set = policies(
            "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: warns\n\
             spec:\n  rules:\n    shared-rwo-claim: {action: Warn}\n---\n\
             apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: denies\nspec: {}\n",
        );
        let [warns, denies] = set.policies() else {
            panic!("two policies")
        };
        let mut merged = Merged::default();
        for (f, action, p) in [
            (&a, Action::Warn, warns),
            (&b, Action::Warn, warns),
            (&b, Action::Deny, denies),
            (&c, Action::Warn, warns),
            (&a, Action::Warn, warns),
            (&b, Action::Warn, warns),
        ] {
            merged.add(f.clone(), 7, action, p);
        }
        let got: Vec<_> = merged
            .list
            .iter()
            .map(|j| (j.finding.message.as_str(), j.action, j.policy.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("a", Action::Warn, "warns"),
                ("b", Action::Deny, "denies"),
                ("c", Action::Warn, "warns")
            ]
        );

        // Through merge: the same finding from a Warn and a Deny policy is one Deny finding.
        let mut merged = Merged::default();
        for (f, p) in [(&a, warns), (&b, warns), (&a, denies), (&a, warns)] {
            merge(&mut merged, f.clone(), p);
        }
        let got: Vec<_> = merged
            .list
            .iter()
            .map(|j| (j.finding.message.as_str(), j.action, j.policy.as_str()))
            .collect();
        assert_eq!(got, [("a", Action::Deny, "denies"), ("b", Action::Warn, "warns")]);
    }
}
