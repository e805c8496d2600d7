//! The golden answers: every AdmissionReview a real kube-apiserver sent, posted over HTTPS to the real
//! server, must get its `tests/fixtures/reviews/<name>.validate.response.json`, compared structurally;
//! /mutate answers each allowed and unchanged; a dry run gets the same answer as a real request.
//!
//! Goldens are rewritten only with `VOLGUARD_BLESS=1`; each one is also checked against the
//! hand-written expectation below, so a bless cannot quietly accept a wrong answer.

use crate::common;

use assert_json_diff::assert_json_eq;

use common::{Protocol, Setup, TestServer, review_bytes, review_json, to_vec};
use serde_json::Value;

/// What a captured review must get from /validate with the built-in policy and
/// [`common::captured_bundle`].
enum Expect {
    /// `allowed: true`, with exactly one warning per entry, each containing every listed fragment.
    Allowed {
        warnings: &'static [&'static [&'static str]],
    },
    /// `allowed: false`, 403 Forbidden, a message starting with `prefix` and containing `contains`.
    Denied {
        prefix: &'static str,
        contains: &'static [&'static str],
    },
}

/// One test per captured review, and [`CAPTURED`] listing them all.
macro_rules! golden_tests {
    ($($test:ident: $name:literal => $expect:expr;)*) => {
        /// Every captured review with a golden test.
        const CAPTURED: &[&str] = &[$($name),*];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                check_captured($name, $expect).await;
            }
        )*
    };
}

golden_tests! {
    // 3 replicas on the ReadWriteOnce claim web-data: pods on a second node hang with Multi-Attach.
    create_deployment_sharing_rwo_claim_is_denied: "create-deployment" => Expect::Denied {
        prefix: "volguard denied Deployment shop/web:",
        contains: &["[shared-rwo-claim]", "may run 3 pods", "\"web-data\"", "Multi-Attach", "Fix: "],
    };
    // The claim is judged with the workloads that mount it: in the captured cluster, Deployment shop/web's
    // three replicas, so it is denied exactly as the Deployment is when it comes second.
    create_pvc_under_the_three_replica_deployment_is_denied: "create-pvc" => Expect::Denied {
        prefix: "volguard denied PersistentVolumeClaim shop/web-data:",
        contains: &["[shared-rwo-claim]", "mounted by Deployment shop/web (3 pods)", "Multi-Attach", "Fix: "],
    };
    // `kubectl apply --dry-run=server` of claim db/pg-data, which no workload mounts: allowed (volguard has
    // no side effects, so a dry run is answered as a real request).
    create_pvc_dry_run_is_allowed: "create-pvc-dry-run" => Expect::Allowed { warnings: &[] };
    // Each replica gets its own claim from the ReadWriteOnce volumeClaimTemplate.
    create_statefulset_with_rwo_template_is_allowed: "create-statefulset" => Expect::Allowed { warnings: &[] };
    // `object` is null on DELETE; removing a workload never breaks a volume.
    delete_deployment_is_allowed: "delete-deployment" => Expect::Allowed { warnings: &[] };
    // As captured, `kubectl set image` ran after `kubectl scale --replicas=1`: old and new object both
    // have 1 replica, so there is no violation to ratchet, only the rollout advice (RollingUpdate with
    // maxSurge 25% of 1 pod rounds up to 1). The 3-replica image change is `ratchet_*` below.
    update_deployment_image_at_one_replica_warns_about_the_rollout: "update-deployment-image" => Expect::Allowed {
        warnings: &[&["[rollout-attach-deadlock]", "\"web-data\"", "RollingUpdate"]],
    };
    // Scale 3 → 1 on deployments/scale: the violation goes away; 1 replica on RWO warns about rollouts.
    scale_deployment_down_to_one_is_allowed: "scale-deployment" => Expect::Allowed {
        warnings: &[&["[rollout-attach-deadlock]", "Deployment shop/web runs 1 pod"]],
    };
    // 3 → 5 on a StatefulSet whose replicas each get their own claim.
    scale_statefulset_with_claim_templates_is_allowed: "scale-statefulset" => Expect::Allowed { warnings: &[] };
    // maxReplicas 5 on Deployment shop/web, which mounts the ReadWriteOnce claim web-data.
    create_hpa_on_rwo_deployment_is_denied: "create-hpa-autoscaling-v1" => Expect::Denied {
        prefix: "volguard denied HorizontalPodAutoscaler shop/web:",
        contains: &["[shared-rwo-claim]", "lets Deployment shop/web run 5 pods", "\"web-data\""],
    };
    // Claim batch/scratch was never created in the capture: parallelism 4 cannot be judged on it, and
    // the built-in policy only warns about a missing claim. (With the claim present: see below.)
    create_job_on_missing_claim_warns: "create-job" => Expect::Allowed {
        warnings: &[&["[missing-claim]", "\"scratch\"", "namespace batch"]],
    };
    // Claim ops/logs was never created in the capture either.
    create_daemonset_on_missing_claim_warns: "create-daemonset" => Expect::Allowed {
        warnings: &[&["[missing-claim]", "\"logs\"", "namespace ops"]],
    };
}

/// Posts a captured review to /validate and /mutate and checks both answers.
async fn check_captured(name: &str, expect: Expect) {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    let request = review_json(name);
    let uid = request["request"]["uid"]
        .as_str()
        .expect("captured reviews have a uid");

    let reply = server.post(&client, "/validate", review_bytes(name)).await;
    let body = reply.json();
    let response = reply.response();
    assert_eq!(response["uid"], uid, "the uid is echoed: {response:#}");
    assert_eq!(response.get("patch"), None, "/validate never patches");
    assert_eq!(response.get("patchType"), None, "/validate never patches");
    check_expectation(&response, &expect);
    common::compare_golden(&format!("{name}.validate.response.json"), &body);

    let mutated = server
        .post(&client, "/mutate", review_bytes(name))
        .await
        .response();
    assert_eq!(mutated["uid"], uid, "the uid is echoed: {mutated:#}");
    assert_eq!(mutated["allowed"], true, "/mutate allows everything: {mutated:#}");
    assert_eq!(
        mutated.get("patch"),
        None,
        "no repairs are configured: {mutated:#}"
    );
    assert_eq!(
        mutated.get("patchType"),
        None,
        "no repairs are configured: {mutated:#}"
    );
    assert_eq!(
        mutated.get("warnings"),
        None,
        "/mutate does not judge: {mutated:#}"
    );
}

fn check_expectation(response: &Value, expect: &Expect) {
    let warnings: Vec<&str> = response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|s| s.as_str().expect("warnings are strings"))
                .collect()
        })
        .unwrap_or_default();
    match expect {
        Expect::Allowed { warnings: expected } => {
            assert_eq!(response["allowed"], true, "{response:#}");
            assert_eq!(warnings.len(), expected.len(), "warnings: {warnings:#?}");
            for (warning, fragments) in warnings.iter().zip(expected.iter()) {
                for fragment in *fragments {
                    assert!(
                        warning.contains(fragment),
                        "{fragment:?} not in warning {warning:?}"
                    );
                }
            }
            let code = &response["status"]["code"];
            assert!(code.is_null() || code == 200, "{response:#}");
        }
        Expect::Denied { prefix, contains } => {
            assert_eq!(response["allowed"], false, "{response:#}");
            assert_eq!(response["status"]["code"], 403, "{response:#}");
            assert_eq!(response["status"]["reason"], "Forbidden", "{response:#}");
            let message = response["status"]["message"]
                .as_str()
                .expect("a denial has a message");
            assert!(
                message.starts_with(prefix),
                "{message:?} does not start with {prefix:?}"
            );
            for fragment in *contains {
                assert!(message.contains(fragment), "{fragment:?} not in {message:?}");
            }
            assert!(warnings.is_empty(), "warnings: {warnings:#?}");
        }
    }
}

#[test]
fn every_captured_review_has_a_golden_test_and_no_golden_is_orphaned() {
    let mut listed: Vec<String> = CAPTURED.iter().map(|s| (*s).to_owned()).collect();
    listed.sort();
    assert_eq!(common::captured_review_names(), listed);
    for entry in std::fs::read_dir(common::reviews_dir()).expect("the fixtures directory") {
        let file = entry
            .expect("an entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(name) = file.strip_suffix(".validate.response.json") {
            assert!(CAPTURED.contains(&name), "golden {file} has no captured request");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_gets_the_same_answer_as_a_real_request() {
    let server = TestServer::start(Setup::default()).await;
    let client = server.client(Protocol::Http1);
    let mut dry = review_json("create-deployment");
    dry["request"]["uid"] = "d2d2d2d2-0000-4000-8000-000000000001".into();
    dry["request"]["dryRun"] = true.into();
    dry["request"]["options"]["dryRun"] = serde_json::json!(["All"]);

    let real = server
        .post(&client, "/validate", review_bytes("create-deployment"))
        .await
        .json();
    let mut dry_answer = server.post(&client, "/validate", to_vec(&dry)).await.json();
    assert_eq!(
        dry_answer["response"]["uid"],
        "d2d2d2d2-0000-4000-8000-000000000001"
    );
    assert_eq!(dry_answer["response"]["allowed"], false);
    dry_answer["response"]["uid"] = real["response"]["uid"].clone();
    assert_json_eq!(dry_answer, real);
}
