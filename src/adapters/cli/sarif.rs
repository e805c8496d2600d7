//! A [`Report`] as SARIF 2.1.0 (<https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html>), the
//! format GitHub code scanning and other CI systems read.
//!
//! One run: `tool.driver` carries every rule ([`rule_docs`]), each finding is a result at its file and
//! line (the line of the offending field when [`locate`] finds it in the document's text, else the
//! document's first line), and input errors are the invocation's `toolExecutionNotifications` (the run
//! is then not `executionSuccessful`): they are not findings about the manifests, and code scanning
//! would otherwise open alerts for them.

use std::sync::Arc;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::report::{Finding, InputError, Location, ObjectReport, Report};
use super::rule_docs::{self, REPOSITORY};
use crate::adapters::manifest::locate::{self, Field};
use crate::domain::policy::Action;
use crate::domain::rules::{RuleId, Severity};

/// The schema `$schema` names: the SARIF 2.1.0 schema as schemastore.org serves it (what GitHub's docs
/// and most producers write).
pub(super) const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The notification id of an input error.
const INPUT_ERROR: &str = "input-error";

/// What a renderer may read of the input files: the whole text of a file, by the name the report gives
/// it, when it is still there to read (standard input is not).
pub(super) type Sources<'a> = &'a dyn Fn(&str) -> Option<Arc<str>>;

/// The report as one SARIF log.
pub(super) fn sarif(report: &Report, sources: Sources<'_>) -> Value {
    let results: Vec<Value> = report
        .objects
        .iter()
        .flat_map(|o| o.findings.iter().map(move |f| result(o, f, sources)))
        .collect();
    let notifications: Vec<Value> = report.errors.iter().map(notification).collect();
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": driver()},
            "invocations": [{
                "executionSuccessful": report.errors.is_empty(),
                "exitCode": report.summary.exit_code,
                "toolExecutionNotifications": notifications,
            }],
            "results": results,
        }],
    })
}

fn driver() -> Value {
    let help_uri = rule_docs::help_uri();
    let rules: Vec<Value> = RuleId::ALL
        .iter()
        .map(|rule| {
            let doc = rule_docs::doc(*rule);
            json!({
                "id": rule.as_str(),
                "name": pascal_case(rule.as_str()),
                "shortDescription": {"text": doc.summary},
                "fullDescription": {"text": doc.description},
                "help": {
                    "text": format!("{} See {help_uri} (rule {rule}).", doc.description),
                    "markdown": format!("{}\n\nSee [`{rule}` in the rules table]({help_uri}).", doc.description),
                },
                "helpUri": help_uri,
                "properties": {"tags": ["kubernetes", "volumes"]},
            })
        })
        .collect();
    json!({
        "name": "volguard",
        "version": env!("CARGO_PKG_VERSION"),
        "semanticVersion": env!("CARGO_PKG_VERSION"),
        "informationUri": REPOSITORY,
        "rules": rules,
        "notifications": [{
            "id": INPUT_ERROR,
            "name": "InputError",
            "shortDescription": {
                "text": "A file, document or object that could not be read, parsed, decoded or judged."
            },
            "defaultConfiguration": {"level": "error"},
        }],
    })
}

/// `shared-rwo-claim` → `SharedRwoClaim`.
fn pascal_case(id: &str) -> String {
    id.split('-')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|first| first.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// SARIF's level: a denial is an error, a warning a warning; an advisory finding (it works for now) and
/// an audit-only one are notes.
fn level(f: &Finding) -> &'static str {
    match (f.action, f.severity) {
        (Action::Deny, _) => "error",
        (Action::Warn, Severity::Violation) => "warning",
        (Action::Warn, Severity::Advisory) | (Action::Audit, _) => "note",
        (Action::Off, _) => "none",
    }
}

fn result(object: &ObjectReport, f: &Finding, sources: Sources<'_>) -> Value {
    let text = match &f.fix {
        Some(fix) => format!("{}\nFix:\n{fix}", f.message),
        None => f.message.clone(),
    };
    let line = object
        .origin
        .line
        .map(|start| field_line(object, f, start, sources).unwrap_or(start));
    let mut location = json!({
        "logicalLocations": [{
            "name": object.name,
            "fullyQualifiedName": object.object(),
            "kind": "resource",
        }],
    });
    if let Some(physical) = physical(&object.origin, line) {
        location["physicalLocation"] = physical;
    }
    json!({
        "ruleId": f.rule.as_str(),
        "ruleIndex": RuleId::ALL.iter().position(|r| *r == f.rule),
        "level": level(f),
        "message": {"text": text},
        "locations": [location],
        "partialFingerprints": {"volguardFinding/v1": fingerprint(object, f)},
        "properties": {
            "action": f.action,
            "severity": f.severity,
            "policy": f.policy,
            "object": object.object(),
            "container": f.container,
            "volume": f.volume,
            "claim": f.claim,
            "accessMode": f.access_mode,
        },
    })
}

/// The line of the field the finding is about, in its document's text.
fn field_line(object: &ObjectReport, f: &Finding, start: u64, sources: Sources<'_>) -> Option<u64> {
    // In a `kind: List` the document's line is the List's: its items' fields cannot be told apart.
    if object.origin.item.is_some() {
        return None;
    }
    let text = sources(&object.origin.file)?;
    locate::field_line(&text, start, &fields(&object.kind, f))
}

/// Where to look, most precise first: an autoscaler's or Scale's replica count (a claim's access modes),
/// a rollout's strategy, the claim, the volume.
fn fields<'a>(kind: &str, f: &'a Finding) -> Vec<Field<'a>> {
    let mut fields = Vec::new();
    match kind {
        "HorizontalPodAutoscaler" => fields.push(Field::Key("maxReplicas")),
        "Scale" => fields.push(Field::Key("replicas")),
        // A claim judged by itself (against its StorageClass): what it asks for.
        "PersistentVolumeClaim" => fields.push(Field::Key("accessModes")),
        _ => {}
    }
    if f.rule == RuleId::RolloutAttachDeadlock {
        fields.extend([Field::Key("strategy"), Field::Key("replicas")]);
    }
    if let Some(claim) = &f.claim {
        fields.push(Field::Value("claimName", claim));
    }
    if let Some(volume) = &f.volume {
        for section in ["volumeClaimTemplates", "volumes", "claimTemplates"] {
            fields.push(Field::Named {
                section,
                name: volume,
            });
        }
    }
    fields
}

fn notification(e: &InputError) -> Value {
    let line = e.at.map(|p| p.line).or(e.origin.line);
    let mut n = json!({
        "level": "error",
        "message": {"text": e.to_string()},
        "descriptor": {"id": INPUT_ERROR, "index": 0},
        "properties": {"stage": e.stage, "object": e.object},
    });
    if let Some(physical) = physical(&e.origin, line) {
        n["locations"] = json!([{"physicalLocation": physical}]);
    }
    n
}

/// The file and line, or None for standard input and for an object `audit` read from the cluster (its
/// logical location names it).
fn physical(origin: &Location, line: Option<u64>) -> Option<Value> {
    if origin.in_cluster {
        return None;
    }
    let artifact = artifact(&origin.file)?;
    let mut p = json!({"artifactLocation": artifact});
    if let Some(line) = line.filter(|l| *l > 0) {
        p["region"] = json!({"startLine": line});
    }
    Some(p)
}

/// What RFC 3986 does not allow unescaped in a path (and `%` itself).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'[')
    .add(b']')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// The file as a URI: a relative path stays relative to `%SRCROOT%` (the checkout, for code scanning),
/// an absolute one becomes a `file://` URI.
fn artifact(file: &str) -> Option<Value> {
    if file == "-" {
        return None;
    }
    let slashed = file.replace('\\', "/");
    if slashed.starts_with('/') {
        let uri = format!("file://{}", utf8_percent_encode(&slashed, PATH));
        return Some(json!({"uri": uri}));
    }
    let mut relative = slashed.as_str();
    while let Some(rest) = relative.strip_prefix("./") {
        relative = rest;
    }
    let uri = utf8_percent_encode(relative, PATH).to_string();
    Some(json!({"uri": uri, "uriBaseId": "%SRCROOT%"}))
}

/// Stable across runs and line moves: the rule, the object and what in it the finding is about.
fn fingerprint(object: &ObjectReport, f: &Finding) -> String {
    let mut hash = Sha256::new();
    for part in [
        f.rule.as_str(),
        &object.object(),
        f.container.as_deref().unwrap_or_default(),
        f.volume.as_deref().unwrap_or_default(),
        f.claim.as_deref().unwrap_or_default(),
    ] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(action: Action, severity: Severity) -> Finding {
        Finding {
            rule: RuleId::SharedRwoClaim,
            action,
            policy: "default".into(),
            severity,
            message: "m".into(),
            fix: None,
            container: None,
            volume: Some("data".into()),
            claim: Some("shared".into()),
            access_mode: None,
        }
    }

    #[test]
    fn an_object_read_from_the_cluster_has_no_file() {
        let cluster = Location::cluster();
        assert_eq!(physical(&cluster, None), None);
        // A file of that name is still a file: with a line, and as a whole (an error about the file).
        let file = Location {
            document: Some(1),
            line: Some(1),
            in_cluster: false,
            ..cluster.clone()
        };
        assert_eq!(
            physical(&file, Some(3)),
            Some(
                json!({"artifactLocation": {"uri": "cluster", "uriBaseId": "%SRCROOT%"}, "region": {"startLine": 3}})
            )
        );
        let whole = Location {
            in_cluster: false,
            ..cluster
        };
        assert_eq!(
            physical(&whole, None),
            Some(json!({"artifactLocation": {"uri": "cluster", "uriBaseId": "%SRCROOT%"}}))
        );
    }

    #[test]
    fn levels_follow_the_action_and_an_advisory_is_a_note() {
        let levels = [
            (Action::Deny, Severity::Violation),
            (Action::Warn, Severity::Violation),
            (Action::Warn, Severity::Advisory),
            (Action::Audit, Severity::Violation),
        ]
        .map(|(a, s)| level(&finding(a, s)));
        assert_eq!(levels, ["error", "warning", "note", "note"]);
    }

    #[test]
    fn an_autoscaler_is_located_at_its_replica_count_before_the_claim() {
        let f = finding(Action::Deny, Severity::Violation);
        let hpa = fields("HorizontalPodAutoscaler", &f);
        assert_eq!(
            hpa[..2],
            [Field::Key("maxReplicas"), Field::Value("claimName", "shared")]
        );
        let deployment = fields("Deployment", &f);
        assert_eq!(deployment[0], Field::Value("claimName", "shared"));
        assert_eq!(
            deployment[1],
            Field::Named {
                section: "volumeClaimTemplates",
                name: "data"
            }
        );
    }

    #[test]
    fn rule_names_are_pascal_case() {
        assert_eq!(pascal_case("shared-rwo-claim"), "SharedRwoClaim");
        assert_eq!(pascal_case("lookup-failed"), "LookupFailed");
    }

    #[test]
    fn files_become_uri_references() {
        assert_eq!(
            artifact("./examples/web shared#1.yaml"),
            Some(json!({"uri": "examples/web%20shared%231.yaml", "uriBaseId": "%SRCROOT%"}))
        );
        assert_eq!(
            artifact("/tmp/a b/x.yaml"),
            Some(json!({"uri": "file:///tmp/a%20b/x.yaml"}))
        );
        assert_eq!(
            artifact("k8s\\prod\\app.yaml"),
            Some(json!({"uri": "k8s/prod/app.yaml", "uriBaseId": "%SRCROOT%"}))
        );
        assert_eq!(artifact("-"), None);
    }
}
