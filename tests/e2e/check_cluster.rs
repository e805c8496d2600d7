//! Cluster-aware decisions end to end against a real kube-apiserver (`../shared/e2e/cluster.sh up`):
//! `volguard serve` with cluster lookups, registered for workloads, their scale subresources, HPAs and
//! claims, driven by kubectl; then `volguard check --cluster` against the same cluster.
//!
//! The cluster has no nodes: nothing runs, but every admission call is real. All traffic stays on
//! 127.0.0.1, and every wait is bounded.

use std::process::Command;
use std::time::Duration;

use crate::cluster_common;
use cluster_common::{Served, apply, claim, deployment, fresh_name, metric, run, serve, text, wait_until};

fn webhooks(name: &str, port: u16, ca_bundle: &str, namespace: &str) -> String {
    let rules = r#"
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "statefulsets", "replicasets", "deployments/scale", "statefulsets/scale", "replicasets/scale"]
  - apiGroups: ["autoscaling"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["horizontalpodautoscalers"]
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["persistentvolumeclaims"]"#;
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {name}\n\
         webhooks:\n- name: validate.volguard.io\n  clientConfig:\n    url: https://127.0.0.1:{port}/validate\n    \
         caBundle: {ca_bundle}\n  rules:{rules}\n  admissionReviewVersions: [\"v1\"]\n  sideEffects: None\n  \
         matchPolicy: Equivalent\n  timeoutSeconds: 5\n  failurePolicy: Fail\n  namespaceSelector:\n    matchLabels:\n      \
         kubernetes.io/metadata.name: {namespace}\n"
    )
}

#[test]
fn kube_apiserver_scales_autoscales_and_creates_claims_through_volguard() {
    let kubeconfig = cluster_common::cluster();
    let kc = kubeconfig.as_path();
    let ns = fresh_name("vg-ca");
    let Served {
        port,
        metrics_port,
        ca,
        mut cleanup,
        dir: tmp,
    } = serve(
        &kubeconfig,
        format!("volguard-{ns}"),
        cluster_common::WEBHOOK_KINDS,
    );
    let claims_gauge = "volguard_cache_objects{kind=\"PersistentVolumeClaim\"}";
    let claims_before = metric(metrics_port, claims_gauge).expect("the cache size is exported once synced");

    // v1.20 does not label namespaces with kubernetes.io/metadata.name: the helper adds it, as newer
    // servers do.
    cluster_common::labelled_namespace(kc, &ns);

    // A claim created after start reaches the cache through the watch.
    let (ok, out) = apply(kc, &claim(&ns, "data", "ReadWriteOnce"));
    assert!(ok, "{out}");
    wait_until("the claim in the cache", Duration::from_secs(30), || {
        metric(metrics_port, claims_gauge).is_some_and(|n| n >= claims_before + 1.0)
    });
    assert!(
        metric(
            metrics_port,
            "volguard_cache_seconds_since_last_event{kind=\"PersistentVolumeClaim\"}"
        )
        .is_some_and(|s| s < 30.0),
        "the claim watch delivered recently"
    );

    // Created before volguard is registered: a violating Deployment (3 replicas on one RWO claim of its
    // own), and one that mounts a claim that does not exist yet.
    let (ok, out) = apply(kc, &claim(&ns, "legacy-data", "ReadWriteOnce"));
    assert!(ok, "{out}");
    let (ok, out) = apply(kc, &deployment(&ns, "legacy", 3, "legacy-data", ""));
    assert!(ok, "{out}");
    let (ok, out) = apply(kc, &deployment(&ns, "reports", 3, "reports", ""));
    assert!(ok, "{out}");

    cluster_common::register(
        kc,
        &webhooks(&cleanup.name, port, &cluster_common::ca_bundle(&ca), &ns),
    );
    // The registration takes effect asynchronously: wait until a violation is refused (bounded).
    let web = deployment(&ns, "web", 3, "data", "");
    wait_until("the webhook to take effect", Duration::from_secs(30), || {
        let (ok, out) = apply(kc, &web);
        assert!(!ok || !out.contains("volguard"), "{out}");
        !ok && out.contains("[shared-rwo-claim]")
    });

    // A one-replica Deployment: allowed.
    let (ok, out) = apply(kc, &deployment(&ns, "web", 1, "data", ""));
    assert!(ok, "{out}");

    // `kubectl scale` up: deployments/scale, denied; down: allowed.
    let (ok, out) = run(kc, &["-n", &ns, "scale", "deployment/web", "--replicas=3"]);
    assert!(!ok, "{out}");
    assert!(
        out.contains("admission webhook \"validate.volguard.io\" denied the request: volguard denied Scale"),
        "{out}"
    );
    assert!(out.contains("[shared-rwo-claim]"), "{out}");
    let (ok, out) = run(kc, &["-n", &ns, "scale", "deployment/web", "--replicas=0"]);
    assert!(ok, "{out}");
    let (ok, out) = run(kc, &["-n", &ns, "scale", "deployment/web", "--replicas=1"]);
    assert!(ok, "{out}");

    // `kubectl patch` of replicas: the Deployment itself, denied.
    let (ok, out) = run(
        kc,
        &[
            "-n",
            &ns,
            "patch",
            "deployment",
            "web",
            "-p",
            r#"{"spec":{"replicas":2}}"#,
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("volguard denied Deployment"), "{out}");

    // `kubectl autoscale`: an HPA that may run 5 pods is denied, one that may run 1 is allowed.
    let (ok, out) = run(
        kc,
        &[
            "-n",
            &ns,
            "autoscale",
            "deployment",
            "web",
            "--max=5",
            "--name=web-5",
        ],
    );
    assert!(!ok, "{out}");
    assert!(out.contains("volguard denied HorizontalPodAutoscaler"), "{out}");
    assert!(out.contains("[shared-rwo-claim]"), "{out}");
    let (ok, out) = run(
        kc,
        &[
            "-n",
            &ns,
            "autoscale",
            "deployment",
            "web",
            "--min=1",
            "--max=1",
            "--name=web-1",
        ],
    );
    assert!(ok, "{out}");

    // Ratcheting: the violating Deployment created before registration can be scaled down and get a new
    // image (allowed, with a warning), but not scaled up.
    let (ok, out) = run(kc, &["-n", &ns, "scale", "deployment/legacy", "--replicas=2"]);
    assert!(ok, "{out}");
    let (ok, out) = run(
        kc,
        &["-n", &ns, "set", "image", "deployment/legacy", "web=nginx:1.28"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Allowed because this update does not make an existing violation worse"),
        "{out}"
    );
    let (ok, out) = run(kc, &["-n", &ns, "scale", "deployment/legacy", "--replicas=4"]);
    assert!(!ok, "{out}");

    // Another workload on the claim web already holds, on another node: denied, naming web.
    let (ok, out) = apply(kc, &deployment(&ns, "worker", 1, "data", ""));
    assert!(!ok, "{out}");
    assert!(out.contains("[shared-rwo-claim]"), "{out}");
    assert!(
        out.contains(&format!("Deployment {ns}/web (1 pod) also mounts")),
        "{out}"
    );

    // A claim created RWO under a three-replica Deployment that mounts it: denied, as the Deployment would
    // have been had the claim come first.
    let (ok, out) = apply(kc, &claim(&ns, "reports", "ReadWriteOnce"));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "volguard denied PersistentVolumeClaim {ns}/reports:\n[shared-rwo-claim] PersistentVolumeClaim \
             {ns}/reports has access mode ReadWriteOnce and is mounted by Deployment {ns}/reports (3 pods)"
        )),
        "{out}"
    );

    // `check --cluster`: a Deployment file whose claim is only in the cluster.
    let file = tmp.path().join("web.yaml");
    std::fs::write(&file, deployment(&ns, "web", 3, "data", "")).expect("write manifest");
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .arg("check")
        .arg("-f")
        .arg(&file)
        .arg("--cluster")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(["--color", "never"])
        .output()
        .expect("volguard check runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("shared-rwo-claim"), "{stdout}");
    assert!(
        !stdout.contains("missing-claim"),
        "the claim came from the cluster: {stdout}"
    );
    // Without --cluster the same file only lacks its claim.
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .arg("check")
        .arg("-f")
        .arg(&file)
        .args(["--color", "never"])
        .output()
        .expect("volguard check runs");
    assert!(text(&out).0.contains("missing-claim"), "{:?}", text(&out));
    cleanup.server.kill().ok();
}
