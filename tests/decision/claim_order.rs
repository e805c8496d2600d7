//! A claim created after the workloads that mount it is judged with them, by the rules that would have
//! judged the workloads had the claim come first, with the same actions: the order of creation does not
//! decide the verdict. The cluster index is filled by hand here (no API server).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use volguard::adapters::kube_lookup::ClusterLookup;
use volguard::decision::{Verdict, evaluate};
use volguard::domain::lookup::{Bundle, Lookup, VolumeKey};
use volguard::domain::policy::{Action, PolicySet};
use volguard::domain::rules::RuleId;
use volguard::domain::workload::{Resource, Workload};

fn deployment(name: &str, replicas: i32, claim: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "app", "image": "nginx",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]
                }
            }
        }
    }))
    .unwrap()
}

fn claim(name: &str, mode: &str) -> PersistentVolumeClaim {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"accessModes": [mode], "resources": {"requests": {"storage": "1Gi"}}}
    }))
    .unwrap()
}

fn cluster(deployments: Vec<Deployment>) -> ClusterLookup {
    ClusterLookup::from_objects(
        deployments
            .into_iter()
            .map(|d| Resource::Workload(Workload::Deployment(d))),
    )
}

fn uploads() -> VolumeKey {
    VolumeKey::Claim {
        namespace: "shop".into(),
        name: "uploads".into(),
    }
}

fn names(lookup: &dyn Lookup, volume: &VolumeKey) -> Vec<String> {
    match lookup.users(volume) {
        volguard::domain::lookup::Answer::Found(ws) => {
            ws.iter().map(|w| w.object_ref().to_string()).collect()
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn the_cluster_lookup_finds_the_workloads_mounting_a_claim() {
    let lookup = cluster(vec![
        deployment("web", 3, "uploads"),
        deployment("worker", 1, "uploads"),
        deployment("other", 3, "cache"),
    ]);
    assert_eq!(
        names(&lookup, &uploads()),
        ["Deployment shop/web", "Deployment shop/worker"]
    );
    let elsewhere = VolumeKey::Claim {
        namespace: "other-ns".into(),
        name: "uploads".into(),
    };
    assert!(names(&lookup, &elsewhere).is_empty());
}

#[test]
fn a_rwo_claim_under_a_three_replica_deployment_is_denied_as_the_deployment_would_be() {
    let lookup = cluster(vec![
        deployment("web", 3, "uploads"),
        deployment("solo", 1, "uploads"),
    ]);
    let policies = PolicySet::builtin().unwrap();
    let eval = evaluate(
        &Resource::Claim(claim("uploads", "ReadWriteOnce")),
        &lookup,
        &policies,
    )
    .unwrap();
    assert_eq!(eval.verdict(), Verdict::Deny);
    assert_eq!(eval.findings.len(), 1, "{:#?}", eval.findings);
    let j = &eval.findings[0];
    assert_eq!(j.finding.rule, RuleId::SharedRwoClaim);
    assert_eq!(j.action, Action::Deny);
    assert_eq!(j.finding.claim.as_deref(), Some("uploads"));
    assert_eq!(
        j.finding.message,
        "PersistentVolumeClaim shop/uploads has access mode ReadWriteOnce and is mounted by Deployment shop/solo \
         (1 pod) and Deployment shop/web (3 pods): 4 pods, not held on one node. The volume attaches to one node \
         at a time, so a pod scheduled on a second node hangs in ContainerCreating with \"Multi-Attach error for \
         volume ... Volume is already used by pod(s)\"."
    );
}

#[test]
fn a_rwx_claim_under_the_same_deployment_is_allowed() {
    let lookup = cluster(vec![deployment("web", 3, "uploads")]);
    let policies = PolicySet::builtin().unwrap();
    let eval = evaluate(
        &Resource::Claim(claim("uploads", "ReadWriteMany")),
        &lookup,
        &policies,
    )
    .unwrap();
    assert_eq!(eval.verdict(), Verdict::Allow);
    assert!(eval.findings.is_empty());
}

#[test]
fn files_and_cluster_agree_on_the_claim_and_on_the_deployment() {
    // The same pair, in the files or in the cluster, in either order: the second one is denied, with the
    // same rule and action.
    let policies = PolicySet::builtin().unwrap();
    let claim = Resource::Claim(claim("uploads", "ReadWriteOnce"));
    let web = Resource::Workload(Workload::Deployment(deployment("web", 3, "uploads")));
    let files: Bundle = [&web].into_iter().collect();
    let in_cluster = cluster(vec![deployment("web", 3, "uploads")]);
    for lookup in [&files as &dyn Lookup, &in_cluster] {
        let eval = evaluate(&claim, lookup, &policies).unwrap();
        assert_eq!(eval.verdict(), Verdict::Deny, "{}", lookup.scope());
        assert_eq!(eval.findings[0].finding.rule, RuleId::SharedRwoClaim);
    }
    let only_claim: Bundle = [&claim].into_iter().collect();
    let eval = evaluate(&web, &only_claim, &policies).unwrap();
    assert_eq!(eval.verdict(), Verdict::Deny);
    assert_eq!(eval.findings[0].finding.rule, RuleId::SharedRwoClaim);
}
