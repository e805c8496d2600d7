//! The webhook configurations: which requests reach volguard, where, and what happens when it is down.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MatchCondition, MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference,
    ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{Endpoint, Options, Trust};
use crate::domain::workload::{KINDS, KindInfo, Webhook};

/// The label a namespace carries with its own name (set by the API server from v1.21; by `manifests`
/// on volguard's namespace; by hand on older servers).
pub(crate) const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// With label exemption on (opt-in), a namespace labelled `volguard.io/ignore: "true"` is never sent to
/// volguard.
pub(crate) const IGNORE_LABEL: &str = "volguard.io/ignore";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The rules of one webhook entry, from the table of kinds: per API group (in table order), its kinds'
/// resources, then their `/scale` subresources (`kubectl scale` and HPAs write there, not to the
/// workload), for `operations`.
fn rules_for(include: impl Fn(&KindInfo) -> bool, operations: &[&str]) -> Vec<RuleWithOperations> {
    /// One rule being built: its group and versions, resources, and their `/scale` subresources.
    struct Group {
        group: &'static str,
        versions: &'static [&'static str],
        resources: Vec<String>,
        scale: Vec<String>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for k in KINDS.iter().filter(|k| include(k)) {
        let Some(resource) = k.resource else { continue };
        let at = match groups
            .iter()
            .position(|g| g.group == k.group && g.versions == k.versions)
        {
            Some(i) => i,
            None => {
                groups.push(Group {
                    group: k.group,
                    versions: k.versions,
                    resources: Vec::new(),
                    scale: Vec::new(),
                });
                groups.len() - 1
            }
        };
        groups[at].resources.push(resource.to_owned());
        if k.scale {
            groups[at].scale.push(format!("{resource}/scale"));
        }
    }
    groups
        .into_iter()
        .map(|mut g| {
            g.resources.extend(g.scale);
            RuleWithOperations {
                api_groups: Some(strings(&[g.group])),
                api_versions: Some(strings(g.versions)),
                operations: Some(strings(operations)),
                resources: Some(g.resources),
                scope: Some("Namespaced".to_owned()),
            }
        })
        .collect()
}

/// What `validate.volguard.io` sees: creates and updates of every kind in the table with a webhook of its
/// own, and the `/scale` of those that have one.
pub fn webhook_rules() -> Vec<RuleWithOperations> {
    rules_for(|k| k.webhook == Webhook::Objects, &["CREATE", "UPDATE"])
}

/// What `mutate.volguard.io` sees: the kinds volguard may repair.
pub fn mutating_rules() -> Vec<RuleWithOperations> {
    rules_for(
        |k| k.webhook == Webhook::Objects && k.mutated,
        &["CREATE", "UPDATE"],
    )
}

/// What `pods.validate.volguard.io` sees: pods being created (only bare ones are judged).
pub fn pod_rules() -> Vec<RuleWithOperations> {
    rules_for(|k| k.webhook == Webhook::Pods, &["CREATE"])
}

/// The CEL condition that keeps pods a controller volguard reads owns away from volguard (Kubernetes 1.28
/// and newer evaluate `matchConditions`): those pods are counted through their controller.
pub(crate) fn bare_pod_condition() -> String {
    let kinds: Vec<String> = KINDS
        .iter()
        .filter_map(|k| k.kind.workload())
        .filter(|w| *w != crate::domain::workload::WorkloadKind::Pod)
        .map(|w| format!("'{w}'"))
        .collect();
    format!(
        "!has(object.metadata.ownerReferences) || !object.metadata.ownerReferences.exists(r, \
         has(r.controller) && r.controller && r.kind in [{}])",
        kinds.join(", ")
    )
}

/// Every namespace except kube-system, volguard's own (its pods must start even when no volguard
/// answers) and those exempt by name; with label exemption, also those labelled `volguard.io/ignore:
/// "true"`.
pub fn namespace_selector(o: &Options) -> LabelSelector {
    let mut names = strings(&["kube-system", &o.namespace]);
    for name in &o.exemptions.namespaces {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut expressions = vec![LabelSelectorRequirement {
        key: NAMESPACE_NAME_LABEL.to_owned(),
        operator: "NotIn".to_owned(),
        values: Some(names),
    }];
    if o.exemptions.label {
        expressions.push(LabelSelectorRequirement {
            key: IGNORE_LABEL.to_owned(),
            operator: "NotIn".to_owned(),
            values: Some(strings(&["true"])),
        });
    }
    LabelSelector {
        match_expressions: Some(expressions),
        ..LabelSelector::default()
    }
}

fn client_config(o: &Options, path: &str) -> WebhookClientConfig {
    let ca_bundle = match &o.trust {
        Trust::CaBundle(pem) => Some(ByteString(pem.clone())),
        Trust::CertManager | Trust::SelfManaged => None,
    };
    match &o.endpoint {
        Endpoint::Service => WebhookClientConfig {
            ca_bundle,
            service: Some(ServiceReference {
                name: o.name.clone(),
                namespace: o.namespace.clone(),
                path: Some(path.to_owned()),
                port: Some(443),
            }),
            url: None,
        },
        Endpoint::Url(base) => WebhookClientConfig {
            ca_bundle,
            service: None,
            url: Some(format!("{}{path}", base.trim_end_matches('/'))),
        },
    }
}

fn annotations(o: &Options) -> Option<BTreeMap<String, String>> {
    (o.trust == Trust::CertManager).then(|| {
        BTreeMap::from([(
            "cert-manager.io/inject-ca-from".to_owned(),
            format!("{}/{}", o.namespace, o.name),
        )])
    })
}

pub(super) fn validating(o: &Options) -> ValidatingWebhookConfiguration {
    let mut metadata = o.meta(&o.name, false);
    metadata.annotations = annotations(o);
    let mut webhooks = vec![ValidatingWebhook {
        name: "validate.volguard.io".to_owned(),
        admission_review_versions: strings(&["v1"]),
        client_config: client_config(o, "/validate"),
        failure_policy: Some(o.failure_policy.as_str().to_owned()),
        match_policy: Some("Equivalent".to_owned()),
        namespace_selector: Some(namespace_selector(o)),
        rules: Some(webhook_rules()),
        side_effects: "None".to_owned(),
        timeout_seconds: Some(o.timeout_seconds),
        ..ValidatingWebhook::default()
    }];
    if let Some(pods) = &o.pods {
        webhooks.push(ValidatingWebhook {
            name: "pods.validate.volguard.io".to_owned(),
            admission_review_versions: strings(&["v1"]),
            client_config: client_config(o, "/validate"),
            failure_policy: Some(pods.failure_policy.as_str().to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(namespace_selector(o)),
            match_conditions: pods.match_conditions.then(|| {
                vec![MatchCondition {
                    name: "bare-pods-only".to_owned(),
                    expression: bare_pod_condition(),
                }]
            }),
            rules: Some(pod_rules()),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(o.timeout_seconds),
            ..ValidatingWebhook::default()
        });
    }
    ValidatingWebhookConfiguration {
        metadata,
        webhooks: Some(webhooks),
    }
}

pub(super) fn mutating(o: &Options) -> MutatingWebhookConfiguration {
    let mut metadata = o.meta(&o.name, false);
    metadata.annotations = annotations(o);
    MutatingWebhookConfiguration {
        metadata,
        webhooks: Some(vec![MutatingWebhook {
            name: "mutate.volguard.io".to_owned(),
            admission_review_versions: strings(&["v1"]),
            client_config: client_config(o, "/mutate"),
            failure_policy: Some(o.failure_policy.as_str().to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(namespace_selector(o)),
            // Another mutating webhook may change the object after volguard: look at it again.
            reinvocation_policy: Some("IfNeeded".to_owned()),
            rules: Some(mutating_rules()),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(o.timeout_seconds),
            ..MutatingWebhook::default()
        }]),
    }
}
