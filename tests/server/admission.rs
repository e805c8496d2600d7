//! Admission decisions beyond the captures, over HTTPS to the real server: ratcheting of UPDATEs (an
//! update that does not make an existing violation worse is allowed with a warning), how the claims
//! and workloads the lookup holds change the answer, and kinds and versions the captures lack.

use crate::common;

use std::sync::Arc;

use common::{Protocol, Setup, TestServer, captured_objects, claim, review_json, to_vec};
use serde_json::Value;
use volguard::adapters::admission::RATCHET_NOTE;
use volguard::domain::lookup::{Answer, Bundle, Lookup};
use volguard::domain::workload::{Resource, Workload, WorkloadKind};

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
    crate::delegate_lookup!();
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

/// The captured image UPDATE at 5 replicas from 1 (so not ratcheted), with `annotations` on the object.
fn annotated(annotations: Value) -> Value {
    let mut review = update(1, 5);
    review["request"]["object"]["metadata"]["annotations"] = annotations;
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_honours_a_skip_with_a_reason() {
    let server = TestServer::start(Setup::default()).await;
    let response = validate(
        &server,
        &annotated(serde_json::json!({
            "volguard.io/skip": "shared-rwo-claim",
            "volguard.io/skip-reason": "single-node cluster",
        })),
    )
    .await;
    assert_eq!(response["allowed"], true, "{response:#}");
    assert_eq!(warnings(&response), Vec::<String>::new());
    // The API server's audit log keeps the exception and its reason.
    assert_eq!(
        response["auditAnnotations"],
        serde_json::json!({"skipped": "shared-rwo-claim: single-node cluster"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_denies_a_skip_without_a_reason_and_skips_nothing() {
    let server = TestServer::start(Setup::default()).await;
    let response = validate(
        &server,
        &annotated(serde_json::json!({"volguard.io/skip": "shared-rwo-claim"})),
    )
    .await;
    assert_denied_for_sharing(&response);
    assert!(
        message(&response).contains(
            "[invalid-skip] volguard.io/skip needs a volguard.io/skip-reason annotation saying why the rule \
             does not apply; no rule is skipped"
        ),
        "{response:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ratchet_does_not_soften_a_skip_without_a_reason_the_old_object_had_too() {
    // The image change at 3 replicas is ratcheted (shared-rwo-claim only warns); the bad skip both
    // objects carry is still refused.
    let server = TestServer::start(Setup::default()).await;
    let mut review = update(3, 3);
    for object in ["object", "oldObject"] {
        review["request"][object]["metadata"]["annotations"] =
            serde_json::json!({"volguard.io/skip": "shared-rwo-claim"});
    }
    let response = validate(&server, &review).await;
    assert_eq!(response["allowed"], false, "{response:#}");
    assert!(
        message(&response).contains("[invalid-skip] volguard.io/skip needs a volguard.io/skip-reason"),
        "{response:#}"
    );
    assert!(
        warnings(&response)
            .iter()
            .any(|w| w.starts_with("[shared-rwo-claim] ")
                && w.contains("does not make an existing violation worse")),
        "{response:#}"
    );
}
