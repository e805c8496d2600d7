//! charts/volguard rendered by the real Helm engine (`../shared/tools/helm-check`, which also lints it
//! and validates every object against the strict Kubernetes schemas) and compared with `volguard
//! manifests` given the same choices: the webhooks' namespace selectors (exemptions by name, the opt-in
//! label), and the server's listen addresses. In the e2e binary: it needs the shared tools, so the default
//! profile skips it; tests/install/chart.rs compares the defaults without Helm.

use crate::install_common;

use std::path::PathBuf;
use std::process::Command;

use install_common::{decode, manifests, root};
use pretty_assertions::assert_eq;
use rustls_pki_types::pem::PemObject as _;
use serde_json::Value;

const NAMESPACE: &str = "vg-render";

/// `../shared/tools/helm-check`. These tests run with the end-to-end ones (`--profile e2e`), where the
/// shared tools are required: a missing one fails rather than passing unchecked.
fn helm_check() -> PathBuf {
    let tool = root().join("../shared/tools/helm-check");
    assert!(
        tool.exists(),
        "no ../shared/tools/helm-check to render the chart with (run without --profile e2e to skip these)"
    );
    tool
}

/// The chart rendered with `--set` values: every document, as JSON values.
fn render(tool: &PathBuf, sets: &[&str]) -> Vec<Value> {
    let text = render_text(tool, sets);
    serde_saphyr::from_multiple(&text).expect("the rendering is a YAML stream")
}

/// The chart rendered with `--set` values, as Helm prints it.
fn render_text(tool: &PathBuf, sets: &[&str]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(tool).arg(root().join("charts/volguard")).args([
        "--release-name",
        "volguard",
        "-n",
        NAMESPACE,
        "-q",
    ]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    let out = cmd.output().expect("helm-check runs");
    assert!(
        out.status.success(),
        "helm-check {sets:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("the rendering is UTF-8")
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("the rendering has a {kind}"))
}

/// Each webhook's name and namespaceSelector, validating then mutating.
fn selectors(validating: &Value, mutating: &Value) -> Vec<(String, Value)> {
    [validating, mutating]
        .iter()
        .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
        .map(|w| {
            (
                w["name"].as_str().unwrap_or("").to_owned(),
                w["namespaceSelector"].clone(),
            )
        })
        .collect()
}

/// The webhook configurations the chart asks for: with self-managed TLS (the default) those in the
/// ConfigMap volguard applies once it serves, else the rendered objects.
fn webhook_configurations(docs: &[Value]) -> Vec<Value> {
    match docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == "volguard-webhooks")
    {
        Some(map) => {
            serde_saphyr::from_multiple(map["data"]["webhooks.yaml"].as_str().expect("webhooks.yaml"))
                .expect("webhooks.yaml is a YAML stream")
        }
        None => docs.to_vec(),
    }
}

fn manifests_selectors(args: &[&str]) -> Vec<(String, Value)> {
    let mut all = vec!["--namespace", NAMESPACE, "--name", "volguard", "--cert-manager"];
    all.extend_from_slice(args);
    let d = decode(&manifests(&all));
    selectors(
        &serde_json::to_value(&d.validating).expect("serializes"),
        &serde_json::to_value(&d.mutating).expect("serializes"),
    )
}

#[test]
fn exemptions_render_as_manifests_prints_them() {
    let tool = helm_check();
    for (sets, args) in [
        (vec![], vec![]),
        (
            vec!["webhook.exemptNamespaces={legacy,kube-system,batch}"],
            vec![
                "--exempt-namespace",
                "legacy,kube-system",
                "--exempt-namespace",
                "batch",
            ],
        ),
        (
            vec!["webhook.exemptNamespaces={legacy}", "webhook.labelExemption=true"],
            vec!["--exempt-namespace", "legacy", "--label-exemption"],
        ),
    ] {
        let docs = webhook_configurations(&render(&tool, &sets));
        let chart = selectors(
            of_kind(&docs, "ValidatingWebhookConfiguration"),
            of_kind(&docs, "MutatingWebhookConfiguration"),
        );
        assert_eq!(chart, manifests_selectors(&args), "{sets:?} against {args:?}");
        assert_eq!(chart.len(), 3, "validate, pods and mutate");
    }
    // Spelled out once: what the API server is told with both exemptions on.
    let docs = webhook_configurations(&render(
        &tool,
        &["webhook.exemptNamespaces={legacy}", "webhook.labelExemption=true"],
    ));
    let chart = selectors(
        of_kind(&docs, "ValidatingWebhookConfiguration"),
        of_kind(&docs, "MutatingWebhookConfiguration"),
    );
    assert_eq!(
        chart[0].1,
        serde_json::json!({"matchExpressions": [
            {"key": "kubernetes.io/metadata.name", "operator": "NotIn",
             "values": ["kube-system", NAMESPACE, "legacy"]},
            {"key": "volguard.io/ignore", "operator": "NotIn", "values": ["true"]},
        ]})
    );
}

#[test]
fn the_server_listens_on_the_pod_ip_as_in_the_manifests() {
    let tool = helm_check();
    let docs = render(&tool, &[]);
    let chart = &of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let d = decode(&manifests(&["--namespace", NAMESPACE, "--self-managed"]));
    let printed = serde_json::to_value(d.container()).expect("serializes");
    assert_eq!(chart["env"], printed["env"]);
    // The pod's IP to listen on, and (self-managed TLS, the default) its name for the Lease.
    assert_eq!(
        chart["env"],
        serde_json::json!([
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ])
    );
    for flag in ["--addr=$(POD_IP):8443", "--metrics-addr=$(POD_IP):9090"] {
        for (what, container) in [("chart", chart), ("manifests", &printed)] {
            let args = container["args"].as_array().expect("args");
            assert!(args.iter().any(|a| a == flag), "{what} passes {flag}: {args:?}");
        }
    }
}

#[test]
fn a_generated_certificate_lasts_a_year_and_says_when_it_is_renewed() {
    let tool = helm_check();
    let docs = render(&tool, &["tls.mode=generate"]);
    let secret = of_kind(&docs, "Secret");
    let renew_after: i64 = secret["metadata"]["annotations"]["volguard.io/renew-after"]
        .as_str()
        .expect("the Secret says when to renew")
        .parse()
        .expect("unix seconds");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64;
    // Two thirds of 365 days from the rendering (a minute's slack for a slow machine).
    let expected = now + 365 * 86_400 * 2 / 3;
    assert!(
        (expected - 60..=expected + 60).contains(&renew_after),
        "renew-after {renew_after}, expected about {expected}"
    );
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["tls.crt"].as_str().expect("tls.crt"))
        .expect("base64");
    let der = rustls_pki_types::CertificateDer::from_pem_slice(&pem).expect("tls.crt is a PEM certificate");
    let (not_before, not_after) =
        volguard::adapters::server::tls::validity(&der).expect("the certificate parses");
    let days = (not_after - not_before) / 86_400;
    assert_eq!(days, 365, "the generated certificate's validity in days");
}

#[test]
fn a_network_policy_opens_the_webhook_port_to_all_and_metrics_only_to_the_peers_given() {
    let tool = helm_check();
    assert!(
        render(&tool, &[]).iter().all(|d| d["kind"] != "NetworkPolicy"),
        "no NetworkPolicy unless asked for"
    );
    let closed = render(&tool, &["networkPolicy.enabled=true"]);
    let policy = of_kind(&closed, "NetworkPolicy");
    assert_eq!(policy["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    assert_eq!(
        policy["spec"]["ingress"],
        serde_json::json!([{"ports": [{"port": "https", "protocol": "TCP"}]}])
    );
    let deployment = of_kind(&closed, "Deployment");
    assert_eq!(
        policy["spec"]["podSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let open = render(
        &tool,
        &[
            "networkPolicy.enabled=true",
            "networkPolicy.metricsFrom[0].namespaceSelector.matchLabels.team=monitoring",
        ],
    );
    assert_eq!(
        of_kind(&open, "NetworkPolicy")["spec"]["ingress"][1],
        serde_json::json!({
            "ports": [{"port": "metrics", "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}]
        })
    );
}

#[test]
fn the_default_chart_renders_byte_identical_every_time() {
    let tool = helm_check();
    let first = render_text(&tool, &[]);
    let second = render_text(&tool, &[]);
    assert!(first.contains("--tls-secret="), "the default is self-managed TLS");
    assert!(
        !first.contains("caBundle:"),
        "volguard sets the caBundle, not the chart"
    );
    assert!(
        render(&tool, &[]).iter().all(|d| d["kind"] != "Secret"),
        "no Secret rendered: volguard creates it"
    );
    assert!(first == second, "two renderings differ");
}

/// The rules of the object of `kind` named `name`.
fn rules_of<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    &docs
        .iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("a {kind} {name}"))["rules"]
}

#[test]
fn self_managed_rbac_and_flags_render_as_manifests_prints_them() {
    let tool = helm_check();
    let chart = render(&tool, &[]);
    let printed = manifests(&["--namespace", NAMESPACE, "--name", "volguard", "--self-managed"]);
    let printed: Vec<Value> = serde_saphyr::from_multiple(&printed).expect("a YAML stream");
    for kind in ["Role", "ClusterRole"] {
        assert_eq!(
            rules_of(&chart, kind, "volguard-tls"),
            rules_of(&printed, kind, "volguard-tls"),
            "{kind} volguard-tls"
        );
    }
    // Only by name, except create (which no authorizer can limit by name).
    for doc in [&chart, &printed] {
        for kind in ["Role", "ClusterRole"] {
            for rule in rules_of(doc, kind, "volguard-tls").as_array().expect("rules") {
                let verbs = rule["verbs"].as_array().expect("verbs");
                let named = rule["resourceNames"].as_array().is_some_and(|n| n.len() == 1);
                assert!(named || verbs == &[serde_json::json!("create")], "{rule}");
            }
        }
    }
    let tls_args = |docs: &[Value]| -> Vec<Value> {
        of_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter(|a| {
                a.as_str().is_some_and(|a| {
                    [
                        "--tls-",
                        "--service",
                        "--validating-webhook",
                        "--mutating-webhook",
                        "--lease-",
                    ]
                    .iter()
                    .any(|p| a.starts_with(p))
                })
            })
            .cloned()
            .collect()
    };
    assert_eq!(tls_args(&chart), tls_args(&printed));
    assert!(tls_args(&chart).contains(&serde_json::json!(format!(
        "--tls-secret={NAMESPACE}/volguard-tls"
    ))));
}

#[test]
fn self_managed_webhooks_are_installed_inactive_and_removed_by_a_pre_delete_hook() {
    let tool = helm_check();
    let docs = render(&tool, &[]);
    // Rendered with no webhooks: the API server sends nothing until volguard's leader puts them in.
    for kind in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
        let config = of_kind(&docs, kind);
        assert_eq!(config["metadata"]["name"], "volguard");
        assert!(config.get("webhooks").is_none(), "{config}");
    }
    let wanted = webhook_configurations(&docs);
    assert_eq!(
        of_kind(&wanted, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["service"]["name"],
        "volguard"
    );
    let deployment = of_kind(&docs, "Deployment");
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(args.as_array().expect("args").contains(&serde_json::json!(
        "--webhooks-file=/etc/volguard/webhooks/webhooks.yaml"
    )));
    // The pre-delete hook deletes both, as the volguard service account (its ClusterRole may delete them).
    let job = of_kind(&docs, "Job");
    assert_eq!(job["metadata"]["annotations"]["helm.sh/hook"], "pre-delete");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["serviceAccountName"], "volguard");
    assert_eq!(
        pod["containers"][0]["args"],
        serde_json::json!([
            "unregister",
            "--validating-webhook=volguard",
            "--mutating-webhook=volguard",
            "--log-format=json"
        ])
    );
    let role = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "volguard-tls")
        .expect("ClusterRole volguard-tls");
    assert_eq!(
        role["rules"][0]["verbs"],
        serde_json::json!(["get", "patch", "delete"])
    );
    // Other modes render the configurations whole, and no hook.
    let docs = render(&tool, &["tls.mode=certManager"]);
    assert!(of_kind(&docs, "ValidatingWebhookConfiguration")["webhooks"].is_array());
    assert!(docs.iter().all(|d| d["kind"] != "Job"));
}
