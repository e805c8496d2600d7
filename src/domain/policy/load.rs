//! Loading policies strictly: parse, then validate, into a `Policy` that can only be valid.
//!
//! Errors carry the file, line and column and say what was expected, so a bad policy in a ConfigMap is
//! fixed from the log line alone.

use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use serde_saphyr::{Location, Spanned};

use super::Policy;
use k8s_openapi::api::apps::v1::StatefulSetPersistentVolumeClaimRetentionPolicy;

use super::model::{
    AccessModeName, Action, LabelSelector, MutateSpec, PolicyDocument, RuleSetting, Selection,
    SelectorOperator,
};
use super::mutation::MutationPolicy;
use super::select::Criteria;
use crate::domain::rules::templates::ClaimTemplate;
use crate::domain::rules::{RuleId, RuleParams};
use crate::domain::storage::{Modes, ProvisionerEntry};

/// The built-in policy, compiled in.
pub const BUILTIN_POLICY: &str = include_str!("../../../policies/default.yaml");
/// How the built-in policy is named in messages.
pub(crate) const BUILTIN_SOURCE: &str = "policies/default.yaml (built in)";

/// Why policies could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The file or directory could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// The YAML does not parse, or does not fit the policy format.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The document parses but a value is not valid.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What was wrong and what was expected.
        message: String,
    },
    /// Nothing to load.
    #[error("{path}: no VolumePolicy documents found")]
    Empty {
        /// The file or directory.
        path: String,
    },
    /// Two policies with one name.
    #[error("{second}: policy name {name:?} is already used by {first}")]
    DuplicateName {
        /// The name.
        name: String,
        /// Where it was first defined.
        first: String,
        /// Where it was defined again.
        second: String,
    },
}

/// Loads every policy in a file, or in every `.yaml`/`.yml` file of a directory (sorted by name; hidden
/// entries such as a ConfigMap mount's `..data` are skipped, the symlinked files are read).
pub fn load_path(path: &Path) -> Result<super::PolicySet, LoadError> {
    let io = |p: &Path, e: std::io::Error| LoadError::Io {
        path: p.display().to_string(),
        message: e.to_string(),
    };
    let meta = std::fs::metadata(path).map_err(|e| io(path, e))?;
    let files: Vec<PathBuf> = if meta.is_dir() {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(path).map_err(|e| io(path, e))? {
            let p = entry.map_err(|e| io(path, e))?.path();
            let hidden = p
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            let yaml = matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
            if !hidden && yaml && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
        files
    } else {
        vec![path.to_path_buf()]
    };
    let mut policies: Vec<Policy> = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|e| io(&file, e))?;
        for p in load_str(&text, &file.display().to_string())? {
            if let Some(first) = policies.iter().find(|q| q.name == p.name) {
                return Err(LoadError::DuplicateName {
                    name: p.name.clone(),
                    first: first.source.clone(),
                    second: p.source.clone(),
                });
            }
            policies.push(p);
        }
    }
    if policies.is_empty() {
        return Err(LoadError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(super::PolicySet::new(policies))
}

/// Loads the policy documents of one YAML text; `source` names it in errors.
pub fn load_str(text: &str, source: &str) -> Result<Vec<Policy>, LoadError> {
    let docs: Vec<PolicyDocument> = serde_saphyr::from_multiple(text).map_err(|e| parse_error(source, &e))?;
    if docs.is_empty() {
        return Err(LoadError::Empty {
            path: source.to_owned(),
        });
    }
    let mut out: Vec<Policy> = Vec::with_capacity(docs.len());
    for doc in docs {
        let policy = compile(doc, source)?;
        if out.iter().any(|p| p.name == policy.name) {
            return Err(LoadError::DuplicateName {
                name: policy.name,
                first: source.into(),
                second: source.into(),
            });
        }
        out.push(policy);
    }
    Ok(out)
}

/// Rules that no longer exist, and what took their place.
const REMOVED_RULES: [(&str, &str); 1] = [(
    "claim-breaks-workloads",
    "a claim created or updated under the workloads that mount it is now judged by their own rules \
     (shared-rwo-claim, statefulset-shared-claim, shared-claim-writable), with their actions",
)];

fn parse_error(source: &str, e: &serde_saphyr::Error) -> LoadError {
    let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
    let mut message = bare_message(e);
    if let Some((rule, instead)) = REMOVED_RULES
        .iter()
        .find(|(rule, _)| message.starts_with(&format!("unknown field `{rule}`")))
    {
        message = format!("rule {rule} was removed: {instead}; delete this entry");
    }
    LoadError::Parse {
        path: source.to_owned(),
        line,
        column,
        message,
    }
}

/// serde-saphyr renders errors with a source snippet; the log line wants the first line only.
fn bare_message(e: &serde_saphyr::Error) -> String {
    let full = e.to_string();
    let first = full.lines().next().unwrap_or_default().trim();
    // "error: line 3 column 5: unknown field ..." -> "unknown field ..."
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.find(": ") {
        Some(i) if first[..i].starts_with("line ") => first[i + 2..].to_owned(),
        _ => first.to_owned(),
    }
}

fn invalid(source: &str, at: &Location, message: String) -> LoadError {
    LoadError::Invalid {
        path: source.to_owned(),
        line: at.line(),
        column: at.column(),
        message,
    }
}

fn compile(doc: PolicyDocument, source: &str) -> Result<Policy, LoadError> {
    let spec = doc.spec;
    let select = criteria(spec.match_, source)?;
    let exclude = spec.exclude.map(|e| criteria(e, source)).transpose()?;
    let r = spec.rules;
    let mut settings = Vec::new();
    let mut exceptions = Vec::new();
    let mut set = |rule: RuleId, s: Option<RuleSetting>| {
        if let Some(s) = s {
            settings.push((rule, s.action.unwrap_or(spec.default_action)));
            if let Some(allowed) = s.allow_exceptions {
                exceptions.push((rule, allowed));
            }
        }
    };
    set(RuleId::SharedRwoClaim, r.shared_rwo_claim);
    set(RuleId::RolloutAttachDeadlock, r.rollout_attach_deadlock);
    set(RuleId::StatefulsetSharedClaim, r.statefulset_shared_claim);
    set(RuleId::SharedClaimWritable, r.shared_claim_writable);
    set(RuleId::StatelessDeployment, r.stateless_deployment);
    set(RuleId::MissingClaim, r.missing_claim);
    set(RuleId::StatefulsetPolicyTemplate, r.statefulset_policy_template);
    set(RuleId::UnsupportedAccessMode, r.unsupported_access_mode);
    set(RuleId::UnbindableClaim, r.unbindable_claim);
    let mut params = RuleParams::default();
    let policy_name = doc.metadata.name.value.clone();
    for p in spec.provisioners {
        if params
            .provisioners
            .entries
            .iter()
            .any(|e| e.provisioner == p.name.value)
        {
            let msg = format!("provisioner {:?} is listed twice", p.name.value);
            return Err(invalid(source, &p.name.referenced, msg));
        }
        if p.name.value.trim().is_empty() {
            let msg = "a provisioner needs a name, as its StorageClasses write it".to_owned();
            return Err(invalid(source, &p.name.referenced, msg));
        }
        let modes = |list: &[AccessModeName]| {
            list.iter()
                .filter_map(|m| Modes::named(m.as_str()))
                .fold(Modes::EMPTY, Modes::or)
        };
        params.provisioners.entries.push(ProvisionerEntry {
            provisioner: p.name.value,
            filesystem: modes(&p.filesystem),
            block: modes(&p.block),
            policy: policy_name.clone(),
        });
    }
    if let Some(t) = r.statefulset_claim_template_modes {
        settings.push((
            RuleId::StatefulsetClaimTemplateModes,
            t.action.unwrap_or(spec.default_action),
        ));
        if let Some(allowed) = t.allow_exceptions {
            exceptions.push((RuleId::StatefulsetClaimTemplateModes, allowed));
        }
        if let Some(modes) = t.allowed_access_modes {
            if modes.value.is_empty() {
                let msg = "allowedAccessModes must list at least one of ReadWriteOnce, ReadOnlyMany, \
                           ReadWriteMany, ReadWriteOncePod"
                    .to_owned();
                return Err(invalid(source, &modes.referenced, msg));
            }
            params.allowed_template_modes = modes.value.iter().map(|m| m.as_str().to_owned()).collect();
        }
    }
    let mutation = match spec.mutate {
        Some(m) => mutation(m, &settings, spec.default_action, &params, source)?,
        None => MutationPolicy::default(),
    };
    let name = doc.metadata.name;
    if name.value.trim().is_empty() {
        let msg = "metadata.name must not be empty".to_owned();
        return Err(invalid(source, &name.referenced, msg));
    }
    let name = name.value;
    Ok(Policy {
        name,
        source: source.to_owned(),
        select,
        exclude,
        default_action: spec.default_action,
        settings,
        params,
        mutation,
        failure_mode: spec.failure_mode,
        exceptions: super::Exceptions {
            allowed: spec.allow_exceptions,
            rules: exceptions,
        },
    })
}

/// Validates `spec.mutate`: every template must be one the API server accepts and this policy's own
/// `statefulset-claim-template-modes` allows, with a mount path of its own.
fn mutation(
    m: MutateSpec,
    settings: &[(RuleId, Action)],
    default_action: Action,
    params: &RuleParams,
    source: &str,
) -> Result<MutationPolicy, LoadError> {
    let modes_action = settings
        .iter()
        .find(|(r, _)| *r == RuleId::StatefulsetClaimTemplateModes)
        .map_or(default_action, |(_, a)| *a);
    let mut templates: Vec<ClaimTemplate> = Vec::with_capacity(m.claim_templates.len());
    for t in m.claim_templates {
        let name = t.name;
        if !is_dns_label(&name.value) {
            let msg = format!(
                "invalid claim template name {:?}: expected a DNS label (lowercase letters, digits and '-', at \
                 most 63, starting and ending with a letter or digit)",
                name.value
            );
            return Err(invalid(source, &name.referenced, msg));
        }
        if templates.iter().any(|o| o.name == name.value) {
            let msg = format!("claim template {:?} is declared twice", name.value);
            return Err(invalid(source, &name.referenced, msg));
        }
        let modes = t.access_modes;
        if modes.value.is_empty() {
            let msg = "accessModes must list at least one of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, \
                       ReadWriteOncePod"
                .to_owned();
            return Err(invalid(source, &modes.referenced, msg));
        }
        let access_modes: Vec<String> = modes.value.iter().map(|m| m.as_str().to_owned()).collect();
        if modes_action != Action::Off
            && let Some(bad) = access_modes
                .iter()
                .find(|m| !params.allowed_template_modes.contains(m))
        {
            let msg = format!(
                "claim template {:?} asks for {bad}, which this policy's statefulset-claim-template-modes does \
                 not allow (allowed: {})",
                name.value,
                params.allowed_template_modes.join(", ")
            );
            return Err(invalid(source, &modes.referenced, msg));
        }
        if !is_quantity(&t.storage.value) {
            let msg = format!(
                "invalid storage {:?}: expected a quantity such as 10Gi, 500Mi or 1T",
                t.storage.value
            );
            return Err(invalid(source, &t.storage.referenced, msg));
        }
        if let Some(class) = &t.storage_class_name
            && (class.value.is_empty()
                || class.value.len() > 253
                || !class.value.split('.').all(is_dns_label))
        {
            let msg = format!(
                "invalid storageClassName {:?}: expected a DNS subdomain (lowercase letters, digits, '-' and \
                 '.')",
                class.value
            );
            return Err(invalid(source, &class.referenced, msg));
        }
        for (k, v) in &t.labels {
            check_key(k).map_err(|m| invalid(source, &name.referenced, format!("labels: {m}")))?;
            if !is_label_value(v) {
                let msg = format!("labels: value {v:?} of {k:?} is not a label value");
                return Err(invalid(source, &name.referenced, msg));
            }
        }
        let mount = t.mount;
        let path = mount.mount_path;
        if !path.value.starts_with('/') {
            let msg = format!("invalid mountPath {:?}: expected an absolute path", path.value);
            return Err(invalid(source, &path.referenced, msg));
        }
        if let Some(other) = templates.iter().find(|o| o.mount_path == path.value) {
            let msg = format!(
                "mountPath {:?} is already used by claim template {:?}",
                path.value, other.name
            );
            return Err(invalid(source, &path.referenced, msg));
        }
        if let Some(sub) = &mount.sub_path
            && (sub.value.starts_with('/') || sub.value.split('/').any(|part| part == ".."))
        {
            let msg = format!(
                "invalid subPath {:?}: expected a relative path without '..'",
                sub.value
            );
            return Err(invalid(source, &sub.referenced, msg));
        }
        let mut containers = Vec::with_capacity(mount.containers.len());
        for c in mount.containers {
            if !is_dns_label(&c.value) {
                let msg = format!("invalid container name {:?}: expected a DNS label", c.value);
                return Err(invalid(source, &c.referenced, msg));
            }
            containers.push(c.value);
        }
        templates.push(ClaimTemplate {
            name: name.value,
            access_modes,
            storage_class: t.storage_class_name.map(|c| c.value),
            storage: t.storage.value,
            labels: t.labels,
            mount_path: path.value,
            sub_path: mount.sub_path.map(|s| s.value),
            containers,
        });
    }
    let retention =
        m.persistent_volume_claim_retention_policy
            .map(|r| StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: r.when_deleted.map(|a| a.as_str().to_owned()),
                when_scaled: r.when_scaled.map(|a| a.as_str().to_owned()),
            });
    Ok(MutationPolicy {
        templates,
        retention,
        recreate_strategy: m.repairs.recreate_strategy,
        read_only_mounts: m.repairs.read_only_mounts,
    })
}

/// A Kubernetes quantity as a claim's size is written: a positive decimal, then an optional binary
/// (Ki … Ei) or decimal (k … E) suffix.
fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 12] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "k", "M", "G", "T", "P", "E"];
    let number = SUFFIXES
        .iter()
        .find_map(|suffix| s.strip_suffix(suffix))
        .unwrap_or(s);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let all_digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole)
        && parts.next().is_none_or(all_digits)
        && number.bytes().any(|b| (b'1'..=b'9').contains(&b))
}

fn criteria(s: Selection, source: &str) -> Result<Criteria, LoadError> {
    let mut namespaces = Vec::with_capacity(s.namespaces.len());
    for ns in s.namespaces {
        if !is_dns_label(&ns.value) {
            let msg = format!(
                "invalid namespace {:?}: expected a DNS label (lowercase letters, digits and '-', at most 63, \
                 starting and ending with a letter or digit)",
                ns.value
            );
            return Err(invalid(source, &ns.referenced, msg));
        }
        namespaces.push(ns.value);
    }
    let selector = s.selector.map(|sel| selector(sel, source)).transpose()?;
    Ok(Criteria {
        kinds: s.kinds,
        namespaces,
        selector,
    })
}

fn selector(sel: Spanned<LabelSelector>, source: &str) -> Result<meta::LabelSelector, LoadError> {
    let at = sel.referenced;
    let sel = sel.value;
    for (k, v) in &sel.match_labels {
        check_key(k).map_err(|m| invalid(source, &at, format!("invalid selector: matchLabels: {m}")))?;
        if !is_label_value(v) {
            let msg = format!(
                "invalid selector: matchLabels: value {v:?} of {k:?} is not a label value (at most 63 \
                 characters of letters, digits, '-', '_' and '.', starting and ending alphanumeric)"
            );
            return Err(invalid(source, &at, msg));
        }
    }
    let mut expressions = Vec::with_capacity(sel.match_expressions.len());
    for req in sel.match_expressions {
        let here = req.referenced;
        let req = req.value;
        check_key(&req.key).map_err(|m| invalid(source, &here, format!("invalid selector: {m}")))?;
        let op = req.operator;
        match op {
            SelectorOperator::In | SelectorOperator::NotIn if req.values.is_empty() => {
                let msg = format!(
                    "invalid selector: operator {} needs at least one value",
                    op.as_str()
                );
                return Err(invalid(source, &here, msg));
            }
            SelectorOperator::Exists | SelectorOperator::DoesNotExist if !req.values.is_empty() => {
                let msg = format!("invalid selector: operator {} takes no values", op.as_str());
                return Err(invalid(source, &here, msg));
            }
            _ => {}
        }
        if let Some(v) = req.values.iter().find(|v| !is_label_value(v)) {
            return Err(invalid(
                source,
                &here,
                format!("invalid selector: {v:?} is not a label value"),
            ));
        }
        expressions.push(meta::LabelSelectorRequirement {
            key: req.key,
            operator: op.as_str().to_owned(),
            values: Some(req.values),
        });
    }
    Ok(meta::LabelSelector {
        match_labels: Some(sel.match_labels),
        match_expressions: Some(expressions),
    })
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_label_value(s: &str) -> bool {
    s.is_empty() || is_label_name(s)
}

fn is_label_name(s: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    s.len() <= 63
        && alnum(s.chars().next())
        && alnum(s.chars().last())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label key is `[prefix/]name`: the prefix a DNS subdomain, the name at most 63 characters.
fn check_key(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if !is_label_name(name) {
        return Err(format!(
            "label key {key:?}: the name part must be 1-63 characters of letters, digits, '-', '_' and '.', \
             starting and ending alphanumeric"
        ));
    }
    if let Some(p) = prefix
        && (p.is_empty() || p.len() > 253 || !p.split('.').all(is_dns_label))
    {
        return Err(format!(
            "label key {key:?}: the prefix must be a DNS subdomain such as example.com"
        ));
    }
    Ok(())
}
