//! Policy hot reload over a real server: a valid new policy changes the next decision, a broken one is
//! refused and counted while the last good policy keeps deciding, and a ConfigMap volume update (a
//! `..data` symlink swap) is picked up.

use crate::common;

use std::path::{Path, PathBuf};

use common::{ProjectedVolume, Protocol, Setup, TestServer, review_bytes, wait_for, write_atomically};
use serde_json::Value;
use volguard::domain::policy::BUILTIN_POLICY;

const RELOADS: &str = "volguard_policy_reloads_total";

/// The built-in policy with `shared-rwo-claim` only warning.
fn warn_policy() -> String {
    let deny = "shared-rwo-claim: {action: Deny}";
    assert!(
        BUILTIN_POLICY.contains(deny),
        "the built-in policy denies shared-rwo-claim"
    );
    BUILTIN_POLICY.replace(deny, "shared-rwo-claim: {action: Warn}")
}

/// A policy the strict loader refuses: an unknown key in `spec`.
fn invalid_policy() -> String {
    let anchor = "  defaultAction: Deny\n";
    assert!(BUILTIN_POLICY.contains(anchor));
    BUILTIN_POLICY.replace(anchor, "  defaultAction: Deny\n  denyEverything: true\n")
}

/// A second policy, for namespace shop only, that denies shared RWO claims.
const SHOP_STRICT: &str = "apiVersion: volguard.io/v1alpha1
kind: VolumePolicy
metadata:
  name: shop-strict
spec:
  match:
    namespaces: [shop]
  rules:
    shared-rwo-claim: {action: Deny}
";

async fn review_deployment(server: &TestServer) -> Value {
    let client = server.client(Protocol::Http1);
    server
        .post(&client, "/validate", review_bytes("create-deployment"))
        .await
        .response()
}

fn assert_denied(response: &Value) {
    assert_eq!(response["allowed"], false, "{response:#}");
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("[shared-rwo-claim]"), "{response:#}");
}

fn assert_warned(response: &Value) {
    assert_eq!(response["allowed"], true, "{response:#}");
    let warnings = response["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.starts_with("[shared-rwo-claim] "))),
        "{response:#}"
    );
}

async fn reload_failures(server: &TestServer) -> f64 {
    server.metric(RELOADS, &[("result", "failure")]).await
}

async fn wait_for_generation_after(server: &TestServer, generation: u64) {
    wait_for("the policy to be reloaded", || async {
        server.state.policy_generation() > generation
    })
    .await;
}

async fn wait_for_refusal_after(server: &TestServer, failures: f64) {
    wait_for("the policy to be refused", || async {
        reload_failures(server).await > failures
    })
    .await;
}

fn policy_file(dir: &Path, contents: &str) -> PathBuf {
    let path = dir.join("policy.yaml");
    std::fs::write(&path, contents).expect("writing the policy");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_policy_changes_the_decision_and_a_broken_one_keeps_the_last_good() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = policy_file(dir.path(), BUILTIN_POLICY);
    let setup = Setup {
        policy: Some(path.clone()),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    assert_denied(&review_deployment(&server).await);

    let generation = server.state.policy_generation();
    write_atomically(&path, warn_policy());
    wait_for_generation_after(&server, generation).await;
    assert_warned(&review_deployment(&server).await);
    assert_eq!(server.metric(RELOADS, &[("result", "success")]).await, 1.0);

    let generation = server.state.policy_generation();
    let failures = reload_failures(&server).await;
    write_atomically(&path, invalid_policy());
    wait_for_refusal_after(&server, failures).await;
    assert!(reload_failures(&server).await >= 1.0);
    assert_eq!(
        server.state.policy_generation(),
        generation,
        "a refused policy is not swapped"
    );
    // The last good policy (Warn), not the one at start (Deny) nor the broken one.
    assert_warned(&review_deployment(&server).await);
    assert_eq!(server.metric("volguard_policies_loaded", &[]).await, 1.0);

    // A removed file is refused the same way; putting a policy back is picked up.
    let failures = reload_failures(&server).await;
    std::fs::remove_file(&path).expect("removing the policy");
    wait_for_refusal_after(&server, failures).await;
    assert_warned(&review_deployment(&server).await);
    write_atomically(&path, BUILTIN_POLICY);
    wait_for_generation_after(&server, generation).await;
    assert_denied(&review_deployment(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_directory_is_swapped_whole_or_not_at_all() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("default.yaml"), warn_policy()).expect("writing a policy");
    std::fs::write(dir.path().join("shop-strict.yaml"), SHOP_STRICT).expect("writing a policy");
    let setup = Setup {
        policy: Some(dir.path().to_path_buf()),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    // The strictest action of the policies that select the object wins.
    assert_denied(&review_deployment(&server).await);
    assert_eq!(server.metric("volguard_policies_loaded", &[]).await, 2.0);

    // One file broken: the whole set is refused, not loaded without it (which would only warn).
    let (generation, failures) = (server.state.policy_generation(), reload_failures(&server).await);
    write_atomically(&dir.path().join("shop-strict.yaml"), "spec: [not, a, policy]\n");
    wait_for_refusal_after(&server, failures).await;
    assert_eq!(server.state.policy_generation(), generation);
    assert_denied(&review_deployment(&server).await);

    // The file removed: a valid set of one policy, which warns.
    std::fs::remove_file(dir.path().join("shop-strict.yaml")).expect("removing a policy");
    wait_for_generation_after(&server, generation).await;
    assert_warned(&review_deployment(&server).await);
    assert_eq!(server.metric("volguard_policies_loaded", &[]).await, 1.0);
}

/// A ConfigMap volume holding `policy.yaml`, the server pointed at `target(dir)`.
async fn configmap_update_reloads(target: impl Fn(&Path) -> PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut volume = ProjectedVolume::create(dir.path(), &[("policy.yaml", BUILTIN_POLICY.as_bytes())]);
    let setup = Setup {
        policy: Some(target(dir.path())),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    assert_denied(&review_deployment(&server).await);

    let generation = server.state.policy_generation();
    volume.update(&[("policy.yaml", warn_policy().as_bytes())]);
    wait_for_generation_after(&server, generation).await;
    assert_warned(&review_deployment(&server).await);

    let (generation, failures) = (server.state.policy_generation(), reload_failures(&server).await);
    volume.update(&[("policy.yaml", invalid_policy().as_bytes())]);
    wait_for_refusal_after(&server, failures).await;
    assert_eq!(server.state.policy_generation(), generation);
    assert_warned(&review_deployment(&server).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_volume_update_reloads_the_policy_directory() {
    configmap_update_reloads(|dir| dir.to_path_buf()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configmap_volume_update_reloads_the_policy_file_link() {
    configmap_update_reloads(|dir| dir.join("policy.yaml")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_changed_right_after_start_is_picked_up() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = policy_file(dir.path(), BUILTIN_POLICY);
    let setup = Setup {
        policy: Some(path.clone()),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    // No request in between: the change may land before the reloader has looked at the file.
    write_atomically(&path, warn_policy());
    wait_for("the policy on disk to be the one serving", || async {
        review_deployment(&server).await["allowed"] == true
    })
    .await;
    assert_warned(&review_deployment(&server).await);
}
