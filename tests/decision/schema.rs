//! The published JSON Schema: current with the model, and saying what users need (every key, every enum
//! value, descriptions, no unknown keys); and every policy we ship or test with passes it.
//!
//! `VOLGUARD_BLESS=1` rewrites a stale `policies/schema.json`; a normal run only fails.

use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use volguard::domain::policy::schema::policy_schema;
use volguard::domain::rules::RuleId;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn published_path() -> PathBuf {
    root().join("policies/schema.json")
}

fn pretty(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap();
    text.push('\n');
    text
}

#[test]
fn published_schema_is_current() {
    let generated = policy_schema();
    let path = published_path();
    let published: Option<Value> = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    if published.as_ref() == Some(&generated) {
        return;
    }
    if std::env::var_os("VOLGUARD_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, pretty(&generated)).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    assert_eq!(
        published,
        Some(generated),
        "{} is stale: run `VOLGUARD_BLESS=1 cargo test --test schema` and commit it",
        path.display()
    );
}

#[test]
fn published_schema_is_pretty_printed_with_a_trailing_newline() {
    let text = std::fs::read_to_string(published_path()).unwrap();
    let value: Value = serde_json::from_str(&text).unwrap();
    assert!(
        text == pretty(&value),
        "reformat policies/schema.json (VOLGUARD_BLESS=1)"
    );
}

fn def<'a>(schema: &'a Value, name: &str) -> &'a Value {
    &schema["$defs"][name]
}

fn consts(schema: &Value, name: &str) -> Vec<String> {
    def(schema, name)["oneOf"]
        .as_array()
        .unwrap_or_else(|| panic!("{name} is not a oneOf"))
        .iter()
        .map(|v| v["const"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn schema_lists_every_enum_value() {
    let s = policy_schema();
    assert_eq!(consts(&s, "Action"), ["Off", "Audit", "Warn", "Deny"]);
    assert_eq!(consts(&s, "FailureMode"), ["Fail", "Ignore"]);
    assert_eq!(
        consts(&s, "SelectorOperator"),
        ["In", "NotIn", "Exists", "DoesNotExist"]
    );
    assert_eq!(
        consts(&s, "AccessModeName"),
        [
            "ReadWriteOnce",
            "ReadOnlyMany",
            "ReadWriteMany",
            "ReadWriteOncePod"
        ]
    );
    assert_eq!(
        consts(&s, "Kind"),
        [
            "Deployment",
            "StatefulSet",
            "DaemonSet",
            "ReplicaSet",
            "ReplicationController",
            "Job",
            "CronJob",
            "Pod",
            "HorizontalPodAutoscaler",
            "Scale",
            "PersistentVolumeClaim"
        ]
    );
    assert_eq!(consts(&s, "ApiVersion"), ["volguard.io/v1alpha1"]);
    assert_eq!(consts(&s, "PolicyKind"), ["VolumePolicy"]);
    // Each value says what it does.
    for name in [
        "Action",
        "FailureMode",
        "SelectorOperator",
        "AccessModeName",
        "Kind",
    ] {
        for v in def(&s, name)["oneOf"].as_array().unwrap() {
            assert!(
                v["description"].as_str().is_some_and(|d| !d.is_empty()),
                "{name}: {v}"
            );
        }
    }
}

#[test]
fn schema_keys_rules_by_rule_id() {
    let s = policy_schema();
    let mut keys: Vec<&str> = def(&s, "RulesSpec")["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    // lookup-failed takes its action from failureMode, and invalid-skip always denies: neither has a
    // rule setting.
    let mut ids: Vec<&str> = RuleId::ALL
        .iter()
        .filter(|r| !matches!(r, RuleId::LookupFailed | RuleId::InvalidSkip))
        .map(|r| r.as_str())
        .collect();
    ids.sort_unstable();
    assert_eq!(keys, ids);
    assert_eq!(
        s["$defs"]["PolicySpec"]["properties"]["rules"]["$ref"],
        "#/$defs/RulesSpec"
    );
}

/// Every object with named properties, the root included.
fn objects(s: &Value) -> Vec<(String, &Value)> {
    let mut out = vec![("(root)".to_owned(), s)];
    for (name, d) in s["$defs"].as_object().unwrap() {
        if d.get("properties").is_some() {
            out.push((name.clone(), d));
        }
    }
    out
}

#[test]
fn schema_refuses_unknown_keys_like_the_loader() {
    let s = policy_schema();
    for (name, d) in objects(&s) {
        assert_eq!(d["additionalProperties"], json!(false), "{name}");
    }
    // Free-form maps stay maps of strings.
    let labels = &def(&s, "LabelSelector")["properties"]["matchLabels"];
    assert_eq!(labels["additionalProperties"], json!({"type": "string"}));
}

#[test]
fn schema_describes_every_type_and_key() {
    let s = policy_schema();
    assert_eq!(s["title"], "VolumePolicy");
    assert_eq!(s["$schema"], "https://json-schema.org/draft/2020-12/schema");
    for (name, d) in s["$defs"].as_object().unwrap() {
        assert!(d["description"].as_str().is_some_and(|t| !t.is_empty()), "{name}");
    }
    for (name, d) in objects(&s) {
        for (key, p) in d["properties"].as_object().unwrap() {
            assert!(
                p["description"].as_str().is_some_and(|t| !t.is_empty()),
                "{name}.{key}"
            );
        }
    }
}

#[test]
fn schema_states_requirements_defaults_and_limits() {
    let s = policy_schema();
    assert_eq!(s["required"], json!(["apiVersion", "kind", "metadata", "spec"]));
    assert_eq!(def(&s, "PolicyMetadata")["required"], json!(["name"]));
    assert_eq!(def(&s, "PolicyMetadata")["properties"]["name"]["minLength"], 1);
    assert_eq!(
        def(&s, "LabelSelectorRequirement")["required"],
        json!(["key", "operator"])
    );
    let spec = &def(&s, "PolicySpec")["properties"];
    assert_eq!(spec["defaultAction"]["default"], "Deny");
    assert_eq!(spec["failureMode"]["default"], "Fail");
    let namespaces = &def(&s, "Selection")["properties"]["namespaces"]["items"];
    assert_eq!(
        namespaces,
        &json!({"type": "string", "minLength": 1, "maxLength": 63, "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"})
    );
    let modes = &def(&s, "TemplateModesSetting")["properties"]["allowedAccessModes"];
    assert_eq!(modes["minItems"], 1);
}

// A small validator for the keywords the generated schema uses, so the policies we ship and test with are
// checked against it without a JSON Schema crate. `pattern` is not evaluated (no regex engine here); the
// loader checks namespaces itself.

fn resolve<'a>(root: &'a Value, reference: &str) -> &'a Value {
    let name = reference
        .strip_prefix("#/$defs/")
        .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
    &root["$defs"][name]
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "null" => v.is_null(),
        other => panic!("unsupported type {other}"),
    }
}

fn is_valid(root: &Value, schema: &Value, v: &Value) -> bool {
    let mut errors = Vec::new();
    validate(root, schema, v, "", &mut errors);
    errors.is_empty()
}

fn validate(root: &Value, schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if schema == &json!(false) {
        return errors.push(format!("{at}: not allowed"));
    }
    let Some(s) = schema.as_object() else { return };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        validate(root, resolve(root, r), v, at, errors);
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errors.push(format!("{at}: {v} is not {c}"));
    }
    match s.get("type") {
        Some(Value::String(t)) if !type_matches(t, v) => errors.push(format!("{at}: {v} is not a {t}")),
        Some(Value::Array(ts)) if !ts.iter().any(|t| type_matches(t.as_str().unwrap(), v)) => {
            errors.push(format!("{at}: {v} is none of {ts:?}"))
        }
        _ => {}
    }
    if let Some(alts) = s.get("oneOf").and_then(Value::as_array) {
        let n = alts.iter().filter(|a| is_valid(root, a, v)).count();
        if n != 1 {
            errors.push(format!("{at}: {v} matches {n} of oneOf"));
        }
    }
    if let Some(alts) = s.get("anyOf").and_then(Value::as_array)
        && !alts.iter().any(|a| is_valid(root, a, v))
    {
        errors.push(format!("{at}: {v} matches nothing of anyOf"));
    }
    if let Value::Object(map) = v {
        let props = s.get("properties").and_then(Value::as_object);
        for req in s.get("required").and_then(Value::as_array).into_iter().flatten() {
            if !map.contains_key(req.as_str().unwrap()) {
                errors.push(format!("{at}: missing {req}"));
            }
        }
        for (k, item) in map {
            let here = format!("{at}.{k}");
            match (props.and_then(|p| p.get(k)), s.get("additionalProperties")) {
                (Some(p), _) => validate(root, p, item, &here, errors),
                (None, Some(extra)) => validate(root, extra, item, &here, errors),
                (None, None) => {}
            }
        }
    }
    if let Value::Array(items) = v {
        if let Some(min) = s.get("minItems").and_then(Value::as_u64)
            && (items.len() as u64) < min
        {
            errors.push(format!("{at}: fewer than {min} items"));
        }
        if let Some(item_schema) = s.get("items") {
            for (i, item) in items.iter().enumerate() {
                validate(root, item_schema, item, &format!("{at}[{i}]"), errors);
            }
        }
    }
    if let Value::String(text) = v {
        let len = text.chars().count() as u64;
        if s.get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len < m)
        {
            errors.push(format!("{at}: {v} is too short"));
        }
        if s.get("maxLength")
            .and_then(Value::as_u64)
            .is_some_and(|m| len > m)
        {
            errors.push(format!("{at}: {v} is too long"));
        }
    }
}

/// A policy file as editors see it: YAML 1.2, where `Off` is a string (YAML 1.1 would read `action: Off`
/// as the boolean false; the loader reads it into the `Action` enum either way).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let yaml_1_2 = serde_saphyr::options! { strict_booleans: true };
    serde_saphyr::from_multiple_with_options(&text, yaml_1_2)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn errors_of(schema: &Value, doc: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    validate(schema, schema, doc, "", &mut errors);
    errors
}

/// The policies this repository ships and tests with.
fn policy_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("policies/default.yaml")];
    for dir in ["tests/fixtures/cases", "tests/fixtures/policies/split"] {
        for entry in std::fs::read_dir(root().join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let candidate = if path.is_dir() {
                path.join("policy.yaml")
            } else {
                path
            };
            let yaml = matches!(
                candidate.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml")
            );
            if yaml && candidate.is_file() {
                files.push(candidate);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_and_fixture_policy_passes_the_schema() {
    let schema = policy_schema();
    let files = policy_files();
    assert!(files.len() >= 8, "{files:?}");
    for file in files {
        for doc in documents(&file) {
            let errors = errors_of(&schema, &doc);
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
}

/// An edit that breaks (or keeps valid) a policy document.
type Patch = fn(&mut Value);

#[test]
fn the_schema_refuses_what_the_loader_refuses() {
    let schema = policy_schema();
    let base = json!({"apiVersion": "volguard.io/v1alpha1", "kind": "VolumePolicy",
        "metadata": {"name": "p"}, "spec": {}});
    assert_eq!(errors_of(&schema, &base), Vec::<String>::new());
    let broken = |patch: Patch| {
        let mut doc = base.clone();
        patch(&mut doc);
        errors_of(&schema, &doc)
    };
    let refused: [(&str, Patch); 9] = [
        ("unknown top-level key", |d| d["status"] = json!({})),
        ("unknown rule id", |d| {
            d["spec"]["rules"] = json!({"shared-rwx-claim": {}})
        }),
        ("unknown action", |d| d["spec"]["defaultAction"] = json!("Block")),
        ("unknown kind", |d| {
            d["spec"]["match"] = json!({"kinds": ["ConfigMap"]})
        }),
        (
            "unknown operator",
            |d| {
                d["spec"]["match"] =
                    json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}})
            },
        ),
        (
            "empty allowedAccessModes",
            |d| d["spec"]["rules"] = json!({"statefulset-claim-template-modes": {"allowedAccessModes": []}}),
        ),
        ("empty name", |d| d["metadata"]["name"] = json!("")),
        ("wrong apiVersion", |d| d["apiVersion"] = json!("volguard.io/v1")),
        ("missing spec", |d| {
            d.as_object_mut().unwrap().remove("spec");
        }),
    ];
    for (what, patch) in refused {
        assert!(
            !broken(patch).is_empty(),
            "the schema accepts a policy with {what}"
        );
    }
    // What the loader accepts, the schema accepts: a rule listed with no value, and an explicit null action.
    let listed = broken(|d| {
        d["spec"]["rules"] = json!({"stateless-deployment": null, "missing-claim": {"action": null}})
    });
    assert_eq!(listed, Vec::<String>::new());
}
