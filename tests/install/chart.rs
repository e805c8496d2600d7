//! charts/volguard agrees with `volguard manifests`, checked without Helm (not installable here): the
//! blocks that matter (webhook rules and namespace selector, RBAC rules, probes, security context) are
//! `define`s in templates/_helpers.tpl kept free of templating except a few expressions whose default
//! rendering is known, so they are rendered here by substitution, parsed, and compared with the typed
//! objects `manifests` prints. tests/e2e/chart_render.rs renders the chart with Helm (`--profile e2e`).

use crate::install_common;

use std::path::PathBuf;

use install_common::{Decoded, decode, manifests, root};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const NAMESPACE: &str = "vg-chart";

fn chart(path: &str) -> String {
    let path: PathBuf = root().join("charts/volguard").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What the compared blocks may template, and how the defaults render it for [`NAMESPACE`]: anything else
/// fails the comparison (tests/e2e/chart_render.rs renders the other values with Helm).
const DEFAULT_RENDERINGS: [(&str, &str); 2] = [
    ("{{ .Release.Namespace }}", NAMESPACE),
    (
        "{{ include \"volguard.exemptNamespaces\" . }}",
        "[\"kube-system\", \"vg-chart\"]",
    ),
];

/// `if` blocks of the compared blocks whose condition is false by default, and so are left out.
const OFF_BY_DEFAULT: [&str; 1] = ["{{- if .Values.webhook.labelExemption }}"];

/// The body of `{{- define "NAME" -}} ... {{- end }}` in _helpers.tpl, rendered with the chart's defaults.
fn block(name: &str) -> Value {
    let helpers = chart("templates/_helpers.tpl");
    let open = format!("{{{{- define \"{name}\" -}}}}\n");
    let start = helpers
        .find(&open)
        .unwrap_or_else(|| panic!("_helpers.tpl defines {name}"))
        + open.len();
    // The define's own end: the first `end` that closes no `if` opened inside it.
    let mut depth = 0;
    let mut end = None;
    let mut at = start;
    for line in helpers[start..].split_inclusive('\n') {
        let trimmed = line.trim();
        if trimmed.starts_with("{{- if ") || trimmed.starts_with("{{- range ") {
            depth += 1;
        } else if trimmed == "{{- end }}" {
            if depth == 0 {
                end = Some(at);
                break;
            }
            depth -= 1;
        }
        at += line.len();
    }
    let mut body = helpers[start..end.expect("the define ends")].to_owned();
    for condition in OFF_BY_DEFAULT {
        while let Some(from) = body.find(condition) {
            let to = from + body[from..].find("{{- end }}").expect("the if ends") + "{{- end }}".len();
            body.replace_range(from..to, "");
        }
    }
    for (template, rendered) in DEFAULT_RENDERINGS {
        body = body.replace(template, rendered);
    }
    assert!(
        !body.contains("{{"),
        "{name} must stay free of other templating to be compared:\n{body}"
    );
    serde_saphyr::from_str(&body).unwrap_or_else(|e| panic!("{name} is not YAML: {e}\n{body}"))
}

fn installed() -> Decoded {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.crt");
    std::fs::write(
        &ca,
        volguard::adapters::certs::Ca::generate("chart test CA", 1)
            .unwrap()
            .pem,
    )
    .unwrap();
    decode(&manifests(&[
        "--namespace",
        NAMESPACE,
        "--ca-bundle",
        ca.to_str().unwrap(),
    ]))
}

fn value<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap()
}

#[test]
fn webhook_rules_and_selectors_match_the_manifests() {
    let d = installed();
    let validate = &d.validating.webhooks.as_ref().unwrap()[0];
    let mutate = &d.mutating.webhooks.as_ref().unwrap()[0];
    assert_eq!(block("volguard.webhookRules"), value(&validate.rules));
    assert_eq!(block("volguard.webhookRules"), value(&mutate.rules));
    assert_eq!(
        block("volguard.namespaceSelector"),
        value(&validate.namespace_selector)
    );
    assert_eq!(
        block("volguard.namespaceSelector"),
        value(&mutate.namespace_selector)
    );

    // The fixed fields of each webhook, as the template spells them.
    let template = chart("templates/_webhooks.tpl");
    for (line, count) in [
        ("admissionReviewVersions: [\"v1\"]", 3),
        ("sideEffects: None", 3),
        ("matchPolicy: Equivalent", 3),
        ("failurePolicy: {{ $root.Values.webhook.failurePolicy }}", 2),
        ("timeoutSeconds: {{ $root.Values.webhook.timeoutSeconds }}", 3),
        ("{{- include \"volguard.webhookRules\" $root | nindent 6 }}", 2),
        (
            "{{- include \"volguard.namespaceSelector\" $root | nindent 6 }}",
            3,
        ),
    ] {
        assert_eq!(
            template.matches(line).count(),
            count,
            "the validating, pods and mutating webhooks have {line:?}"
        );
    }
    assert_eq!(template.matches("reinvocationPolicy: IfNeeded").count(), 1);
    assert!(template.contains("name: validate.volguard.io") && template.contains("name: mutate.volguard.io"));
    assert!(template.contains("path: /validate") && template.contains("path: /mutate"));
    assert!(
        template.contains("cert-manager.io/inject-ca-from: {{ $root.Release.Namespace }}/{{ $fullname }}")
    );
    let secret = chart("templates/webhooks.yaml");
    assert!(secret.contains("genCA") && secret.contains("genSignedCert"));
    for (policy, timeout, versions, side_effects, match_policy) in [
        (
            &validate.failure_policy,
            validate.timeout_seconds,
            &validate.admission_review_versions,
            &validate.side_effects,
            &validate.match_policy,
        ),
        (
            &mutate.failure_policy,
            mutate.timeout_seconds,
            &mutate.admission_review_versions,
            &mutate.side_effects,
            &mutate.match_policy,
        ),
    ] {
        assert_eq!(value(policy), values()["webhook"]["failurePolicy"]);
        assert_eq!(json!(timeout), values()["webhook"]["timeoutSeconds"]);
        assert_eq!(value(versions), json!(["v1"]));
        assert_eq!(side_effects, "None");
        assert_eq!(match_policy.as_deref(), Some("Equivalent"));
    }
    assert_eq!(mutate.reinvocation_policy.as_deref(), Some("IfNeeded"));
}

#[test]
fn the_pods_webhook_matches_the_manifests() {
    let d = installed();
    let webhooks = d.validating.webhooks.as_ref().unwrap();
    let pods = webhooks
        .iter()
        .find(|w| w.name == "pods.validate.volguard.io")
        .expect("a pods webhook");
    assert_eq!(block("volguard.podRules"), value(&pods.rules));
    assert_eq!(
        value(&pods.failure_policy),
        values()["webhook"]["pods"]["failurePolicy"]
    );
    let condition = &pods.match_conditions.as_ref().unwrap()[0];
    let helpers = chart("templates/_helpers.tpl");
    assert!(
        helpers.contains(&format!(
            "{{{{- define \"volguard.barePodCondition\" -}}}}\n{}\n{{{{- end }}}}",
            condition.expression
        )),
        "the chart's condition is the manifests' one: {}",
        condition.expression
    );
    let template = chart("templates/_webhooks.tpl");
    assert!(template.contains("semverCompare \">=1.28-0\" $root.Capabilities.KubeVersion.Version"));
    assert!(template.contains("failurePolicy: {{ $root.Values.webhook.pods.failurePolicy }}"));
}

#[test]
fn rbac_verbs_match_the_manifests() {
    let d = installed();
    assert_eq!(block("volguard.clusterRoleRules"), value(&d.cluster_role.rules));
    assert!(
        chart("templates/rbac.yaml").contains("{{- include \"volguard.clusterRoleRules\" . | nindent 2 }}")
    );
}

#[test]
fn probes_and_security_context_match_the_manifests() {
    let d = installed();
    let c = d.container();
    assert_eq!(
        block("volguard.probes"),
        json!({"readinessProbe": value(&c.readiness_probe), "livenessProbe": value(&c.liveness_probe)})
    );
    assert_eq!(
        block("volguard.containerSecurityContext"),
        value(&c.security_context)
    );
    let deployment = chart("templates/deployment.yaml");
    assert!(deployment.contains("{{- include \"volguard.probes\" . | nindent 10 }}"));
    assert!(deployment.contains("{{- include \"volguard.containerSecurityContext\" . | nindent 12 }}"));
    // The same server flags and mounts (the log flags and timeout are templated from values).
    for arg in c
        .args
        .as_ref()
        .unwrap()
        .iter()
        .filter(|a| !a.starts_with("--log-"))
    {
        assert!(
            deployment.contains(&format!("- {arg}\n")),
            "the chart passes {arg}"
        );
    }
    for mount in c.volume_mounts.as_ref().unwrap() {
        assert!(deployment.contains(&format!("mountPath: {}\n", mount.mount_path)));
        assert!(mount.sub_path.is_none(), "a subPath mount never sees updates");
    }
    let pod = d
        .deployment
        .spec
        .as_ref()
        .unwrap()
        .template
        .spec
        .as_ref()
        .unwrap();
    let pod_security = value(&pod.security_context);
    assert_eq!(
        pod_security,
        json!({"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}})
    );
    assert!(
        deployment.contains("runAsNonRoot: true\n        seccompProfile:\n          type: RuntimeDefault\n")
    );
    assert_eq!(value(&c.resources), values()["resources"]);
    assert_eq!(
        json!(d.deployment.spec.as_ref().unwrap().replicas),
        values()["replicaCount"]
    );
}

fn values() -> Value {
    serde_saphyr::from_str(&chart("values.yaml")).expect("values.yaml is YAML")
}

#[test]
fn the_chart_ships_the_builtin_policy_and_the_crate_version() {
    assert_eq!(
        chart("files/default.yaml"),
        std::fs::read_to_string(root().join("policies/default.yaml")).unwrap(),
        "charts/volguard/files/default.yaml is a copy of policies/default.yaml"
    );
    let meta: Value = serde_saphyr::from_str(&chart("Chart.yaml")).unwrap();
    assert_eq!(meta["appVersion"], env!("CARGO_PKG_VERSION"));
    let image = format!(
        "{}:{}",
        values()["image"]["repository"].as_str().unwrap(),
        meta["appVersion"].as_str().unwrap()
    );
    assert_eq!(image, volguard::adapters::install::DEFAULT_IMAGE);
}

/// A small JSON Schema checker for what values.schema.json uses (type, enum, properties,
/// additionalProperties, required, items, minimum, maximum, minLength); Helm enforces the full schema.
fn check(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "boolean" => v.is_boolean(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            _ => false,
        });
        if !ok {
            errors.push(format!("{at}: {v} is not {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        errors.push(format!("{at}: {v} not in {allowed:?}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_i64), v.as_i64())
        && n < min
    {
        errors.push(format!("{at}: {n} < {min}"));
    }
    if let (Some(max), Some(n)) = (schema.get("maximum").and_then(Value::as_i64), v.as_i64())
        && n > max
    {
        errors.push(format!("{at}: {n} > {max}"));
    }
    if let (Some(min), Some(s)) = (schema.get("minLength").and_then(Value::as_u64), v.as_str())
        && (s.len() as u64) < min
    {
        errors.push(format!("{at}: shorter than {min}"));
    }
    if let Some(map) = v.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !map.contains_key(key.as_str().unwrap_or_default()) {
                errors.push(format!("{at}: missing {key}"));
            }
        }
        for (key, child) in map {
            let path = format!("{at}.{key}");
            match schema.get("properties").and_then(|p| p.get(key)) {
                Some(s) => check(s, child, &path, errors),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errors.push(format!("{path}: not in the schema")),
                    Some(s @ Value::Object(_)) => check(s, child, &path, errors),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(list)) = (schema.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(items, item, &format!("{at}[{i}]"), errors);
        }
    }
}

#[test]
fn values_yaml_satisfies_values_schema_json() {
    let schema: Value = serde_json::from_str(&chart("values.schema.json")).expect("the schema is JSON");
    let mut errors = Vec::new();
    check(&schema, &values(), "values", &mut errors);
    assert!(errors.is_empty(), "{errors:#?}");
    // And the checker does catch a mistake.
    let mut wrong = values();
    wrong["webhook"]["failurePolicy"] = json!("Sometimes");
    wrong["replicas"] = json!(3);
    let mut errors = Vec::new();
    check(&schema, &wrong, "values", &mut errors);
    assert_eq!(errors.len(), 2, "{errors:#?}");
}

#[test]
fn every_values_key_is_documented() {
    // Each key line in values.yaml is preceded by a comment line or sits in a documented block.
    let text = chart("values.yaml");
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let is_key = !trimmed.starts_with('#') && !trimmed.starts_with('-') && trimmed.contains(':');
        let opens_block = trimmed.ends_with(':');
        if is_key && !opens_block {
            let above = lines[..i]
                .iter()
                .rev()
                .find(|l| !l.trim().is_empty())
                .copied()
                .unwrap_or("");
            let documented = above.trim_start().starts_with('#') || line.contains(" # ");
            let in_resources =
                lines[..i].iter().rev().any(|l| *l == "resources:") && line.starts_with("    ");
            assert!(
                documented || in_resources,
                "values.yaml line {}: {line:?} has no comment",
                i + 1
            );
        }
    }
}
