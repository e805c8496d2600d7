//! `volguard check` beyond the basics: the text layout, `-v`, policy directories, colour, logging, lists,
//! paths that are not there, and the environment twins of the flags.

use crate::cli_common;

use cli_common::{d, decisions, fixture, run, volguard};
use pretty_assertions::assert_eq;
use serde_json::json;

#[test]
fn examples_text_report_has_one_header_per_finding_object_and_the_summary_last() {
    let out = run(volguard(["check", "-f", "examples/"]));
    assert_eq!(out.code, 1);
    let headers: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("DENY") || l.starts_with("WARN"))
        .collect();
    assert_eq!(
        headers,
        [
            "DENY  Deployment cms/site-editor  (examples/content-writable.yaml document 1, line 4)",
            "DENY  CronJob analytics/nightly-report  (examples/cronjob-report.yaml document 2, line 15)",
            "DENY  DaemonSet logging/log-shipper  (examples/daemonset-rwo.yaml document 2, line 14)",
            "DENY  Deployment payments/api  (examples/hpa-rwo.yaml document 2, line 15)",
            "DENY  HorizontalPodAutoscaler payments/api  (examples/hpa-rwo.yaml document 3, line 53)",
            "WARN  Deployment ci/build-cache  (examples/pinned-node.yaml document 2, line 19)",
            "WARN  Deployment tools/wiki  (examples/single-replica-rollout.yaml document 2, line 17)",
            "DENY  Deployment shop/web  (examples/web-shared-rwo.yaml document 2, line 19)",
        ]
    );
    assert!(
        out.stdout.ends_with(
            "\n\n11 objects checked, 6 denied, 2 warned; 7 claims read; skipped: 1 ConfigMap, 2 Service\n"
        ),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains('\x1b'),
        "no colour when stdout is not a terminal"
    );
}

#[test]
fn verbose_lists_objects_without_findings_and_skipped_ones() {
    let out = run(volguard([
        "check",
        "-v",
        "-f",
        "examples/postgres-statefulset.yaml",
    ]));
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout,
        "ok    StatefulSet db/postgres  (examples/postgres-statefulset.yaml document 2, line 18)\n\
         skip  Service db/postgres (v1)  (examples/postgres-statefulset.yaml document 1, line 3)\n\
         \n\
         1 object checked, 0 denied, 0 warned; skipped: 1 Service\n"
    );
}

#[test]
fn a_policy_directory_replaces_the_builtin_policy_and_the_strictest_action_wins() {
    let out = run(volguard([
        "check",
        "-o",
        "json",
        "--policy",
        "tests/fixtures/check/policies",
        "-f",
        "examples/content-readonly.yaml",
        "examples/single-replica-rollout.yaml",
        "tests/fixtures/check/split/deployment.yaml",
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(
        decisions(&report),
        [
            // cms-stateless opts in to stateless-deployment for namespace cms only.
            d("Deployment cms/site", "Deny", &["stateless-deployment"]),
            d("Deployment tools/wiki", "Deny", &["rollout-attach-deadlock"]),
            // Audit findings are reported but allow.
            d("Deployment finance/reports", "Allow", &["missing-claim"]),
        ]
    );
    let site = &report["objects"][0];
    assert_eq!(site["policies"], json!(["cms-stateless", "rollouts"]));
    assert_eq!(site["findings"][0]["policy"], "cms-stateless");
    assert_eq!(report["objects"][1]["findings"][0]["policy"], "rollouts");
    let reports = &report["objects"][2]["findings"][0];
    assert_eq!(
        (&reports["action"], &reports["policy"]),
        (&json!("Audit"), &json!("rollouts"))
    );

    let text = run(volguard([
        "check",
        "--policy",
        "tests/fixtures/check/policies",
        "-f",
        "tests/fixtures/check/split/deployment.yaml",
    ]));
    assert_eq!(text.code, 0);
    assert!(
        text.stdout.starts_with(
            "AUDIT Deployment finance/reports  (tests/fixtures/check/split/deployment.yaml document 1, line 2)\n  \
             [missing-claim] audit: Deployment finance/reports mounts claim \"report-archive\""
        ),
        "{}",
        text.stdout
    );
}

#[test]
fn the_policy_flag_has_an_environment_twin() {
    let mut cmd = volguard(["check", "-f", "examples/single-replica-rollout.yaml"]);
    cmd.env("VOLGUARD_POLICY", "tests/fixtures/check/policies");
    assert_eq!(
        run(cmd).code,
        1,
        "rollout-attach-deadlock denies under the fixture policies"
    );
}

#[test]
fn list_items_are_checked_and_named_by_position() {
    let out = run(volguard(["check", "-f", &fixture("list.json")]));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.starts_with(
            "DENY  Deployment exported/exported  (tests/fixtures/check/list.json document 1, line 1, items[1])\n  \
             [shared-rwo-claim] deny: Deployment exported/exported may run 2 pods that all mount claim \"data\" \
             (volume \"data\"), whose access mode is ReadWriteOncePod"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn a_missing_path_is_an_input_error_and_the_other_paths_are_checked() {
    let out = run(volguard([
        "check",
        "-f",
        "no/such/file.yaml",
        "examples/web-shared-rwo.yaml",
    ]));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: no/such/file.yaml: No such file or directory (os error 2)\n"
    );
    assert!(out.stdout.ends_with(
        "\n1 object checked, 1 denied, 0 warned; 1 claim read; skipped: 1 ConfigMap, 1 Service; 1 input error\n"
    ));
}

#[test]
fn a_directory_without_manifests_is_an_input_error() {
    let out = run(volguard(["check", "-f", "tests/fixtures/check/empty-tree"]));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: tests/fixtures/check/empty-tree: no .yaml, .yml or .json files found in this directory\n"
    );
    assert_eq!(
        out.stdout,
        "\n0 objects checked, 0 denied, 0 warned; 1 input error\n"
    );
}

#[test]
fn colour_is_off_when_piped_and_on_when_asked() {
    let plain = run(volguard(["check", "-f", "examples/web-shared-rwo.yaml"]));
    assert!(!plain.stdout.contains('\x1b'));
    let coloured = run(volguard([
        "check",
        "--color",
        "always",
        "-f",
        "examples/web-shared-rwo.yaml",
    ]));
    assert!(
        coloured
            .stdout
            .starts_with("\x1b[1m\x1b[31mDENY \x1b[0m \x1b[1mDeployment shop/web\x1b[0m"),
        "{:?}",
        coloured.stdout
    );
    let mut by_env = volguard(["check", "-f", "examples/web-shared-rwo.yaml"]);
    by_env.env("VOLGUARD_COLOR", "always");
    assert_eq!(run(by_env).stdout, coloured.stdout);
    let mut never = volguard(["check", "--color", "never", "-f", "examples/web-shared-rwo.yaml"]);
    never.env("CLICOLOR_FORCE", "1");
    assert_eq!(run(never).stdout, plain.stdout);
}

#[test]
fn logs_go_to_standard_error_in_the_chosen_format() {
    let mut cmd = volguard([
        "check",
        "-o",
        "json",
        "--log-format",
        "json",
        "-f",
        "examples/web-shared-rwo.yaml",
    ]);
    cmd.env("VOLGUARD_LOG", "info");
    let out = run(cmd);
    assert_eq!(out.code, 1);
    assert_eq!(out.json()["summary"]["denied"], 1, "stdout holds only the report");
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert_eq!(lines[0]["level"], "INFO");
    assert_eq!(
        lines[0]["fields"],
        json!({"message": "Check finished", "objects": 1, "denied": 1, "warned": 0, "claims": 1, "input_errors": 0})
    );
    // The default level for check is warn: nothing to say about a clean run.
    let quiet = run(volguard(["check", "-f", "examples/web-shared-rwo.yaml"]));
    assert_eq!(quiet.stderr, "");
}

#[test]
fn tests_run_the_binary_without_the_settings_of_the_shell_running_them() {
    use crate::env::is_setting;
    for name in [
        "VOLGUARD_OUTPUT",
        "VOLGUARD_POLICY",
        "VOLGUARD_MAX_VOLUMES",
        "VOLGUARD_E2E_KUBECONFIG",
    ] {
        assert!(
            is_setting(name.as_ref()),
            "{name} is a setting a test must not inherit"
        );
    }
    for name in ["NO_COLOR", "CLICOLOR_FORCE", "RUST_LOG"] {
        assert!(is_setting(name.as_ref()), "{name}");
    }
    for name in ["PATH", "HOME", "KUBECONFIG", "VOLGUARDX", "MY_VOLGUARD_OUTPUT"] {
        assert!(!is_setting(name.as_ref()), "{name} is not volguard's");
    }
}
