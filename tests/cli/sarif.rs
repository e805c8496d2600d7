//! `check -o sarif`: valid SARIF 2.1.0 (the official schema, vendored in tests/fixtures/sarif, checked by
//! check-jsonschema with format checks), each finding at the line of its offending field, the rules with
//! their help into README.md, input errors as tool notifications, the exit codes of `check`.

use crate::cli_common;

use std::path::Path;
use std::process::Command;

use cli_common::{root, run, volguard};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// An external validator .ci/run installs (python packages); a clear failure when it is missing.
pub(crate) fn tool(program: &str) -> Command {
    let found = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{program} is not installed: .ci/run installs it (python3 -m pip install check-jsonschema xmlschema pre-commit)"
    );
    Command::new(program)
}

/// check-jsonschema on `document` (a file) against `schema` (`--schemafile PATH` or `--builtin-schema NAME`).
pub(crate) fn check_jsonschema(schema: &[&str], document: &Path) -> (bool, String) {
    let out = tool("check-jsonschema")
        .args(schema)
        .arg(document)
        .output()
        .expect("check-jsonschema runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

const SCHEMA: &str = "tests/fixtures/sarif/sarif-schema-2.1.0.json";

/// Validates a SARIF log against the vendored schema; panics with the validator's words otherwise.
fn assert_valid(sarif: &Value) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, serde_json::to_vec(sarif).unwrap()).unwrap();
    let schema = root().join(SCHEMA);
    let (ok, text) = check_jsonschema(&["--schemafile", schema.to_str().unwrap()], &file);
    assert!(ok, "not valid SARIF 2.1.0:\n{text}");
}

/// `(ruleId, level, uri, startLine, object)` of every result.
fn results(sarif: &Value) -> Vec<(String, String, String, u64, String)> {
    sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let at = &r["locations"][0];
            let physical = &at["physicalLocation"];
            (
                r["ruleId"].as_str().unwrap().to_owned(),
                r["level"].as_str().unwrap().to_owned(),
                physical["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                physical["region"]["startLine"].as_u64().unwrap(),
                at["logicalLocations"][0]["fullyQualifiedName"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect()
}

fn line(file: &str, n: u64) -> String {
    let text = std::fs::read_to_string(root().join(file)).unwrap();
    text.lines().nth(n as usize - 1).unwrap().trim().to_owned()
}

#[test]
fn sarif_of_the_ci_manifests_is_valid_and_points_at_each_offending_field() {
    let out = run(volguard([
        "check",
        "-f",
        "tests/fixtures/ci/apps/",
        "--exclude",
        "*.test.yaml",
        "-o",
        "sarif",
    ]));
    assert_eq!(out.code, 1, "denied, as the text report: {}", out.stderr);
    assert_eq!(out.stderr, "");
    let sarif = out.json();
    assert_valid(&sarif);
    let (shop, autoscale) = (
        "tests/fixtures/ci/apps/shop.yaml",
        "tests/fixtures/ci/apps/autoscale.yaml",
    );
    let found = results(&sarif);
    let s = |v: &str| v.to_owned();
    assert_eq!(
        found,
        [
            (
                s("shared-rwo-claim"),
                s("error"),
                s(autoscale),
                37,
                s("Deployment payments/api")
            ),
            (
                s("shared-rwo-claim"),
                s("error"),
                s(autoscale),
                50,
                s("HorizontalPodAutoscaler payments/api")
            ),
            (
                s("shared-rwo-claim"),
                s("error"),
                s(shop),
                38,
                s("Deployment shop/web")
            ),
            (
                s("missing-claim"),
                s("warning"),
                s(shop),
                65,
                s("Deployment shop/reports")
            ),
            (
                s("statefulset-claim-template-modes"),
                s("error"),
                s(shop),
                99,
                s("StatefulSet shop/db")
            ),
        ]
    );
    // The lines are the fields the findings are about, not the documents' first lines.
    let at: Vec<String> = found.iter().map(|(_, _, file, n, _)| line(file, *n)).collect();
    assert_eq!(
        at,
        [
            "claimName: api-state",
            "maxReplicas: 4",
            "claimName: web-uploads",
            "claimName: reports-archive",
            "name: data"
        ]
    );
    let first = &sarif["runs"][0]["results"][0];
    assert_eq!(
        first["locations"][0]["physicalLocation"]["artifactLocation"],
        json!({"uri": autoscale, "uriBaseId": "%SRCROOT%"})
    );
    assert_eq!(first["ruleIndex"], json!(0));
    assert_eq!(first["properties"]["action"], json!("Deny"));
    assert_eq!(first["properties"]["claim"], json!("api-state"));
    let message = first["message"]["text"].as_str().unwrap();
    assert!(
        message.starts_with("Deployment payments/api may run 4 pods"),
        "{message}"
    );
    assert!(
        message.contains("\nFix:\nIf every replica needs its own data"),
        "{message}"
    );
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], json!(true));
    assert_eq!(invocation["exitCode"], json!(1));
}

#[test]
fn sarif_names_every_rule_with_help_into_the_readme_rules_table() {
    let out = run(volguard([
        "check",
        "-f",
        "examples/pinned-node.yaml",
        "-o",
        "sarif",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let sarif = out.json();
    assert_valid(&sarif);
    let driver = &sarif["runs"][0]["tool"]["driver"];
    assert_eq!(driver["name"], json!("volguard"));
    assert_eq!(driver["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(driver["informationUri"], json!(env!("CARGO_PKG_REPOSITORY")));
    let ids: Vec<&str> = driver["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let all: Vec<&str> = volguard::domain::rules::RuleId::ALL
        .iter()
        .map(|r| r.as_str())
        .collect();
    assert_eq!(ids, all);
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains("\n### Rules\n"),
        "the #rules anchor is README's `### Rules` heading"
    );
    for rule in driver["rules"].as_array().unwrap() {
        let id = rule["id"].as_str().unwrap();
        assert!(
            readme.contains(&format!("\n| `{id}` |")),
            "README's rules table has {id}"
        );
        assert_eq!(
            rule["helpUri"],
            json!(format!(
                "{}/blob/main/README.md#rules",
                env!("CARGO_PKG_REPOSITORY")
            ))
        );
        for field in ["shortDescription", "fullDescription", "help"] {
            assert!(
                !rule[field]["text"].as_str().unwrap().is_empty(),
                "{id} has {field}"
            );
        }
    }
    // An advisory finding (pods held on one node) is a note, not a warning.
    assert_eq!(
        results(&sarif)
            .iter()
            .map(|r| (r.0.as_str(), r.1.as_str()))
            .collect::<Vec<_>>(),
        [("shared-rwo-claim", "note")]
    );
}

#[test]
fn sarif_input_errors_are_tool_notifications_and_the_run_exits_2() {
    let out = run(volguard([
        "check",
        "-f",
        &cli_common::fixture("broken/"),
        "-o",
        "sarif",
    ]));
    assert_eq!(out.code, 2);
    let sarif = out.json();
    assert_valid(&sarif);
    let invocation = &sarif["runs"][0]["invocations"][0];
    assert_eq!(invocation["executionSuccessful"], json!(false));
    assert_eq!(invocation["exitCode"], json!(2));
    let notes: Vec<(String, u64, String)> = invocation["toolExecutionNotifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let physical = &n["locations"][0]["physicalLocation"];
            assert_eq!(n["level"], json!("error"));
            assert_eq!(n["descriptor"]["id"], json!("input-error"));
            (
                physical["artifactLocation"]["uri"].as_str().unwrap().to_owned(),
                physical["region"]["startLine"].as_u64().unwrap(),
                n["properties"]["stage"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let s = |v: &str| v.to_owned();
    assert_eq!(
        notes,
        [
            (s("tests/fixtures/check/broken/bad-surge.yaml"), 1, s("evaluate")),
            (s("tests/fixtures/check/broken/malformed.yaml"), 12, s("parse")),
            (s("tests/fixtures/check/broken/undecodable.yaml"), 9, s("decode")),
            (s("tests/fixtures/check/broken/undecodable.yaml"), 17, s("decode")),
        ]
    );
    // The same errors are still written to standard error, as in every format.
    assert_eq!(out.stderr.lines().count(), 4, "{}", out.stderr);
}

#[test]
fn sarif_from_standard_input_has_logical_locations_only() {
    let text = std::fs::read_to_string(root().join("examples/web-shared-rwo.yaml")).unwrap();
    let mut cmd = volguard(["check", "-f", "-", "-o", "sarif"]);
    cmd.write_stdin(text);
    let out = run(cmd);
    assert_eq!(out.code, 1);
    let sarif = out.json();
    assert_valid(&sarif);
    let location = &sarif["runs"][0]["results"][0]["locations"][0];
    assert_eq!(location["physicalLocation"], Value::Null);
    assert_eq!(
        location["logicalLocations"],
        json!([{"name": "web", "fullyQualifiedName": "Deployment shop/web", "kind": "resource"}])
    );
}

#[test]
fn sarif_validation_rejects_what_the_schema_forbids() {
    // The validator is real: a level SARIF does not define fails it.
    let out = run(volguard([
        "check",
        "-f",
        "examples/web-shared-rwo.yaml",
        "-o",
        "sarif",
    ]));
    let mut sarif = out.json();
    sarif["runs"][0]["results"][0]["level"] = json!("fatal");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.sarif");
    std::fs::write(&file, serde_json::to_vec(&sarif).unwrap()).unwrap();
    let schema = root().join(SCHEMA);
    let (ok, text) = check_jsonschema(&["--schemafile", schema.to_str().unwrap()], &file);
    assert!(!ok, "{text}");
    assert!(text.contains("'fatal' is not one of"), "{text}");
}

#[test]
fn sarif_points_claims_at_their_access_modes_and_workloads_at_their_claims() {
    let out = run(volguard([
        "check",
        "-f",
        "tests/fixtures/storage/",
        "-o",
        "sarif",
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let sarif = out.json();
    assert_valid(&sarif);
    let found = results(&sarif);
    assert!(found.len() > 15, "{found:?}");
    let raw = sarif["runs"][0]["results"].as_array().unwrap();
    for ((rule, _, file, n, object), r) in found.iter().zip(raw) {
        let at = line(file, *n);
        let (claim, volume) = (
            r["properties"]["claim"].as_str().unwrap_or_default(),
            r["properties"]["volume"].as_str().unwrap_or_default(),
        );
        // The exact field: the claim's access modes, the template's own name, the autoscaler's maximum,
        // or the workload's reference to that very claim.
        let expected = match (rule.as_str(), object.split(' ').next().unwrap()) {
            ("unsupported-access-mode", "PersistentVolumeClaim") => "accessModes:".to_owned(),
            ("unsupported-access-mode", "StatefulSet") => format!("name: {volume}"),
            (_, "HorizontalPodAutoscaler") => "maxReplicas:".to_owned(),
            _ => format!("claimName: {claim}"),
        };
        // A key at the start of the line, or inside a flow mapping (`{claimName: uploads}`).
        let unquoted = at.replace('"', "");
        let has = unquoted.trim_start_matches("- ").starts_with(&expected)
            || unquoted.contains(&format!("{{{expected}"))
            || unquoted.contains(&format!(", {expected}"));
        assert!(
            has,
            "{rule} on {object} at {file}:{n} `{at}`, expected `{expected}`"
        );
    }
}
