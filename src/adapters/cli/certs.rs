//! `volguard certs`: a CA and a serving certificate for the names the API server dials for a Service,
//! written as `ca.crt`, `tls.crt`, `tls.key` (0600) and `ca.b64` (the webhooks' caBundle).
//!
//! The CA's private key is not kept: a new serving certificate means a new CA and a new caBundle.

use std::path::PathBuf;

use anyhow::Context as _;
use base64::Engine as _;
use clap::Args;

use super::Exit;
use crate::adapters::certs::{self, Ca};
use crate::adapters::install::service_dns_names;

/// `volguard certs` flags.
#[derive(Clone, Debug, Args)]
pub struct CertsArgs {
    /// Directory for ca.crt, tls.crt, tls.key and ca.b64 (created if missing).
    #[arg(long, env = "VOLGUARD_CERTS_OUT")]
    pub out: PathBuf,
    /// The webhook's Service name.
    #[arg(long, env = "VOLGUARD_SERVICE")]
    pub service: String,
    /// The Service's namespace.
    #[arg(long, env = "VOLGUARD_NAMESPACE")]
    pub namespace: String,
    /// Validity of the CA and the certificate, in days.
    #[arg(long, env = "VOLGUARD_CERT_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
    /// Also issue, from the same CA, a client certificate for the API server to present
    /// (`apiserver-client.crt`, `apiserver-client.key`): serve with `--client-ca ca.crt` and give the pair
    /// to the API server through an AdmissionConfiguration (README, "Limits and hardening").
    #[arg(long, env = "VOLGUARD_API_SERVER_CLIENT")]
    pub api_server_client: bool,
}

/// Writes the files, prints the base64 CA bundle on standard output and the file list on standard error.
pub fn run(args: CertsArgs) -> anyhow::Result<Exit> {
    let CertsArgs {
        out,
        service,
        namespace,
        days,
        api_server_client,
    } = args;
    let sans = service_dns_names(&service, &namespace);
    let ca = Ca::generate(&format!("volguard CA for {service}.{namespace}"), days)?;
    let issued = ca.issue(&format!("{service}.{namespace}.svc"), &sans, days)?;
    let written = certs::write(&out, &issued)?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(issued.ca_pem.as_bytes());
    let b64_path = out.join("ca.b64");
    std::fs::write(&b64_path, format!("{b64}\n"))
        .with_context(|| format!("writing {}", b64_path.display()))?;
    eprintln!(
        "volguard: wrote {} (CA), {} and {} (serving pair for {}), {} (caBundle)",
        written.ca.display(),
        written.cert.display(),
        written.key.display(),
        sans.join(", "),
        b64_path.display()
    );
    if api_server_client {
        let client = ca.issue_client("kube-apiserver", days)?;
        let (cert, key) = certs::write_client(&out, &client)?;
        eprintln!(
            "volguard: wrote {} and {} (client pair for the API server; serve with --client-ca {})",
            cert.display(),
            key.display(),
            written.ca.display()
        );
    }
    println!("{b64}");
    Ok(Exit::Clean)
}
