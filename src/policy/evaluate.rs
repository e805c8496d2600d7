//! The one decision function: a decoded resource, a lookup, the policies → findings with their actions.
//!
//! `/validate`, `/mutate`, `volguard review` and `volguard check` all call [`evaluate`], so one object
//! gets one decision whoever asks.

use std::sync::Arc;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use serde::Serialize;

use super::{Action, Policy, PolicySet, Target};
use crate::lookup::{Answer, Lookup};
use crate::rules::{self, Finding, RuleId, Severity, Subject};
use crate::workload::{
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
    /// How many pods the judged workload may run (None when there was nothing to judge).
    #[serde(skip)]
    pub pods: Option<PodCount>,
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
    pub fn with_action(&self, action: Action) -> impl Iterator<Item = &Judged> {
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
    Pods(Box<Footprint>),
    /// The workload an HPA or Scale resizes could not be looked up.
    TargetUnknown { target: String, why: String },
    /// Nothing: a claim, or an HPA/Scale whose target does not exist or is not a kind volguard reads.
    Nothing,
}

/// Judges one resource against every policy that selects it.
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
    let mut findings: Vec<Judged> = Vec::new();
    match &judgeable {
        Judgeable::Pods(fp) if !selecting.is_empty() => {
            let subject = Subject::resolve(fp, lookup);
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
        _ => {}
    }
    if let Resource::Claim(claim) = resource {
        claim_breaks_workloads(claim, &object, lookup, policies, &mut findings);
    }
    findings.sort_by_key(|j| RuleId::ALL.iter().position(|r| *r == j.finding.rule));
    let pods = match &judgeable {
        Judgeable::Pods(fp) => Some(fp.pods),
        _ => None,
    };
    Ok(Evaluation {
        object,
        policies: applied,
        findings,
        pods,
    })
}

/// Adds a finding with this policy's action, keeping the strictest action for a finding already made.
fn merge(findings: &mut Vec<Judged>, finding: Finding, policy: &Policy) {
    let mut action = policy.action(finding.rule);
    if finding.severity == Severity::Advisory {
        action = action.min(Action::Warn);
    }
    if action == Action::Off {
        return;
    }
    match findings.iter_mut().find(|j| j.finding == finding) {
        Some(j) if action > j.action => {
            j.action = action;
            j.policy = policy.name.clone();
        }
        Some(_) => {}
        None => findings.push(Judged {
            finding,
            action,
            policy: policy.name.clone(),
        }),
    }
}

/// A claim being created or updated: the sharing rules of every workload that mounts it, re-run with the
/// claim as it will be. A PVC UPDATE cannot change access modes, but a claim deleted and created again
/// under the same name can come back ReadWriteOnce under a Deployment of three.
fn claim_breaks_workloads(
    claim: &PersistentVolumeClaim,
    object: &ObjectRef,
    lookup: &dyn Lookup,
    policies: &PolicySet,
    findings: &mut Vec<Judged>,
) {
    let name = object.name.as_str();
    let mounting = lookup.workloads_mounting(&object.namespace, name);
    if mounting.is_empty() {
        return;
    }
    let as_sent = WithClaim {
        base: lookup,
        namespace: &object.namespace,
        name,
        claim: Arc::new(claim.clone()),
    };
    let mut broken: Vec<(&Policy, Vec<Finding>)> = Vec::new();
    for workload in &mounting {
        let Ok(footprint) = Footprint::of(workload) else {
            continue;
        };
        let subject = Subject::resolve(&footprint, &as_sent);
        let target = Target {
            kinds: vec![object.kind, Kind::from(workload.kind())],
            namespace: &object.namespace,
            labels: workload.metadata().labels.as_ref(),
        };
        for policy in policies.policies().iter().filter(|p| p.selects(&target)) {
            if policy.action(RuleId::ClaimBreaksWorkloads) == Action::Off {
                continue;
            }
            let found = rules::check(&subject, &policy.params, |r| {
                rules::SHARING.contains(&r) && policy.action(r) != Action::Off
            });
            // Advisory findings (a pinned workload) still run today: nothing breaks.
            let found = found
                .into_iter()
                .filter(|f| f.severity == Severity::Violation && f.claim.as_deref() == Some(name));
            match broken.iter_mut().find(|(p, _)| std::ptr::eq(*p, policy)) {
                Some((_, fs)) => fs.extend(found),
                None => broken.push((policy, found.collect())),
            }
        }
    }
    for (policy, found) in broken {
        if !found.is_empty() {
            merge(findings, rules::claim_breaks_workloads(object, &found), policy);
        }
    }
}

/// A lookup that answers one claim as the review sends it.
struct WithClaim<'a> {
    base: &'a dyn Lookup,
    namespace: &'a str,
    name: &'a str,
    claim: Arc<PersistentVolumeClaim>,
}

impl Lookup for WithClaim<'_> {
    fn claim(&self, namespace: &str, name: &str) -> Answer<Arc<PersistentVolumeClaim>> {
        if namespace == self.namespace && name == self.name {
            Answer::Found(Arc::clone(&self.claim))
        } else {
            self.base.claim(namespace, name)
        }
    }

    fn workload(&self, kind: WorkloadKind, namespace: &str, name: &str) -> Answer<Arc<Workload>> {
        self.base.workload(kind, namespace, name)
    }

    fn scope(&self) -> &'static str {
        self.base.scope()
    }
}

type Resolved = (Judgeable, Option<Arc<Workload>>);

fn judgeable(resource: &Resource, object: &ObjectRef, lookup: &dyn Lookup) -> Result<Resolved, EvalError> {
    let non_negative = |n: i32| u32::try_from(n).unwrap_or(0);
    match resource {
        Resource::Workload(w) => Ok((Judgeable::Pods(Box::new(Footprint::of(w)?)), None)),
        Resource::Claim(_) => Ok((Judgeable::Nothing, None)),
        Resource::Autoscaler(hpa) => {
            let Some(kind) = WorkloadKind::from_kind_name(&hpa.target.kind) else {
                return Ok((Judgeable::Nothing, None));
            };
            resized(
                lookup,
                object,
                &[kind],
                &hpa.target.name,
                non_negative(hpa.max_replicas),
            )
        }
        Resource::Scale(ScaleRequest { scale, target_kind }) => {
            let replicas = non_negative(scale.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0));
            let name = scale.metadata.name.clone().unwrap_or_default();
            match target_kind {
                Some(k) => resized(lookup, object, &[*k], &name, replicas),
                // A Scale in a manifest file does not say what it resizes: try the scalable kinds by name.
                None => resized(
                    lookup,
                    object,
                    &[
                        WorkloadKind::Deployment,
                        WorkloadKind::StatefulSet,
                        WorkloadKind::ReplicaSet,
                    ],
                    &name,
                    replicas,
                ),
            }
        }
    }
}

fn resized(
    lookup: &dyn Lookup,
    object: &ObjectRef,
    kinds: &[WorkloadKind],
    name: &str,
    replicas: u32,
) -> Result<Resolved, EvalError> {
    for kind in kinds {
        match lookup.workload(*kind, &object.namespace, name) {
            Answer::Found(w) => {
                let fp = Footprint::of(&w)?.resized(object.clone(), replicas);
                return Ok((Judgeable::Pods(Box::new(fp)), Some(w)));
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
