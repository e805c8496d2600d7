//! End to end against a real kube-apiserver (`../shared/e2e/cluster.sh up`): `volguard serve` registered
//! with a ValidatingWebhookConfiguration and a MutatingWebhookConfiguration, driven by kubectl.
//!
//! The cluster has no nodes: nothing runs, but every admission call is real.

use std::process::Command;
use std::time::Duration;

use crate::cluster_common;
use cluster_common::{Served, fresh_name, kubectl, namespace_with_webhooks, serve, text, wait_until};

/// A Deployment of `replicas` pods mounting claim `data`, updated by `strategy`.
fn deployment(ns: &str, name: &str, replicas: u32, strategy: &str) -> String {
    cluster_common::deployment_with_strategy(ns, name, replicas, "data", "", strategy)
}

#[test]
fn kube_apiserver_admits_through_volguard() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-e2e");
    let Served {
        port,
        metrics_port,
        ca,
        mut cleanup,
        dir: _dir,
    } = serve(
        &kubeconfig,
        format!("volguard-{ns}"),
        cluster_common::WEBHOOK_KINDS,
    );

    // A fresh namespace (namespaces never finish deleting here), with the webhooks registered for it.
    namespace_with_webhooks(&kubeconfig, &ns, &cleanup.name, port, &ca);
    let claim = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: {ns}\nspec:\n  accessModes: \
         [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    );
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&claim));
    assert!(out.status.success(), "{:?}", text(&out));

    // 1. Three replicas on one ReadWriteOnce claim: refused with volguard's message. The claim reaches the
    //    cache through the watch; until then the claim is unknown to volguard, so retry (bounded).
    let web = deployment(&ns, "web", 3, "{type: RollingUpdate}");
    let mut last = (String::new(), String::new());
    wait_until(
        "the denial naming shared-rwo-claim",
        Duration::from_secs(30),
        || {
            let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&web));
            assert!(
                !out.status.success() || !text(&out).1.contains("shared-rwo-claim"),
                "{:?}",
                text(&out)
            );
            last = text(&out);
            last.1.contains("[shared-rwo-claim]")
        },
    );
    let expected = format!(
        "admission webhook \"validate.volguard.io\" denied the request: volguard denied Deployment {ns}/web:"
    );
    assert!(last.1.contains(&expected), "stderr: {}", last.1);
    assert!(
        last.1.contains("whose access mode is ReadWriteOnce"),
        "stderr: {}",
        last.1
    );
    assert!(
        last.1.contains("volumeClaimTemplates:"),
        "the fix is in the message: {}",
        last.1
    );

    // 2. A compliant StatefulSet (one claim per replica) is created.
    let sts = format!(
        r#"apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: pg, namespace: {ns}}}
spec:
  replicas: 3
  serviceName: pg
  selector: {{matchLabels: {{app: pg}}}}
  template:
    metadata: {{labels: {{app: pg}}}}
    spec:
      containers:
      - name: postgres
        image: postgres:16
        volumeMounts: [{{name: pgdata, mountPath: /var/lib/postgresql/data}}]
  volumeClaimTemplates:
  - metadata: {{name: pgdata}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {{requests: {{storage: 10Gi}}}}
"#
    );
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&sts));
    assert!(
        out.status.success(),
        "compliant StatefulSet refused: {:?}",
        text(&out)
    );
    assert!(!text(&out).1.contains("Warning"), "{:?}", text(&out));

    // 3. One replica with a rolling update: allowed, and the warning reaches kubectl.
    let single = deployment(&ns, "single", 1, "{type: RollingUpdate}");
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&single));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("Warning: [rollout-attach-deadlock]"),
        "stderr: {stderr}"
    );

    // 4. The same workload with strategy Recreate: allowed without a word.
    let recreate = deployment(&ns, "single", 1, "{type: Recreate, rollingUpdate: null}");
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&recreate));
    assert!(out.status.success(), "{:?}", text(&out));
    assert!(!text(&out).1.contains("Warning"), "{:?}", text(&out));

    // 5. Metrics count what the API server asked.
    let metrics = Command::new("curl")
        .args(["-sf", &format!("http://127.0.0.1:{metrics_port}/metrics")])
        .output()
        .expect("curl");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("volguard_admission_reviews_total{")
                && l.contains("decision=\"denied\"")
                && l.contains("kind=\"Deployment\"")),
        "{metrics}"
    );
    cleanup.server.kill().ok();
}
