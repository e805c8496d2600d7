//! Policy reports: `volguard audit --write-reports` keeps one report per namespace of what the decision
//! found in its workloads, where Policy Reporter, dashboards and alerts read them.
//!
//! The `wgpolicyk8s.io/v1alpha2` `PolicyReport` by default, the successor `openreports.io/v1alpha1`
//! `Report` on request: the same body. [`build`] turns evaluations into a report (pure, ordered, with no
//! timestamp, so the same findings make the same object and a server-side apply of it changes nothing);
//! [`write`](write::write) applies them and deletes those of namespaces with nothing left to report.
//! See <https://github.com/kubernetes-sigs/wg-policy-prototypes/tree/master/policy-report> and
//! <https://github.com/openreports/reports-api>.

mod write;

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::decision::{Evaluation, Judged};
use crate::domain::policy::Action;
use crate::domain::rules::{RuleId, Severity};
use crate::domain::workload::{Workload, api_version};

pub use write::{FIELD_MANAGER, WriteError, WriteLimits, Written, write};

/// The name of volguard's report in each namespace.
pub const REPORT_NAME: &str = "volguard";
/// The `policy` of every result.
pub const POLICY: &str = "volguard";
/// The label on every report volguard writes, and what it lists to find stale ones.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "volguard");
/// The annotation saying how many results were left out of a report over the result limit.
pub const TRUNCATED_ANNOTATION: &str = "volguard.io/results-left-out";
/// Characters of a result's message kept.
const MESSAGE_CHARS: usize = 2048;
/// Bytes of results (as JSON) kept in one report: etcd refuses an object over about 1.5 MB.
const MAX_RESULT_BYTES: usize = 1 << 20;

/// Which report API to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportApi {
    /// `wgpolicyk8s.io/v1alpha2` PolicyReport (what Kyverno, Policy Reporter and most tools read).
    #[value(name = "wgpolicyk8s")]
    Wgpolicyk8s,
    /// `openreports.io/v1alpha1` Report, the PolicyReport's successor.
    #[value(name = "openreports")]
    Openreports,
}

impl ReportApi {
    /// (group, version, kind, plural).
    pub fn gvk(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            ReportApi::Wgpolicyk8s => ("wgpolicyk8s.io", "v1alpha2", "PolicyReport", "policyreports"),
            ReportApi::Openreports => ("openreports.io", "v1alpha1", "Report", "reports"),
        }
    }
}

/// A namespace's report, as applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// `wgpolicyk8s.io/v1alpha2` or `openreports.io/v1alpha1`.
    pub api_version: String,
    /// `PolicyReport` or `Report`.
    pub kind: String,
    /// Name [`REPORT_NAME`], the namespace, the [`MANAGED_BY`] label.
    pub metadata: ObjectMeta,
    /// Counts of the results by outcome (of every result, those left out over the limit included).
    pub summary: ReportSummary,
    /// One per object and rule.
    pub results: Vec<ReportResult>,
}

/// `summary`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSummary {
    /// Rules that found nothing.
    pub pass: u32,
    /// Findings denied (or only audited: the policy is not enforced, the object still fails it).
    pub fail: u32,
    /// Findings warned.
    pub warn: u32,
    /// What could not be judged (a lookup that failed).
    pub error: u32,
    /// Rules skipped with `volguard.io/skip`.
    pub skip: u32,
}

/// A result's outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The rule found nothing.
    Pass,
    /// Denied or audited.
    Fail,
    /// Warned.
    Warn,
    /// Not decidable.
    Error,
    /// Skipped with a reason.
    Skip,
}

/// One result: an object and a rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResult {
    /// Always [`POLICY`].
    pub policy: String,
    /// The rule id.
    pub rule: String,
    /// The outcome.
    pub result: Outcome,
    /// `high` for a violation, `low` for an advisory finding; none for a pass or a skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// What is wrong (or the skip's reason).
    pub message: String,
    /// Whether it counts toward compliance: every result but a skip.
    pub scored: bool,
    /// Always `volguard`.
    pub source: String,
    /// `volumes`.
    pub category: String,
    /// The object judged.
    pub resources: Vec<ResourceRef>,
    /// The action and the volguard policy that gave it, and the claim, volume, container and access mode
    /// concerned, or the skip's reason.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
}

/// An object reference (`corev1.ObjectReference`'s fields that a report uses).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// Its uid, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// The reference to a judged workload.
pub fn reference(workload: &Workload) -> ResourceRef {
    let object = workload.object_ref();
    let info = object.kind.info();
    let version = info.watch.or(info.versions.first().copied()).unwrap_or("v1");
    ResourceRef {
        api_version: api_version(info.group, version),
        kind: object.kind.to_string(),
        namespace: object.namespace,
        name: object.name,
        uid: workload.metadata().uid.clone(),
    }
}

/// The outcome a finding is reported with (what `volguard_audit_findings` counts too).
pub(crate) fn outcome(j: &Judged) -> Outcome {
    if j.finding.rule == RuleId::LookupFailed {
        return Outcome::Error;
    }
    match j.action {
        Action::Warn => Outcome::Warn,
        _ => Outcome::Fail,
    }
}

fn capped(message: &str) -> String {
    match message.char_indices().nth(MESSAGE_CHARS) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message.to_owned(),
    }
}

/// A result of `rule` on `object`, with no severity or properties yet.
fn result(object: &ResourceRef, rule: RuleId, result: Outcome, message: String) -> ReportResult {
    ReportResult {
        policy: POLICY.to_owned(),
        rule: rule.as_str().to_owned(),
        result,
        severity: None,
        message,
        scored: true,
        source: "volguard".to_owned(),
        category: "volumes".to_owned(),
        resources: vec![object.clone()],
        properties: BTreeMap::new(),
    }
}

/// The results of one object, in rule order: its findings, its skips, and a pass for every rule that
/// judged it and found nothing.
pub fn results(
    object: &ResourceRef,
    evaluation: &Evaluation,
    policies: &crate::domain::policy::PolicySet,
) -> Vec<ReportResult> {
    let mut out: Vec<(RuleId, ReportResult)> = Vec::new();
    for j in &evaluation.findings {
        let f = &j.finding;
        let mut r = result(object, f.rule, outcome(j), capped(&f.message));
        r.severity = Some(
            match f.severity {
                Severity::Violation => "high",
                Severity::Advisory => "low",
            }
            .to_owned(),
        );
        let p = &mut r.properties;
        p.insert("action".into(), format!("{:?}", j.action));
        p.insert("volguardPolicy".into(), j.policy.clone());
        for (key, value) in [
            ("claim", &f.claim),
            ("volume", &f.volume),
            ("container", &f.container),
            ("accessMode", &f.access_mode),
        ] {
            if let Some(v) = value {
                p.insert(key.into(), v.clone());
            }
        }
        out.push((f.rule, r));
    }
    for e in &evaluation.exceptions {
        let mut r = result(
            object,
            e.rule,
            Outcome::Skip,
            format!("skipped (volguard.io/skip): {}", e.reason),
        );
        r.scored = false;
        r.properties.insert("reason".into(), e.reason.clone());
        out.push((e.rule, r));
    }
    for rule in &crate::decision::checked_rules(evaluation, policies) {
        let found = evaluation.findings.iter().any(|j| j.finding.rule == *rule);
        let skipped = evaluation.exceptions.iter().any(|e| e.rule == *rule);
        if !found && !skipped {
            out.push((
                *rule,
                result(object, *rule, Outcome::Pass, "no finding".to_owned()),
            ));
        }
    }
    // RuleId's order is RuleId::ALL's (a test holds it to that); the sort is stable.
    out.sort_by_key(|(rule, _)| *rule);
    out.into_iter().map(|(_, r)| r).collect()
}

/// The result of an object that could not be judged.
pub fn error_result(object: &ResourceRef, message: &str) -> ReportResult {
    ReportResult {
        severity: Some("high".to_owned()),
        ..result(
            object,
            RuleId::LookupFailed,
            Outcome::Error,
            capped(&format!("volguard could not judge it: {message}")),
        )
    }
}

/// The report of one namespace from its objects' results (in the order given), keeping at most
/// `max_results` results and [`MAX_RESULT_BYTES`] of them; the summary counts them all.
pub fn build(
    api: ReportApi,
    namespace: &str,
    results: Vec<ReportResult>,
    max_results: usize,
) -> PolicyReport {
    let (group, version, kind, _) = api.gvk();
    let mut summary = ReportSummary::default();
    for r in &results {
        let n = match r.result {
            Outcome::Pass => &mut summary.pass,
            Outcome::Fail => &mut summary.fail,
            Outcome::Warn => &mut summary.warn,
            Outcome::Error => &mut summary.error,
            Outcome::Skip => &mut summary.skip,
        };
        *n = n.saturating_add(1);
    }
    let mut results = results;
    let mut annotations = BTreeMap::new();
    let sizes: Vec<usize> = results
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(MAX_RESULT_BYTES, |v| v.len()))
        .collect();
    if results.len() > max_results || sizes.iter().sum::<usize>() > MAX_RESULT_BYTES {
        // Failures first, so what is left out is what matters least.
        let rank = |r: &ReportResult| match r.result {
            Outcome::Fail | Outcome::Error => 0,
            Outcome::Warn => 1,
            Outcome::Skip => 2,
            Outcome::Pass => 3,
        };
        let mut ranked: Vec<(ReportResult, usize)> = results.into_iter().zip(sizes).collect();
        ranked.sort_by_key(|(r, _)| rank(r));
        let total = ranked.len();
        let mut bytes = 0;
        results = ranked
            .into_iter()
            .take(max_results)
            .take_while(|(_, size)| {
                bytes += size;
                bytes <= MAX_RESULT_BYTES
            })
            .map(|(r, _)| r)
            .collect();
        annotations.insert(
            TRUNCATED_ANNOTATION.to_owned(),
            (total - results.len()).to_string(),
        );
    }
    PolicyReport {
        api_version: api_version(group, version),
        kind: kind.to_owned(),
        metadata: ObjectMeta {
            name: Some(REPORT_NAME.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_owned(),
                MANAGED_BY.1.to_owned(),
            )])),
            // An apply without the annotation removes one an earlier, truncated apply set.
            annotations: (!annotations.is_empty()).then_some(annotations),
            ..ObjectMeta::default()
        },
        summary,
        results,
    }
}

#[cfg(test)]
mod tests;
