//! `check -o junit`: valid against Apache Ant's JUnit XSD (vendored in tests/fixtures/junit, checked by
//! python's xmlschema), one suite per file and one case per object, failures as `check`'s verdicts
//! (warnings too under `--strict`), skipped objects and input errors, names escaped.

use crate::cli_common;
use crate::sarif::tool;

use std::path::Path;

use cli_common::{root, run, volguard};
use pretty_assertions::assert_eq;
use quick_xml::events::Event;

/// Validates the XML against the vendored XSD; panics with the validator's words otherwise.
fn assert_valid(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junit.xml");
    std::fs::write(&file, xml).unwrap();
    let out = tool("python3")
        .args([
            "-c",
            "import sys, xmlschema; xmlschema.XMLSchema(sys.argv[1]).validate(sys.argv[2])",
        ])
        .arg(root().join("tests/fixtures/junit/JUnit.xsd"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "not valid against Ant's JUnit XSD (python3 -m pip install xmlschema, as .ci/run does):\n{}\n{xml}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One `<testcase>`: its suite, classname, name, and what it holds (`pass`, `failure:TYPE`, `skipped`,
/// `error:TYPE`), with the message attribute.
#[derive(Debug, PartialEq, Eq)]
struct Case {
    suite: String,
    classname: String,
    name: String,
    outcome: String,
    message: String,
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> String {
    e.try_get_attribute(name)
        .unwrap()
        .map(|a| {
            a.normalized_value(quick_xml::XmlVersion::Explicit1_0)
                .unwrap()
                .into_owned()
        })
        .unwrap_or_default()
}

/// Every test case, and every suite's `(name, tests, failures, errors, skipped)`, read back with quick-xml.
fn cases(xml: &str) -> (Vec<Case>, Vec<[String; 5]>) {
    let mut reader = quick_xml::Reader::from_str(xml);
    let (mut cases, mut suites) = (Vec::new(), Vec::new());
    let mut suite = String::new();
    loop {
        match reader.read_event().unwrap() {
            Event::Eof => break,
            Event::Start(e) | Event::Empty(e) => match e.name().0 {
                "testsuite" => {
                    suite = attr(&e, "name");
                    suites.push(["name", "tests", "failures", "errors", "skipped"].map(|a| attr(&e, a)));
                }
                "testcase" => cases.push(Case {
                    suite: suite.clone(),
                    classname: attr(&e, "classname"),
                    name: attr(&e, "name"),
                    outcome: "pass".into(),
                    message: String::new(),
                }),
                tag @ ("failure" | "error" | "skipped") => {
                    let case = cases.last_mut().unwrap();
                    case.outcome = tag.to_owned();
                    if tag != "skipped" {
                        case.outcome = format!("{}:{}", case.outcome, attr(&e, "type"));
                    }
                    case.message = attr(&e, "message");
                }
                _ => {}
            },
            _ => {}
        }
    }
    (cases, suites)
}

fn case(suite: &str, classname: &str, name: &str, outcome: &str, message: &str) -> Case {
    Case {
        suite: suite.into(),
        classname: classname.into(),
        name: name.into(),
        outcome: outcome.into(),
        message: message.into(),
    }
}

#[test]
fn junit_of_the_ci_manifests_is_valid_with_a_case_per_object() {
    let out = run(volguard([
        "check",
        "-f",
        "tests/fixtures/ci/",
        "--exclude",
        "vendor",
        "-o",
        "junit",
    ]));
    assert_eq!(out.code, 2, "the broken smoke.test.yaml is an input error");
    assert_valid(&out.stdout);
    let (autoscale, shop, smoke, worker) = (
        "tests/fixtures/ci/apps/autoscale.yaml",
        "tests/fixtures/ci/apps/shop.yaml",
        "tests/fixtures/ci/apps/smoke.test.yaml",
        "tests/fixtures/ci/apps/worker.json",
    );
    let (cases, suites) = cases(&out.stdout);
    assert_eq!(
        cases,
        [
            case(
                autoscale,
                "Deployment/payments",
                "api",
                "failure:deny",
                "Deployment payments/api denied: shared-rwo-claim (deny)"
            ),
            case(
                autoscale,
                "HorizontalPodAutoscaler/payments",
                "api",
                "failure:deny",
                "HorizontalPodAutoscaler payments/api denied: shared-rwo-claim (deny)"
            ),
            case(
                shop,
                "Deployment/shop",
                "web",
                "failure:deny",
                "Deployment shop/web denied: shared-rwo-claim (deny)"
            ),
            // Warned, not strict: a pass, its finding in the suite's system-out.
            case(shop, "Deployment/shop", "reports", "pass", ""),
            case(
                shop,
                "StatefulSet/shop",
                "db",
                "failure:deny",
                "StatefulSet shop/db denied: statefulset-claim-template-modes (deny)"
            ),
            case(
                shop,
                "ConfigMap/shop",
                "settings",
                "skipped",
                "v1 ConfigMap is not judged by volguard"
            ),
            case(worker, "Deployment/shop", "worker", "pass", ""),
            case(
                smoke,
                "input",
                &format!("{smoke} document 1, line 3"),
                "error:parse",
                "mapping values are not allowed in this context"
            ),
        ]
    );
    let counts = |v: [&str; 5]| v.map(str::to_owned);
    assert_eq!(
        suites,
        [
            counts([autoscale, "2", "2", "0", "0"]),
            counts([shop, "4", "2", "0", "1"]),
            counts([worker, "1", "0", "0", "0"]),
            counts([smoke, "1", "0", "1", "0"]),
        ]
    );
    assert!(out.stdout.contains(
        "<system-out>Deployment shop/reports (tests/fixtures/ci/apps/shop.yaml document 3, line 41): [missing-claim] warn: \
         Deployment shop/reports mounts claim &quot;reports-archive&quot;"
    ));
    assert!(out.stdout.contains("<property name=\"strict\" value=\"false\"/>"));
}

#[test]
fn junit_under_strict_fails_warned_objects_too() {
    let out = run(volguard([
        "check",
        "-f",
        "tests/fixtures/ci/apps/shop.yaml",
        "--strict",
        "-o",
        "junit",
    ]));
    assert_eq!(out.code, 1);
    assert_valid(&out.stdout);
    let (cases, _) = cases(&out.stdout);
    let reports = cases.iter().find(|c| c.name == "reports").unwrap();
    assert_eq!(reports.outcome, "failure:warn");
    assert_eq!(
        reports.message,
        "Deployment shop/reports warned: missing-claim (warn)"
    );
    assert!(out.stdout.contains("<property name=\"strict\" value=\"true\"/>"));
}

#[test]
fn junit_escapes_file_names_and_messages_and_stays_valid() {
    let dir = tempfile::tempdir().unwrap();
    let name = "r&d <\"team\">.yaml";
    // The denied Deployment's name carries a control character (a YAML escape): it reaches a test case's
    // name and its failure text, which XML cannot carry as it is.
    let text = std::fs::read_to_string(root().join("examples/web-shared-rwo.yaml"))
        .unwrap()
        .replacen("\n  name: web\n", "\n  name: \"web\\x01x\"\n", 1);
    assert!(text.contains("web\\x01x"));
    std::fs::write(dir.path().join(name), text + "---\nkind: [\u{1}broken\n").unwrap();
    let out = run(volguard([
        Path::new("check"),
        Path::new("-f"),
        dir.path(),
        Path::new("-o"),
        Path::new("junit"),
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_valid(&out.stdout);
    let (cases, suites) = cases(&out.stdout);
    let file = dir.path().join(name).display().to_string();
    assert_eq!(suites[0][0], file, "the name round-trips through the escaping");
    assert!(out.stdout.contains("r&amp;d &lt;&quot;team&quot;&gt;.yaml"));
    assert_eq!(cases.last().unwrap().outcome, "error:parse");
    let denied = cases
        .iter()
        .find(|c| c.outcome.starts_with("failure"))
        .expect("the denied Deployment's case");
    assert!(
        denied.name.starts_with("web") && denied.name.ends_with('x'),
        "{denied:?}"
    );
    assert!(
        !out.stdout.contains('\u{1}'),
        "a control character XML cannot carry is replaced"
    );
}

#[test]
fn junit_timestamp_and_hostname_are_what_ants_schema_asks_for() {
    let out = run(volguard([
        "check",
        "-f",
        "examples/postgres-statefulset.yaml",
        "-o",
        "junit",
    ]));
    assert_eq!(out.code, 0);
    assert_valid(&out.stdout);
    let start = out.stdout.find("timestamp=\"").unwrap() + "timestamp=\"".len();
    let stamp = &out.stdout[start..start + 19];
    let shape: String = stamp
        .chars()
        .map(|c| if c.is_ascii_digit() { '0' } else { c })
        .collect();
    assert_eq!(shape, "0000-00-00T00:00:00", "{stamp}");
    assert!(!out.stdout.contains("hostname=\"\""));
}
