//! Table-driven decisions: every directory under `tests/fixtures/cases/` is one case, and a new case is new
//! files, never code.
//!
//! A case directory holds:
//!
//! - `input.yaml`: real-looking multi-document manifests, the claims they mount included;
//! - `policy.yaml` (optional): the policies to judge with, else the built-in `policies/default.yaml`;
//! - `expected.yaml`: `why` (the Kubernetes reasoning behind the expectation) and, for every judged object
//!   (every workload, HorizontalPodAutoscaler and Scale; claims are looked up, not judged), its kind,
//!   namespace and name, its `verdict`, the `policies` that selected it and the exact list of `findings`
//!   (rule id and action, in report order), or the `error` that kept it from being judged.
//!
//! A finding may also pin `claim`, `volume`, `container`, `accessMode`, `policy`, the exact `message`, or a
//! `messageContains` substring; those are compared when present.
//!
//! The harness builds a `lookup::Bundle` from every document of `input.yaml`, calls `decision::evaluate` on
//! each judged object and compares with `expected.yaml` both ways: an object judged but not expected fails
//! as much as one expected but not judged. `VOLGUARD_BLESS=1` rewrites a differing `expected.yaml` (keeping
//! `why` and the message assertions); review every blessed file against Kubernetes semantics.

use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use rstest::rstest;
use serde::{Deserialize, Serialize};
use volguard::adapters::manifest;
use volguard::domain::lookup::Bundle;
use volguard::domain::policy::{self, PolicySet};
use volguard::domain::workload::{Decoded, Resource};

/// The cases directory, relative to the crate root.
const CASES: &str = "tests/fixtures/cases";

/// The fewest cases the suite may hold (the issue asks for at least 40).
const MIN_CASES: usize = 40;

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Expected {
    /// Why these are the right decisions, in Kubernetes terms.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    why: String,
    /// Every judged object of the input.
    objects: Vec<ExpectedObject>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExpectedObject {
    kind: String,
    namespace: String,
    name: String,
    /// Set when `evaluate` cannot judge the object: the error's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Allow, Warn or Deny.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verdict: Option<String>,
    /// The policies that selected the object, in load order.
    #[serde(default)]
    policies: Vec<String>,
    /// The findings, in report order.
    #[serde(default)]
    findings: Vec<ExpectedFinding>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExpectedFinding {
    rule: String,
    action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    claim: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    volume: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    access_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_contains: Option<String>,
}

impl ExpectedObject {
    fn key(&self) -> (String, String, String) {
        (self.namespace.clone(), self.kind.clone(), self.name.clone())
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn policies_for(dir: &Path) -> PolicySet {
    let file = dir.join("policy.yaml");
    if file.exists() {
        policy::load_path(&file).unwrap_or_else(|e| panic!("{e}"))
    } else {
        PolicySet::builtin().unwrap_or_else(|e| panic!("built-in policy: {e}"))
    }
}

fn resources_of(dir: &Path) -> Vec<Resource> {
    let input = dir.join("input.yaml");
    let docs =
        manifest::parse_str(&read(&input), &input.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    for doc in docs {
        match doc.decoded {
            Ok(Decoded::Resource(r)) => out.push(*r),
            Ok(Decoded::Skipped { .. }) => {}
            Err(e) => panic!("{}: {e}", doc.origin),
        }
    }
    out
}

/// What the engine decides for every judged object of a case, with every detail filled in.
fn judge(dir: &Path) -> Vec<ExpectedObject> {
    let policies = policies_for(dir);
    let resources = resources_of(dir);
    let bundle: Bundle = resources.iter().collect();
    let mut out = Vec::new();
    for r in resources.iter().filter(|r| !matches!(r, Resource::Claim(_))) {
        let object = r.object_ref();
        let mut judged = ExpectedObject {
            kind: object.kind.to_string(),
            namespace: object.namespace.clone(),
            name: object.name.clone(),
            error: None,
            verdict: None,
            policies: Vec::new(),
            findings: Vec::new(),
        };
        match volguard::decision::evaluate(r, &bundle, &policies) {
            Ok(eval) => {
                judged.verdict = Some(format!("{:?}", eval.verdict()));
                judged.policies = eval.policies.clone();
                judged.findings = eval
                    .findings
                    .iter()
                    .map(|j| ExpectedFinding {
                        rule: j.finding.rule.to_string(),
                        action: format!("{:?}", j.action),
                        claim: j.finding.claim.clone(),
                        volume: j.finding.volume.clone(),
                        container: j.finding.container.clone(),
                        access_mode: j.finding.access_mode.clone(),
                        policy: Some(j.policy.clone()),
                        message: Some(j.finding.message.clone()),
                        message_contains: None,
                    })
                    .collect();
            }
            Err(e) => judged.error = Some(e.to_string()),
        }
        out.push(judged);
    }
    out
}

/// Keeps of `actual` only the details `expected` asks about, so the two compare field by field.
fn project(actual: &ExpectedFinding, expected: Option<&ExpectedFinding>) -> ExpectedFinding {
    let mut f = actual.clone();
    let Some(e) = expected.filter(|e| e.rule == actual.rule) else {
        // Nothing to line up with: show the identifying details only.
        f.policy = None;
        f.message = None;
        return f;
    };
    let keep = |want: &Option<String>, got: &mut Option<String>| {
        if want.is_none() {
            *got = None;
        }
    };
    keep(&e.claim, &mut f.claim);
    keep(&e.volume, &mut f.volume);
    keep(&e.container, &mut f.container);
    keep(&e.access_mode, &mut f.access_mode);
    keep(&e.policy, &mut f.policy);
    if let Some(part) = &e.message_contains {
        let message = actual.message.clone().unwrap_or_default();
        f.message_contains = Some(if message.contains(part.as_str()) {
            part.clone()
        } else {
            message
        });
    }
    keep(&e.message, &mut f.message);
    f
}

fn compare(actual: &[ExpectedObject], expected: &[ExpectedObject]) -> Vec<ExpectedObject> {
    let mut projected: Vec<ExpectedObject> = actual
        .iter()
        .map(|a| {
            let e = expected.iter().find(|e| e.key() == a.key());
            let mut p = a.clone();
            p.findings = a
                .findings
                .iter()
                .enumerate()
                .map(|(i, f)| project(f, e.and_then(|e| e.findings.get(i))))
                .collect();
            p
        })
        .collect();
    projected.sort_by_key(ExpectedObject::key);
    projected
}

/// The expected file a bless writes: the engine's decisions, with `why` and the message assertions of the
/// old file kept where the finding still lines up.
fn blessed(actual: &[ExpectedObject], old: &Expected) -> Expected {
    let objects = actual
        .iter()
        .map(|a| {
            let e = old.objects.iter().find(|e| e.key() == a.key());
            let mut o = a.clone();
            for (i, f) in o.findings.iter_mut().enumerate() {
                let before = e.and_then(|e| e.findings.get(i)).filter(|b| b.rule == f.rule);
                if before.is_none_or(|b| b.policy.is_none()) {
                    f.policy = None;
                }
                if before.is_none_or(|b| b.message.is_none()) {
                    f.message = None;
                }
                f.message_contains = before.and_then(|b| b.message_contains.clone());
            }
            o
        })
        .collect();
    Expected {
        why: old.why.clone(),
        objects,
    }
}

fn run_case(dir: &Path) {
    let expected_path = dir.join("expected.yaml");
    let expected: Expected = if expected_path.exists() {
        serde_saphyr::from_str(&read(&expected_path))
            .unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()))
    } else {
        Expected::default()
    };
    let actual = judge(dir);
    let mut want = expected.objects.clone();
    want.sort_by_key(ExpectedObject::key);
    let got = compare(&actual, &expected.objects);
    if got != want && std::env::var_os("VOLGUARD_BLESS").is_some_and(|v| v == "1") {
        let text = serde_saphyr::to_string(&blessed(&actual, &expected)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(&expected_path, text).unwrap_or_else(|e| panic!("{}: {e}", expected_path.display()));
        eprintln!(
            "blessed {}: review it against Kubernetes semantics",
            expected_path.display()
        );
        return;
    }
    assert!(
        !expected.why.trim().is_empty(),
        "{}: say why",
        expected_path.display()
    );
    assert_eq!(want, got, "{}", dir.display());
}

/// One test per case directory.
#[rstest]
fn case(
    #[files("tests/fixtures/cases/*")]
    #[dirs]
    dir: PathBuf,
) {
    run_case(&dir);
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(CASES);
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|e| e.map(|e| e.path()).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    dirs.sort();
    dirs
}

/// `#[files]` globs at compile time, so a case added since the last build would be skipped: this test
/// reads the directory at run time, checks every case is complete and runs them all.
#[test]
fn every_case_on_disk_is_complete_and_holds() {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= MIN_CASES,
        "{} cases, want at least {MIN_CASES}",
        dirs.len()
    );
    for dir in &dirs {
        assert!(
            dir.is_dir(),
            "{}: only case directories belong here",
            dir.display()
        );
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{e}")) {
            let name = entry.unwrap_or_else(|e| panic!("{e}")).file_name();
            let name = name.to_string_lossy();
            assert!(
                ["input.yaml", "expected.yaml", "policy.yaml"].contains(&name.as_ref()),
                "{}: unexpected file {name}",
                dir.display()
            );
        }
        assert!(
            dir.join("input.yaml").is_file(),
            "{}: no input.yaml",
            dir.display()
        );
        assert!(
            dir.join("expected.yaml").is_file(),
            "{}: no expected.yaml",
            dir.display()
        );
        run_case(dir);
    }
}
