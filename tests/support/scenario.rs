//! Reading the scenarios of `tests/fixtures/scenarios` and sending their objects to volguard as the API
//! server would: AdmissionReviews with the metadata the server adds (uid, creationTimestamp, generation,
//! managedFields), CREATE and UPDATE, and the `/scale` subresource.
#![allow(dead_code)] // Each test binary uses part of it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_json::{Value, json};
use volguard::domain::workload::{Decoded, KINDS};

/// The bullets of the claim-footprint issue; every one has a denied and an admitted scenario.
pub const BULLETS: [&str; 9] = [
    "all users summed",
    "order and time",
    "ratchet by hazard",
    "co-location",
    "autoscaling",
    "generated claims",
    "inputs kubectl accepts",
    "offline sees what the webhook sees",
    "kinds in one place",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct File {
    why: String,
    covers: Vec<String>,
    manifests: String,
    last: Vec<Expected>,
    #[serde(default)]
    updates: Vec<Update>,
    #[serde(default)]
    e2e: bool,
}

/// What one object gets.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Expected {
    /// `Deployment shop/web`.
    pub object: String,
    /// `Allow`, `Warn` or `Deny`.
    pub verdict: String,
    /// The rule ids of its findings, in report order.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Fragments the findings' messages (the denial, or the warnings) hold.
    #[serde(default)]
    pub message_contains: Vec<String>,
}

/// An UPDATE of one of the scenario's objects.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Update {
    /// What the update does.
    pub name: String,
    /// A JSON merge patch (RFC 7386) turning the object as in `manifests` into the object sent.
    pub patch: Value,
    /// What the update gets.
    #[serde(flatten)]
    pub expect: Expected,
}

impl Update {
    /// The object sent.
    pub fn apply(&self, old: &Value) -> Value {
        let mut new = old.clone();
        json_patch::merge(&mut new, &self.patch);
        new
    }
}

/// One scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file's name without `.yaml`.
    pub name: String,
    /// Why these are the right verdicts.
    pub why: String,
    /// The issue bullets it covers.
    pub covers: Vec<String>,
    /// Each manifest document's text, as written.
    pub documents: Vec<String>,
    /// Each document's object as kubectl sends it, with its reference (`Deployment shop/web`).
    pub objects: Vec<(String, Value)>,
    /// What each object gets when created last.
    pub last: Vec<Expected>,
    /// UPDATEs.
    pub updates: Vec<Update>,
    /// Whether the real API server runs it too.
    pub e2e: bool,
}

impl Scenario {
    /// Reads one scenario file.
    pub fn load(path: &Path) -> Self {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file: File = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let documents: Vec<String> = split(&file.manifests);
        let objects = documents
            .iter()
            .map(|d| {
                let docs =
                    volguard::adapters::manifest::parse_str(d, "scenario").expect("the manifests parse");
                let doc = docs.first().expect("one document");
                let mut value = doc.value().expect("the document reads");
                let reference = match &doc.decoded {
                    Ok(Decoded::Resource(r)) => {
                        let mut r = r.clone();
                        r.default_namespace("default");
                        r.object_ref().to_string()
                    }
                    other => panic!("{}: not an object volguard reads: {other:?}", path.display()),
                };
                if value["metadata"]["namespace"].as_str().is_none_or(str::is_empty) {
                    value["metadata"]["namespace"] = "default".into();
                }
                (reference, value)
            })
            .collect();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        for c in &file.covers {
            assert!(BULLETS.contains(&c.as_str()), "{name}: unknown bullet {c:?}");
        }
        assert!(!file.why.trim().is_empty(), "{name}: say why");
        Self {
            name,
            why: file.why,
            covers: file.covers,
            documents,
            objects,
            last: file.last,
            updates: file.updates,
            e2e: file.e2e,
        }
    }

    /// Every scenario in a directory, by name.
    pub fn all(dir: &Path) -> Vec<Self> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .collect();
        paths.sort();
        paths.iter().map(|p| Self::load(p)).collect()
    }

    /// The object `reference` (as kubectl sends it) and every other document's text.
    pub fn split(&self, reference: &str) -> (Value, Vec<String>) {
        let i = self
            .objects
            .iter()
            .position(|(r, _)| r == reference)
            .unwrap_or_else(|| panic!("{}: no object {reference}", self.name));
        let others = self
            .documents
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, d)| d.clone())
            .collect();
        (self.objects[i].1.clone(), others)
    }
}

/// Cuts a YAML stream at its `---` lines (each scenario document is one object).
fn split(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else {
            let last = docs.last_mut().expect("one document at least");
            last.push_str(line);
            last.push('\n');
        }
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// The API server's view of an object: what it adds before calling webhooks.
fn as_stored(object: &Value, uid: &str) -> Value {
    let mut o = object.clone();
    let meta = &mut o["metadata"];
    meta["uid"] = uid.into();
    meta["creationTimestamp"] = "2026-12-04T12:00:00Z".into();
    meta["generation"] = 1.into();
    meta["managedFields"] = json!([{
        "manager": "kubectl-client-side-apply",
        "operation": "Update",
        "apiVersion": object["apiVersion"],
        "time": "2026-12-04T12:00:00Z",
        "fieldsType": "FieldsV1",
        "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}}, "f:spec": {}}
    }]);
    o
}

/// `group`, `version`, `kind`, `resource` of an object, from the table of kinds.
fn gvk(object: &Value) -> (String, String, String, String) {
    let api_version = object["apiVersion"].as_str().expect("apiVersion");
    let kind = object["kind"].as_str().expect("kind");
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.to_owned()),
    };
    let info = KINDS
        .iter()
        .find(|k| k.kind.as_str() == kind)
        .unwrap_or_else(|| panic!("{kind} is not in the table of kinds"));
    (
        group,
        version,
        kind.to_owned(),
        info.resource.expect("a resource").to_owned(),
    )
}

/// An AdmissionReview CREATE (no `old`) or UPDATE of `object`, as the API server sends it.
pub fn review_body(object: &Value, old: Option<&Value>) -> String {
    let (group, version, kind, resource) = gvk(object);
    let name = object["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = object["metadata"]["namespace"].as_str().unwrap_or("default");
    let uid = format!("{}-{}-{}", kind.to_lowercase(), namespace, name);
    let (operation, options) = match old {
        None => ("CREATE", "CreateOptions"),
        Some(_) => ("UPDATE", "UpdateOptions"),
    };
    let gvk = json!({"group": group, "version": version, "kind": kind});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("3f7c1e2a-{:08x}-4d6e-9b1a-5c2d8e4f6a7b", name.len() * 7919 + kind.len()),
            "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": name, "namespace": namespace, "operation": operation,
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": as_stored(object, &uid),
            "oldObject": old.map(|o| as_stored(o, &uid)),
            "dryRun": false,
            "options": {"kind": options, "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply"}
        }
    });
    serde_json::to_string(&review).expect("JSON")
}

/// The `/scale` UPDATE that makes the same change, when `new` differs from `old` in replicas only.
pub fn scale_review(new: &Value, old: &Value) -> Option<String> {
    let (group, version, kind, resource) = gvk(new);
    let info = KINDS.iter().find(|k| k.kind.as_str() == kind)?;
    if !info.scale {
        return None;
    }
    let mut same = new.clone();
    same["spec"]["replicas"] = old["spec"]["replicas"].clone();
    if same != *old || new["spec"]["replicas"] == old["spec"]["replicas"] {
        return None;
    }
    let name = new["metadata"]["name"].as_str()?;
    let namespace = new["metadata"]["namespace"].as_str().unwrap_or("default");
    let scale = |replicas: &Value| {
        json!({"apiVersion": "autoscaling/v1", "kind": "Scale",
               "metadata": {"name": name, "namespace": namespace, "uid": format!("{kind}-{name}")},
               "spec": {"replicas": replicas.as_i64().unwrap_or(1)}, "status": {"replicas": 0}})
    };
    let gvk_scale = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
    let gvr = json!({"group": group, "version": version, "resource": resource});
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "5b2e9c41-7d3a-4f60-8e15-2a9c7b3d1f08",
            "kind": gvk_scale, "resource": gvr, "subResource": "scale",
            "requestKind": gvk_scale, "requestResource": gvr, "requestSubResource": "scale",
            "name": name, "namespace": namespace, "operation": "UPDATE",
            "userInfo": {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]},
            "object": scale(&new["spec"]["replicas"]),
            "oldObject": scale(&old["spec"]["replicas"]),
            "dryRun": false,
            "options": {"kind": "UpdateOptions", "apiVersion": "meta.k8s.io/v1"}
        }
    });
    Some(serde_json::to_string(&review).expect("JSON"))
}

/// `volguard review REVIEW -f CLUSTER`: the response the server would send.
pub fn review(review: &Path, cluster: &Path) -> Value {
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .arg("review")
        .arg(review)
        .arg("-f")
        .arg(cluster)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .output()
        .expect("volguard review runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "volguard review failed: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: Value = serde_json::from_str(&stdout).expect("the answer is JSON");
    answer["response"].clone()
}

/// The rule ids in a response: the denial's lines, the warnings, the audit annotations.
pub fn rules_in(response: &Value) -> Vec<String> {
    let mut rules = Vec::new();
    let message = response["status"]["message"].as_str().unwrap_or_default();
    let warnings = response["warnings"].as_array().cloned().unwrap_or_default();
    let lines = message
        .lines()
        .map(str::to_owned)
        .chain(warnings.iter().filter_map(|w| w.as_str().map(str::to_owned)));
    for line in lines {
        if let Some(rest) = line.strip_prefix('[')
            && let Some((rule, _)) = rest.split_once(']')
        {
            rules.push(rule.to_owned());
        }
    }
    if let Some(annotations) = response["auditAnnotations"].as_object() {
        rules.extend(annotations.keys().cloned());
    }
    rules.sort();
    rules
}

impl Expected {
    /// The response's verdict is this one's.
    pub fn assert_verdict(&self, response: &Value, what: &str) {
        let allowed = response["allowed"].as_bool().expect("allowed");
        let warned = response["warnings"].as_array().is_some_and(|w| !w.is_empty());
        let verdict = match (allowed, warned) {
            (false, _) => "Deny",
            (true, true) => "Warn",
            (true, false) => "Allow",
        };
        assert_eq!(verdict, self.verdict, "{what}: {response:#}");
    }

    /// The response has this verdict, these rules and these message fragments.
    pub fn assert_response(&self, response: &Value, what: &str) {
        self.assert_verdict(response, what);
        let mut want = self.rules.clone();
        want.sort();
        assert_eq!(rules_in(response), want, "{what}: {response:#}");
        let text = format!(
            "{}\n{}",
            response["status"]["message"].as_str().unwrap_or_default(),
            response["warnings"]
                .as_array()
                .map(|w| w.iter().filter_map(Value::as_str).collect::<Vec<_>>().join("\n"))
                .unwrap_or_default()
        );
        for fragment in &self.message_contains {
            assert!(
                text.contains(fragment.as_str()),
                "{what}: {fragment:?} not in {text}"
            );
        }
    }
}
