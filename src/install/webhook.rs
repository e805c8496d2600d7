//! The webhook configurations: which requests reach volguard, where, and what happens when it is down.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ServiceReference, ValidatingWebhook,
    ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use super::{Endpoint, Options, Trust};

/// The label a namespace carries with its own name (set by the API server from v1.21; by `manifests`
/// on volguard's namespace; by hand on older servers).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// A namespace labelled `volguard.io/ignore: "true"` is never sent to volguard.
pub const IGNORE_LABEL: &str = "volguard.io/ignore";

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Everything volguard judges: the workloads that make pods, their `/scale` subresources (kubectl scale
/// and HPAs write there, not to the workload), the autoscalers and the claims.
pub fn webhook_rules() -> Vec<RuleWithOperations> {
    let rule = |group: &str, versions: &[&str], resources: &[&str]| RuleWithOperations {
        api_groups: Some(strings(&[group])),
        api_versions: Some(strings(versions)),
        operations: Some(strings(&["CREATE", "UPDATE"])),
        resources: Some(strings(resources)),
        scope: Some("Namespaced".to_owned()),
    };
    vec![
        rule(
            "apps",
            &["v1"],
            &[
                "deployments",
                "statefulsets",
                "daemonsets",
                "replicasets",
                "deployments/scale",
                "statefulsets/scale",
                "replicasets/scale",
            ],
        ),
        rule("batch", &["v1"], &["jobs", "cronjobs"]),
        rule("autoscaling", &["v1", "v2"], &["horizontalpodautoscalers"]),
        rule("", &["v1"], &["persistentvolumeclaims"]),
    ]
}

/// Every namespace except kube-system, volguard's own (its pods must start even when no volguard
/// answers) and those labelled `volguard.io/ignore: "true"`.
pub fn namespace_selector(own_namespace: &str) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: NAMESPACE_NAME_LABEL.to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(strings(&["kube-system", own_namespace])),
            },
            LabelSelectorRequirement {
                key: IGNORE_LABEL.to_owned(),
                operator: "NotIn".to_owned(),
                values: Some(strings(&["true"])),
            },
        ]),
        ..LabelSelector::default()
    }
}

fn client_config(o: &Options, path: &str) -> WebhookClientConfig {
    let ca_bundle = match &o.trust {
        Trust::CaBundle(pem) => Some(ByteString(pem.clone())),
        Trust::CertManager => None,
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
    ValidatingWebhookConfiguration {
        metadata,
        webhooks: Some(vec![ValidatingWebhook {
            name: "validate.volguard.io".to_owned(),
            admission_review_versions: strings(&["v1"]),
            client_config: client_config(o, "/validate"),
            failure_policy: Some(o.failure_policy.as_str().to_owned()),
            match_policy: Some("Equivalent".to_owned()),
            namespace_selector: Some(namespace_selector(&o.namespace)),
            rules: Some(webhook_rules()),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(o.timeout_seconds),
            ..ValidatingWebhook::default()
        }]),
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
            namespace_selector: Some(namespace_selector(&o.namespace)),
            // Another mutating webhook may change the object after volguard: look at it again.
            reinvocation_policy: Some("IfNeeded".to_owned()),
            rules: Some(webhook_rules()),
            side_effects: "None".to_owned(),
            timeout_seconds: Some(o.timeout_seconds),
            ..MutatingWebhook::default()
        }]),
    }
}
