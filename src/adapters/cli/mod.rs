//! The command line: `volguard <command>`, parsed with clap derive.
//!
//! Each subcommand is one variant of [`Command`] with its own args struct and module; shared flag groups
//! ([`LogArgs`]) are flattened in. Every flag has a `VOLGUARD_*` environment twin. Only `main.rs` installs
//! the tracing subscriber, from [`LogArgs`] and [`Command::default_log_level`].

pub mod audit;
pub mod certs;
pub mod check;
pub mod convert;
mod input;
mod junit;
pub mod manifests;
mod render;
mod report;
pub mod review;
mod rule_docs;
mod sarif;
pub mod serve;
pub mod unregister;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub(crate) use audit::AuditArgs;
pub(crate) use certs::CertsArgs;
pub(crate) use check::CheckArgs;
pub use check::check;
pub(crate) use convert::ConvertArgs;
pub(crate) use manifests::ManifestsArgs;
pub use report::{Stage, Summary};
pub(crate) use review::ReviewArgs;
pub(crate) use serve::ServeArgs;
pub(crate) use unregister::UnregisterArgs;

use crate::domain::workload::ObjectLimits;

/// What one object may ask of a decision (`serve` and `check` alike): over a limit the object is not
/// judged, and the answer names the limit and its flag.
#[derive(Clone, Copy, Debug, Args)]
pub struct ObjectLimitArgs {
    /// Containers (init and ephemeral ones included) in one object's pod spec.
    #[arg(long, value_name = "N", env = "VOLGUARD_MAX_CONTAINERS", default_value_t = ObjectLimits::default().containers)]
    pub max_containers: usize,
    /// Volumes (and volumeClaimTemplates) in one object.
    #[arg(long, value_name = "N", env = "VOLGUARD_MAX_VOLUMES", default_value_t = ObjectLimits::default().volumes)]
    pub max_volumes: usize,
    /// Volume mounts of all containers of one object together.
    #[arg(long, value_name = "N", env = "VOLGUARD_MAX_VOLUME_MOUNTS", default_value_t = ObjectLimits::default().mounts)]
    pub max_volume_mounts: usize,
    /// JSON values in one object (managedFields aside), counted in review bodies over 128 KiB before
    /// decoding (`serve` only).
    #[arg(long, value_name = "N", env = "VOLGUARD_MAX_OBJECT_VALUES", default_value_t = ObjectLimits::default().values)]
    pub max_object_values: usize,
}

impl From<ObjectLimitArgs> for ObjectLimits {
    fn from(a: ObjectLimitArgs) -> Self {
        Self {
            containers: a.max_containers,
            volumes: a.max_volumes,
            mounts: a.max_volume_mounts,
            values: a.max_object_values,
        }
    }
}

/// volguard: volume and workload policy for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "volguard", version, about, propagate_version = true)]
pub struct Cli {
    /// Logging (to standard error).
    #[command(flatten)]
    pub log: LogArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The name kubectl runs volguard under as a plugin: `kubectl volguard check …` executes the first
/// `kubectl-volguard` on PATH (a link to, or a copy of, this binary).
pub const KUBECTL_PLUGIN: &str = "kubectl-volguard";

impl Cli {
    /// Parses the process's arguments, exiting on a usage error (status 2). Called as
    /// [`KUBECTL_PLUGIN`], help and usage say `kubectl volguard`, the command the user typed.
    pub fn parse_args() -> Self {
        let mut args = std::env::args_os();
        let as_plugin = args
            .next()
            .is_some_and(|argv0| std::path::Path::new(&argv0).file_stem() == Some(KUBECTL_PLUGIN.as_ref()));
        let mut command = <Self as clap::CommandFactory>::command();
        if as_plugin {
            command = command.bin_name("kubectl volguard");
        }
        let matches = command.get_matches();
        <Self as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// The subcommands. A new one is a variant here, an args struct and a module of its own.
#[derive(Debug, Subcommand)]
// One Command is parsed per process and consumed at once: its size costs nothing worth a Box.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Check manifest files against the policy, offline: no cluster is contacted.
    ///
    /// Exit status: 0 nothing denied, 1 something denied (or warned, with --strict), 2 usage or input
    /// error (the rest is still checked and reported).
    Check(CheckArgs),
    /// Convert a Deployment into a StatefulSet: its per-replica claims as volumeClaimTemplates, a headless
    /// Service, the HPA retargeted, and the data plan that moves today's data to ordinal 0. Nothing is
    /// applied.
    ///
    /// Writes the YAML to standard output and the plan to standard error (or --plan-only, --output-dir,
    /// --diff). Exit status: 0 converted (or nothing to convert: no claim needs one per replica, said on
    /// standard error), 2 usage or input error (no Deployment, a claim missing from the input).
    Convert(ConvertArgs),
    /// Judge every workload already in the cluster, as the webhook would judge it, and report like check;
    /// with --write-reports, keep one policy report per namespace.
    ///
    /// Exit status: 0 nothing denied, 1 something denied (or warned, with --strict), 2 usage error, an
    /// object that could not be judged, or reports that could not be written.
    Audit(AuditArgs),
    /// Serve the HTTPS admission webhook (/validate, /mutate), with /healthz, /readyz and /metrics.
    Serve(ServeArgs),
    /// Answer one captured AdmissionReview request offline, as the webhook would.
    Review(ReviewArgs),
    /// Print the install (namespace, RBAC, Deployment, Service, webhook configurations) as plain YAML for
    /// `kubectl apply -f -`: the same objects as the Helm chart in charts/volguard.
    Manifests(ManifestsArgs),
    /// Make a CA and a serving certificate for the webhook's Service, with the caBundle in base64.
    ///
    /// Writes ca.crt, tls.crt, tls.key (mode 0600) and ca.b64 into --out; prints the caBundle.
    Certs(CertsArgs),
    /// Delete volguard's webhook configurations, so the API server stops calling it: what to run before
    /// removing volguard (the chart's pre-delete hook does).
    Unregister(UnregisterArgs),
}

impl Command {
    /// The log level used when `--log-level`/`VOLGUARD_LOG` is not given: a one-shot command keeps
    /// standard error quiet, a server will want `info`.
    pub fn default_log_level(&self) -> &'static str {
        match self {
            Command::Check(_)
            | Command::Convert(_)
            | Command::Audit(_)
            | Command::Review(_)
            | Command::Manifests(_)
            | Command::Certs(_) => "warn",
            Command::Unregister(_) => "info",
            Command::Serve(_) => "info",
        }
    }

    /// Runs the command. `Err` is an unexpected failure (such as standard output closing); findings and
    /// input errors are part of the command's result, not errors.
    pub fn run(self) -> anyhow::Result<Exit> {
        match self {
            Command::Check(args) => check::run(args),
            Command::Convert(args) => convert::run(args),
            Command::Audit(args) => audit::run(args),
            Command::Serve(args) => serve::run(args),
            Command::Review(args) => review::run(args),
            Command::Manifests(args) => manifests::run(args),
            Command::Certs(args) => certs::run(args),
            Command::Unregister(args) => unregister::run(args),
        }
    }
}

/// How a command ended, as the process exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// 0: nothing to object to.
    Clean,
    /// 1: something was denied (or warned, under `--strict`).
    Denied,
    /// 2: a usage or input error: something could not be read, decoded or judged.
    Usage,
}

impl Exit {
    /// The numeric exit status.
    pub fn code(self) -> u8 {
        match self {
            Exit::Clean => 0,
            Exit::Denied => 1,
            Exit::Usage => 2,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}

/// Logging flags, shared by every subcommand.
#[derive(Clone, Debug, Args)]
pub struct LogArgs {
    /// Log filter: a level (error, warn, info, debug, trace) or tracing directives such as
    /// `volguard=debug`. Default: info for serve, warn otherwise.
    #[arg(long, env = "VOLGUARD_LOG", global = true, value_parser = parse_log_filter)]
    pub log_level: Option<String>,
    /// Log line format.
    #[arg(long, env = "VOLGUARD_LOG_FORMAT", global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[value(alias = "plain")]
    Text,
    /// One JSON object per line.
    Json,
}

/// Rejects a filter tracing would not accept, so a typo is a usage error rather than silence.
fn parse_log_filter(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::builder()
        .parse(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn log_flags_are_accepted_after_the_subcommand() {
        let cli = Cli::try_parse_from([
            "volguard",
            "check",
            "-f",
            "x.yaml",
            "--log-level",
            "debug",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(cli.log.log_level.as_deref(), Some("debug"));
        assert_eq!(cli.log.log_format, LogFormat::Json);
        assert_eq!(cli.command.default_log_level(), "warn");
    }

    #[test]
    fn a_malformed_log_filter_is_a_usage_error() {
        let err = Cli::try_parse_from(["volguard", "--log-level", "volguard=loud", "check", "-f", "x"])
            .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
    }

    #[test]
    fn exit_codes() {
        assert_eq!(
            [Exit::Clean, Exit::Denied, Exit::Usage].map(Exit::code),
            [0, 1, 2]
        );
    }
}
