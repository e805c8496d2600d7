//! Exceptions: an object that skips named rules with the `volguard.io/skip` annotation, saying why in
//! `volguard.io/skip-reason`.
//!
//! Pure: the annotations and the selecting policies in, the findings that stand and the skips honoured
//! out. Every caller (`/validate`, `/mutate`, `check`, `audit`) goes through [`crate::decision::evaluate`],
//! which applies them, so a skip means the same thing wherever the object is judged. A skip is honoured
//! only where every policy selecting the object allows it (`allowExceptions`, per policy and per rule); a
//! skip without a reason, or naming a rule that does not exist or cannot be skipped, is itself a finding
//! (`invalid-skip`, always Deny).

use std::collections::BTreeMap;

use serde::Serialize;

use super::Judged;
use crate::domain::policy::Policy;
use crate::domain::rules::{Finding, RuleId};
use crate::domain::workload::ObjectRef;

/// The annotation listing the rules an object skips, comma-separated: `shared-rwo-claim,missing-claim`.
pub const SKIP_ANNOTATION: &str = "volguard.io/skip";
/// The annotation saying why; required with [`SKIP_ANNOTATION`].
pub const SKIP_REASON_ANNOTATION: &str = "volguard.io/skip-reason";

/// A rule an object skips, honoured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exception {
    /// The rule skipped.
    pub rule: RuleId,
    /// The object's `volguard.io/skip-reason`.
    pub reason: String,
}

/// What an object's annotations ask for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Requested {
    /// The rules named, in the order written, each once.
    pub rules: Vec<RuleId>,
    /// The reason, trimmed (None when absent or blank).
    pub reason: Option<String>,
    /// What is wrong with the annotations, one sentence each.
    pub problems: Vec<String>,
}

/// Reads the skip annotations of an object.
pub(crate) fn requested(annotations: Option<&BTreeMap<String, String>>) -> Requested {
    let mut out = Requested::default();
    let Some(annotations) = annotations else {
        return out;
    };
    let Some(value) = annotations.get(SKIP_ANNOTATION) else {
        return out;
    };
    out.reason = annotations
        .get(SKIP_REASON_ANNOTATION)
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match RuleId::ALL.iter().find(|r| r.as_str() == name) {
            Some(rule) if rule.is_meta() => out.problems.push(format!(
                "{SKIP_ANNOTATION} names `{name}`, which cannot be skipped"
            )),
            Some(rule) => {
                if !out.rules.contains(rule) {
                    out.rules.push(*rule);
                }
            }
            None => out.problems.push(format!(
                "{SKIP_ANNOTATION} names `{name}`, which is not a volguard rule (rules: {})",
                skippable().join(", ")
            )),
        }
    }
    if out.rules.is_empty() && out.problems.is_empty() {
        out.problems
            .push(format!("{SKIP_ANNOTATION} is set but names no rule"));
    }
    if out.reason.is_none() {
        out.problems.push(format!(
            "{SKIP_ANNOTATION} needs a {SKIP_REASON_ANNOTATION} annotation saying why the rule does not apply"
        ));
    }
    out
}

fn skippable() -> Vec<&'static str> {
    RuleId::ALL
        .iter()
        .filter(|r| !r.is_meta())
        .map(|r| r.as_str())
        .collect()
}

/// The rules an object validly skips under `policies` (the ones selecting it): what the repairs leave
/// alone. Empty when the annotations have a problem.
pub(crate) fn honoured(annotations: Option<&BTreeMap<String, String>>, policies: &[&Policy]) -> Vec<RuleId> {
    let asked = requested(annotations);
    if !asked.problems.is_empty() {
        return Vec::new();
    }
    asked
        .rules
        .into_iter()
        .filter(|r| policies.iter().all(|p| p.allows_exception(*r)))
        .collect()
}

/// Applies an object's skip annotations to its findings: the findings of a skipped rule are taken out
/// (and the skip returned), unless a selecting policy does not allow it, in which case they stand with a
/// note saying so. A malformed skip adds an `invalid-skip` finding (Deny) and skips nothing.
pub(crate) fn apply(
    findings: &mut Vec<Judged>,
    annotations: Option<&BTreeMap<String, String>>,
    object: &ObjectRef,
    policies: &[&Policy],
) -> Vec<Exception> {
    let asked = requested(annotations);
    // Exceptions, like rules, are for objects a policy judges.
    let Some(first) = policies.first() else {
        return Vec::new();
    };
    if !asked.problems.is_empty() {
        let message = format!("{}; no rule is skipped", asked.problems.join("; "));
        findings.push(Judged {
            finding: Finding {
                fix: Some(format!(
                    "metadata:\n  annotations:\n    {SKIP_ANNOTATION}: {}\n    {SKIP_REASON_ANNOTATION}: \"why the rule does not apply here\"",
                    match asked.rules.first() {
                        Some(r) => r.as_str(),
                        None => RuleId::SharedRwoClaim.as_str(),
                    }
                )),
                ..Finding::new(RuleId::InvalidSkip, object, message)
            },
            action: first.action(RuleId::InvalidSkip),
            policy: first.name.clone(),
        });
        return Vec::new();
    }
    let reason = asked.reason.unwrap_or_default();
    let mut skipped = Vec::new();
    for rule in asked.rules {
        match policies.iter().find(|p| !p.allows_exception(rule)) {
            Some(refusing) => {
                for j in findings.iter_mut().filter(|j| j.finding.rule == rule) {
                    j.finding.message.push_str(&format!(
                        " ({SKIP_ANNOTATION} does not apply: policy {} allows no exception to {rule} here)",
                        refusing.name
                    ));
                }
            }
            None => {
                findings.retain(|j| j.finding.rule != rule);
                skipped.push(Exception {
                    rule,
                    reason: reason.clone(),
                });
            }
        }
    }
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::{Action, load_str};
    use crate::domain::workload::Kind;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn object() -> ObjectRef {
        ObjectRef {
            kind: Kind::Deployment,
            namespace: "shop".into(),
            name: "web".into(),
        }
    }

    fn judged(rule: RuleId) -> Judged {
        Judged {
            finding: Finding {
                volume: Some("data".into()),
                claim: Some("data".into()),
                ..Finding::new(rule, &object(), "broken".into())
            },
            action: Action::Deny,
            policy: "default".into(),
        }
    }

    fn policy(spec: &str) -> Policy {
        let text = format!(
            "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: p\nspec:\n{spec}"
        );
        load_str(&text, "p.yaml").unwrap().remove(0)
    }

    #[test]
    fn no_annotation_asks_for_nothing() {
        assert_eq!(requested(None), Requested::default());
        assert_eq!(requested(Some(&annotations(&[("a", "b")]))), Requested::default());
    }

    #[test]
    fn rules_are_read_trimmed_deduplicated_and_in_order() {
        let a = annotations(&[
            (
                SKIP_ANNOTATION,
                " missing-claim , shared-rwo-claim,missing-claim,",
            ),
            (SKIP_REASON_ANNOTATION, "  the claim is RWX in practice "),
        ]);
        assert_eq!(
            requested(Some(&a)),
            Requested {
                rules: vec![RuleId::MissingClaim, RuleId::SharedRwoClaim],
                reason: Some("the claim is RWX in practice".into()),
                problems: vec![],
            }
        );
    }

    #[test]
    fn a_skip_without_reason_or_with_an_unknown_rule_is_a_problem() {
        let a = annotations(&[(SKIP_ANNOTATION, "shared-rwo-claim,no-such-rule,lookup-failed")]);
        let asked = requested(Some(&a));
        assert_eq!(asked.rules, vec![RuleId::SharedRwoClaim]);
        assert_eq!(
            asked.problems,
            vec![
                "volguard.io/skip names `no-such-rule`, which is not a volguard rule (rules: shared-rwo-claim, \
                 rollout-attach-deadlock, statefulset-claim-template-modes, statefulset-shared-claim, \
                 statefulset-policy-template, shared-claim-writable, stateless-deployment, missing-claim, \
                 unsupported-access-mode, unbindable-claim)"
                    .to_owned(),
                "volguard.io/skip names `lookup-failed`, which cannot be skipped".to_owned(),
                "volguard.io/skip needs a volguard.io/skip-reason annotation saying why the rule does not apply"
                    .to_owned(),
            ]
        );
        let blank = annotations(&[(SKIP_ANNOTATION, " , "), (SKIP_REASON_ANNOTATION, "x")]);
        assert_eq!(
            requested(Some(&blank)).problems,
            vec!["volguard.io/skip is set but names no rule".to_owned()]
        );
    }

    #[test]
    fn an_allowed_skip_takes_the_rules_findings_out_and_reports_the_reason() {
        let p = policy("  rules: {}\n");
        let mut findings = vec![judged(RuleId::SharedRwoClaim), judged(RuleId::MissingClaim)];
        let a = annotations(&[
            (SKIP_ANNOTATION, "shared-rwo-claim"),
            (SKIP_REASON_ANNOTATION, "one node cluster"),
        ]);
        let skipped = apply(&mut findings, Some(&a), &object(), &[&p]);
        assert_eq!(
            skipped,
            vec![Exception {
                rule: RuleId::SharedRwoClaim,
                reason: "one node cluster".into()
            }]
        );
        assert_eq!(
            findings.iter().map(|j| j.finding.rule).collect::<Vec<_>>(),
            [RuleId::MissingClaim]
        );
    }

    #[test]
    fn a_policy_that_allows_no_exception_keeps_the_finding_and_says_why() {
        let strict = policy("  allowExceptions: false\n");
        let per_rule = policy("  rules:\n    shared-rwo-claim: {allowExceptions: false}\n");
        let a = annotations(&[
            (SKIP_ANNOTATION, "shared-rwo-claim,missing-claim"),
            (SKIP_REASON_ANNOTATION, "why"),
        ]);
        for (p, skipped) in [(&strict, vec![]), (&per_rule, vec![RuleId::MissingClaim])] {
            let mut findings = vec![judged(RuleId::SharedRwoClaim), judged(RuleId::MissingClaim)];
            let got = apply(&mut findings, Some(&a), &object(), &[p]);
            assert_eq!(got.iter().map(|e| e.rule).collect::<Vec<_>>(), skipped);
            assert_eq!(
                findings[0].finding.message,
                "broken (volguard.io/skip does not apply: policy p allows no exception to shared-rwo-claim here)"
            );
            assert_eq!(honoured(Some(&a), &[p]), skipped);
        }
    }

    #[test]
    fn a_malformed_skip_is_a_deny_finding_and_skips_nothing() {
        let p = policy("  rules: {}\n");
        let mut findings = vec![judged(RuleId::SharedRwoClaim)];
        let a = annotations(&[(SKIP_ANNOTATION, "shared-rwo-claim")]);
        assert!(apply(&mut findings, Some(&a), &object(), &[&p]).is_empty());
        assert_eq!(findings.len(), 2);
        let invalid = &findings[1];
        assert_eq!(
            (invalid.finding.rule, invalid.action),
            (RuleId::InvalidSkip, Action::Deny)
        );
        assert_eq!(
            invalid.finding.message,
            "volguard.io/skip needs a volguard.io/skip-reason annotation saying why the rule does not apply; \
             no rule is skipped"
        );
        assert!(honoured(Some(&a), &[&p]).is_empty());
    }

    #[test]
    fn an_object_no_policy_selects_gets_no_exception_finding() {
        let mut findings = Vec::new();
        let a = annotations(&[(SKIP_ANNOTATION, "bogus")]);
        assert!(apply(&mut findings, Some(&a), &object(), &[]).is_empty());
        assert!(findings.is_empty());
    }
}
