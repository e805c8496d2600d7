//! Turning an evaluation into an AdmissionResponse: a denial message listing every finding, warnings
//! short enough for kubectl, and audit annotations keyed by rule id.
//!
//! The validating path can never carry a patch: [`for_validate`] has no patch parameter; only
//! [`for_mutate`] adds one.
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#response>.

use std::collections::HashMap;

use base64::Engine as _;
use kube::core::Status;
use kube::core::admission::{AdmissionResponse, SerializePatchError};
use serde::Serialize;

use super::REVIEW_API_VERSION;

use crate::decision::mutate::Mutation;
use crate::decision::{Evaluation, Judged};
use crate::domain::policy::Action;

/// The audit annotation that lists what the mutating webhook changed.
pub(crate) const MUTATIONS_ANNOTATION: &str = "mutations";
/// The audit annotation listing the rules skipped with `volguard.io/skip`, each with its reason.
pub(crate) const SKIPPED_ANNOTATION: &str = "skipped";

/// The API server truncates longer warnings; keep each under this many bytes.
pub(crate) const MAX_WARNING_LEN: usize = 256;
/// At most this many warnings: the API server drops warnings past 4 KiB in all, so more would be lost
/// anyway, and kubectl prints each on its own line.
pub(crate) const MAX_WARNINGS: usize = 12;
/// At most this many findings spelled out in a denial; the rest are counted ("and 37 more").
pub(crate) const MAX_DENIAL_FINDINGS: usize = 12;
/// A denial message is cut to this many bytes: the API server returns it to the client and writes it to
/// the audit log, which must not grow with the object.
pub(crate) const MAX_DENIAL_LEN: usize = 16 * 1024;
/// Each audit annotation value is cut to this many bytes.
pub(crate) const MAX_ANNOTATION_LEN: usize = 2 * 1024;

/// The AdmissionReview volguard sends back, from kube's `AdmissionResponse`.
///
/// kube writes `patch` as a JSON array of numbers (kube-rs/kube#1781), but the API server reads a `[]byte`
/// field only as base64 text and would fail the call. This writes the same fields, the patch base64-encoded.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewAnswer<'a> {
    api_version: &'static str,
    kind: &'static str,
    response: WireResponse<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse<'a> {
    uid: &'a str,
    allowed: bool,
    status: &'a Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "no_annotations")]
    audit_annotations: &'a HashMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    warnings: Option<&'a Vec<String>>,
}

fn no_annotations(map: &&HashMap<String, String>) -> bool {
    map.is_empty()
}

/// The review to send for `response`.
pub fn answer(response: &AdmissionResponse) -> ReviewAnswer<'_> {
    let patch = response
        .patch
        .as_ref()
        .map(|p| base64::engine::general_purpose::STANDARD.encode(p));
    ReviewAnswer {
        api_version: REVIEW_API_VERSION,
        kind: "AdmissionReview",
        response: WireResponse {
            uid: &response.uid,
            allowed: response.allowed,
            status: &response.result,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            audit_annotations: &response.audit_annotations,
            warnings: response.warnings.as_ref(),
        },
    }
}

/// The answer to a validating review.
pub(crate) fn for_validate(start: AdmissionResponse, eval: &Evaluation) -> AdmissionResponse {
    let mut response = start;
    let denied: Vec<&Judged> = eval.with_action(Action::Deny).collect();
    if !denied.is_empty() {
        response = response.deny(deny_message(eval, &denied));
        response.result.code = 403;
        response.result.reason = "Forbidden".to_owned();
    }
    let warnings: Vec<&Judged> = eval.with_action(Action::Warn).collect();
    if !warnings.is_empty() {
        response.warnings = Some(capped_warnings(&warnings));
    }
    response.audit_annotations = audit_annotations(eval);
    response
}

/// One warning per finding, at most [`MAX_WARNINGS`]; the last one counts the rest.
fn capped_warnings(warnings: &[&Judged]) -> Vec<String> {
    if warnings.len() <= MAX_WARNINGS {
        return warnings.iter().map(|j| warning(j)).collect();
    }
    let shown = MAX_WARNINGS - 1;
    let mut out: Vec<String> = warnings[..shown].iter().map(|j| warning(j)).collect();
    out.push(warning_text(&format!(
        "[volguard] and {} more warnings (volguard check, or the webhook's log at debug, lists them all)",
        warnings.len() - shown
    )));
    out
}

/// The answer to a mutating review: allowed, with the mutation's patch (`patchType: JSONPatch`), each
/// change as a warning (kubectl prints them, so the user learns what was changed in their object) and all
/// of them in one audit annotation.
pub(crate) fn for_mutate(
    start: AdmissionResponse,
    mutation: &Mutation,
) -> Result<AdmissionResponse, SerializePatchError> {
    if mutation.is_empty() {
        return Ok(start);
    }
    let mut response = start.with_patch(mutation.patch.clone())?;
    let warnings: Vec<String> = mutation
        .changes
        .iter()
        .map(|c| warning_text(&format!("[volguard mutate] {}", c.message)))
        .collect();
    if !warnings.is_empty() {
        response.warnings = Some(warnings);
        let all: Vec<String> = mutation
            .changes
            .iter()
            .map(|c| format!("{} (policy {})", c.message, c.policy))
            .collect();
        response
            .audit_annotations
            .insert(MUTATIONS_ANNOTATION.to_owned(), all.join(" | "));
    }
    Ok(response)
}

/// Every denying finding with its fix, up to [`MAX_DENIAL_FINDINGS`] and [`MAX_DENIAL_LEN`] bytes; the
/// findings left out are counted.
fn deny_message(eval: &Evaluation, denied: &[&Judged]) -> String {
    use std::fmt::Write as _;
    // Written in place: a finding's text runs to a kilobyte, so no copy of it is made on the way.
    let mut msg = String::with_capacity(1024);
    let _ = write!(msg, "volguard denied {}:", eval.object);
    let mut shown = 0;
    for j in denied.iter().take(MAX_DENIAL_FINDINGS) {
        let start = msg.len();
        let _ = write!(msg, "\n[{}] {}", j.finding.rule, j.finding.message);
        if let Some(fix) = &j.finding.fix {
            msg.push_str("\nFix: ");
            msg.push_str(fix.trim_end());
        }
        // Room is kept for the count of what is left out.
        if msg.len() > MAX_DENIAL_LEN - 200 {
            let one = msg.split_off(start);
            if shown == 0 {
                msg.push_str(&truncate(one, MAX_DENIAL_LEN - 200 - start));
                shown = 1;
            }
            break;
        }
        shown += 1;
    }
    if shown < denied.len() {
        let _ = write!(
            msg,
            "\n... and {} more denying findings (volguard check lists them all)",
            denied.len() - shown
        );
    }
    msg
}

/// `[rule-id] message`, cut at a character boundary to fit [`MAX_WARNING_LEN`].
pub fn warning(j: &Judged) -> String {
    warning_text(&format!("[{}] {}", j.finding.rule, j.finding.message))
}

/// Any warning text, cut to fit [`MAX_WARNING_LEN`].
pub(crate) fn warning_text(text: &str) -> String {
    truncate(text.to_owned(), MAX_WARNING_LEN)
}

fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let ellipsis = "...";
    let mut cut = max - ellipsis.len();
    while !s.is_char_boundary(cut) {
        cut -= 1;
    }
    s.truncate(cut);
    s.push_str(ellipsis);
    s
}

/// One annotation per rule with audit findings, keyed by rule id (a closed set), each value cut to
/// [`MAX_ANNOTATION_LEN`].
fn audit_annotations(eval: &Evaluation) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = HashMap::new();
    for j in eval.with_action(Action::Audit) {
        let value = out.entry(j.finding.rule.to_string()).or_default();
        if value.len() >= MAX_ANNOTATION_LEN {
            continue;
        }
        if !value.is_empty() {
            value.push_str(" | ");
        }
        value.push_str(&j.finding.message);
    }
    // The audit log records every exception honoured, with its reason (`volguard.io/skip`).
    if !eval.exceptions.is_empty() {
        let skipped: Vec<String> = eval
            .exceptions
            .iter()
            .map(|e| format!("{}: {}", e.rule, e.reason))
            .collect();
        out.insert(SKIPPED_ANNOTATION.to_owned(), skipped.join(" | "));
    }
    for v in out.values_mut() {
        *v = truncate(std::mem::take(v), MAX_ANNOTATION_LEN);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        let s = "é".repeat(200);
        let t = truncate(s, MAX_WARNING_LEN);
        assert!(t.len() <= MAX_WARNING_LEN);
        assert!(t.ends_with("..."));
        assert_eq!(truncate("short".into(), 10), "short");
    }
}
