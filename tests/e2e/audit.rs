//! `volguard audit` against the real kube-apiserver, with no webhook registered: workloads and claims
//! created as a cluster that predates volguard would have them, judged, and kept in policy reports that
//! `kubectl get policyreports` lists. A fix turns a result into pass; a deletion removes it; a namespace
//! with nothing left loses its report. The report CRDs applied are the ones the chart vendors.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::cluster_common::{self, claim, deployment, fresh_name, kubectl, metric, text};

fn must(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = kubectl(kubeconfig, args, stdin);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "kubectl {args:?}: {stdout}{stderr}");
    stdout
}

/// Deletes a Deployment and waits (at most 30 s) until it is gone.
fn delete_deployment(kubeconfig: &Path, ns: &str, name: &str) {
    must(
        kubeconfig,
        &[
            "delete",
            "deployment",
            "-n",
            ns,
            name,
            "--wait=true",
            "--timeout=30s",
        ],
        None,
    );
}

/// Who holds the background audit's Lease `volguard-audit` in `ns` ("" once released).
fn lease_holder(kubeconfig: &Path, ns: &str) -> String {
    must(
        kubeconfig,
        &[
            "get",
            "lease",
            "-n",
            ns,
            "volguard-audit",
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    )
}

/// The report CRDs the chart vendors, applied (idempotent: every test run and engineer shares them).
fn apply_report_crds(kubeconfig: &Path) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/volguard/files/crds");
    let dir = dir.to_str().expect("utf-8 path");
    must(
        kubeconfig,
        &["apply", "--server-side", "--force-conflicts", "-f", dir],
        None,
    );
    for crd in [
        "policyreports.wgpolicyk8s.io",
        "clusterpolicyreports.wgpolicyk8s.io",
        "reports.openreports.io",
        "clusterreports.openreports.io",
    ] {
        must(
            kubeconfig,
            &[
                "wait",
                "--for=condition=Established",
                "--timeout=30s",
                &format!("crd/{crd}"),
            ],
            None,
        );
    }
}

fn audit(kubeconfig: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .arg("audit")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["--color", "never", "--cluster-timeout", "30s"])
        .args(args)
        .output()
        .expect("volguard audit runs");
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

/// `kubectl get KIND -A -o json`'s items in `ns`.
fn reports_in(kubeconfig: &Path, kind: &str, ns: &str) -> Vec<Value> {
    let json = must(
        kubeconfig,
        &["get", kind, "-A", "-o", "json", "--show-managed-fields"],
        None,
    );
    let list: Value = serde_json::from_str(&json).expect("a JSON list");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|r| r["metadata"]["namespace"] == ns)
        .cloned()
        .collect()
}

/// (object name, rule, result) of every result of a report.
fn results(report: &Value) -> Vec<(String, String, String)> {
    report["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            (
                r["resources"][0]["name"].as_str().unwrap_or_default().to_owned(),
                r["rule"].as_str().unwrap_or_default().to_owned(),
                r["result"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn row(name: &str, rule: &str, result: &str) -> (String, String, String) {
    (name.to_owned(), rule.to_owned(), result.to_owned())
}

/// The results of a Deployment on a claim that the built-in policy finds nothing wrong with but `fail`.
fn deployment_rows(name: &str, shared: &str) -> Vec<(String, String, String)> {
    vec![
        row(name, "shared-rwo-claim", shared),
        row(name, "rollout-attach-deadlock", "pass"),
        row(name, "shared-claim-writable", "pass"),
        row(name, "missing-claim", "pass"),
        row(name, "unsupported-access-mode", "pass"),
        row(name, "unbindable-claim", "pass"),
    ]
}

#[test]
fn audit_writes_policy_reports_that_follow_fixes_and_deletions() {
    let kc = &cluster_common::cluster();
    apply_report_crds(kc);
    let ns = fresh_name("audit");
    must(kc, &["create", "namespace", &ns], None);
    let _cleanup = scopeguard(kc, &ns);
    let objects = [
        claim(&ns, "shared", "ReadWriteOnce"),
        claim(&ns, "own", "ReadWriteOnce"),
        deployment(&ns, "bad", 3, "shared", ""),
        deployment(&ns, "good", 1, "own", ""),
    ]
    .join("---\n");
    must(kc, &["apply", "-f", "-"], Some(&objects));

    let (code, stdout, stderr) = audit(kc, &["-n", &ns, "--write-reports"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with(&format!(
            "DENY  Deployment {ns}/bad  (cluster)\n  [shared-rwo-claim] deny: "
        )),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("2 objects checked, 1 denied, 0 warned\n"),
        "{stdout}"
    );
    // The same findings as SARIF 2.1.0: valid, each located by the object's name (no file to point at).
    let (code, sarif, stderr) = audit(kc, &["-n", &ns, "-o", "sarif"]);
    assert_eq!(code, Some(1), "{stderr}");
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("audit.sarif");
    std::fs::write(&file, &sarif).expect("write SARIF");
    let schema =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let out = Command::new("check-jsonschema")
        .arg("--schemafile")
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("check-jsonschema runs (.ci/run installs it)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let sarif: Value = serde_json::from_str(&sarif).expect("JSON");
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "shared-rwo-claim");
    assert_eq!(result["level"], "error");
    assert_eq!(
        result["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        format!("Deployment {ns}/bad")
    );
    assert_eq!(result["locations"][0].get("physicalLocation"), None);

    let reports = reports_in(kc, "policyreports", &ns);
    assert_eq!(reports.len(), 1, "one report per namespace: {reports:#?}");
    let report = &reports[0];
    // kubectl shows the CRD's preferred version; volguard wrote v1alpha2 (managedFields say which).
    assert_eq!(
        report["metadata"]["managedFields"][0]["apiVersion"],
        "wgpolicyk8s.io/v1alpha2"
    );
    assert_eq!(report["metadata"]["name"], "volguard");
    assert_eq!(
        report["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "volguard"
    );
    let managers: Vec<&str> = report["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["volguard"]);
    let mut want = deployment_rows("bad", "fail");
    want.extend(deployment_rows("good", "pass"));
    assert_eq!(results(report), want);
    assert_eq!(
        report["summary"],
        serde_json::json!({"pass": 11, "fail": 1, "warn": 0, "error": 0, "skip": 0})
    );
    let fail = &report["results"][0];
    assert_eq!(fail["severity"], "high");
    assert_eq!(fail["properties"]["claim"], "shared");
    assert_eq!(fail["properties"]["action"], "Deny");
    assert_eq!(fail["resources"][0]["kind"], "Deployment");
    assert_eq!(fail["resources"][0]["apiVersion"], "apps/v1");
    let uid = must(
        kc,
        &[
            "get",
            "deployment",
            "-n",
            &ns,
            "bad",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    assert_eq!(fail["resources"][0]["uid"], uid.as_str());

    // The same cluster, audited again: the same report, not even a new resourceVersion.
    let version = report["metadata"]["resourceVersion"].clone();
    let (code, ..) = audit(kc, &["-n", &ns, "--write-reports"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        reports_in(kc, "policyreports", &ns)[0]["metadata"]["resourceVersion"],
        version
    );

    // The fix: one replica. Its result turns pass.
    must(
        kc,
        &["scale", "deployment", "-n", &ns, "bad", "--replicas=1"],
        None,
    );
    let (code, stdout, stderr) = audit(kc, &["-n", &ns, "--write-reports"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report = &reports_in(kc, "policyreports", &ns)[0];
    let mut want = deployment_rows("bad", "pass");
    want.extend(deployment_rows("good", "pass"));
    assert_eq!(results(report), want);
    assert_eq!(report["summary"]["fail"], 0);
    assert_eq!(report["summary"]["pass"], 12);

    // Deleted: its results are gone, the other object's stay.
    delete_deployment(kc, &ns, "bad");
    let (code, stdout, stderr) = audit(kc, &["-n", &ns, "--write-reports"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let report = &reports_in(kc, "policyreports", &ns)[0];
    assert_eq!(results(report), deployment_rows("good", "pass"));
    assert_eq!(report["summary"]["pass"], 6);

    // Nothing left in the namespace: no report either.
    delete_deployment(kc, &ns, "good");
    let (code, stdout, stderr) = audit(kc, &["-n", &ns, "--write-reports"]);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "0 objects checked, 0 denied, 0 warned\n");
    assert!(reports_in(kc, "policyreports", &ns).is_empty());
}

#[test]
fn an_exception_is_a_skip_result_and_openreports_reports_say_the_same() {
    let kc = &cluster_common::cluster();
    apply_report_crds(kc);
    let ns = fresh_name("audit-skip");
    must(kc, &["create", "namespace", &ns], None);
    let _cleanup = scopeguard(kc, &ns);
    let skip =
        r#""volguard.io/skip": shared-rwo-claim, "volguard.io/skip-reason": "single-node lab cluster""#;
    let objects = [
        claim(&ns, "shared", "ReadWriteOnce"),
        deployment(&ns, "lab", 2, "shared", skip),
        deployment(
            &ns,
            "careless",
            1,
            "shared",
            r#""volguard.io/skip": shared-rwo-claim"#,
        ),
    ]
    .join("---\n");
    must(kc, &["apply", "-f", "-"], Some(&objects));
    let (code, stdout, stderr) = audit(kc, &["-n", &ns, "--write-reports", "--report-api", "openreports"]);
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    // careless shares lab's claim without the exception's reason: both its skip and the shared claim deny.
    assert!(
        stdout.contains("[invalid-skip] deny: volguard.io/skip needs a volguard.io/skip-reason"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "SKIP  Deployment {ns}/lab  (cluster)\n  [shared-rwo-claim] skip: single-node lab cluster\n"
        )),
        "{stdout}"
    );
    let reports = reports_in(kc, "reports.openreports.io", &ns);
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0]["apiVersion"], "openreports.io/v1alpha1");
    let rows = results(&reports[0]);
    assert!(rows.contains(&row("lab", "shared-rwo-claim", "skip")), "{rows:?}");
    assert!(
        rows.contains(&row("careless", "shared-rwo-claim", "fail")),
        "{rows:?}"
    );
    assert!(
        rows.contains(&row("careless", "invalid-skip", "fail")),
        "{rows:?}"
    );
    let skip = reports[0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["result"] == "skip")
        .unwrap();
    assert_eq!(skip["properties"]["reason"], "single-node lab cluster");
    assert_eq!(skip["scored"], false);
    assert_eq!(reports[0]["summary"]["skip"], 1);
    assert_eq!(reports[0]["summary"]["fail"], 2);
    assert!(
        reports_in(kc, "policyreports", &ns).is_empty(),
        "only the API asked for"
    );
}

#[test]
fn a_selector_narrows_the_audit_and_its_bounds_are_usage_errors() {
    let kc = &cluster_common::cluster();
    let ns = fresh_name("audit-sel");
    must(kc, &["create", "namespace", &ns], None);
    let _cleanup = scopeguard(kc, &ns);
    let objects = [
        claim(&ns, "shared", "ReadWriteOnce"),
        deployment(&ns, "bad", 3, "shared", ""),
        deployment(&ns, "other", 1, "shared", ""),
    ]
    .join("---\n");
    must(kc, &["apply", "-f", "-"], Some(&objects));
    let (code, stdout, stderr) = audit(kc, &["-n", &ns, "-l", "app=other", "-v", "-o", "json"]);
    // `other` alone: one pod, but `bad`'s three pods share its claim, so it is denied too.
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    let names: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["other"]);
    assert_eq!(report["objects"][0]["origin"]["file"], "cluster");
    assert_eq!(report["objects"][0]["findings"][0]["rule"], "shared-rwo-claim");

    let (code, _, stderr) = audit(kc, &["-n", &ns, "--max-objects", "1"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr,
        "error: 2 workloads to audit, over --max-objects 1: narrow it with --namespace or --selector, or \
         raise the limit\n"
    );
    let (code, _, stderr) = audit(kc, &["-l", "app=x", "--write-reports"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}

/// Deletes the namespace however the test ends (without waiting: namespaces never finish deleting on
/// this control plane).
fn scopeguard<'a>(kubeconfig: &'a Path, ns: &'a str) -> impl Drop + 'a {
    struct Guard<'a>(&'a Path, &'a str);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            let _ = kubectl(self.0, &["delete", "namespace", self.1, "--wait=false"], None);
        }
    }
    Guard(kubeconfig, ns)
}

/// The `sh` block of README.md's "Policy reports" section.
fn readme_audit_commands() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let start = readme
        .find("### Policy reports")
        .expect("README.md has a Policy reports section");
    let body = start + readme[start..].find("```sh\n").expect("a sh block") + "```sh\n".len();
    let end = body + readme[body..].find("```\n").expect("the block ends");
    readme[body..end].lines().map(str::to_owned).collect()
}

#[test]
fn the_readme_audit_commands_work_as_written() {
    let kc = &cluster_common::cluster();
    let commands = readme_audit_commands();
    assert_eq!(commands.len(), 3, "{commands:?}");
    let ns = fresh_name("audit-readme");
    must(kc, &["create", "namespace", &ns], None);
    let _cleanup = scopeguard(kc, &ns);
    let objects = [
        claim(&ns, "shared", "ReadWriteOnce"),
        deployment(&ns, "web", 2, "shared", ""),
    ]
    .join("---\n");
    must(kc, &["apply", "-f", "-"], Some(&objects));
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut outputs = Vec::new();
    for command in &commands {
        // The README's namespace is `shop`; this run's is fresh.
        let words: Vec<String> = command
            .split_whitespace()
            .map(|w| if w == "shop" { ns.clone() } else { w.to_owned() })
            .collect();
        let (program, args) = words.split_first().expect("a command");
        let out = match program.as_str() {
            "kubectl" => {
                let mut cmd = Command::new("kubectl");
                cmd.arg("--kubeconfig").arg(kc).args(args).current_dir(root);
                cmd.output().expect("kubectl runs")
            }
            "volguard" => crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
                .env("KUBECONFIG", kc)
                .args(args)
                .current_dir(root)
                .output()
                .expect("volguard runs"),
            other => panic!("README.md runs {other}, which this test does not know"),
        };
        outputs.push((out.status.code(), text(&out)));
    }
    // The CRDs apply; the audit finds the shared claim (exit 1) and writes the report kubectl lists.
    assert_eq!(outputs[0].0, Some(0), "{:?}", outputs[0]);
    assert_eq!(outputs[1].0, Some(1), "{:?}", outputs[1]);
    assert!(
        outputs[1]
            .1
            .0
            .contains(&format!("DENY  Deployment {ns}/web  (cluster)")),
        "{:?}",
        outputs[1]
    );
    assert_eq!(outputs[2].0, Some(0), "{:?}", outputs[2]);
    let listed: Vec<Vec<&str>> = outputs[2]
        .1
        .0
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        listed[0],
        ["NAME", "PASS", "FAIL", "WARN", "ERROR", "SKIP", "AGE"]
    );
    assert_eq!(listed[1][..6], ["volguard", "5", "1", "0", "0", "0"]);
    assert_eq!(listed.len(), 2);
}

/// A metric's value from `/metrics` on 127.0.0.1, when the line is there.
#[test]
fn serve_audits_in_the_background_and_its_reports_follow_a_fix() {
    let kc = &cluster_common::cluster();
    apply_report_crds(kc);
    let ns = fresh_name("audit-bg");
    must(kc, &["create", "namespace", &ns], None);
    let _cleanup = scopeguard(kc, &ns);
    let objects = [
        claim(&ns, "shared", "ReadWriteOnce"),
        deployment(&ns, "bad", 3, "shared", ""),
    ]
    .join("---\n");
    must(kc, &["apply", "-f", "-"], Some(&objects));
    let lease = format!("{ns}/volguard-audit");
    let served = cluster_common::serve_with(
        kc,
        fresh_name("unused"),
        &[],
        &[
            // An hour: every pass after the first is started by a watch event, not by the clock.
            "--audit-interval",
            "1h",
            "--audit-lease",
            &lease,
            "--audit-namespace",
            &ns,
            "--audit-write-pause",
            "0s",
        ]
        .map(std::ffi::OsStr::new),
    );
    let summary = || cluster_common::report_summary(kc, &ns);
    let failing = serde_json::json!({"pass": 5, "fail": 1, "warn": 0, "error": 0, "skip": 0});
    cluster_common::wait_until(
        "the first background pass",
        std::time::Duration::from_secs(60),
        || summary().as_ref() == Some(&failing),
    );
    let finding =
        format!("volguard_audit_findings{{rule=\"shared-rwo-claim\",namespace=\"{ns}\",result=\"fail\"}}");
    assert_eq!(metric(served.metrics_port, &finding), Some(1.0));
    assert!(
        metric(
            served.metrics_port,
            "volguard_audit_runs_total{result=\"success\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    let holder = lease_holder(kc, &ns);
    assert!(!holder.is_empty(), "the audit Lease has a holder");

    must(
        kc,
        &["scale", "deployment", "-n", &ns, "bad", "--replicas=1"],
        None,
    );
    let passing = serde_json::json!({"pass": 6, "fail": 0, "warn": 0, "error": 0, "skip": 0});
    cluster_common::wait_until("a pass after the fix", std::time::Duration::from_secs(60), || {
        summary().as_ref() == Some(&passing)
    });
    cluster_common::wait_until("the metric to follow", std::time::Duration::from_secs(30), || {
        metric(served.metrics_port, &finding).is_none()
    });
    // Deleted: the next pass, started by the delete event, removes the namespace's last results, and with
    // them its report.
    delete_deployment(kc, &ns, "bad");
    cluster_common::wait_until(
        "a pass after the delete",
        std::time::Duration::from_secs(60),
        || summary().is_none(),
    );
    // SIGTERM: the Lease is released on shutdown, so another replica takes over at once.
    let mut served = served;
    let term = Command::new("kill")
        .args(["-TERM", &served.cleanup.server.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    cluster_common::wait_until(
        "serve to stop on SIGTERM",
        std::time::Duration::from_secs(30),
        || served.cleanup.server.try_wait().expect("status").is_some(),
    );
    let holder = lease_holder(kc, &ns);
    assert_eq!(holder, "", "released on shutdown");
}

#[test]
fn a_namespace_that_cannot_take_its_report_does_not_stop_the_others() {
    // A namespace being deleted refuses new objects (403, and this control plane never finishes deleting
    // it); the report of the namespace next to it is still written, and the failure says which it was.
    use volguard::adapters::policy_report::{self, ReportApi, WriteLimits};
    let kc = &cluster_common::cluster();
    apply_report_crds(kc);
    let (gone, live) = (fresh_name("audit-gone"), fresh_name("audit-live"));
    for ns in [&gone, &live] {
        must(kc, &["create", "namespace", ns], None);
    }
    let _cleanup = (scopeguard(kc, &gone), scopeguard(kc, &live));
    must(kc, &["delete", "namespace", &gone, "--wait=false"], None);
    let reports = [
        policy_report::build(ReportApi::Wgpolicyk8s, &gone, Vec::new(), 10),
        policy_report::build(ReportApi::Wgpolicyk8s, &live, Vec::new(), 10),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let written = runtime
        .block_on(async {
            let client = volguard::adapters::kube_lookup::client(Some(kc), None)
                .await
                .expect("a client");
            let limits = WriteLimits {
                request_timeout: std::time::Duration::from_secs(10),
                pause: std::time::Duration::ZERO,
            };
            policy_report::write(&client, ReportApi::Wgpolicyk8s, &reports, Some(&live), limits).await
        })
        .expect("the kind is served: no whole-write error");
    assert_eq!(written.applied, [format!("{live}/volguard")]);
    assert_eq!(written.failed.len(), 1, "{:?}", written.failed);
    let failure = written.failed[0].to_string();
    assert!(
        failure.starts_with(&format!("applying PolicyReport {gone}/volguard: "))
            && failure.contains("terminat"),
        "{failure}"
    );
    assert!(!failure.contains("install its CRD"), "{failure}");
    assert_eq!(
        cluster_common::report_summary(kc, &live),
        Some(serde_json::json!({"pass": 0, "fail": 0, "warn": 0, "error": 0, "skip": 0}))
    );
}
