use serde_json::json;

use super::*;
use crate::decision::evaluate;
use crate::domain::lookup::Bundle;
use crate::domain::policy::PolicySet;
use crate::domain::workload::{Decoded, Resource, decode};

fn resource(value: serde_json::Value) -> Resource {
    match decode(value).unwrap() {
        Decoded::Resource(r) => *r,
        Decoded::Skipped { .. } => panic!("not judged"),
    }
}

fn claim(name: &str) -> Resource {
    resource(json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }))
}

fn deployment(name: &str, replicas: u32, claim: &str, annotations: serde_json::Value) -> Resource {
    resource(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop", "uid": format!("uid-{name}"), "annotations": annotations},
        "spec": {
            "replicas": replicas, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "web", "image": "nginx", "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
            }}
        }
    }))
}

fn judged(resources: &[Resource], name: &str) -> (ResourceRef, Vec<ReportResult>) {
    let bundle: Bundle = resources.iter().collect();
    let policies = PolicySet::builtin().unwrap();
    let r = resources
        .iter()
        .find(|r| r.object_ref().name == name && matches!(r, Resource::Workload(_)))
        .unwrap();
    let Resource::Workload(w) = r else { unreachable!() };
    let object = reference(w);
    let evaluation = evaluate(r, &bundle, &policies).unwrap();
    let results = results(&object, &evaluation, &policies);
    (object, results)
}

fn outcomes(results: &[ReportResult]) -> Vec<(&str, Outcome)> {
    results.iter().map(|r| (r.rule.as_str(), r.result)).collect()
}

#[test]
fn a_shared_rwo_deployment_fails_its_rule_and_passes_the_others() {
    let input = [claim("data"), deployment("web", 3, "data", json!({}))];
    let (object, results) = judged(&input, "web");
    assert_eq!(
        object,
        ResourceRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
            namespace: "shop".into(),
            name: "web".into(),
            uid: Some("uid-web".into()),
        }
    );
    assert_eq!(
        outcomes(&results),
        [
            ("shared-rwo-claim", Outcome::Fail),
            ("rollout-attach-deadlock", Outcome::Pass),
            ("shared-claim-writable", Outcome::Pass),
            ("missing-claim", Outcome::Pass),
            ("unsupported-access-mode", Outcome::Pass),
            ("unbindable-claim", Outcome::Pass),
        ]
    );
    let fail = &results[0];
    assert_eq!(fail.severity.as_deref(), Some("high"));
    assert_eq!(
        fail.properties,
        BTreeMap::from([
            ("accessMode".to_owned(), "ReadWriteOnce".to_owned()),
            ("action".to_owned(), "Deny".to_owned()),
            ("claim".to_owned(), "data".to_owned()),
            ("volguardPolicy".to_owned(), "default".to_owned()),
            ("volume".to_owned(), "data".to_owned()),
        ])
    );
    assert!(
        fail.message.starts_with("Deployment shop/web may run 3 pods"),
        "{}",
        fail.message
    );
    assert_eq!(fail.resources, vec![object]);
    assert_eq!((results[1].severity.as_ref(), results[1].scored), (None, true));
}

#[test]
fn a_skipped_rule_is_a_skip_result_with_its_reason_and_not_scored() {
    let skip = json!({"volguard.io/skip": "shared-rwo-claim", "volguard.io/skip-reason": "one node"});
    let input = [claim("data"), deployment("web", 3, "data", skip)];
    let (_, results) = judged(&input, "web");
    assert_eq!(outcomes(&results)[0], ("shared-rwo-claim", Outcome::Skip));
    assert_eq!(results[0].message, "skipped (volguard.io/skip): one node");
    assert_eq!(results[0].properties["reason"], "one node");
    assert!(!results[0].scored);
}

#[test]
fn the_summary_counts_every_result_and_a_long_report_keeps_failures_first() {
    let input = [
        claim("data"),
        claim("own"),
        deployment("web", 3, "data", json!({})),
        deployment("one", 1, "own", json!({})),
    ];
    let mut all = judged(&input, "one").1;
    all.extend(judged(&input, "web").1);
    let report = build(ReportApi::Wgpolicyk8s, "shop", all.clone(), 100);
    assert_eq!(
        report.summary,
        ReportSummary {
            pass: 11,
            fail: 1,
            ..ReportSummary::default()
        }
    );
    assert_eq!(report.results, all);
    assert_eq!(report.api_version, "wgpolicyk8s.io/v1alpha2");
    assert_eq!(report.kind, "PolicyReport");
    assert_eq!(report.metadata.name.as_deref(), Some("volguard"));
    assert_eq!(report.metadata.annotations, None);

    let capped = build(ReportApi::Openreports, "shop", all, 2);
    assert_eq!(
        (capped.api_version.as_str(), capped.kind.as_str()),
        ("openreports.io/v1alpha1", "Report")
    );
    assert_eq!(capped.summary.pass, 11);
    assert_eq!(
        capped.results.iter().map(|r| r.result).collect::<Vec<_>>(),
        [Outcome::Fail, Outcome::Pass]
    );
    assert_eq!(capped.metadata.annotations.unwrap()[TRUNCATED_ANNOTATION], "10");
}

#[test]
fn the_same_findings_make_the_same_report() {
    let input = [claim("data"), deployment("web", 3, "data", json!({}))];
    let a = build(ReportApi::Wgpolicyk8s, "shop", judged(&input, "web").1, 100);
    let b = build(ReportApi::Wgpolicyk8s, "shop", judged(&input, "web").1, 100);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    assert!(!serde_json::to_string(&a).unwrap().contains("timestamp"));
}

#[test]
fn long_messages_are_capped() {
    let long = "x".repeat(MESSAGE_CHARS + 10);
    assert_eq!(capped(&long).chars().count(), MESSAGE_CHARS + 1);
    assert_eq!(capped("short"), "short");
}

#[test]
fn a_report_keeps_at_most_a_mebibyte_of_results() {
    let input = [claim("data"), deployment("web", 3, "data", json!({}))];
    let one = judged(&input, "web").1.remove(0);
    let mut big = one.clone();
    big.message = "m".repeat(MESSAGE_CHARS);
    let size = serde_json::to_vec(&big).unwrap().len();
    let many = vec![big; 2 * MAX_RESULT_BYTES / size];
    let report = build(ReportApi::Wgpolicyk8s, "shop", many.clone(), usize::MAX);
    let kept = report.results.len();
    assert_eq!(kept, MAX_RESULT_BYTES / size);
    assert_eq!(report.summary.fail as usize, many.len());
    assert_eq!(
        report.metadata.annotations.unwrap()[TRUNCATED_ANNOTATION],
        (many.len() - kept).to_string()
    );
}
