//! `volguard check --mutate` and `--diff`, run as a user runs them: the repaired manifests go through
//! `kubectl apply -f -` in real life, so here they are parsed back, checked again (nothing left to repair,
//! the same decisions), and compared with the input document by document.

use crate::cli_common;

use cli_common::{d, decisions, run, volguard};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const POLICY: &str = "tests/fixtures/mutate/policy.yaml";
const FILES: [&str; 2] = [
    "tests/fixtures/mutate/deployments.yaml",
    "tests/fixtures/mutate/statefulset.yaml",
];

fn check(extra: &[&str]) -> cli_common::Run {
    let mut args = vec!["check", "--policy", POLICY, "-f"];
    args.extend(FILES);
    args.extend(extra);
    run(volguard(args))
}

/// The decisions on the fixtures once repaired: only the StatefulSet sharing a claim is left, since it is
/// never rewritten.
fn repaired() -> Vec<(String, String, Vec<String>)> {
    vec![
        d("Deployment shop/cms", "Allow", &[]),
        d("Deployment shop/web", "Allow", &[]),
        d(
            "StatefulSet shop/queue",
            "Deny",
            &["shared-rwo-claim", "statefulset-shared-claim"],
        ),
        d("StatefulSet data/orders-db", "Allow", &[]),
    ]
}

fn documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(yaml).expect("the output is YAML")
}

fn written() -> Vec<Value> {
    FILES
        .iter()
        .flat_map(|f| documents(&std::fs::read_to_string(cli_common::root().join(f)).expect("fixture")))
        .collect()
}

#[test]
fn the_report_shows_what_was_repaired_and_what_is_left() {
    let out = check(&["--mutate", "-o", "json"]);
    assert_eq!(out.code, 1, "StatefulSet shop/queue is still denied");
    let report = out.json();
    assert_eq!(decisions(&report), repaired());
    let fields = |i: usize| -> Vec<String> {
        report["objects"][i]["changes"]
            .as_array()
            .expect("changes is a list")
            .iter()
            .map(|c| c["field"].as_str().expect("a field").to_owned())
            .collect()
    };
    assert_eq!(fields(0), vec!["spec.strategy"]);
    assert_eq!(fields(1).len(), 3, "three containers mount the claim read-write");
    assert_eq!(fields(2), Vec::<String>::new());
    assert_eq!(report["objects"][2]["patch"], Value::Null);
    assert_eq!(
        report["objects"][0]["changes"][0]["rule"],
        "rollout-attach-deadlock"
    );
    assert_eq!(
        report["objects"][0]["patch"],
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {"volguard.io/mutated": "spec.strategy"}},
            {"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"},
            {"op": "remove", "path": "/spec/strategy/rollingUpdate"}
        ])
    );

    // Without --mutate the same files are judged as written.
    let plain = check(&["-o", "json"]).json();
    assert_eq!(
        decisions(&plain),
        vec![
            d("Deployment shop/cms", "Warn", &["rollout-attach-deadlock"]),
            d("Deployment shop/web", "Deny", &["shared-claim-writable"; 3]),
            d(
                "StatefulSet shop/queue",
                "Deny",
                &["shared-rwo-claim", "statefulset-shared-claim"]
            ),
            d(
                "StatefulSet data/orders-db",
                "Warn",
                &["statefulset-policy-template"]
            ),
        ]
    );
    assert_eq!(plain["objects"][0]["changes"], json!([]));
}

#[test]
fn yaml_prints_every_document_repaired_and_checks_clean_again() {
    let out = check(&["--mutate", "-o", "yaml"]);
    assert_eq!(out.code, 1);
    let printed = documents(&out.stdout);
    let input = written();
    assert_eq!(printed.len(), input.len(), "every document, claims included");
    let changed: Vec<String> = printed
        .iter()
        .zip(&input)
        .filter(|(after, before)| after != before)
        .map(|(after, _)| {
            format!(
                "{} {}",
                after["kind"].as_str().unwrap(),
                after["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        changed,
        vec!["Deployment cms", "Deployment web", "StatefulSet orders-db"]
    );
    assert_eq!(printed[1]["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(
        printed[6]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
    // The report went to standard error, so the pipe carries manifests only.
    assert!(out.stderr.contains("FIXED Deployment shop/cms"), "{}", out.stderr);
    assert!(
        out.stderr
            .ends_with("4 objects checked, 1 denied, 0 warned; 3 claims read\n"),
        "{}",
        out.stderr
    );

    // The output, checked again as `kubectl apply -f -` would receive it: nothing more to repair.
    let mut again = volguard(["check", "--policy", POLICY, "--mutate", "-o", "json", "-f", "-"]);
    again.write_stdin(out.stdout.clone());
    let again = run(again);
    let report = again.json();
    for object in report["objects"].as_array().expect("objects") {
        assert_eq!(object["changes"], json!([]), "{object:#}");
    }
    assert_eq!(decisions(&report), repaired());
}

#[test]
fn diff_shows_the_patch_and_the_yaml_lines_that_change() {
    let out = run(volguard([
        "check",
        "--policy",
        POLICY,
        "--diff",
        "-f",
        "tests/fixtures/mutate/deployments.yaml",
    ]));
    assert_eq!(out.code, 1);
    let cms = out
        .stdout
        .split("\n\n")
        .find(|block| block.starts_with("Deployment shop/cms"))
        .expect("a block for the repaired Deployment");
    assert_eq!(
        cms,
        "Deployment shop/cms  (tests/fixtures/mutate/deployments.yaml document 2, line 14)
  repaired: set spec.strategy to Recreate (rollingUpdate removed): with 1 replica on claim \"cms-uploads\" \
(ReadWriteOnce), a rolling update would start the new pod before the old one releases the volume  (policy repairs)
  patch:
    {\"op\":\"add\",\"path\":\"/metadata/annotations\",\"value\":{\"volguard.io/mutated\":\"spec.strategy\"}}
    {\"op\":\"replace\",\"path\":\"/spec/strategy/type\",\"value\":\"Recreate\"}
    {\"op\":\"remove\",\"path\":\"/spec/strategy/rollingUpdate\"}
--- Deployment shop/cms (tests/fixtures/mutate/deployments.yaml document 2, line 14)
+++ Deployment shop/cms (tests/fixtures/mutate/deployments.yaml document 2, line 14), repaired
@@ -1,6 +1,8 @@
 apiVersion: apps/v1
 kind: Deployment
 metadata:
+  annotations:
+    volguard.io/mutated: spec.strategy
   labels:
     app.kubernetes.io/name: cms
   name: cms
@@ -11,10 +13,7 @@
     matchLabels:
       app.kubernetes.io/name: cms
   strategy:
-    rollingUpdate:
-      maxSurge: 25%
-      maxUnavailable: 25%
-    type: RollingUpdate
+    type: Recreate
   template:
     metadata:
       labels:"
    );
    // Objects without repairs are not listed; the summary ends the output.
    assert!(!out.stdout.contains("StatefulSet shop/queue"), "{}", out.stdout);
    assert!(
        out.stdout
            .ends_with("3 objects checked, 1 denied, 0 warned; 3 claims read\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_policy_without_mutations_changes_nothing() {
    let out = run(volguard([
        "check",
        "--mutate",
        "-o",
        "yaml",
        "-f",
        "tests/fixtures/mutate/deployments.yaml",
    ]));
    assert_eq!(
        documents(&out.stdout),
        documents(
            &std::fs::read_to_string(cli_common::root().join("tests/fixtures/mutate/deployments.yaml"))
                .expect("fixture")
        )
    );
    assert!(!out.stderr.contains("repaired"), "{}", out.stderr);
}

#[test]
fn a_skip_another_selecting_policy_refuses_is_repaired_as_it_is_judged() {
    // "repairs" would make the Deployment Recreate; "strict" (no repairs) allows no exception to
    // rollout-attach-deadlock. The skip is refused when the object is validated, so it must not stop the
    // repair either: one decision on the exception, whichever webhook asks.
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies.yaml");
    std::fs::write(
        &policies,
        "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: repairs\nspec:\n  mutate:\n    \
         repairs:\n      recreateStrategy: true\n---\napiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\n\
         metadata:\n  name: strict\nspec:\n  rules:\n    rollout-attach-deadlock:\n      allowExceptions: false\n",
    )
    .unwrap();
    let manifests = dir.path().join("web.yaml");
    std::fs::write(
        &manifests,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: shop}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n---\napiVersion: apps/v1\n\
         kind: Deployment\nmetadata:\n  name: web\n  namespace: shop\n  annotations:\n    volguard.io/skip: \
         rollout-attach-deadlock\n    volguard.io/skip-reason: \"we never roll\"\nspec:\n  replicas: 1\n  \
         selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      \
         containers: [{name: web, image: nginx, volumeMounts: [{name: d, mountPath: /d}]}]\n      \
         volumes: [{name: d, persistentVolumeClaim: {claimName: data}}]\n",
    )
    .unwrap();
    let check = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "--policy".as_ref(),
            policies.as_os_str(),
            "-f".as_ref(),
            manifests.as_os_str(),
        ];
        args.extend(extra.iter().map(std::ffi::OsStr::new));
        run(volguard(args))
    };
    // Validated: the skip is refused and the rollout deadlock denies.
    let out = check(&[]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        decisions(&out.json()),
        [d("Deployment shop/web", "Deny", &["rollout-attach-deadlock"])]
    );
    // Repaired: Recreate, and nothing left to deny.
    let out = check(&["--mutate"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = out.json();
    assert_eq!(decisions(&report), [d("Deployment shop/web", "Allow", &[])]);
}
