//! One claim, all of its users: scenarios of several objects, each judged the way every caller judges it.
//!
//! A scenario is `tests/fixtures/scenarios/<name>.yaml` (see `tests/fixtures/scenarios/README.md`): real-looking
//! manifests, what each object gets when it is created last (all the others already there), and UPDATEs of
//! one of them. Every scenario runs:
//!
//! - as files to `check`, in every order of its documents (all orders up to 5 documents, else every
//!   rotation and its reverse): each workload and autoscaler gets its `last` verdict and rules, whatever the
//!   order (a claim is judged by `check` only against a cluster, so it is left out);
//! - as an AdmissionReview CREATE of each object to the `volguard review` binary, the other objects given
//!   with `-f` as the cluster: its `last` verdict, rules and message;
//! - each UPDATE as an AdmissionReview to `volguard review` (the old object among the cluster's), as the
//!   `/scale` subresource when only the replica count changes, and as `check --cluster` (in-process, with the
//!   scenario's objects for the cluster): the same verdict from all three.
//!
//! Scenarios marked `e2e: true` also run through the real kube-apiserver (`tests/e2e/scenarios.rs`).

use crate::scenario_common;

use std::path::Path;

use pretty_assertions::assert_eq;
use rstest::rstest;
use scenario_common::{Expected, Scenario, review_body};
use volguard::adapters::cli::check::{Options, run_check};
use volguard::domain::policy::PolicySet;

fn policies() -> PolicySet {
    PolicySet::builtin().expect("the built-in policy loads")
}

/// The orders `check` reads the documents in: all of them for a few documents, else every rotation and
/// its reverse.
fn orders(n: usize) -> Vec<Vec<usize>> {
    fn permutations(items: Vec<usize>) -> Vec<Vec<usize>> {
        if items.len() <= 1 {
            return vec![items];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.clone();
            let first = rest.remove(i);
            for mut p in permutations(rest) {
                p.insert(0, first);
                out.push(p);
            }
        }
        out
    }
    if n <= 5 {
        return permutations((0..n).collect());
    }
    let mut out = Vec::new();
    for r in 0..n {
        let rotated: Vec<usize> = (0..n).map(|i| (i + r) % n).collect();
        let mut reversed = rotated.clone();
        reversed.reverse();
        out.push(rotated);
        out.push(reversed);
    }
    out
}

fn check_in_every_order(s: &Scenario) {
    let policies = policies();
    let expected: Vec<(String, Expected)> = s
        .last
        .iter()
        .filter(|e| !e.object.starts_with("PersistentVolumeClaim "))
        .map(|e| (e.object.clone(), e.clone()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for order in orders(s.documents.len()) {
        let text: Vec<&str> = order.iter().map(|i| s.documents[*i].as_str()).collect();
        let file = dir.path().join("manifests.yaml");
        std::fs::write(&file, text.join("---\n")).unwrap();
        let (report, _) = run_check(&[file], &policies, Options::default(), None);
        assert!(report.errors.is_empty(), "{}: {:?}", s.name, report.errors);
        let mut got: Vec<(String, String, Vec<String>)> = report
            .objects
            .iter()
            .map(|o| {
                let rules = o.findings.iter().map(|f| f.rule.as_str().to_owned()).collect();
                (o.object(), format!("{:?}", o.verdict), rules)
            })
            .collect();
        got.sort();
        let mut want: Vec<(String, String, Vec<String>)> = expected
            .iter()
            .map(|(o, e)| (o.clone(), e.verdict.clone(), e.rules.clone()))
            .collect();
        want.sort();
        assert_eq!(got, want, "{}: check in the order {order:?}", s.name);
    }
}

fn review_each_object_created_last(s: &Scenario) {
    let dir = tempfile::tempdir().unwrap();
    for e in &s.last {
        let (object, others) = s.split(&e.object);
        let others_file = dir.path().join("others.yaml");
        std::fs::write(&others_file, others.join("---\n")).unwrap();
        let review_file = dir.path().join("review.json");
        std::fs::write(&review_file, review_body(&object, None)).unwrap();
        let response = scenario_common::review(&review_file, &others_file);
        e.assert_response(&response, &format!("{}: {} created last", s.name, e.object));
    }
}

fn updates_agree_across_review_scale_and_check(s: &Scenario) {
    let policies = policies();
    let dir = tempfile::tempdir().unwrap();
    for u in &s.updates {
        let (old, others) = s.split(&u.expect.object);
        let new = u.apply(&old);
        let what = format!("{}: update {}", s.name, u.name);
        // The cluster: every object of the scenario, the old version of this one included.
        let cluster_file = dir.path().join("cluster.yaml");
        let mut cluster: Vec<String> = others.clone();
        cluster.push(serde_saphyr::to_string(&old).unwrap());
        std::fs::write(&cluster_file, cluster.join("---\n")).unwrap();
        let review_file = dir.path().join("update.json");
        std::fs::write(&review_file, review_body(&new, Some(&old))).unwrap();
        let response = scenario_common::review(&review_file, &cluster_file);
        u.expect.assert_response(&response, &format!("{what} (review)"));
        if let Some(scale) = scenario_common::scale_review(&new, &old) {
            std::fs::write(&review_file, scale).unwrap();
            let response = scenario_common::review(&review_file, &cluster_file);
            u.expect
                .assert_verdict(&response, &format!("{what} (the /scale subresource)"));
        }
        // `check --cluster`: the new object in a file, the scenario as the cluster.
        let new_file = dir.path().join("new.yaml");
        std::fs::write(&new_file, serde_saphyr::to_string(&new).unwrap()).unwrap();
        let bundle =
            volguard::adapters::manifest::read_bundle(std::slice::from_ref(&cluster_file), "default")
                .unwrap();
        let (report, _) = run_check(&[new_file], &policies, Options::default(), Some(&bundle));
        let object = report
            .objects
            .iter()
            .find(|o| o.object() == u.expect.object)
            .unwrap_or_else(|| panic!("{what}: check judged {:?}", report.objects));
        assert_eq!(
            format!("{:?}", object.verdict),
            u.expect.verdict,
            "{what} (check --cluster): {:#?}",
            object.findings
        );
        let rules: Vec<&str> = object.findings.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, u.expect.rules, "{what} (check --cluster)");
    }
}

#[rstest]
fn scenario(#[files("tests/fixtures/scenarios/*.yaml")] path: std::path::PathBuf) {
    let s = Scenario::load(&path);
    check_in_every_order(&s);
    review_each_object_created_last(&s);
    updates_agree_across_review_scale_and_check(&s);
}

#[test]
fn every_issue_bullet_has_both_verdicts() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios");
    let scenarios = Scenario::all(&dir);
    for bullet in scenario_common::BULLETS {
        let verdicts: std::collections::BTreeSet<&str> = scenarios
            .iter()
            .filter(|s| s.covers.iter().any(|c| c == bullet))
            .flat_map(|s| {
                s.last
                    .iter()
                    .chain(s.updates.iter().map(|u| &u.expect))
                    .map(|e| if e.verdict == "Deny" { "Deny" } else { "admitted" })
            })
            .collect();
        assert_eq!(
            verdicts.into_iter().collect::<Vec<_>>(),
            ["Deny", "admitted"],
            "bullet {bullet:?} needs a denied and an admitted scenario"
        );
    }
}
