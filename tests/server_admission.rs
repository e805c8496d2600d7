//! What the real server answers, over HTTPS, to the AdmissionReviews a real kube-apiserver sent:
//! golden responses for every captured request, /mutate, dry runs, ratcheting of UPDATEs, and how the
//! claims the lookup holds change the answer.
//!
//! Goldens are `tests/fixtures/reviews/<name>.validate.response.json`, compared structurally. They are
//! rewritten only with `VOLGUARD_BLESS=1`; each one is also checked against the hand-written
//! expectation below, so a bless cannot quietly accept a wrong answer.

mod common;

use std::sync::Arc;

use assert_json_diff::assert_json_eq;
use common::{Protocol, Setup, TestServer, captured_objects, claim, review_bytes, review_json};
use serde_json::Value;
use volguard::admission::RATCHET_NOTE;
use volguard::lookup::{Answer, Bundle, Lookup};
use volguard::workload::{Resource, Workload, WorkloadKind};

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
    // A claim on its own is not judged.
    create_pvc_is_allowed: "create-pvc" => Expect::Allowed { warnings: &[] };
    // `kubectl apply --dry-run=server`: volguard has no side effects, so the answer is the same.
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
    compare_golden(name, &body);

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

/// Compares with the golden, or rewrites it when `VOLGUARD_BLESS=1`.
fn compare_golden(name: &str, actual: &Value) {
    let path = common::reviews_dir().join(format!("{name}.validate.response.json"));
    if std::env::var("VOLGUARD_BLESS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(actual).expect("JSON serializes") + "\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e}; run with VOLGUARD_BLESS=1 to create it, then review it by hand",
            path.display()
        )
    });
    let golden: Value = serde_json::from_slice(&golden).expect("goldens are JSON");
    assert_json_eq!(actual.clone(), golden);
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

// ---------------------------------------------------------------------------------------------------
// Ratcheting: an UPDATE that does not make an existing violation worse is allowed with a warning.

/// The captured `kubectl set image` UPDATE, with the replica counts and claims changed.
fn update(old_replicas: i64, new_replicas: i64) -> Value {
    let mut review = review_json("update-deployment-image");
    review["request"]["uid"] =
        format!("0000000{old_replicas}-0000-4000-8000-00000000000{new_replicas}").into();
    review["request"]["oldObject"]["spec"]["replicas"] = old_replicas.into();
    review["request"]["object"]["spec"]["replicas"] = new_replicas.into();
    review
}

/// The captured `kubectl scale` UPDATE on deployments/scale, from `old` to `new` replicas.
fn scale(old: i64, new: i64) -> Value {
    let mut review = review_json("scale-deployment");
    review["request"]["oldObject"]["spec"]["replicas"] = old.into();
    review["request"]["object"]["spec"]["replicas"] = new.into();
    review
}

fn without_claim(object: &mut Value) {
    let spec = &mut object["spec"]["template"]["spec"];
    spec.as_object_mut().expect("a pod spec").remove("volumes");
    spec["containers"][0]
        .as_object_mut()
        .expect("a container")
        .remove("volumeMounts");
}

fn to_vec(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).expect("JSON serializes")
}

async fn validate(server: &TestServer, review: &Value) -> Value {
    let client = server.client(Protocol::Http1);
    let response = server.post(&client, "/validate", to_vec(review)).await.response();
    assert_eq!(response["uid"], review["request"]["uid"], "the uid is echoed");
    response
}

fn message(response: &Value) -> &str {
    response["status"]["message"].as_str().unwrap_or_default()
}

fn warnings(response: &Value) -> Vec<String> {
    response["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|s| s.as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_ratcheted(response: &Value) {
    assert_eq!(response["allowed"], true, "{response:#}");
    let warnings = warnings(response);
    assert!(
        warnings.iter().any(|w| w.starts_with("[shared-rwo-claim] ")
            && w.contains("does not make an existing violation worse")),
        "no ratchet warning in {warnings:#?}"
    );
    assert!(RATCHET_NOTE.contains("does not make an existing violation worse"));
}

fn assert_denied_for_sharing(response: &Value) {
    assert_eq!(response["allowed"], false, "{response:#}");
    assert_eq!(response["status"]["code"], 403, "{response:#}");
    assert!(message(response).contains("[shared-rwo-claim]"), "{response:#}");
    assert!(
        !message(response).contains("does not make an existing violation worse"),
        "{response:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratchet_scaling_a_violating_deployment_up_is_denied() {
    let server = TestServer::start(Setup::default()).await;
    let response = validate(&server, &update(3, 5)).await;
    assert_denied_for_sharing(&response);
    assert!(message(&response).contains("may run 5 pods"), "{response:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratchet_scaling_a_violating_deployment_down_is_allowed_with_a_warning() {
    let server = TestServer::start(Setup::default()).await;
    assert_ratcheted(&validate(&server, &update(3, 2)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratchet_image_change_on_a_violating_deployment_is_allowed_with_a_warning() {
    // The captured `kubectl set image` (nginx 1.27 → 1.28), as if it had run at 3 replicas.
    let server = TestServer::start(Setup::default()).await;
    let review = update(3, 3);
    let (old, new) = (&review["request"]["oldObject"], &review["request"]["object"]);
    let image = |o: &Value| o["spec"]["template"]["spec"]["containers"][0]["image"].clone();
    assert_ne!(image(old), image(new), "the captured update changes the image");
    assert_ratcheted(&validate(&server, &review).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratchet_does_not_excuse_a_violation_the_update_introduces() {
    let server = TestServer::start(Setup::default()).await;
    let mut review = update(3, 3);
    without_claim(&mut review["request"]["oldObject"]);
    assert_denied_for_sharing(&validate(&server, &review).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratchet_does_not_excuse_moving_to_another_shared_rwo_claim() {
    let mut objects = captured_objects();
    objects.push(claim("shop", "web-data-2", &["ReadWriteOnce"]));
    let setup = Setup {
        lookup: Arc::new(objects.iter().collect::<Bundle>()),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let mut review = update(3, 3);
    review["request"]["object"]["spec"]["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] =
        "web-data-2".into();
    let response = validate(&server, &review).await;
    assert_denied_for_sharing(&response);
    assert!(message(&response).contains("\"web-data-2\""), "{response:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ratchet_applies_to_the_scale_subresource() {
    let server = TestServer::start(Setup::default()).await;
    // 3 → 5: worse.
    let response = validate(&server, &scale(3, 5)).await;
    assert_denied_for_sharing(&response);
    assert!(
        message(&response).starts_with("volguard denied Scale shop/web:"),
        "{response:#}"
    );
    // 3 → 2: still violating, but better.
    assert_ratcheted(&validate(&server, &scale(3, 2)).await);
    // 1 → 3: a new violation.
    assert_denied_for_sharing(&validate(&server, &scale(1, 3)).await);
}

// ---------------------------------------------------------------------------------------------------
// What the lookup holds decides what can be judged.

async fn with_claim(name: &str, namespace: &str, claim_name: &str, modes: &[&str]) -> Value {
    let mut objects = captured_objects();
    objects.push(claim(namespace, claim_name, modes));
    let setup = Setup {
        lookup: Arc::new(objects.iter().collect::<Bundle>()),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    validate(&server, &review_json(name)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_with_parallelism_on_an_existing_rwo_claim_is_denied() {
    let response = with_claim("create-job", "batch", "scratch", &["ReadWriteOnce"]).await;
    assert_denied_for_sharing(&response);
    assert!(
        message(&response).starts_with("volguard denied Job batch/render:"),
        "{response:#}"
    );
    assert!(message(&response).contains("may run 4 pods"), "{response:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_with_parallelism_on_an_rwx_claim_is_allowed() {
    let response = with_claim("create-job", "batch", "scratch", &["ReadWriteMany"]).await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(response.get("warnings"), None, "{response:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_on_an_existing_rwo_claim_is_denied() {
    let response = with_claim("create-daemonset", "ops", "logs", &["ReadWriteOnce"]).await;
    assert_denied_for_sharing(&response);
    assert!(
        message(&response).contains("one pod on every node"),
        "{response:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_whose_target_is_not_known_is_allowed() {
    let objects: Vec<Resource> = captured_objects()
        .into_iter()
        .filter(|r| !matches!(r, Resource::Workload(Workload::Deployment(_))))
        .collect();
    let setup = Setup {
        lookup: Arc::new(objects.iter().collect::<Bundle>()),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let response = validate(&server, &review_json("create-hpa-autoscaling-v1")).await;
    assert_eq!(response["allowed"], true, "{response:#}");
}

/// The captured objects, but workloads cannot be looked up (a watch cache that is not synced).
struct WorkloadsUnknown(Bundle);

impl Lookup for WorkloadsUnknown {
    fn claim(
        &self,
        namespace: &str,
        name: &str,
    ) -> Answer<Arc<k8s_openapi::api::core::v1::PersistentVolumeClaim>> {
        self.0.claim(namespace, name)
    }
    fn workload(&self, _: WorkloadKind, _: &str, _: &str) -> Answer<Arc<Workload>> {
        Answer::Unknown("the workload cache has not synced".into())
    }
    fn scope(&self) -> &'static str {
        "the test cache"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_whose_target_cannot_be_looked_up_follows_the_failure_mode() {
    let setup = Setup {
        lookup: Arc::new(WorkloadsUnknown(captured_objects().iter().collect())),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    // The built-in policy's failureMode is Fail.
    let response = validate(&server, &review_json("scale-deployment")).await;
    assert_eq!(response["allowed"], false, "{response:#}");
    assert!(message(&response).contains("[lookup-failed]"), "{response:#}");
    assert!(message(&response).contains("has not synced"), "{response:#}");
}

// ---------------------------------------------------------------------------------------------------
// Kinds and versions the captures do not cover

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaling_v2_hpa_is_judged_like_v1() {
    let server = TestServer::start(Setup::default()).await;
    let mut review = review_json("create-hpa-autoscaling-v1");
    let request = &mut review["request"];
    request["uid"] = "a7614e84-0000-4000-8000-0000000000v2".into();
    for field in ["kind", "requestKind"] {
        request[field]["version"] = "v2".into();
    }
    for field in ["resource", "requestResource"] {
        request[field]["version"] = "v2".into();
    }
    let object = &mut request["object"];
    object["apiVersion"] = "autoscaling/v2".into();
    let spec = object["spec"].as_object_mut().expect("a spec");
    spec.remove("targetCPUUtilizationPercentage");
    spec.insert(
        "metrics".into(),
        serde_json::json!([{
            "type": "Resource",
            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}
        }]),
    );
    let v2 = validate(&server, &review).await;
    let v1 = validate(&server, &review_json("create-hpa-autoscaling-v1")).await;
    assert_eq!(v2["allowed"], false, "{v2:#}");
    assert_eq!(v2["status"], v1["status"], "one decision whatever the version");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_volguard_does_not_judge_is_allowed_unchanged() {
    let server = TestServer::start(Setup::default()).await;
    let mut review = review_json("create-pvc");
    let request = &mut review["request"];
    request["uid"] = "c0ffee00-0000-4000-8000-000000000001".into();
    let gvk = serde_json::json!({"group": "", "version": "v1", "kind": "ConfigMap"});
    let gvr = serde_json::json!({"group": "", "version": "v1", "resource": "configmaps"});
    request["kind"] = gvk.clone();
    request["requestKind"] = gvk;
    request["resource"] = gvr.clone();
    request["requestResource"] = gvr;
    request["name"] = "settings".into();
    request["object"] = serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": {"replicas": "3"}
    });
    for path in ["/validate", "/mutate"] {
        let client = server.client(Protocol::Http1);
        let response = server.post(&client, path, to_vec(&review)).await.response();
        assert_eq!(response["uid"], "c0ffee00-0000-4000-8000-000000000001");
        assert_eq!(response["allowed"], true, "{path}: {response:#}");
        assert_eq!(response.get("warnings"), None, "{path}: {response:#}");
        assert_eq!(response.get("patch"), None, "{path}: {response:#}");
    }
}
