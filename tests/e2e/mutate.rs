//! Mutation end to end against a real kube-apiserver (`../shared/e2e/cluster.sh up`): `volguard serve`
//! with the built-in policy and a repairing one, registered as both webhooks, driven by kubectl. What is
//! checked is what the API server stored, read back with `kubectl get`.

use std::ffi::OsStr;
use std::time::Duration;

use crate::cluster_common;
use cluster_common::{Served, fresh_name, kubectl, namespace_with_webhooks, serve_with, text, wait_until};

/// The built-in policy plus one that repairs and gives StatefulSets a claim template, in `ns` only.
fn policies(dir: &std::path::Path, ns: &str) {
    let builtin = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.yaml"))
        .expect("the built-in policy");
    std::fs::write(dir.join("default.yaml"), builtin).expect("write");
    let repairs = format!(
        "apiVersion: volguard.io/v1alpha1
kind: VolumePolicy
metadata:
  name: e2e-repairs
spec:
  match:
    namespaces: [{ns}]
  mutate:
    claimTemplates:
      - name: scratch
        accessModes: [ReadWriteOnce]
        storage: 2Gi
        mount:
          mountPath: /scratch
    repairs:
      recreateStrategy: true
"
    );
    std::fs::write(dir.join("repairs.yaml"), repairs).expect("write");
}

fn get(kubeconfig: &std::path::Path, ns: &str, what: &str, path: &str) -> String {
    let out = kubectl(
        kubeconfig,
        &["get", "-n", ns, what, "-o", &format!("jsonpath={path}")],
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));
    text(&out).0
}

#[test]
fn kube_apiserver_stores_volguards_repairs() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-mut");
    let policy_dir = tempfile::tempdir().expect("tempdir");
    policies(policy_dir.path(), &ns);
    let Served {
        port,
        ca,
        mut cleanup,
        dir: _dir,
        ..
    } = serve_with(
        &kubeconfig,
        format!("volguard-{ns}"),
        cluster_common::WEBHOOK_KINDS,
        &[OsStr::new("--policy"), policy_dir.path().as_os_str()],
    );
    namespace_with_webhooks(&kubeconfig, &ns, &cleanup.name, port, &ca);
    let claim = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: uploads\n  namespace: {ns}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    );
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&claim));
    assert!(out.status.success(), "{:?}", text(&out));

    // 1. One replica on a ReadWriteOnce claim with the default RollingUpdate: stored as Recreate, and the
    //    validating webhook, called after the mutation, has nothing left to warn about. Until the claim
    //    reaches volguard's cache its modes are unknown (a missing-claim warning, no repair): retry.
    let cms = format!(
        "apiVersion: apps/v1
kind: Deployment
metadata: {{name: cms, namespace: {ns}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: cms}}}}
  template:
    metadata: {{labels: {{app: cms}}}}
    spec:
      containers:
      - name: cms
        image: ghcr.io/example/cms:3.2.1
        volumeMounts: [{{name: uploads, mountPath: /srv/uploads}}]
      volumes:
      - name: uploads
        persistentVolumeClaim: {{claimName: uploads}}
"
    );
    let mut stderr = String::new();
    wait_until("the Recreate repair", Duration::from_secs(30), || {
        let _ = kubectl(
            &kubeconfig,
            &["delete", "deployment", "cms", "-n", &ns, "--ignore-not-found"],
            None,
        );
        let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&cms));
        assert!(out.status.success(), "{:?}", text(&out));
        stderr = text(&out).1;
        get(&kubeconfig, &ns, "deployment/cms", "{.spec.strategy.type}") == "Recreate"
    });
    assert!(
        stderr.contains("Warning: [volguard mutate] set spec.strategy to Recreate (rollingUpdate removed)"),
        "{stderr}"
    );
    assert!(!stderr.contains("rollout-attach-deadlock"), "{stderr}");
    assert_eq!(
        get(
            &kubeconfig,
            &ns,
            "deployment/cms",
            "{.spec.strategy.rollingUpdate}"
        ),
        ""
    );
    assert_eq!(
        get(
            &kubeconfig,
            &ns,
            "deployment/cms",
            "{.metadata.annotations.volguard\\.io/mutated}"
        ),
        "spec.strategy"
    );

    // 2. A StatefulSet without templates gets the policy's, mounted in its container.
    let sts = |image: &str| {
        format!(
            "apiVersion: apps/v1
kind: StatefulSet
metadata: {{name: worker, namespace: {ns}}}
spec:
  replicas: 2
  serviceName: worker
  selector: {{matchLabels: {{app: worker}}}}
  template:
    metadata: {{labels: {{app: worker}}}}
    spec:
      containers:
      - name: worker
        image: {image}
"
        )
    };
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&sts("busybox:1.36")));
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Warning: [volguard mutate] added volumeClaimTemplate \"scratch\""),
        "{stderr}"
    );
    assert_eq!(
        get(
            &kubeconfig,
            &ns,
            "statefulset/worker",
            "{.spec.volumeClaimTemplates[0].metadata.name} {.spec.volumeClaimTemplates[0].spec.accessModes[0]} \
             {.spec.volumeClaimTemplates[0].spec.resources.requests.storage}"
        ),
        "scratch ReadWriteOnce 2Gi"
    );
    assert_eq!(
        get(
            &kubeconfig,
            &ns,
            "statefulset/worker",
            "{.spec.template.spec.containers[0].volumeMounts[0].name}:{.spec.template.spec.containers[0].volumeMounts[0].mountPath}"
        ),
        "scratch:/scratch"
    );

    // 3. An UPDATE of it (a new image through kubectl apply) is not patched: the template is there, and
    //    the API server would refuse a change to volumeClaimTemplates anyway.
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&sts("busybox:1.37")));
    let (_, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("Warning"), "{stderr}");
    assert_eq!(
        get(
            &kubeconfig,
            &ns,
            "statefulset/worker",
            "{.spec.template.spec.containers[0].image} {.spec.volumeClaimTemplates[*].metadata.name}"
        ),
        "busybox:1.37 scratch"
    );
    cleanup.server.kill().ok();
}
