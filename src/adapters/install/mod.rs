//! The install: every object `volguard manifests` prints, built from k8s-openapi types, mirroring
//! `charts/volguard` (the chart's compared blocks are checked against these in `tests/install/chart.rs`).
//!
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/>.

mod cert_manager;
mod tls;
mod webhook;
mod workload;

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

pub(crate) use cert_manager::service_dns_names;
pub use cert_manager::{Certificate, Issuer};
pub use tls::TlsRbac;
pub(crate) use webhook::NAMESPACE_NAME_LABEL;
pub use webhook::{mutating_rules, namespace_selector, pod_rules, webhook_rules};
pub use workload::probes;

/// The image `volguard manifests` installs unless told otherwise.
pub const DEFAULT_IMAGE: &str = concat!("ghcr.io/volguard/volguard:", env!("CARGO_PKG_VERSION"));

/// What the webhook configurations do when volguard cannot answer (the API server's `failurePolicy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailurePolicy {
    /// Refuse the request: nothing in a selected namespace escapes the policy, but while volguard is down
    /// no selected workload can be created, updated or scaled.
    #[value(name = "Fail")]
    Fail,
    /// Admit the request unchecked: availability first, enforcement only while volguard answers.
    #[value(name = "Ignore")]
    Ignore,
}

impl FailurePolicy {
    /// The API server's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            FailurePolicy::Fail => "Fail",
            FailurePolicy::Ignore => "Ignore",
        }
    }
}

/// `pods.validate.volguard.io`: bare pods, judged with everything else that mounts their claims.
///
/// Every pod created in a selected namespace passes through it, those of every Deployment and Job too,
/// so by default it has its own failure policy, Ignore: an unreachable volguard then admits pods
/// unchecked rather than stopping every controller from replacing its pods. From Kubernetes 1.28 a
/// `matchCondition` keeps pods a controller volguard reads owns from being sent at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PodWebhook {
    /// Its failure policy.
    pub failure_policy: FailurePolicy,
    /// Whether to send only bare pods (`matchConditions`, Kubernetes 1.28 and newer).
    pub match_conditions: bool,
}

impl Default for PodWebhook {
    fn default() -> Self {
        Self {
            failure_policy: FailurePolicy::Ignore,
            match_conditions: true,
        }
    }
}

/// How the API server comes to trust volguard's serving certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// This CA bundle (PEM) goes into each webhook's `caBundle`; the serving pair is a Secret the user
    /// creates (`volguard certs`, then `kubectl create secret tls`).
    CaBundle(Vec<u8>),
    /// cert-manager issues the pair into the Secret and injects the CA (`cert-manager.io/inject-ca-from`).
    CertManager,
    /// volguard itself (`serve --tls-secret`): the leader writes the pair into the Secret and the CA into
    /// the webhooks' caBundle.
    SelfManaged,
}

/// Where the API server sends reviews.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The in-cluster Service (port 443).
    Service,
    /// A URL (`https://127.0.0.1:8443`), for a volguard running outside the cluster; `/validate` and
    /// `/mutate` are appended.
    Url(String),
}

/// The choices behind one install.
#[derive(Clone, Debug)]
pub struct Options {
    /// Name of every object (the chart's fullname) and the `app.kubernetes.io/instance` label.
    pub name: String,
    /// The namespace volguard runs in (excluded from its own webhooks).
    pub namespace: String,
    /// The container image.
    pub image: String,
    /// How the API server trusts the serving certificate.
    pub trust: Trust,
    /// Where reviews go.
    pub endpoint: Endpoint,
    /// The webhooks' failure policy.
    pub failure_policy: FailurePolicy,
    /// The webhooks' `timeoutSeconds` (the server's own deadline is 8 s, below the default 10).
    pub timeout_seconds: i32,
    /// The pods webhook (bare pods), when installed.
    pub pods: Option<PodWebhook>,
    /// Pod replicas.
    pub replicas: i32,
    /// Namespaces the webhooks never see.
    pub exemptions: Exemptions,
}

/// Which namespaces the webhooks leave alone, besides kube-system and volguard's own (always).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Exemptions {
    /// By name: the `kubernetes.io/metadata.name` label, which the API server sets and keeps.
    pub namespaces: Vec<String>,
    /// Also namespaces labelled `volguard.io/ignore: "true"` (opt-in: whoever may label a namespace can
    /// then exempt it).
    pub label: bool,
}

impl Options {
    /// Defaults for `name` in `namespace`: two replicas, failurePolicy Fail, 10 s timeout, the Service.
    pub fn new(name: &str, namespace: &str, trust: Trust) -> Self {
        Self {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            image: DEFAULT_IMAGE.to_owned(),
            trust,
            endpoint: Endpoint::Service,
            failure_policy: FailurePolicy::Fail,
            timeout_seconds: 10,
            pods: Some(PodWebhook::default()),
            replicas: 2,
            exemptions: Exemptions::default(),
        }
    }

    /// The Secret holding `tls.crt` and `tls.key`.
    pub(crate) fn tls_secret(&self) -> String {
        format!("{}-tls", self.name)
    }

    /// The ConfigMap holding the policy files.
    pub(crate) fn policy_config_map(&self) -> String {
        format!("{}-policy", self.name)
    }

    fn labels(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("app.kubernetes.io/name", "volguard"),
            ("app.kubernetes.io/instance", self.name.as_str()),
            ("app.kubernetes.io/managed-by", "volguard-manifests"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn selector_labels(&self) -> std::collections::BTreeMap<String, String> {
        let mut labels = self.labels();
        labels.remove("app.kubernetes.io/managed-by");
        labels
    }

    fn meta(&self, name: &str, namespaced: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: namespaced.then(|| self.namespace.clone()),
            labels: Some(self.labels()),
            ..ObjectMeta::default()
        }
    }
}

/// Every object of an install, typed.
#[derive(Clone, Debug)]
pub struct Install {
    /// volguard's namespace.
    pub namespace: Namespace,
    /// The pods' identity.
    pub service_account: ServiceAccount,
    /// Read access to claims and the workloads that own pods.
    pub cluster_role: ClusterRole,
    /// Grants the role to the service account.
    pub cluster_role_binding: ClusterRoleBinding,
    /// The policy files, mounted as a directory so updates reach the server's reloader.
    pub policy: ConfigMap,
    /// The webhook server.
    pub deployment: Deployment,
    /// Keeps one replica through voluntary disruptions.
    pub disruption_budget: PodDisruptionBudget,
    /// Port 443 to the pods' 8443, and metrics.
    pub service: Service,
    /// With [`Trust::CertManager`]: the self-signed issuer.
    pub issuer: Option<Issuer>,
    /// With [`Trust::CertManager`]: the serving certificate, written to the TLS Secret.
    pub certificate: Option<Certificate>,
    /// With [`Trust::SelfManaged`]: access to the Secret, the Lease and the webhooks' caBundle.
    pub tls_rbac: Option<TlsRbac>,
    /// `/validate`.
    pub validating: ValidatingWebhookConfiguration,
    /// `/mutate`.
    pub mutating: MutatingWebhookConfiguration,
}

/// Why the install could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// An object did not serialize (a bug, reported rather than hidden).
    #[error("serializing {kind}: {message}")]
    Serialize {
        /// The object's kind.
        kind: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl Install {
    /// Builds every object for `options`.
    pub fn new(options: &Options) -> Self {
        let cert_manager = options.trust == Trust::CertManager;
        Self {
            namespace: Namespace {
                metadata: ObjectMeta {
                    name: Some(options.namespace.clone()),
                    // Newer API servers set this label themselves; older ones need it for the webhooks'
                    // namespaceSelector to exclude volguard's own namespace.
                    labels: Some(
                        [(NAMESPACE_NAME_LABEL.to_owned(), options.namespace.clone())]
                            .into_iter()
                            .collect(),
                    ),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            },
            service_account: workload::service_account(options),
            cluster_role: workload::cluster_role(options),
            cluster_role_binding: workload::cluster_role_binding(options),
            policy: workload::policy(options),
            deployment: workload::deployment(options),
            disruption_budget: workload::disruption_budget(options),
            service: workload::service(options),
            issuer: cert_manager.then(|| cert_manager::issuer(options)),
            certificate: cert_manager.then(|| cert_manager::certificate(options)),
            tls_rbac: (options.trust == Trust::SelfManaged).then(|| tls::rbac(options)),
            validating: webhook::validating(options),
            mutating: webhook::mutating(options),
        }
    }

    /// The objects in apply order, as JSON values (apiVersion and kind included).
    pub fn documents(&self) -> Result<Vec<serde_json::Value>, RenderError> {
        fn doc<T: Serialize>(kind: &'static str, o: &T) -> Result<serde_json::Value, RenderError> {
            serde_json::to_value(o).map_err(|e| RenderError::Serialize {
                kind,
                message: e.to_string(),
            })
        }
        let mut docs = vec![
            doc("Namespace", &self.namespace)?,
            doc("ServiceAccount", &self.service_account)?,
            doc("ClusterRole", &self.cluster_role)?,
            doc("ClusterRoleBinding", &self.cluster_role_binding)?,
            doc("ConfigMap", &self.policy)?,
        ];
        if let Some(rbac) = &self.tls_rbac {
            docs.extend([
                doc("Role", &rbac.role)?,
                doc("RoleBinding", &rbac.role_binding)?,
                doc("ClusterRole", &rbac.cluster_role)?,
                doc("ClusterRoleBinding", &rbac.cluster_role_binding)?,
            ]);
        }
        if let Some(issuer) = &self.issuer {
            docs.push(doc("Issuer", issuer)?);
        }
        if let Some(certificate) = &self.certificate {
            docs.push(doc("Certificate", certificate)?);
        }
        docs.extend([
            doc("Service", &self.service)?,
            doc("Deployment", &self.deployment)?,
            doc("PodDisruptionBudget", &self.disruption_budget)?,
            doc("ValidatingWebhookConfiguration", &self.validating)?,
            doc("MutatingWebhookConfiguration", &self.mutating)?,
        ]);
        Ok(docs)
    }

    /// The objects as one multi-document YAML stream.
    pub fn to_yaml(&self) -> Result<String, RenderError> {
        let docs = self.documents()?;
        serde_saphyr::to_string_multiple(&docs).map_err(|e| RenderError::Serialize {
            kind: "YAML stream",
            message: e.to_string(),
        })
    }
}
