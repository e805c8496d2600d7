//! What the install tests share: running `volguard manifests` and decoding its output into the typed
//! objects, strictly (each document must survive a typed round trip unchanged, so no field is unknown to
//! k8s-openapi or misspelt).

#![allow(dead_code, unused_imports)]

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use volguard::adapters::install::{Certificate, Issuer};

#[path = "cli.rs"]
mod cli_common;
pub use cli_common::{root, run, volguard};

/// Every document of one `volguard manifests` run, typed.
#[derive(Debug)]
pub struct Decoded {
    /// The documents as printed, in order.
    pub docs: Vec<Value>,
    pub namespace: Namespace,
    pub service_account: ServiceAccount,
    pub cluster_role: ClusterRole,
    pub cluster_role_binding: ClusterRoleBinding,
    pub policy: ConfigMap,
    pub service: Service,
    pub deployment: Deployment,
    pub disruption_budget: PodDisruptionBudget,
    pub validating: ValidatingWebhookConfiguration,
    pub mutating: MutatingWebhookConfiguration,
    pub issuer: Option<Issuer>,
    pub certificate: Option<Certificate>,
}

impl Decoded {
    /// The volguard container.
    pub fn container(&self) -> &Container {
        let pod = self
            .deployment
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref());
        &pod.expect("the Deployment has a pod spec").containers[0]
    }
}

/// Decodes `doc` as `T` and requires that nothing was lost or added on the way.
pub fn typed<T: DeserializeOwned + Serialize>(doc: &Value) -> T {
    let t: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{} does not decode: {e}\n{doc:#}", kind_of(doc)));
    assert_eq!(
        serde_json::to_value(&t).expect("serializes"),
        *doc,
        "{} does not survive a typed round trip",
        kind_of(doc)
    );
    t
}

/// A document's `kind`.
pub fn kind_of(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or("(no kind)")
}

/// Splits a YAML stream and decodes every document into its type; panics on anything unexpected.
pub fn decode(yaml: &str) -> Decoded {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("the output is a YAML stream");
    // Self-managed TLS adds a Role, a ClusterRole and their bindings, all NAME-tls.
    let is_tls_rbac = |d: &Value| {
        matches!(
            kind_of(d),
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
        ) && d["metadata"]["name"]
            .as_str()
            .is_some_and(|n| n.ends_with("-tls"))
    };
    let tls_rbac = docs.iter().filter(|d| is_tls_rbac(d)).count();
    assert!(
        tls_rbac == 0 || tls_rbac == 4,
        "all four TLS RBAC objects or none"
    );
    let one = |kind: &str| -> &Value {
        let found: Vec<&Value> = docs
            .iter()
            .filter(|d| kind_of(d) == kind && !is_tls_rbac(d))
            .collect();
        assert_eq!(found.len(), 1, "exactly one {kind}");
        found[0]
    };
    let optional = |kind: &str| docs.iter().find(|d| kind_of(d) == kind);
    let decoded = Decoded {
        namespace: typed(one("Namespace")),
        service_account: typed(one("ServiceAccount")),
        cluster_role: typed(one("ClusterRole")),
        cluster_role_binding: typed(one("ClusterRoleBinding")),
        policy: typed(one("ConfigMap")),
        service: typed(one("Service")),
        deployment: typed(one("Deployment")),
        disruption_budget: typed(one("PodDisruptionBudget")),
        validating: typed(one("ValidatingWebhookConfiguration")),
        mutating: typed(one("MutatingWebhookConfiguration")),
        issuer: optional("Issuer").map(typed),
        certificate: optional("Certificate").map(typed),
        docs: docs.clone(),
    };
    let known = decoded.issuer.iter().count() + decoded.certificate.iter().count() + tls_rbac + 10;
    assert_eq!(docs.len(), known, "no document of an unexpected kind");
    decoded
}

/// `volguard manifests <args>`: its standard output, which must be a success.
pub fn manifests(args: &[&str]) -> String {
    let out = run(volguard(std::iter::once("manifests").chain(args.iter().copied())));
    assert_eq!(out.code, 0, "volguard manifests {args:?}: {}", out.stderr);
    out.stdout
}
