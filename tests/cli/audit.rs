//! `volguard audit` as users run it, where no cluster is needed: its usage errors. The audit itself runs
//! against the real API server in tests/e2e/audit.rs.

use crate::cli_common;

use cli_common::{run, volguard};
use pretty_assertions::assert_eq;

#[test]
fn an_unreadable_kubeconfig_is_a_usage_error_that_names_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let out = run(volguard([
        "audit".as_ref(),
        "--kubeconfig".as_ref(),
        missing.as_os_str(),
        "--color".as_ref(),
        "never".as_ref(),
    ]));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .starts_with("error: connecting to the cluster (--kubeconfig, --context): "),
        "{}",
        out.stderr
    );
}

#[test]
fn a_malformed_selector_is_refused_before_anything_is_contacted() {
    let out = run(volguard(["audit", "-l", "env in prod"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "invalid value 'env in prod' for '--selector <SELECTOR>': `env in prod` is not a label selector term"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn reports_cannot_be_written_for_part_of_a_namespace() {
    let out = run(volguard(["audit", "--write-reports", "-l", "app=web"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("error: the argument '--write-reports' cannot be used with '--selector <SELECTOR>'"),
        "{}",
        out.stderr
    );
    let out = run(volguard(["audit", "--report-api", "openreports"]));
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("--write-reports"), "{}", out.stderr);
}

#[test]
fn the_background_audit_needs_its_lease_and_a_cluster() {
    let out = run(volguard(["serve", "--audit-interval", "1m"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr.contains(
            "the following required arguments were not provided:\n  --audit-lease <NAMESPACE/NAME>"
        ),
        "{}",
        out.stderr
    );
    let out = run(volguard([
        "serve",
        "--audit-interval",
        "1m",
        "--audit-lease",
        "volguard/audit",
        "--no-cluster",
    ]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("error: the argument '--audit-interval <DURATION>' cannot be used with '--no-cluster'"),
        "{}",
        out.stderr
    );
    let out = run(volguard(["serve", "--audit-lease", "no-slash"]));
    assert_eq!(out.code, 2);
}
