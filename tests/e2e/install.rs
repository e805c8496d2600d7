//! `volguard manifests` against the real kube-apiserver (v1.20.2, `../shared/e2e/cluster.sh`): every object
//! passes `kubectl apply --dry-run=server` (policy/v1 PodDisruptionBudget and cert-manager's kinds are
//! newer than or foreign to that server: they are checked by decoding only), and a full install pointing
//! its webhooks at a local `volguard serve` refuses three replicas on one ReadWriteOnce claim.

use crate::cluster_common;
use crate::install_common;

use std::time::Duration;

use cluster_common::{Served, fresh_name, kubectl, serve, text, wait_until};
use install_common::{decode, kind_of, manifests};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde_json::Value;

/// Kinds this API server does not serve: checked by decoding (in `decode`) only.
const DECODE_ONLY: [&str; 3] = ["PodDisruptionBudget", "Issuer", "Certificate"];

fn served(docs: &[Value]) -> Vec<Value> {
    docs.iter()
        .filter(|d| !DECODE_ONLY.contains(&kind_of(d)))
        .cloned()
        .collect()
}

fn yaml(docs: &[Value]) -> String {
    serde_saphyr::to_string_multiple(docs).expect("YAML")
}

#[test]
fn the_api_server_accepts_every_manifest() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-mf");
    let tmp = tempfile::tempdir().unwrap();
    let out = install_common::run(install_common::volguard([
        "certs".as_ref(),
        "--out".as_ref(),
        tmp.path().as_os_str(),
        "--service".as_ref(),
        ns.as_ref(),
        "--namespace".as_ref(),
        ns.as_ref(),
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let ca = tmp.path().join("ca.crt");
    // Namespaced objects are only dry-run-created in a namespace that exists.
    let created = kubectl(&kubeconfig, &["create", "namespace", &ns], None);
    assert!(created.status.success(), "{:?}", text(&created));
    // The default output is for Kubernetes 1.30: the pods webhook sends only bare pods, through a
    // matchCondition, a field this v1.20 server does not know yet.
    let current = decode(&manifests(&["--cert-manager"]));
    let pods = &current.validating.webhooks.as_ref().unwrap()[1];
    assert_eq!(pods.name, "pods.validate.volguard.io");
    assert!(pods.match_conditions.is_some());
    for trust in [vec!["--ca-bundle", ca.to_str().unwrap()], vec!["--cert-manager"]] {
        let mut args = vec![
            "--namespace",
            ns.as_str(),
            "--name",
            ns.as_str(),
            "--kube-version",
            "1.20",
        ];
        args.extend(trust.iter().copied());
        let decoded = decode(&manifests(&args));
        let pods = &decoded.validating.webhooks.as_ref().unwrap()[1];
        assert!(pods.match_conditions.is_none(), "1.20 has no matchConditions");
        let docs = served(&decoded.docs);
        let out = kubectl(
            &kubeconfig,
            &["apply", "--dry-run=server", "-o", "name", "-f", "-"],
            Some(&yaml(&docs)),
        );
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{trust:?}: the API server refused: {stderr}"
        );
        assert_eq!(stdout.lines().count(), docs.len(), "{trust:?}: {stdout}");
        for kind in [
            "deployment.apps",
            "validatingwebhookconfiguration",
            "mutatingwebhookconfiguration",
        ] {
            assert!(stdout.contains(kind), "{trust:?}: {stdout}");
        }
    }
}

fn deployment(ns: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 3\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      \
         containers: [{{name: web, image: nginx:1.27, volumeMounts: [{{name: data, mountPath: /data}}]}}]\n      \
         volumes: [{{name: data, persistentVolumeClaim: {{claimName: data}}}}]\n"
    )
}

fn bare_pod(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n  containers: [{{name: sh, \
         image: busybox:1.36, volumeMounts: [{{name: data, mountPath: /data}}]}}]\n  volumes: [{{name: data, \
         persistentVolumeClaim: {{claimName: data}}}}]\n"
    )
}

fn claim(ns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data, namespace: {ns}}}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n"
    )
}

#[test]
fn a_full_install_refuses_three_replicas_on_a_rwo_claim() {
    let kubeconfig = cluster_common::cluster();
    let name = fresh_name("vg-inst");
    // `exempt` is exempt by name; `labelled` carries volguard.io/ignore=true, which exempts nothing unless
    // the install opts in (`--label-exemption`): anyone who may label a namespace could otherwise.
    let (app, exempt, labelled) = (
        format!("{name}-app"),
        format!("{name}-exempt"),
        format!("{name}-labelled"),
    );
    let kinds = &[
        "validatingwebhookconfiguration",
        "mutatingwebhookconfiguration",
        "clusterrolebinding",
        "clusterrole",
    ];
    let Served {
        port,
        ca,
        mut cleanup,
        dir: _dir,
        ..
    } = serve(&kubeconfig, name.clone(), kinds);

    let url = format!("https://127.0.0.1:{port}");
    let mut decoded = decode(&manifests(&[
        "--namespace",
        &name,
        "--name",
        &name,
        "--ca-bundle",
        ca.to_str().unwrap(),
        "--webhook-url",
        &url,
        "--kube-version",
        "1.20",
        "--exempt-namespace",
        &exempt,
    ]));
    // The cluster is shared: narrow the webhooks to this test's namespaces, on top of the install's own
    // selector (which still has to let `app` and `labelled` through and keep `exempt` out by its name).
    let ours = LabelSelectorRequirement {
        key: "kubernetes.io/metadata.name".to_owned(),
        operator: "In".to_owned(),
        values: Some(vec![app.clone(), exempt.clone(), labelled.clone()]),
    };
    for validate in decoded.validating.webhooks.as_mut().unwrap() {
        assert_eq!(
            validate.client_config.url.as_deref(),
            Some(format!("{url}/validate").as_str())
        );
        let selector = validate.namespace_selector.as_mut().unwrap();
        selector.match_expressions.as_mut().unwrap().push(ours.clone());
    }
    let mutate = &mut decoded.mutating.webhooks.as_mut().unwrap()[0];
    let selector = mutate.namespace_selector.as_mut().unwrap();
    selector.match_expressions.as_mut().unwrap().push(ours);
    let docs: Vec<Value> = served(&decoded.docs)
        .into_iter()
        .map(|d| match kind_of(&d) {
            "ValidatingWebhookConfiguration" => serde_json::to_value(&decoded.validating).unwrap(),
            "MutatingWebhookConfiguration" => serde_json::to_value(&decoded.mutating).unwrap(),
            _ => d,
        })
        .collect();
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&yaml(&docs)));
    assert!(out.status.success(), "installing: {:?}", text(&out));
    let out = kubectl(
        &kubeconfig,
        &["-n", &name, "get", "deployment", &name, "-o", "name"],
        None,
    );
    assert!(
        out.status.success(),
        "the install's Deployment exists: {:?}",
        text(&out)
    );

    for ns in [&app, &exempt, &labelled] {
        let out = kubectl(&kubeconfig, &["create", "namespace", ns], None);
        assert!(out.status.success(), "{:?}", text(&out));
        // v1.20 does not set this label itself (v1.21 does); the install's selector keys on it.
        let label = format!("kubernetes.io/metadata.name={ns}");
        let out = kubectl(&kubeconfig, &["label", "namespace", ns, &label], None);
        assert!(out.status.success(), "{:?}", text(&out));
        let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&claim(ns)));
        assert!(out.status.success(), "{:?}", text(&out));
    }
    let out = kubectl(
        &kubeconfig,
        &["label", "namespace", &labelled, "volguard.io/ignore=true"],
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));

    // Refused, once the claim has reached volguard's cache through its watch (bounded retry).
    let web = deployment(&app);
    let mut last = (String::new(), String::new());
    wait_until(
        "the denial naming shared-rwo-claim",
        Duration::from_secs(30),
        || {
            let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&web));
            last = text(&out);
            assert!(
                !out.status.success() || !last.1.contains("shared-rwo-claim"),
                "{last:?}"
            );
            last.1.contains("[shared-rwo-claim]")
        },
    );
    let expected = format!(
        "admission webhook \"validate.volguard.io\" denied the request: volguard denied Deployment {app}/web:"
    );
    assert!(last.1.contains(&expected), "stderr: {}", last.1);

    // Bare pods go through the pods webhook: one pod on the claim is fine; a second one, free to land on
    // another node, is refused, naming the first (once it has reached the cache).
    let out = kubectl(
        &kubeconfig,
        &["apply", "-f", "-"],
        Some(&bare_pod(&app, "debug-1")),
    );
    assert!(out.status.success(), "{:?}", text(&out));
    let mut last = (String::new(), String::new());
    wait_until("the second bare pod refused", Duration::from_secs(30), || {
        let out = kubectl(
            &kubeconfig,
            &["apply", "-f", "-"],
            Some(&bare_pod(&app, "debug-2")),
        );
        last = text(&out);
        assert!(!out.status.success() || !last.1.contains("volguard"), "{last:?}");
        last.1.contains("[shared-rwo-claim]")
    });
    assert!(
        last.1
            .contains("admission webhook \"pods.validate.volguard.io\" denied the request"),
        "{last:?}"
    );
    assert!(
        last.1.contains(&format!("Pod {app}/debug-1 (1 pod) also mounts")),
        "{last:?}"
    );

    // The same Deployment in the namespace exempt by name never reaches volguard...
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&deployment(&exempt)));
    assert!(
        out.status.success(),
        "the exempt namespace is not checked: {:?}",
        text(&out)
    );
    // ...while a namespace that labelled itself volguard.io/ignore=true is checked all the same (refused
    // once its claim has reached the cache; until then it would be admitted with a missing-claim warning,
    // so it is deleted again before the next try).
    let expected = format!(
        "admission webhook \"validate.volguard.io\" denied the request: volguard denied Deployment {labelled}/web:"
    );
    let mut last = (String::new(), String::new());
    wait_until("the labelled namespace checked", Duration::from_secs(30), || {
        let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&deployment(&labelled)));
        last = text(&out);
        if out.status.success() {
            kubectl(
                &kubeconfig,
                &["-n", &labelled, "delete", "deployment", "web"],
                None,
            );
            assert!(
                last.1.contains("volguard"),
                "the label alone exempts nothing: {last:?}"
            );
        }
        last.1.contains(&expected)
    });
    cleanup.server.kill().ok();
}
