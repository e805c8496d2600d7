//! The scenarios marked `e2e: true` (`tests/fixtures/scenarios`), through the real kube-apiserver of
//! `../shared/e2e/cluster.sh` with `volguard serve` registered as it is in production (rules and RBAC
//! from the table of kinds, the pods webhook included):
//!
//! - **order**: the objects are created in every order (every order up to three objects, else every
//!   rotation), each order in fresh namespaces: every object but the last is admitted, and the last one
//!   gets its `last` verdict;
//! - **updates**: the objects are created before volguard watches their namespace (as a cluster that
//!   predates it), then each update is sent with `kubectl replace --dry-run=server`, which calls the
//!   webhooks without storing anything, and gets its verdict; a replicas-only update also goes through
//!   the `/scale` subresource (`kubectl scale --dry-run=server`).
//!
//! volguard answers from watch-fed caches: an object created a moment ago may not be in them yet, which
//! can only make an answer less strict. The last step is therefore retried (bounded, the object deleted
//! again when it was admitted) until it gets the expected answer.

use crate::cluster_common;
use crate::scenario_common;

use std::path::Path;
use std::time::{Duration, Instant};

use cluster_common::{Served, fresh_name, kubectl, serve, text, wait_until};
use scenario_common::{Expected, Scenario};
use serde_json::Value;

/// The namespaces of this run carry this label, which the webhooks select.
const RUN_LABEL: &str = "volguard.io/e2e-scenarios";

fn webhook_configurations(name: &str, port: u16, ca_bundle: &str, run: &str) -> String {
    let rules = |rules: Vec<k8s_openapi::api::admissionregistration::v1::RuleWithOperations>| {
        serde_json::to_value(rules).expect("rules serialize")
    };
    let client = |path: &str| serde_json::json!({"url": format!("https://127.0.0.1:{port}{path}"), "caBundle": ca_bundle});
    let webhook = |name: &str, path: &str, rules: Value, failure: &str| {
        serde_json::json!({
            "name": name, "clientConfig": client(path), "rules": rules,
            "admissionReviewVersions": ["v1"], "sideEffects": "None", "matchPolicy": "Equivalent",
            "timeoutSeconds": 10, "failurePolicy": failure,
            "namespaceSelector": {"matchLabels": {RUN_LABEL: run}}
        })
    };
    let validating = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            webhook("validate.volguard.io", "/validate", rules(volguard::adapters::install::webhook_rules()), "Fail"),
            // Fail here (not the install's Ignore): a test must not pass because volguard did not answer.
            webhook("pods.validate.volguard.io", "/validate", rules(volguard::adapters::install::pod_rules()), "Fail"),
        ]
    });
    let mut mutate = webhook(
        "mutate.volguard.io",
        "/mutate",
        rules(volguard::adapters::install::mutating_rules()),
        "Fail",
    );
    mutate["reinvocationPolicy"] = "IfNeeded".into();
    let mutating = serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name}, "webhooks": [mutate]
    });
    format!("{}\n---\n{}", to_yaml(&validating), to_yaml(&mutating))
}

fn to_yaml(v: &Value) -> String {
    serde_saphyr::to_string(v).expect("YAML")
}

/// The scenario's objects with each namespace renamed to a fresh one (namespaces never finish deleting on
/// this API server, so every run and order gets its own).
struct Renamed {
    namespaces: Vec<(String, String)>,
}

impl Renamed {
    fn fresh(s: &Scenario) -> Self {
        let mut namespaces: Vec<(String, String)> = Vec::new();
        for (_, o) in &s.objects {
            let ns = o["metadata"]["namespace"]
                .as_str()
                .unwrap_or("default")
                .to_owned();
            if !namespaces.iter().any(|(old, _)| *old == ns) {
                namespaces.push((
                    ns.clone(),
                    fresh_name(&format!("vg-sc-{}", &ns[..ns.len().min(12)])),
                ));
            }
        }
        Self { namespaces }
    }

    fn ns(&self, old: &str) -> &str {
        &self
            .namespaces
            .iter()
            .find(|(o, _)| o == old)
            .expect("known namespace")
            .1
    }

    /// The object in its fresh namespace, as JSON for kubectl.
    fn object(&self, o: &Value) -> String {
        let mut o = o.clone();
        let ns = o["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_owned();
        o["metadata"]["namespace"] = self.ns(&ns).into();
        // uids are the API server's to give.
        if let Some(meta) = o["metadata"].as_object_mut() {
            meta.remove("uid");
        }
        serde_json::to_string(&o).expect("JSON")
    }

    /// `Deployment shop/web` in its fresh namespace.
    fn reference(&self, reference: &str) -> String {
        let (kind, rest) = reference.split_once(' ').expect("Kind ns/name");
        let (ns, name) = rest.split_once('/').expect("ns/name");
        format!("{kind} {}/{name}", self.ns(ns))
    }

    /// A message fragment with its `namespace/` references renamed.
    fn text(&self, fragment: &str) -> String {
        let mut out = fragment.to_owned();
        for (old, new) in &self.namespaces {
            out = out.replace(&format!(" {old}/"), &format!(" {new}/"));
        }
        out
    }

    fn create_namespaces(&self, kc: &Path, run: Option<&str>) {
        for (_, ns) in &self.namespaces {
            let out = kubectl(kc, &["create", "namespace", ns], None);
            assert!(out.status.success(), "{:?}", text(&out));
            if let Some(run) = run {
                label(kc, ns, run);
            }
        }
    }
}

fn label(kc: &Path, ns: &str, run: &str) {
    let out = kubectl(
        kc,
        &["label", "namespace", ns, &format!("{RUN_LABEL}={run}")],
        None,
    );
    assert!(out.status.success(), "{:?}", text(&out));
}

/// What the API server said to one request: admitted or not, and everything it printed.
struct Answer {
    admitted: bool,
    output: String,
}

impl Answer {
    fn of(out: &std::process::Output) -> Self {
        let (stdout, stderr) = text(out);
        Self {
            admitted: out.status.success(),
            output: format!("{stdout}{stderr}"),
        }
    }

    /// The verdict volguard gave, as kubectl shows it.
    fn verdict(&self) -> &'static str {
        if !self.admitted {
            "Deny"
        } else if self.output.contains("Warning: [") {
            "Warn"
        } else {
            "Allow"
        }
    }

    /// Whether this is `e`'s answer. Message fragments are checked in denials only: kubectl prints a
    /// warning as the API server keeps it, cut at 256 bytes.
    fn matches(&self, e: &Expected, renamed: &Renamed) -> bool {
        let refused_by_volguard = !self.admitted && self.output.contains("volguard denied");
        let verdict_ok = self.verdict() == e.verdict && (self.admitted || refused_by_volguard);
        let fragments_ok = e.verdict != "Deny"
            || e.message_contains
                .iter()
                .all(|m| self.output.contains(renamed.text(m).as_str()));
        verdict_ok && fragments_ok && e.rules.iter().all(|r| self.output.contains(&format!("[{r}]")))
    }
}

fn apply(kc: &Path, object: &str) -> Answer {
    Answer::of(&kubectl(kc, &["create", "-f", "-"], Some(object)))
}

/// Sends `object` until it gets `e` (bounded): an earlier object may not have reached volguard's cache.
fn last_until(kc: &Path, renamed: &Renamed, object: &str, reference: &str, e: &Expected, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = apply(kc, object);
        if answer.matches(e, renamed) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: expected {e:?}, got: {}",
            answer.output
        );
        if answer.admitted {
            let (kind, rest) = reference.split_once(' ').expect("Kind ns/name");
            let (ns, name) = rest.split_once('/').expect("ns/name");
            let out = kubectl(
                kc,
                &["-n", ns, "delete", &kind.to_lowercase(), name, "--wait=false"],
                None,
            );
            assert!(out.status.success(), "{:?}", text(&out));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn orders(n: usize) -> Vec<Vec<usize>> {
    if n <= 3 {
        let all: Vec<Vec<usize>> = match n {
            1 => vec![vec![0]],
            2 => vec![vec![0, 1], vec![1, 0]],
            _ => vec![
                vec![0, 1, 2],
                vec![0, 2, 1],
                vec![1, 0, 2],
                vec![1, 2, 0],
                vec![2, 0, 1],
                vec![2, 1, 0],
            ],
        };
        return all;
    }
    (0..n).map(|r| (0..n).map(|i| (i + r) % n).collect()).collect()
}

fn in_every_order(kc: &Path, s: &Scenario, run: &str) {
    for order in orders(s.objects.len()) {
        let renamed = Renamed::fresh(s);
        renamed.create_namespaces(kc, Some(run));
        let (last, first) = order.split_last().expect("objects");
        for i in first {
            let (reference, object) = &s.objects[*i];
            let answer = apply(kc, &renamed.object(object));
            assert!(
                answer.admitted,
                "{} in the order {order:?}: {reference} before the last was refused: {}",
                s.name, answer.output
            );
        }
        let (reference, object) = &s.objects[*last];
        let e = s
            .last
            .iter()
            .find(|e| e.object == *reference)
            .unwrap_or_else(|| panic!("{}: no `last` for {reference}", s.name));
        let what = format!("{} in the order {order:?}: {reference} last", s.name);
        last_until(
            kc,
            &renamed,
            &renamed.object(object),
            &renamed.reference(reference),
            e,
            &what,
        );
    }
}

fn updates(kc: &Path, s: &Scenario, run: &str) {
    if s.updates.is_empty() {
        return;
    }
    let renamed = Renamed::fresh(s);
    // Created before volguard watches these namespaces, as in a cluster that predates it.
    renamed.create_namespaces(kc, None);
    for (reference, object) in &s.objects {
        let answer = apply(kc, &renamed.object(object));
        assert!(
            answer.admitted,
            "{}: creating {reference}: {}",
            s.name, answer.output
        );
    }
    for (_, ns) in &renamed.namespaces {
        label(kc, ns, run);
    }
    // A claim's spec cannot change while it is unbound (and with no nodes none binds here): the API
    // server refuses such an update before any webhook sees it.
    let updatable = |u: &&scenario_common::Update| !u.expect.object.starts_with("PersistentVolumeClaim ");
    for u in s.updates.iter().filter(updatable) {
        let (old, _) = s.split(&u.expect.object);
        let new = renamed.object(&u.apply(&old));
        let what = format!("{}: update {}", s.name, u.name);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let answer = Answer::of(&kubectl(
                kc,
                &["replace", "--dry-run=server", "-f", "-"],
                Some(&new),
            ));
            if answer.matches(&u.expect, &renamed) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: expected {:?}, got: {}",
                u.expect,
                answer.output
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        if scenario_common::scale_review(&u.apply(&old), &old).is_some() {
            let reference = renamed.reference(&u.expect.object);
            let (kind, rest) = reference.split_once(' ').expect("Kind ns/name");
            let (ns, name) = rest.split_once('/').expect("ns/name");
            let replicas = format!("--replicas={}", u.patch["spec"]["replicas"]);
            let target = format!("{}/{name}", kind.to_lowercase());
            let answer = Answer::of(&kubectl(
                kc,
                &["-n", ns, "scale", &target, &replicas, "--dry-run=server"],
                None,
            ));
            let verdict_ok =
                answer.verdict() == u.expect.verdict || (u.expect.verdict == "Warn" && answer.admitted);
            assert!(verdict_ok, "{what} (the /scale subresource): {}", answer.output);
        }
    }
}

/// A `volguard serve` registered, as production registers it, for the namespaces labelled with `run`.
fn registered(kc: &Path, run: &str) -> Served {
    let name = format!("volguard-{run}");
    let served = serve(
        kc,
        name.clone(),
        &["validatingwebhookconfiguration", "mutatingwebhookconfiguration"],
    );
    let ca_bundle = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&served.ca).expect("the dev CA"))
    };
    let configurations = webhook_configurations(&name, served.port, &ca_bundle, run);
    let out = kubectl(kc, &["apply", "-f", "-"], Some(&configurations));
    assert!(out.status.success(), "registering: {:?}", text(&out));
    served
}

#[test]
fn scenarios_through_the_real_api_server() {
    let kubeconfig = cluster_common::cluster();
    let kc = kubeconfig.as_path();
    let run = fresh_name("run");
    let mut served = registered(kc, &run);
    // The registration takes effect asynchronously: wait for volguard to answer in a probe namespace.
    let probe = fresh_name("vg-sc-probe");
    let out = kubectl(kc, &["create", "namespace", &probe], None);
    assert!(out.status.success(), "{:?}", text(&out));
    label(kc, &probe, &run);
    let probe_pod = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"probe\",\"namespace\":\"{probe}\"}},\
         \"spec\":{{\"containers\":[{{\"name\":\"c\",\"image\":\"busybox\"}}],\"volumes\":[{{\"name\":\"d\",\
         \"persistentVolumeClaim\":{{\"claimName\":\"absent\"}}}}]}}}}"
    );
    wait_until(
        "volguard to answer the API server",
        Duration::from_secs(30),
        || {
            let answer = Answer::of(&kubectl(
                kc,
                &["create", "--dry-run=server", "-f", "-"],
                Some(&probe_pod),
            ));
            answer.output.contains("[missing-claim]")
        },
    );

    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios");
    let scenarios: Vec<Scenario> = Scenario::all(&dir).into_iter().filter(|s| s.e2e).collect();
    assert!(scenarios.len() >= 10, "{} e2e scenarios", scenarios.len());
    for s in &scenarios {
        in_every_order(kc, s, &run);
        updates(kc, s, &run);
    }
    served.cleanup.server.kill().ok();
}

/// The deployment controller's own writes are never the ones denied: a ReplicaSet (and its pods) whose
/// controller is an existing Deployment is judged through it, created or scaled; a ReplicaSet claiming an
/// owner that does not exist (wrong uid) is judged on its own.
#[test]
fn controller_writes_are_judged_through_their_controller() {
    let kubeconfig = cluster_common::cluster();
    let kc = kubeconfig.as_path();
    let run = fresh_name("run");
    let mut served = registered(kc, &run);
    let ns = fresh_name("vg-sc-ctl");
    let out = kubectl(kc, &["create", "namespace", &ns], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let claim = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\"metadata\":{{\"name\":\"uploads\",\
         \"namespace\":\"{ns}\"}},\"spec\":{{\"accessModes\":[\"ReadWriteOnce\"],\"resources\":{{\"requests\":\
         {{\"storage\":\"1Gi\"}}}}}}}}"
    );
    let pod_spec = "{\"containers\":[{\"name\":\"web\",\"image\":\"nginx:1.27\",\"volumeMounts\":[{\"name\":\"u\",\
                    \"mountPath\":\"/u\"}]}],\"volumes\":[{\"name\":\"u\",\"persistentVolumeClaim\":{\"claimName\":\
                    \"uploads\"}}]}";
    let deployment = format!(
        "{{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{{\"name\":\"web\",\"namespace\":\"{ns}\"}},\
         \"spec\":{{\"replicas\":3,\"strategy\":{{\"type\":\"Recreate\"}},\"selector\":{{\"matchLabels\":{{\"app\":\
         \"web\"}}}},\"template\":{{\"metadata\":{{\"labels\":{{\"app\":\"web\"}}}},\"spec\":{pod_spec}}}}}}}"
    );
    // A violating Deployment that predates volguard.
    for object in [&claim, &deployment] {
        let answer = apply(kc, object);
        assert!(answer.admitted, "{}", answer.output);
    }
    let out = kubectl(
        kc,
        &[
            "-n",
            &ns,
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.metadata.uid}",
        ],
        None,
    );
    let uid = text(&out).0;
    assert!(!uid.is_empty(), "{:?}", text(&out));
    label(kc, &ns, &run);
    let replica_set = |name: &str, owner_uid: &str| {
        format!(
            "{{\"apiVersion\":\"apps/v1\",\"kind\":\"ReplicaSet\",\"metadata\":{{\"name\":\"{name}\",\"namespace\":\
             \"{ns}\",\"labels\":{{\"app\":\"web\",\"pod-template-hash\":\"{name}\"}},\"ownerReferences\":[{{\
             \"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"web\",\"uid\":\"{owner_uid}\",\
             \"controller\":true,\"blockOwnerDeletion\":true}}]}},\"spec\":{{\"replicas\":3,\"selector\":{{\
             \"matchLabels\":{{\"app\":\"web\",\"pod-template-hash\":\"{name}\"}}}},\"template\":{{\"metadata\":{{\
             \"labels\":{{\"app\":\"web\",\"pod-template-hash\":\"{name}\"}}}},\"spec\":{pod_spec}}}}}}}"
        )
    };
    // Wait for volguard to answer here: the Deployment itself, scaled up, is refused.
    wait_until("volguard to answer", Duration::from_secs(30), || {
        let answer = Answer::of(&kubectl(
            kc,
            &[
                "-n",
                &ns,
                "scale",
                "deployment/web",
                "--replicas=4",
                "--dry-run=server",
            ],
            None,
        ));
        !answer.admitted && answer.output.contains("[shared-rwo-claim]")
    });
    // The deployment controller creates and scales its ReplicaSet: admitted, with no finding of its own.
    let answer = apply(kc, &replica_set("web-6d8f5b7c9d", &uid));
    assert!(
        answer.admitted && !answer.output.contains("Warning"),
        "{}",
        answer.output
    );
    let answer = Answer::of(&kubectl(
        kc,
        &[
            "-n",
            &ns,
            "scale",
            "replicaset/web-6d8f5b7c9d",
            "--replicas=4",
            "--dry-run=server",
        ],
        None,
    ));
    assert!(answer.admitted, "{}", answer.output);
    // A ReplicaSet naming a Deployment that is not the one there (another uid) is judged on its own.
    let answer = apply(
        kc,
        &replica_set("web-forged", "00000000-0000-4000-8000-000000000000"),
    );
    assert!(!answer.admitted, "{}", answer.output);
    assert!(
        answer.output.contains("volguard denied ReplicaSet"),
        "{}",
        answer.output
    );
    served.cleanup.server.kill().ok();
}
