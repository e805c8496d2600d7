//! cert-manager objects (`cert-manager.io/v1`): a self-signed Issuer and the serving Certificate it signs
//! into the TLS Secret. k8s-openapi has no types for these custom resources, so the few fields used are
//! typed here. See <https://cert-manager.io/docs/concepts/ca-injector/>.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use super::Options;

const API_VERSION: &str = "cert-manager.io/v1";

/// A cert-manager `Issuer`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Issuer {
    /// `cert-manager.io/v1`.
    pub api_version: String,
    /// `Issuer`.
    pub kind: String,
    /// Name and namespace.
    pub metadata: ObjectMeta,
    /// How it signs.
    pub spec: IssuerSpec,
}

/// An Issuer's spec: only self-signing is used.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuerSpec {
    /// Each certificate signs itself, and so is its own CA: cainjector copies it into `caBundle`.
    pub self_signed: SelfSigned,
}

/// The empty `selfSigned: {}` block.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelfSigned {}

/// A cert-manager `Certificate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Certificate {
    /// `cert-manager.io/v1`.
    pub api_version: String,
    /// `Certificate`.
    pub kind: String,
    /// Name and namespace; `cert-manager.io/inject-ca-from` names it.
    pub metadata: ObjectMeta,
    /// What to issue.
    pub spec: CertificateSpec,
}

/// A Certificate's spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CertificateSpec {
    /// The Secret (type kubernetes.io/tls) the pair is written to.
    pub secret_name: String,
    /// The names the API server dials.
    pub dns_names: Vec<String>,
    /// The Issuer.
    pub issuer_ref: IssuerRef,
}

/// Which issuer signs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IssuerRef {
    /// The Issuer's name.
    pub name: String,
    /// `Issuer` (namespaced) or `ClusterIssuer`.
    pub kind: String,
}

/// The names the API server dials for Service `name` in `namespace`.
pub(crate) fn service_dns_names(name: &str, namespace: &str) -> Vec<String> {
    vec![
        name.to_owned(),
        format!("{name}.{namespace}"),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

pub(super) fn issuer(o: &Options) -> Issuer {
    Issuer {
        api_version: API_VERSION.to_owned(),
        kind: "Issuer".to_owned(),
        metadata: o.meta(&o.name, true),
        spec: IssuerSpec {
            self_signed: SelfSigned {},
        },
    }
}

pub(super) fn certificate(o: &Options) -> Certificate {
    Certificate {
        api_version: API_VERSION.to_owned(),
        kind: "Certificate".to_owned(),
        metadata: o.meta(&o.name, true),
        spec: CertificateSpec {
            secret_name: o.tls_secret(),
            dns_names: service_dns_names(&o.name, &o.namespace),
            issuer_ref: IssuerRef {
                name: o.name.clone(),
                kind: "Issuer".to_owned(),
            },
        },
    }
}
