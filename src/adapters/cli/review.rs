//! `volguard review`: one AdmissionReview request in, the response the server would send out, through the
//! server's own admission code, so a captured request can be replayed offline.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::Exit;
use crate::adapters::admission;
use crate::domain::policy::{PolicySet, load_path};
use crate::domain::workload::DEFAULT_NAMESPACE;

/// `volguard review` flags.
#[derive(Clone, Debug, Args)]
pub struct ReviewArgs {
    /// The AdmissionReview request (JSON); `-` or nothing reads standard input.
    #[arg(value_name = "FILE", default_value = "-")]
    pub file: PathBuf,
    /// Answer as the mutating webhook (/mutate) instead of the validating one.
    #[arg(long, env = "VOLGUARD_MUTATE")]
    pub mutate: bool,
    /// A VolumePolicy file, or a directory of them; default: the built-in policy.
    #[arg(long, env = "VOLGUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Manifest files with the claims and workloads the review refers to (no cluster is contacted).
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        env = "VOLGUARD_FILENAME"
    )]
    pub objects: Vec<PathBuf>,
    /// The namespace of the objects in `-f` files that name none (as kubectl's `--namespace`).
    #[arg(short = 'n', long, value_name = "NAME", env = "VOLGUARD_DEFAULT_NAMESPACE", default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
}

/// Prints the AdmissionReview response; exits 0 when allowed, 1 when denied, 2 when unreadable.
pub fn run(args: ReviewArgs) -> anyhow::Result<Exit> {
    let ReviewArgs {
        file,
        mutate,
        policy,
        objects,
        namespace,
    } = args;
    let body = if file.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the review from standard input")?;
        buf
    } else {
        std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
    };
    let policies = match &policy {
        Some(p) => load_path(p).with_context(|| format!("loading the policy from {}", p.display()))?,
        None => PolicySet::builtin().context("loading the built-in policy")?,
    };
    let bundle =
        crate::adapters::manifest::read_bundle(&objects, &namespace).context("reading the object files")?;
    let review = match admission::parse(&body) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e} (the server answers this with HTTP 400)");
            return Ok(Exit::Usage);
        }
    };
    let outcome = if mutate {
        admission::mutate(&review, &bundle, &policies)
    } else {
        admission::validate(&review, &bundle, &policies)
    };
    let allowed = outcome.response.allowed;
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &admission::response::answer(&outcome.response))
        .context("writing the response")?;
    writeln!(out).context("writing the response")?;
    Ok(if allowed { Exit::Clean } else { Exit::Denied })
}
