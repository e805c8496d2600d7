//! Storage-class awareness against the real kube-apiserver: `volguard serve` watches StorageClasses, and
//! the API server's own requests for claims and Deployments are judged by what the claims' classes can
//! give; then `volguard check --cluster` resolves a file's claim against a class only the cluster holds.
//!
//! No provisioner runs here (no nodes, no CSI drivers): a StorageClass is only an object, which is all
//! volguard reads. All traffic stays on 127.0.0.1, and every wait is bounded.

use std::process::Command;
use std::time::Duration;

use crate::cluster_common;
use cluster_common::{Served, apply, fresh_name, run, serve, text, wait_until};

fn class(name: &str, provisioner: &str) -> String {
    format!(
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\nprovisioner: {provisioner}\n\
         volumeBindingMode: WaitForFirstConsumer\n"
    )
}

fn claim(ns: &str, name: &str, class: &str, mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  \
         storageClassName: {class}\n  accessModes: [{mode}]\n  resources:\n    requests:\n      storage: 1Gi\n"
    )
}

fn deployment(ns: &str, name: &str, replicas: u32, claim: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  replicas: \
         {replicas}\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: \
         {name}}}\n    spec:\n      containers:\n      - name: app\n        image: nginx:1.27\n        \
         volumeMounts:\n        - {{name: data, mountPath: /data}}\n      volumes:\n      - name: data\n        \
         persistentVolumeClaim: {{claimName: {claim}}}\n"
    )
}

#[test]
fn kube_apiserver_claims_are_judged_by_what_their_class_can_give() {
    let kubeconfig = cluster_common::cluster();
    let kc = kubeconfig.as_path();
    let ns = fresh_name("vg-sc");
    let (ebs, efs) = (format!("{ns}-gp3"), format!("{ns}-efs"));
    let Served {
        port,
        ca,
        mut cleanup,
        dir: tmp,
        ..
    } = serve(
        &kubeconfig,
        format!("volguard-{ns}"),
        cluster_common::WEBHOOK_KINDS,
    );

    cluster_common::labelled_namespace(kc, &ns);
    // Classes created after volguard started: they reach its cache through the watch.
    for (name, provisioner) in [(&ebs, "ebs.csi.aws.com"), (&efs, "efs.csi.aws.com")] {
        let (ok, out) = apply(kc, &class(name, provisioner));
        assert!(ok, "{out}");
    }
    // Before volguard is registered: a ReadWriteMany claim on EBS, which will never bind.
    let (ok, out) = apply(kc, &claim(&ns, "legacy-files", &ebs, "ReadWriteMany"));
    assert!(ok, "{out}");

    cluster_common::register(
        kc,
        &cluster_common::webhooks_with(
            &cleanup.name,
            port,
            &cluster_common::ca_bundle(&ca),
            &ns,
            cluster_common::CLAIM_RULES,
        ),
    );

    // ReadWriteMany on EBS: refused, once the registration (and the class watch) have taken effect.
    let files = claim(&ns, "files", &ebs, "ReadWriteMany");
    let mut refusal = String::new();
    wait_until(
        "the webhook to refuse a claim EBS cannot give",
        Duration::from_secs(30),
        || {
            let (ok, out) = apply(kc, &files);
            assert!(!ok || !out.contains("volguard"), "{out}");
            refusal = out;
            !ok && refusal.contains("[unsupported-access-mode]")
        },
    );
    assert!(
        refusal.contains(&format!(
            "admission webhook \"validate.volguard.io\" denied the request: volguard denied PersistentVolumeClaim \
             {ns}/files:\n[unsupported-access-mode] PersistentVolumeClaim {ns}/files asks for ReadWriteMany, but \
             class \"{ebs}\" (ebs.csi.aws.com) cannot give ReadWriteMany with volumeMode: Filesystem"
        )),
        "{refusal}"
    );
    assert!(
        refusal.contains("(for this vendor, efs.csi.aws.com)"),
        "{refusal}"
    );
    // The same on EFS, and ReadWriteOnce on EBS: admitted.
    let (ok, out) = apply(kc, &claim(&ns, "files", &efs, "ReadWriteMany"));
    assert!(ok, "{out}");
    let (ok, out) = apply(kc, &claim(&ns, "db", &ebs, "ReadWriteOnce"));
    assert!(ok, "{out}");

    // A Deployment on the claim that never binds: refused, saying why its pods would stay Pending.
    let (ok, out) = apply(kc, &deployment(&ns, "legacy", 2, "legacy-files"));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "[unbindable-claim] Deployment {ns}/legacy mounts claim \"legacy-files\" (volume \"data\"), which asks \
             for ReadWriteMany"
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "Deployment {ns}/legacy may run 2 pods and relies on ReadWriteMany"
        )),
        "{out}"
    );
    // Two replicas on the shared EFS claim: fine.
    let (ok, out) = apply(kc, &deployment(&ns, "uploads", 2, "files"));
    assert!(ok, "{out}");

    // `check --cluster`: the file's claim names a class only the cluster holds.
    let file = tmp.path().join("claim.yaml");
    std::fs::write(&file, claim(&ns, "reports", &ebs, "ReadWriteMany")).expect("write manifest");
    let check = |cluster: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_volguard"));
        crate::env::hermetic(&mut cmd)
            .arg("check")
            .arg("-f")
            .arg(&file)
            .args(["--color", "never"]);
        if cluster {
            cmd.arg("--cluster").arg("--kubeconfig").arg(&kubeconfig);
        }
        let out = cmd.output().expect("volguard check runs");
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}{stderr}"))
    };
    let (code, out) = check(true);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("unsupported-access-mode"), "{out}");
    // Offline the class is unknown: nothing can be said.
    let (code, out) = check(false);
    assert_eq!(code, Some(0), "{out}");

    cleanup.server.kill().ok();
    for c in [&ebs, &efs] {
        run(kc, &["delete", "storageclass", c, "--wait=false"]);
    }
}
