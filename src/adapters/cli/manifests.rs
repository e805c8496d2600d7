//! `volguard manifests`: the install as plain multi-document YAML, for `kubectl apply` without Helm.
//!
//! The objects come from [`crate::adapters::install`], typed; the chart in `charts/volguard` installs the same.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

use super::Exit;
use crate::adapters::install::{
    DEFAULT_IMAGE, Endpoint, Exemptions, FailurePolicy, Install, Options, PodWebhook, Trust,
};

/// `volguard manifests` flags.
#[derive(Clone, Debug, Args)]
#[command(group(clap::ArgGroup::new("trust").required(true).args(["ca_bundle", "cert_manager", "self_managed"])))]
pub struct ManifestsArgs {
    /// The namespace volguard runs in; it is created, and excluded from the webhooks.
    #[arg(long, env = "VOLGUARD_NAMESPACE", default_value = "volguard")]
    pub namespace: String,
    /// The name of every object (ServiceAccount, ClusterRole, Service, webhook configurations, ...).
    #[arg(long, env = "VOLGUARD_NAME", default_value = "volguard")]
    pub name: String,
    /// The container image.
    #[arg(long, env = "VOLGUARD_IMAGE", default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// The CA certificate (PEM) that signed the serving certificate, for the webhooks' caBundle; the pair
    /// itself goes into the Secret NAME-tls (see `volguard certs`).
    #[arg(long, env = "VOLGUARD_CA_BUNDLE")]
    pub ca_bundle: Option<PathBuf>,
    /// Let cert-manager issue the serving certificate into NAME-tls and inject its CA.
    #[arg(long, env = "VOLGUARD_CERT_MANAGER")]
    pub cert_manager: bool,
    /// Let volguard manage its certificate: the replica holding the Lease NAME keeps the CA and serving
    /// certificate in the Secret NAME-tls and the webhooks' caBundle (`serve --tls-secret`); adds the Role
    /// and ClusterRole NAME-tls it needs.
    #[arg(long, env = "VOLGUARD_SELF_MANAGED")]
    pub self_managed: bool,
    /// Send reviews to this https URL (`/validate`, `/mutate` appended) instead of the Service: for a
    /// volguard running outside the cluster, e.g. `https://127.0.0.1:8443` in local tests.
    #[arg(long, env = "VOLGUARD_WEBHOOK_URL", value_parser = parse_https_url)]
    pub webhook_url: Option<String>,
    /// What the API server does when volguard does not answer: Fail refuses the request, Ignore admits it
    /// unchecked.
    #[arg(long, env = "VOLGUARD_FAILURE_POLICY", value_enum, default_value_t = FailurePolicy::Fail)]
    pub failure_policy: FailurePolicy,
    /// The failure policy of the pods webhook (bare pods), which every pod creation in a selected namespace
    /// passes through: Ignore (the default) keeps controllers replacing pods while volguard is down.
    #[arg(long, env = "VOLGUARD_POD_FAILURE_POLICY", value_enum, default_value_t = FailurePolicy::Ignore)]
    pub pod_failure_policy: FailurePolicy,
    /// Do not install the pods webhook: bare pods are then not judged when created (they are still counted
    /// as users of the claims they mount).
    #[arg(long, env = "VOLGUARD_NO_POD_WEBHOOK")]
    pub no_pod_webhook: bool,
    /// A namespace the webhooks never see, by name (its `kubernetes.io/metadata.name` label, which the API
    /// server sets and namespace owners cannot change); repeat or separate with commas. kube-system and
    /// volguard's own namespace are always exempt.
    #[arg(
        long = "exempt-namespace",
        value_name = "NAME",
        env = "VOLGUARD_EXEMPT_NAMESPACES",
        value_delimiter = ','
    )]
    pub exempt_namespaces: Vec<String>,
    /// Also exempt namespaces labelled `volguard.io/ignore: "true"`. Anyone who may label a namespace can
    /// then exempt it: only for clusters where namespace labels are the cluster admin's alone.
    #[arg(long, env = "VOLGUARD_LABEL_EXEMPTION")]
    pub label_exemption: bool,
    /// The Kubernetes version the manifests are for (MAJOR.MINOR): from 1.28 the pods webhook sends only
    /// bare pods, through a matchCondition.
    #[arg(long, env = "VOLGUARD_KUBE_VERSION", default_value = "1.30", value_parser = parse_kube_version)]
    pub kube_version: (u32, u32),
}

/// `1.30`, `v1.28.3`: the major and minor version.
fn parse_kube_version(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{s:?}: expected a Kubernetes version like 1.30 or v1.28.3");
    let mut parts = s.strip_prefix('v').unwrap_or(s).split('.');
    let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
    let minor = parts
        .next()
        .and_then(|p| p.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(bad)?;
    Ok((major, minor))
}

fn parse_https_url(s: &str) -> Result<String, String> {
    let rest = s
        .strip_prefix("https://")
        .ok_or_else(|| format!("{s:?}: the API server calls webhooks over https only"))?;
    if rest.is_empty() || rest.contains(['?', '#']) {
        return Err(format!(
            "{s:?}: expected https://HOST[:PORT][/PATH], without query or fragment"
        ));
    }
    Ok(s.to_owned())
}

/// Prints the install to standard output.
pub fn run(args: ManifestsArgs) -> anyhow::Result<Exit> {
    let ManifestsArgs {
        namespace,
        name,
        image,
        ca_bundle,
        cert_manager,
        self_managed,
        webhook_url,
        failure_policy,
        pod_failure_policy,
        no_pod_webhook,
        exempt_namespaces,
        label_exemption,
        kube_version,
    } = args;
    let trust = match (ca_bundle, cert_manager) {
        _ if self_managed => Trust::SelfManaged,
        (Some(path), false) => {
            let pem = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let certs = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("reading the PEM certificates in {}", path.display()))?;
            anyhow::ensure!(!certs.is_empty(), "{} holds no PEM certificate", path.display());
            Trust::CaBundle(pem)
        }
        _ => Trust::CertManager,
    };
    let mut options = Options::new(&name, &namespace, trust);
    options.image = image;
    options.failure_policy = failure_policy;
    options.pods = (!no_pod_webhook).then_some(PodWebhook {
        failure_policy: pod_failure_policy,
        match_conditions: kube_version >= (1, 28),
    });
    options.endpoint = webhook_url.map_or(Endpoint::Service, Endpoint::Url);
    options.exemptions = Exemptions {
        namespaces: exempt_namespaces,
        label: label_exemption,
    };
    let yaml = Install::new(&options).to_yaml()?;
    use std::io::Write as _;
    std::io::stdout()
        .lock()
        .write_all(yaml.as_bytes())
        .context("writing to standard output")?;
    Ok(Exit::Clean)
}

#[cfg(test)]
mod tests {
    use super::parse_kube_version;

    #[test]
    fn kube_versions_parse_as_major_and_minor() {
        assert_eq!(parse_kube_version("1.30"), Ok((1, 30)));
        assert_eq!(parse_kube_version("v1.28.3"), Ok((1, 28)));
        assert_eq!(parse_kube_version("1.27+"), Ok((1, 27)));
        assert!(parse_kube_version("latest").is_err());
        assert!(parse_kube_version("1").is_err());
    }
}
