//! charts/volguard rendered by the real Helm engine (`../shared/tools/helm-check`, which also lints it
//! and validates every object against the strict Kubernetes schemas):
//! - every documented values combination (each TLS mode the schema allows, the NetworkPolicy on and off,
//!   one replica and two (the PodDisruptionBudget), Kubernetes 1.25 and 1.33) lints strictly, renders and
//!   validates;
//! - the default values (`tls.mode: selfManaged`) and the other deterministic TLS modes render
//!   byte-identical twice (`generate` makes a new CA on every render, as documented);
//! - the rendering in each TLS mode passes `kubectl apply --dry-run=server` on the real kube-apiserver of
//!   `../shared/e2e/cluster.sh`;
//! - the self-managed RBAC, applied for real, lets volguard's service account do what `serve` does with
//!   its Secret, Lease and webhook configurations, and nothing else there (`kubectl auth can-i`);
//! - `volguard manifests` given the same choices installs the same: the webhooks (rules, failure
//!   policies, timeouts, selectors, client config), the ClusterRole's access and its binding, the
//!   namespace selectors' exemptions, and the server's listen addresses.
//!
//! In the e2e binary: it needs the shared tools, so the default profile skips it; tests/install/chart.rs
//! compares the defaults without Helm. Each helm-check run is bounded by `timeout`.

use crate::cluster_common;
use crate::install_common;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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

/// The longest one helm-check run may take (a first run builds its virtualenv in about 10 s).
const HELM_CHECK_LIMIT: &str = "180";

/// `helm-check charts/volguard ARGS`, bounded in time (`timeout` ends the whole process group).
fn helm_check_run<S: AsRef<OsStr>>(tool: &Path, args: &[S]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", HELM_CHECK_LIMIT, "bash"])
        .arg(tool)
        .arg(root().join("charts/volguard"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("timeout and helm-check run")
}

/// The rendering of a successful run: its text, which must be YAML; a failed run fails the test.
fn rendered(out: &Output, what: &dyn std::fmt::Debug) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "helm-check {what:?} failed:\n{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("helm-check: OK:")),
        "helm-check {what:?} says OK last:\n{stderr}"
    );
    String::from_utf8(out.stdout.clone()).expect("the rendering is UTF-8")
}

fn documents(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple(text).expect("the rendering is a YAML stream")
}

/// The chart rendered with `--set` values: every document, as JSON values.
fn render(tool: &Path, sets: &[&str]) -> Vec<Value> {
    documents(&render_text(tool, sets))
}

/// The chart rendered with `--set` values, as Helm prints it.
fn render_text(tool: &Path, sets: &[&str]) -> String {
    let mut args = vec!["--release-name", "volguard", "-n", NAMESPACE, "-q"];
    for set in sets {
        args.extend(["--set", set]);
    }
    rendered(&helm_check_run(tool, &args), &sets)
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

// ---- Every documented values combination, rendered, linted and validated by Helm itself. ----

/// The chart's values file.
fn chart_file(path: &str) -> String {
    std::fs::read_to_string(root().join("charts/volguard").join(path)).expect("the chart file reads")
}

/// The TLS modes values.schema.json allows: each is rendered, whatever modes there are.
fn tls_modes() -> Vec<String> {
    let schema: Value = serde_json::from_str(&chart_file("values.schema.json")).expect("JSON");
    let modes: Vec<String> = schema["properties"]["tls"]["properties"]["mode"]["enum"]
        .as_array()
        .expect("tls.mode is an enum")
        .iter()
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect();
    for mode in ["generate", "certManager", "secret"] {
        assert!(modes.iter().any(|m| m == mode), "{mode} in {modes:?}");
    }
    modes
}

/// What a TLS mode needs besides `tls.mode`: `secret` a caBundle, from a values file in `dir`.
fn mode_args(mode: &str, dir: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--set".into(), format!("tls.mode={mode}").into()];
    if mode == "secret" {
        use base64::Engine as _;
        let ca = volguard::adapters::certs::Ca::generate("chart render CA", 30).expect("a CA");
        let file = dir.join("secret-mode.yaml");
        let bundle = base64::engine::general_purpose::STANDARD.encode(ca.pem);
        std::fs::write(&file, format!("tls:\n  secret:\n    caBundle: {bundle}\n")).expect("write");
        args.extend(["-f".into(), file.into_os_string()]);
    }
    args
}

/// The documents of `kind`.
fn all_of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

/// One combination of documented values.
#[derive(Clone, Debug)]
struct Combination {
    mode: String,
    network_policy: bool,
    replicas: u32,
    kube: &'static str,
}

/// Kubernetes versions the chart is rendered for: the oldest helm-check has schemas for, and a recent one
/// (the pods webhook gains its matchCondition from 1.28).
const KUBE_VERSIONS: [&str; 2] = ["1.25.0", "1.33.0"];

fn check_combination(tool: &Path, dir: &Path, c: &Combination) -> std::time::Duration {
    let mut args = mode_args(&c.mode, dir);
    for set in [
        format!("networkPolicy.enabled={}", c.network_policy),
        format!("replicaCount={}", c.replicas),
    ] {
        args.extend(["--set".into(), set.into()]);
    }
    args.extend(
        [
            "--kube-version",
            c.kube,
            "--release-name",
            "volguard",
            "-n",
            NAMESPACE,
            "--lint-strict",
            "-q",
        ]
        .map(OsString::from),
    );
    // Only cert-manager's kinds have no Kubernetes schema; anything else unknown is a failure.
    if c.mode != "certManager" {
        args.push("--fail-on-unknown-kinds".into());
    }
    let started = std::time::Instant::now();
    let out = helm_check_run(tool, &args);
    let took = started.elapsed();
    let docs = documents(&rendered(&out, c));

    let count = |kind: &str| all_of_kind(&docs, kind).len();
    assert_eq!(count("NetworkPolicy"), usize::from(c.network_policy), "{c:?}");
    assert_eq!(count("PodDisruptionBudget"), usize::from(c.replicas > 1), "{c:?}");
    for kind in ["Deployment", "Service", "ServiceAccount"] {
        assert_eq!(count(kind), 1, "{c:?}: {kind}");
    }
    // Self-managed TLS adds the access to its Secret, Lease (a Role) and webhook configurations.
    let self_managed = usize::from(c.mode == "selfManaged");
    for kind in ["ClusterRole", "ClusterRoleBinding"] {
        assert_eq!(count(kind), 1 + self_managed, "{c:?}: {kind}");
    }
    for kind in ["Role", "RoleBinding", "Job"] {
        assert_eq!(count(kind), self_managed, "{c:?}: {kind}");
    }
    match c.mode.as_str() {
        "generate" => assert_eq!(count("Secret"), 1, "{c:?}: the generated pair"),
        "certManager" => {
            assert_eq!((count("Issuer"), count("Certificate")), (1, 1), "{c:?}");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("2 without a schema"), "{c:?}: {stderr}");
        }
        "secret" => assert_eq!(count("Secret"), 0, "{c:?}: the Secret is the user's"),
        "selfManaged" => assert_eq!(count("Secret"), 0, "{c:?}: volguard creates the Secret"),
        other => panic!("a tls mode this test does not know: {other}"),
    }
    let deployment = of_kind(&docs, "Deployment");
    assert_eq!(
        deployment["spec"]["replicas"],
        serde_json::json!(c.replicas),
        "{c:?}"
    );
    let pods = &deployment["spec"]["selector"]["matchLabels"];
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"];
    assert_eq!(
        spread,
        &serde_json::json!([{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "ScheduleAnyway", "labelSelector": {"matchLabels": pods}}]),
        "{c:?}: replicas spread over nodes"
    );
    let wanted = webhook_configurations(&docs);
    let validating = of_kind(&wanted, "ValidatingWebhookConfiguration");
    let bare_pods = validating["webhooks"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "pods.validate.volguard.io"))
        .expect("a pods webhook by default");
    let minor: u32 = c
        .kube
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .expect("a minor");
    assert_eq!(
        bare_pods.get("matchConditions").is_some(),
        minor >= 28,
        "{c:?}: matchConditions from 1.28"
    );
    took
}

#[test]
fn every_documented_values_combination_lints_renders_and_validates_strictly() {
    let tool = helm_check();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all = Vec::new();
    for mode in tls_modes() {
        for network_policy in [false, true] {
            for replicas in [1, 2] {
                for kube in KUBE_VERSIONS {
                    all.push(Combination {
                        mode: mode.clone(),
                        network_policy,
                        replicas,
                        kube,
                    });
                }
            }
        }
    }
    // Two at a time: the machine has two cores.
    let (first, second) = all.split_at(all.len() / 2);
    let times: Vec<std::time::Duration> = std::thread::scope(|s| {
        let runs = [first, second].map(|half| {
            let (tool, dir) = (&tool, dir.path());
            s.spawn(move || {
                half.iter()
                    .map(|c| check_combination(tool, dir, c))
                    .collect::<Vec<_>>()
            })
        });
        runs.into_iter()
            .flat_map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    assert_eq!(times.len(), tls_modes().len() * 2 * 2 * KUBE_VERSIONS.len());
    let slowest = times.iter().max().copied().unwrap_or_default();
    let total: std::time::Duration = times.iter().sum();
    eprintln!(
        "{} combinations rendered: {:.1} s of helm-check in all, slowest {:.1} s",
        times.len(),
        total.as_secs_f64(),
        slowest.as_secs_f64()
    );
}

/// Two renderings of the same values, byte for byte.
fn render_twice(tool: &Path, args: &[OsString]) -> (String, String) {
    let mut all = args.to_vec();
    all.extend(["--release-name", "volguard", "-n", NAMESPACE, "-q"].map(OsString::from));
    let once = rendered(&helm_check_run(tool, &all), &all);
    let twice = rendered(&helm_check_run(tool, &all), &all);
    (once, twice)
}

#[test]
fn the_chart_renders_byte_identical_twice_in_the_deterministic_tls_modes() {
    let tool = helm_check();
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in ["certManager", "secret"] {
        let (once, twice) = render_twice(&tool, &mode_args(mode, dir.path()));
        assert!(once.contains("kind: Deployment"), "{mode}: a full rendering");
        assert!(once == twice, "{mode}: two renderings differ");
    }
}

const NOT_SERVED: [&str; 3] = ["PodDisruptionBudget", "Issuer", "Certificate"];

#[test]
fn the_api_server_accepts_the_rendered_chart_in_every_tls_mode() {
    let tool = helm_check();
    let kubeconfig = cluster_common::cluster();
    let dir = tempfile::tempdir().expect("tempdir");
    for mode in tls_modes() {
        let ns = cluster_common::fresh_name("vg-chart");
        let created = cluster_common::kubectl(
            &kubeconfig,
            &["create", "namespace", &ns, "--request-timeout=30s"],
            None,
        );
        assert!(created.status.success(), "{:?}", cluster_common::text(&created));
        let mut args = mode_args(&mode, dir.path());
        // The oldest Kubernetes helm-check renders for: no matchConditions, which 1.20 does not know.
        args.extend(["--kube-version", "1.25.0", "--release-name", &ns, "-n", &ns, "-q"].map(OsString::from));
        args.extend(["--set", "networkPolicy.enabled=true"].map(OsString::from));
        let docs = documents(&rendered(&helm_check_run(&tool, &args), &args));
        let (sent, skipped): (Vec<Value>, Vec<Value>) = docs
            .into_iter()
            .partition(|d| !NOT_SERVED.contains(&d["kind"].as_str().unwrap_or_default()));
        let stream = serde_saphyr::to_string_multiple(&sent).expect("YAML");
        let out = cluster_common::kubectl(
            &kubeconfig,
            &[
                "apply",
                "--dry-run=server",
                "--request-timeout=60s",
                "-o",
                "name",
                "-f",
                "-",
            ],
            Some(&stream),
        );
        let (stdout, stderr) = cluster_common::text(&out);
        assert!(out.status.success(), "{mode}: the API server refused:\n{stderr}");
        assert_eq!(stdout.lines().count(), sent.len(), "{mode}: {stdout}");
        for kind in [
            "deployment.apps/",
            "service/",
            "clusterrole.rbac.authorization.k8s.io/",
            "networkpolicy.networking.k8s.io/",
            "validatingwebhookconfiguration.admissionregistration.k8s.io/",
            "mutatingwebhookconfiguration.admissionregistration.k8s.io/",
        ] {
            assert!(stdout.contains(kind), "{mode}: {kind} in {stdout}");
        }
        let skipped: Vec<&str> = skipped.iter().filter_map(|d| d["kind"].as_str()).collect();
        eprintln!(
            "{mode}: {} objects accepted by a server-side dry run; not sent: {skipped:?}",
            sent.len()
        );
    }
}

// ---- `volguard manifests` and the chart, rendered by Helm, install the same webhooks and RBAC. ----

/// The fields of a webhook that decide what the API server sends and what it does without an answer.
const WEBHOOK_FIELDS: [&str; 11] = [
    "rules",
    "failurePolicy",
    "sideEffects",
    "timeoutSeconds",
    "namespaceSelector",
    "objectSelector",
    "matchPolicy",
    "admissionReviewVersions",
    "reinvocationPolicy",
    "matchConditions",
    "clientConfig",
];

/// Each webhook by name, those fields only.
fn webhooks(validating: &Value, mutating: &Value) -> std::collections::BTreeMap<String, Value> {
    [validating, mutating]
        .iter()
        .flat_map(|c| c["webhooks"].as_array().cloned().unwrap_or_default())
        .map(|w| {
            let fields: serde_json::Map<String, Value> = WEBHOOK_FIELDS
                .iter()
                .map(|f| (f.to_string(), w.get(*f).cloned().unwrap_or(Value::Null)))
                .collect();
            (
                w["name"].as_str().unwrap_or_default().to_owned(),
                Value::Object(fields),
            )
        })
        .collect()
}

/// A ClusterRole's rules as a set of (apiGroup, resource, verb): the same access however it is grouped.
fn access(rules: &Value) -> std::collections::BTreeSet<(String, String, String)> {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect()
    };
    let mut set = std::collections::BTreeSet::new();
    for rule in rules.as_array().expect("rules") {
        assert!(rule.get("resourceNames").is_none() && rule.get("nonResourceURLs").is_none());
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                for verb in strings(&rule["verbs"]) {
                    set.insert((group.clone(), resource.clone(), verb));
                }
            }
        }
    }
    set
}

#[test]
fn manifests_and_the_helm_rendered_chart_install_the_same_webhooks_and_rbac() {
    let tool = helm_check();
    for (kube, sets, flags) in [
        ("1.33", vec![], vec![]),
        ("1.25", vec![], vec![]),
        (
            "1.33",
            vec!["webhook.failurePolicy=Ignore", "webhook.pods.failurePolicy=Fail"],
            vec!["--failure-policy", "Ignore", "--pod-failure-policy", "Fail"],
        ),
        (
            "1.33",
            vec!["webhook.pods.enabled=false"],
            vec!["--no-pod-webhook"],
        ),
    ] {
        let what = format!("Kubernetes {kube}, {sets:?} against {flags:?}");
        let mut args = vec!["--set", "tls.mode=certManager", "--kube-version", kube];
        args.extend(["--release-name", "volguard", "-n", NAMESPACE, "-q"]);
        for set in &sets {
            args.extend(["--set", set]);
        }
        let chart = documents(&rendered(&helm_check_run(&tool, &args), &what));
        let mut all = vec!["--namespace", NAMESPACE, "--name", "volguard", "--cert-manager"];
        all.extend(["--kube-version", kube]);
        all.extend(flags.iter().copied());
        let printed = decode(&manifests(&all));
        let printed_docs = &printed.docs;

        let chart_hooks = webhooks(
            of_kind(&chart, "ValidatingWebhookConfiguration"),
            of_kind(&chart, "MutatingWebhookConfiguration"),
        );
        let printed_hooks = webhooks(
            of_kind(printed_docs, "ValidatingWebhookConfiguration"),
            of_kind(printed_docs, "MutatingWebhookConfiguration"),
        );
        assert_eq!(chart_hooks, printed_hooks, "{what}");
        let expected = if sets.contains(&"webhook.pods.enabled=false") {
            2
        } else {
            3
        };
        assert_eq!(chart_hooks.len(), expected, "{what}: {:?}", chart_hooks.keys());
        for config in ["ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"] {
            assert_eq!(
                of_kind(&chart, config)["metadata"]["annotations"],
                of_kind(printed_docs, config)["metadata"]["annotations"],
                "{what}: {config} has the CA injected the same way"
            );
        }

        let role = |docs: &[Value]| access(&of_kind(docs, "ClusterRole")["rules"]);
        assert_eq!(
            role(&chart),
            role(printed_docs),
            "{what}: the ClusterRole grants the same"
        );
        assert!(role(&chart).contains(&(
            String::new(),
            "persistentvolumeclaims".to_owned(),
            "watch".to_owned()
        )));
        let binding = |docs: &[Value]| {
            let b = of_kind(docs, "ClusterRoleBinding");
            (b["roleRef"].clone(), b["subjects"].clone())
        };
        assert_eq!(
            binding(&chart),
            binding(printed_docs),
            "{what}: bound to the same account"
        );
    }
}

#[test]
fn the_disruption_budget_and_priority_class_render_as_documented() {
    let tool = helm_check();
    let docs = render(&tool, &[]);
    let budget = of_kind(&docs, "PodDisruptionBudget");
    let deployment = of_kind(&docs, "Deployment");
    assert_eq!(budget["spec"]["minAvailable"], serde_json::json!(1));
    assert_eq!(
        budget["spec"]["selector"], deployment["spec"]["selector"],
        "the budget covers volguard's pods"
    );
    let pod = &deployment["spec"]["template"]["spec"];
    assert!(
        pod.get("priorityClassName").is_none(),
        "no priority class unless given"
    );

    let docs = render(&tool, &["podDisruptionBudget.enabled=false"]);
    assert!(all_of_kind(&docs, "PodDisruptionBudget").is_empty());
    let docs = render(&tool, &["priorityClassName=system-cluster-critical"]);
    assert_eq!(
        of_kind(&docs, "Deployment")["spec"]["template"]["spec"]["priorityClassName"],
        "system-cluster-critical"
    );
    let docs = render(&tool, &["replicaCount=3", "podDisruptionBudget.minAvailable=2"]);
    assert_eq!(of_kind(&docs, "PodDisruptionBudget")["spec"]["minAvailable"], 2);
    let docs = render(&tool, &["podDisruptionBudget.minAvailable=50%"]);
    assert_eq!(
        of_kind(&docs, "PodDisruptionBudget")["spec"]["minAvailable"],
        "50%"
    );

    // A budget no eviction can satisfy would hang every node drain: the chart refuses it.
    let out = helm_check_run(&tool, &["-q", "--set", "podDisruptionBudget.minAvailable=2"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("podDisruptionBudget.minAvailable (2) must be below replicaCount (2)"),
        "{stderr}"
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

/// The value of `--FLAG=` among the volguard container's arguments.
fn arg_of(docs: &[Value], flag: &str) -> String {
    of_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(&format!("--{flag}=")).map(str::to_owned))
        .unwrap_or_else(|| panic!("--{flag} among the args"))
}

#[test]
fn the_self_managed_rbac_grants_what_serve_needs_and_nothing_else() {
    // The chart's RBAC applied for real to the API server (which runs the RBAC authorizer), then asked,
    // as volguard's service account, what it may do: the tests that run `serve` do so as cluster admin,
    // so only this shows that the names and verbs the chart grants are the ones serve uses.
    let tool = helm_check();
    let kubeconfig = cluster_common::cluster();
    let ns = cluster_common::fresh_name("vg-rbac");
    let created = cluster_common::kubectl(
        &kubeconfig,
        &["create", "namespace", &ns, "--request-timeout=30s"],
        None,
    );
    assert!(created.status.success(), "{:?}", cluster_common::text(&created));
    let args = [
        "--release-name",
        ns.as_str(),
        "-n",
        ns.as_str(),
        "-q",
        "--kube-version",
        "1.25.0",
    ];
    let docs = documents(&rendered(&helm_check_run(&tool, &args), &args));
    let rbac: Vec<Value> = docs
        .iter()
        .filter(|d| {
            [
                "ServiceAccount",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRoleBinding",
            ]
            .contains(&d["kind"].as_str().unwrap_or_default())
        })
        .cloned()
        .collect();
    assert!(rbac.len() >= 7, "{rbac:?}");
    let stream = serde_saphyr::to_string_multiple(&rbac).expect("YAML");
    let out = cluster_common::kubectl(
        &kubeconfig,
        &["apply", "--request-timeout=60s", "-f", "-"],
        Some(&stream),
    );
    assert!(out.status.success(), "{:?}", cluster_common::text(&out));

    let account = format!(
        "system:serviceaccount:{ns}:{}",
        of_kind(&docs, "ServiceAccount")["metadata"]["name"]
            .as_str()
            .expect("a name")
    );
    let (secret_ns, secret) = {
        let s = arg_of(&docs, "tls-secret");
        let (a, b) = s.split_once('/').expect("NAMESPACE/NAME");
        (a.to_owned(), b.to_owned())
    };
    assert_eq!(secret_ns, ns);
    let lease = arg_of(&docs, "lease-name");
    let validating = arg_of(&docs, "validating-webhook");
    let mutating = arg_of(&docs, "mutating-webhook");
    let can = |verb: &str, what: &str, namespace: Option<&str>| -> bool {
        let mut a = vec![
            "auth",
            "can-i",
            verb,
            what,
            "--as",
            account.as_str(),
            "--request-timeout=30s",
        ];
        if let Some(n) = namespace {
            a.extend(["-n", n]);
        }
        let out = cluster_common::kubectl(&kubeconfig, &a, None);
        let (stdout, stderr) = cluster_common::text(&out);
        match stdout.trim() {
            "yes" => true,
            "no" => false,
            _ => panic!("kubectl auth can-i {verb} {what}: {stdout} {stderr}"),
        }
    };
    let here = Some(ns.as_str());
    let granted = [
        ("get", format!("secrets/{secret}"), here),
        ("watch", format!("secrets/{secret}"), here),
        ("list", format!("secrets/{secret}"), here),
        ("update", format!("secrets/{secret}"), here),
        ("create", "secrets".to_owned(), here),
        ("get", format!("leases.coordination.k8s.io/{lease}"), here),
        ("update", format!("leases.coordination.k8s.io/{lease}"), here),
        ("create", "leases.coordination.k8s.io".to_owned(), here),
        (
            "patch",
            format!("validatingwebhookconfigurations/{validating}"),
            None,
        ),
        ("patch", format!("mutatingwebhookconfigurations/{mutating}"), None),
        (
            "delete",
            format!("validatingwebhookconfigurations/{validating}"),
            None,
        ),
        ("watch", "deployments.apps".to_owned(), None),
        ("list", "persistentvolumeclaims".to_owned(), None),
    ];
    for (verb, what, namespace) in &granted {
        assert!(can(verb, what, *namespace), "{account} may {verb} {what}");
    }
    let refused = [
        ("get", "secrets/another-secret".to_owned(), here),
        ("list", "secrets".to_owned(), here),
        ("get", format!("secrets/{secret}"), Some("default")),
        ("create", "secrets".to_owned(), Some("default")),
        ("delete", format!("secrets/{secret}"), here),
        (
            "update",
            "leases.coordination.k8s.io/another-lease".to_owned(),
            here,
        ),
        (
            "patch",
            "validatingwebhookconfigurations/another-webhook".to_owned(),
            None,
        ),
        ("create", "validatingwebhookconfigurations".to_owned(), None),
        ("create", "deployments.apps".to_owned(), here),
    ];
    for (verb, what, namespace) in &refused {
        assert!(
            !can(verb, what, *namespace),
            "{account} may not {verb} {what} in {namespace:?}"
        );
    }
}

#[test]
fn the_report_crds_and_rbac_render_only_when_asked() {
    let tool = helm_check();
    let names = |docs: &[Value], kind: &str| -> Vec<String> {
        all_of_kind(docs, kind)
            .iter()
            .map(|d| d["metadata"]["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let plain = render(&tool, &[]);
    assert!(names(&plain, "CustomResourceDefinition").is_empty());
    assert!(
        !names(&plain, "ClusterRole")
            .iter()
            .any(|n| n.ends_with("-reports"))
    );

    let docs = render(&tool, &["reports.enabled=true", "reports.installCRDs=true"]);
    let mut crds = names(&docs, "CustomResourceDefinition");
    crds.sort();
    assert_eq!(
        crds,
        [
            "clusterpolicyreports.wgpolicyk8s.io",
            "clusterreports.openreports.io",
            "policyreports.wgpolicyk8s.io",
            "reports.openreports.io",
        ]
    );
    for crd in all_of_kind(&docs, "CustomResourceDefinition") {
        assert_eq!(
            crd["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{crd:#}"
        );
    }
    let reports = all_of_kind(&docs, "ClusterRole")
        .into_iter()
        .find(|r| {
            r["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with("-reports"))
        })
        .expect("a reports ClusterRole");
    let granted = access(&reports["rules"]);
    let mut want = std::collections::BTreeSet::new();
    for (group, resource) in [("wgpolicyk8s.io", "policyreports"), ("openreports.io", "reports")] {
        for verb in ["get", "list", "create", "patch", "delete"] {
            want.insert((group.to_owned(), resource.to_owned(), verb.to_owned()));
        }
    }
    assert_eq!(granted, want);
    let args = |docs: &[Value]| -> Vec<String> {
        of_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_array()
            .expect("args")
            .iter()
            .filter_map(|a| a.as_str().map(str::to_owned))
            .collect()
    };
    assert!(!args(&docs).iter().any(|a| a.starts_with("--audit-")));

    // The background audit: serve's flags, the Lease it is elected by, and the Role granting that Lease.
    let docs = render(
        &tool,
        &[
            "reports.enabled=true",
            "reports.auditInterval=10m",
            "reports.api=openreports",
        ],
    );
    let fullname = of_kind(&docs, "Deployment")["metadata"]["name"]
        .as_str()
        .expect("a name")
        .to_owned();
    let audit: Vec<String> = args(&docs)
        .into_iter()
        .filter(|a| a.starts_with("--audit-"))
        .collect();
    assert_eq!(
        audit,
        [
            "--audit-interval=10m".to_owned(),
            format!("--audit-lease={NAMESPACE}/{fullname}-audit"),
            "--audit-report-api=openreports".to_owned(),
        ]
    );
    // The replica's identity in the Lease, once, in every TLS mode.
    for mode in [None, Some("tls.mode=generate")] {
        let mut sets = vec!["reports.enabled=true", "reports.auditInterval=10m"];
        sets.extend(mode);
        let identities = args(&render(&tool, &sets))
            .into_iter()
            .filter(|a| a == "--lease-identity=$(POD_NAME)")
            .count();
        assert_eq!(identities, 1, "{sets:?}");
    }
    let role = all_of_kind(&docs, "Role")
        .into_iter()
        .find(|r| r["metadata"]["name"] == format!("{fullname}-audit").as_str())
        .expect("the audit Lease's Role");
    assert_eq!(
        role["rules"][0]["resourceNames"],
        serde_json::json!([format!("{fullname}-audit")])
    );
    // Without reports.enabled the interval alone turns nothing on.
    let docs = render(&tool, &["reports.auditInterval=10m"]);
    assert!(!args(&docs).iter().any(|a| a.starts_with("--audit-")));
}

#[test]
fn audit_writes_reports_as_the_charts_service_account() {
    // The chart's RBAC (reports.enabled) applied for real, and `volguard audit --write-reports` run as
    // volguard's service account (impersonated through the kubeconfig): the grants are what it uses.
    let tool = helm_check();
    let kubeconfig = cluster_common::cluster();
    let ns = cluster_common::fresh_name("vg-reports");
    let kc = |args: &[&str], stdin: Option<&str>| {
        let out = cluster_common::kubectl(&kubeconfig, args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {:?}",
            cluster_common::text(&out)
        );
        out
    };
    kc(&["create", "namespace", &ns, "--request-timeout=30s"], None);
    let crds = root().join("charts/volguard/files/crds");
    kc(
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().expect("utf-8"),
        ],
        None,
    );
    kc(
        &[
            "wait",
            "--for=condition=Established",
            "--timeout=30s",
            "crd/policyreports.wgpolicyk8s.io",
        ],
        None,
    );
    let args = [
        "--release-name",
        ns.as_str(),
        "-n",
        ns.as_str(),
        "-q",
        "--set",
        "reports.enabled=true",
    ];
    let docs = documents(&rendered(&helm_check_run(&tool, &args), &args));
    let rbac: Vec<Value> = docs
        .iter()
        .filter(|d| {
            ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
                .contains(&d["kind"].as_str().unwrap_or_default())
        })
        .cloned()
        .collect();
    let stream = serde_saphyr::to_string_multiple(&rbac).expect("YAML");
    kc(&["apply", "--request-timeout=60s", "-f", "-"], Some(&stream));
    let cluster_wide: Vec<(String, String)> = rbac
        .iter()
        .filter(|d| d["kind"] != "ServiceAccount")
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_lowercase(),
                d["metadata"]["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    struct Delete(PathBuf, Vec<(String, String)>, String);
    impl Drop for Delete {
        fn drop(&mut self) {
            for (kind, name) in &self.1 {
                let _ = cluster_common::kubectl(&self.0, &["delete", kind, name, "--ignore-not-found"], None);
            }
            let _ = cluster_common::kubectl(&self.0, &["delete", "namespace", &self.2, "--wait=false"], None);
        }
    }
    let _cleanup = Delete(kubeconfig.clone(), cluster_wide, ns.clone());
    let account = format!(
        "system:serviceaccount:{ns}:{}",
        of_kind(&docs, "ServiceAccount")["metadata"]["name"]
            .as_str()
            .expect("a name")
    );
    let workload = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: data, namespace: {ns}}}\nspec: \
         {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n---\napiVersion: apps/v1\n\
         kind: Deployment\nmetadata: {{name: web, namespace: {ns}}}\nspec:\n  replicas: 2\n  strategy: {{type: Recreate}}\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec:\n      \
         containers: [{{name: web, image: nginx, volumeMounts: [{{name: d, mountPath: /d}}]}}]\n      \
         volumes: [{{name: d, persistentVolumeClaim: {{claimName: data}}}}]\n"
    );
    kc(&["apply", "-f", "-"], Some(&workload));

    // The e2e kubeconfig, impersonating the service account.
    let mut config: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&kubeconfig).expect("kubeconfig")).expect("YAML");
    for user in config["users"].as_array_mut().expect("users") {
        user["user"]["as"] = account.clone().into();
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let as_volguard = dir.path().join("kubeconfig");
    std::fs::write(&as_volguard, serde_saphyr::to_string(&config).expect("YAML")).expect("write");
    let audit = |extra: &[&str]| {
        crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
            .args(["audit", "-n", &ns, "--color", "never", "--kubeconfig"])
            .arg(&as_volguard)
            .args(extra)
            .output()
            .expect("volguard audit runs")
    };
    let out = audit(&["--write-reports"]);
    let (stdout, stderr) = cluster_common::text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let summary =
        cluster_common::report_summary(&kubeconfig, &ns).expect("volguard's report, with a summary");
    assert_eq!(
        summary,
        serde_json::json!({"pass": 5, "fail": 1, "warn": 0, "error": 0, "skip": 0})
    );
    // openreports too, without a chart change.
    let out = audit(&["--write-reports", "--report-api", "openreports"]);
    assert_eq!(out.status.code(), Some(1), "{:?}", cluster_common::text(&out));
    // Without the reports grant the write is refused, and the run says so (exit 2).
    let reports_role = rbac
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRoleBinding"
                && d["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-reports"))
        })
        .expect("the reports binding");
    kc(
        &[
            "delete",
            "clusterrolebinding",
            reports_role["metadata"]["name"].as_str().expect("name"),
        ],
        None,
    );
    let mut refused = false;
    for _ in 0..50 {
        let out = audit(&["--write-reports"]);
        let (_, stderr) = cluster_common::text(&out);
        if out.status.code() == Some(2) {
            assert!(
                // The listing comes first (it also tells whether the kind is served).
                stderr.starts_with("error: writing the policy reports: listing volguard's PolicyReports: "),
                "{stderr}"
            );
            assert!(stderr.contains("forbidden"), "{stderr}");
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(refused, "the write was never refused once the grant was gone");
}
