//! `POST /mutate` over HTTPS with a policy that repairs: every AdmissionReview a real kube-apiserver sent
//! gets its golden `tests/fixtures/reviews/<name>.mutate.response.json`. A patch is decoded from base64,
//! applied with the json-patch crate to `request.object` exactly as sent, decoded into its k8s-openapi
//! type, and sent back as the API server does on reinvocation (`reinvocationPolicy: IfNeeded`): the
//! second answer carries no patch.
//!
//! Goldens are rewritten only with `VOLGUARD_BLESS=1`; each is also held to the hand-written
//! expectation below, so a bless cannot accept a wrong answer.

use crate::common;

use std::path::Path;

use base64::Engine as _;
use common::{Protocol, Setup, TestServer, review_bytes, review_json, to_vec};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use volguard::domain::workload::{Decoded, decode};

fn setup() -> Setup {
    Setup {
        policy: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mutate/webhook-policy.yaml")),
        ..Setup::default()
    }
}

/// What a captured review must get from /mutate.
enum Expect {
    /// Allowed, no patch, no warnings.
    Unchanged,
    /// Allowed with exactly this JSON patch, and one warning per change containing each fragment.
    Patched {
        ops: Value,
        warnings: &'static [&'static str],
    },
}

macro_rules! mutate_tests {
    ($($test:ident: $name:literal => $expect:expr;)*) => {
        const COVERED: &[&str] = &[$($name),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                check($name, $expect).await;
            }
        )*
    };
}

mutate_tests! {
    // Policy db-backups adds its "backup" template after the user's "data", mounts it in container
    // postgres after the user's mount, and sets the retention policy (v1.20 has none yet). The object
    // has annotations (kubectl's last-applied), so the record is one escaped key, not a new map.
    create_statefulset_gets_the_backup_template: "create-statefulset" => Expect::Patched {
        ops: json!([
            {"op": "add", "path": "/metadata/annotations/volguard.io~1mutated", "value":
                "spec.persistentVolumeClaimRetentionPolicy, \
                 spec.template.spec.containers[postgres].volumeMounts[backup], spec.volumeClaimTemplates[backup]"},
            {"op": "add", "path": "/spec/persistentVolumeClaimRetentionPolicy",
             "value": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
            {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/1",
             "value": {"name": "backup", "mountPath": "/backup"}},
            {"op": "add", "path": "/spec/volumeClaimTemplates/1", "value": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "backup"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}}}
        ]),
        warnings: &[
            "[volguard mutate] added volumeClaimTemplate \"backup\" (ReadWriteOnce, 5Gi) to StatefulSet pg",
            "[volguard mutate] mounted volumeClaimTemplate \"backup\" at /backup in container \"postgres\"",
            "[volguard mutate] set persistentVolumeClaimRetentionPolicy whenDeleted: Retain, whenScaled: Retain",
        ],
    };
    // `kubectl set image` at 1 replica on the ReadWriteOnce claim web-data, with the defaulted
    // RollingUpdate (25%/25%): the repair switches it to Recreate.
    update_deployment_at_one_replica_becomes_recreate: "update-deployment-image" => Expect::Patched {
        ops: json!([
            {"op": "add", "path": "/metadata/annotations/volguard.io~1mutated", "value": "spec.strategy"},
            {"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"},
            {"op": "remove", "path": "/spec/strategy/rollingUpdate"}
        ]),
        warnings: &["[volguard mutate] set spec.strategy to Recreate (rollingUpdate removed): with 1 replica on \
                     claim \"web-data\" (ReadWriteOnce)"],
    };
    // Three replicas sharing a ReadWriteOnce claim: no repair makes that work, so /validate denies it.
    create_deployment_sharing_rwo_is_not_patched: "create-deployment" => Expect::Unchanged;
    create_pvc_is_not_patched: "create-pvc" => Expect::Unchanged;
    create_pvc_dry_run_is_not_patched: "create-pvc-dry-run" => Expect::Unchanged;
    delete_is_not_patched: "delete-deployment" => Expect::Unchanged;
    // A Scale changes only the replica count; the workload's template is not in the request.
    scale_deployment_is_not_patched: "scale-deployment" => Expect::Unchanged;
    scale_statefulset_is_not_patched: "scale-statefulset" => Expect::Unchanged;
    create_hpa_is_not_patched: "create-hpa-autoscaling-v1" => Expect::Unchanged;
    // Its claim is missing from the capture: nothing known to repair.
    create_job_is_not_patched: "create-job" => Expect::Unchanged;
    create_daemonset_is_not_patched: "create-daemonset" => Expect::Unchanged;
}

#[test]
fn every_captured_review_has_a_mutate_golden_test() {
    let mut covered: Vec<String> = COVERED.iter().map(|s| (*s).to_owned()).collect();
    covered.sort();
    assert_eq!(common::captured_review_names(), covered);
}

async fn check(name: &str, expect: Expect) {
    let server = TestServer::start(setup()).await;
    let client = server.client(Protocol::Http1);
    let request = review_json(name);
    let body = server.post(&client, "/mutate", review_bytes(name)).await.json();
    let response = body["response"].clone();
    assert_eq!(response["uid"], request["request"]["uid"], "{response:#}");
    assert_eq!(response["allowed"], true, "{response:#}");
    common::compare_golden(&format!("{name}.mutate.response.json"), &body);
    match expect {
        Expect::Unchanged => {
            assert_eq!(response.get("patch"), None, "{response:#}");
            assert_eq!(response.get("patchType"), None, "{response:#}");
            assert_eq!(response.get("warnings"), None, "{response:#}");
        }
        Expect::Patched { ops, warnings } => {
            assert_eq!(response["patchType"], "JSONPatch", "{response:#}");
            let encoded = response["patch"].as_str().expect("the patch is base64 text");
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("the patch is base64");
            let patch: Value = serde_json::from_slice(&bytes).expect("the patch is JSON");
            assert_eq!(patch, ops);
            let got: Vec<&str> = response["warnings"]
                .as_array()
                .expect("each change is a warning")
                .iter()
                .map(|w| w.as_str().expect("text"))
                .collect();
            assert_eq!(got.len(), warnings.len(), "{got:#?}");
            for (warning, start) in got.iter().zip(warnings) {
                assert!(
                    warning.starts_with(start),
                    "{warning:?} should start with {start:?}"
                );
                assert!(warning.len() <= 256, "warnings fit the API server's limit");
            }
            assert!(
                response["auditAnnotations"]["mutations"]
                    .as_str()
                    .is_some_and(|a| a.contains("(policy ")),
                "{response:#}"
            );

            // Apply it as the API server does, to the object it sent.
            let patch: json_patch::Patch = serde_json::from_value(patch).expect("an RFC 6902 patch");
            let mut object = request["request"]["object"].clone();
            json_patch::patch(&mut object, &patch).expect("the patch applies to the object as sent");
            assert!(
                matches!(decode(object.clone()), Ok(Decoded::Resource(_))),
                "the patched object decodes as its kind"
            );
            // managedFields and everything else volguard did not change are as sent.
            assert_eq!(
                object["metadata"]["managedFields"],
                request["request"]["object"]["metadata"]["managedFields"]
            );

            // Reinvocation: the API server sends the patched object again; nothing more to do.
            let mut again = request.clone();
            again["request"]["object"] = object;
            let second = server.post(&client, "/mutate", to_vec(&again)).await.response();
            assert_eq!(second["allowed"], true, "{second:#}");
            assert_eq!(second.get("patch"), None, "idempotent: {second:#}");
            assert_eq!(second.get("warnings"), None, "{second:#}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_gets_the_same_patch() {
    let server = TestServer::start(setup()).await;
    let client = server.client(Protocol::Http1);
    let mut request = review_json("update-deployment-image");
    let real = server.post(&client, "/mutate", to_vec(&request)).await.response();
    request["request"]["dryRun"] = json!(true);
    let dry = server.post(&client, "/mutate", to_vec(&request)).await.response();
    assert_eq!(dry["patch"], real["patch"]);
    assert!(dry["patch"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_patched_reviews() {
    let server = TestServer::start(setup()).await;
    let client = server.client(Protocol::Http1);
    server
        .post(&client, "/mutate", review_bytes("update-deployment-image"))
        .await
        .response();
    server
        .post(&client, "/mutate", review_bytes("create-pvc"))
        .await
        .response();
    let patched = server
        .metric(
            "volguard_admission_reviews_total",
            &[("path", "mutate"), ("decision", "patched")],
        )
        .await;
    let allowed = server
        .metric(
            "volguard_admission_reviews_total",
            &[("path", "mutate"), ("decision", "allowed")],
        )
        .await;
    assert_eq!((patched, allowed), (1.0, 1.0));
    // A repair is not a finding: the validating webhook, called next, counts what is left.
    let findings = server
        .metric(
            "volguard_admission_findings_total",
            &[("rule", "rollout-attach-deadlock")],
        )
        .await;
    assert_eq!(findings, 0.0);
}
