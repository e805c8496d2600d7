//! `claim-breaks-workloads`: a claim created under the name of one that running workloads mount is judged
//! by re-running their sharing rules with it. The cluster caches are filled by hand (no API server).

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher;
use volguard::kube_lookup::ClusterLookup;
use volguard::lookup::{Bundle, Lookup};
use volguard::policy::{Action, PolicySet, Verdict, evaluate};
use volguard::rules::RuleId;
use volguard::workload::Resource;

fn store<K>(objects: Vec<K>) -> Store<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let (reader, mut writer) = reflector::store();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

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
    ClusterLookup::from_stores(
        store::<PersistentVolumeClaim>(vec![]),
        store(deployments),
        store::<StatefulSet>(vec![]),
        store::<ReplicaSet>(vec![]),
    )
}

#[test]
fn the_cluster_lookup_finds_the_workloads_mounting_a_claim() {
    let lookup = cluster(vec![
        deployment("web", 3, "uploads"),
        deployment("worker", 1, "uploads"),
        deployment("other", 3, "cache"),
    ]);
    let names: Vec<String> = lookup
        .workloads_mounting("shop", "uploads")
        .iter()
        .map(|w| w.object_ref().to_string())
        .collect();
    assert_eq!(names, ["Deployment shop/web", "Deployment shop/worker"]);
    assert!(lookup.workloads_mounting("other-ns", "uploads").is_empty());
}

#[test]
fn a_rwo_claim_under_a_running_three_replica_deployment_warns_naming_it() {
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
    assert_eq!(eval.verdict(), Verdict::Warn);
    assert_eq!(eval.findings.len(), 1);
    let j = &eval.findings[0];
    assert_eq!(j.finding.rule, RuleId::ClaimBreaksWorkloads);
    assert_eq!(j.action, Action::Warn);
    assert_eq!(j.finding.claim.as_deref(), Some("uploads"));
    let msg = &j.finding.message;
    assert!(
        msg.starts_with(
            "PersistentVolumeClaim shop/uploads is mounted by running workloads that will break with these \
             access modes: Deployment shop/web. Deployment shop/web may run 3 pods"
        ),
        "{msg}"
    );
    assert!(
        !msg.contains("shop/solo"),
        "a one-pod workload does not break: {msg}"
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
fn check_files_do_not_report_a_claim_for_the_workload_beside_it() {
    // The Deployment in the same files is judged against the claim already: one finding, not two.
    let resources = [
        Resource::Claim(claim("uploads", "ReadWriteOnce")),
        Resource::Workload(volguard::workload::Workload::Deployment(deployment(
            "web", 3, "uploads",
        ))),
    ];
    let bundle: Bundle = resources.iter().collect();
    assert!(bundle.workloads_mounting("shop", "uploads").is_empty());
    let policies = PolicySet::builtin().unwrap();
    let eval = evaluate(&resources[0], &bundle, &policies).unwrap();
    assert!(eval.findings.is_empty());
}
