//! `volguard convert`: a Deployment (from files, or read from the cluster) → the StatefulSet, its headless
//! Service, the retargeted HPA and the ordinal-0 claims as YAML, and the data plan as Markdown.
//!
//! The conversion is [`domain::convert`]; this module reads its input and writes its output. Nothing is
//! applied: the cluster is only read (GET and LIST, each bounded by `--cluster-timeout`).

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};

mod cluster;
mod files;

use super::Exit;
use crate::domain::convert::{
    self, ClassCapabilities, Conversion, ConvertError, Input, Options, PodManagement, TemplateMode,
    UnknownClasses,
};
use crate::domain::workload::DEFAULT_NAMESPACE;
use cluster::{DEFAULT_ON_FROM, read_cluster};
use files::read_files;

/// `volguard convert` flags.
#[derive(Clone, Debug, Args)]
pub struct ConvertArgs {
    /// Manifest files holding the Deployment, its claims and optionally their PersistentVolumes, an HPA
    /// and Services; `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "PATH", env = "VOLGUARD_FILENAME", num_args = 1..,
        required_unless_present = "cluster", conflicts_with = "cluster")]
    pub files: Vec<PathBuf>,
    /// Read the Deployment, its claims, their PersistentVolumes, HPAs and Services from the cluster
    /// (read-only).
    #[arg(long, env = "VOLGUARD_CONVERT_CLUSTER", requires = "name")]
    pub cluster: bool,
    /// The Deployment to convert (required with --cluster, or when the files hold several).
    #[arg(long, value_name = "NAME", env = "VOLGUARD_CONVERT_NAME")]
    pub name: Option<String>,
    /// The namespace: of the Deployment with --cluster, of objects that name none in files.
    #[arg(short = 'n', long, value_name = "NAME", env = "VOLGUARD_DEFAULT_NAMESPACE",
        default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// With --cluster: the kubeconfig (default: KUBECONFIG, then ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "PATH", env = "VOLGUARD_KUBECONFIG", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: the kubeconfig context.
    #[arg(long, value_name = "NAME", env = "VOLGUARD_CONTEXT", requires = "cluster")]
    pub context: Option<String>,
    /// With --cluster: how long reading the objects may take, in all.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_CLUSTER_TIMEOUT", default_value = "30s",
        value_parser = super::serve::parse_duration, requires = "cluster")]
    pub cluster_timeout: Duration,
    /// The access mode of the volumeClaimTemplates.
    #[arg(long, value_enum, env = "VOLGUARD_CONVERT_ACCESS_MODE", default_value_t = AccessMode::ReadWriteOnce)]
    pub access_mode: AccessMode,
    /// The StatefulSet's podManagementPolicy.
    #[arg(long, value_enum, env = "VOLGUARD_CONVERT_POD_MANAGEMENT_POLICY",
        default_value_t = PodManagementPolicy::OrderedReady)]
    pub pod_management_policy: PodManagementPolicy,
    /// Print only the data plan (Markdown), to standard output.
    #[arg(long, env = "VOLGUARD_CONVERT_PLAN_ONLY", conflicts_with_all = ["output_dir", "diff"])]
    pub plan_only: bool,
    /// Write statefulset.yaml and plan.md into this directory instead of printing them.
    #[arg(long, value_name = "DIR", env = "VOLGUARD_CONVERT_OUTPUT_DIR")]
    pub output_dir: Option<PathBuf>,
    /// Print a unified diff of the Deployment against the StatefulSet instead of the YAML.
    #[arg(long, env = "VOLGUARD_CONVERT_DIFF")]
    pub diff: bool,
}

/// `--access-mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum AccessMode {
    /// One node.
    ReadWriteOnce,
    /// One pod (Kubernetes 1.29+, CSI volumes).
    ReadWriteOncePod,
}

/// `--pod-management-policy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum PodManagementPolicy {
    /// One pod at a time, ordinal 0 first.
    OrderedReady,
    /// All pods at once.
    Parallel,
}

/// Runs `volguard convert`.
pub fn run(args: ConvertArgs) -> anyhow::Result<Exit> {
    let ConvertArgs {
        files,
        cluster,
        name,
        namespace,
        kubeconfig,
        context,
        cluster_timeout,
        access_mode,
        pod_management_policy,
        plan_only,
        output_dir,
        diff,
    } = args;
    let (input, before, minor) = if cluster {
        let name = name.as_deref().context("--cluster needs --name")?;
        read_cluster(
            kubeconfig.as_deref(),
            context.as_deref(),
            &namespace,
            name,
            cluster_timeout,
        )?
    } else {
        // Files name no server: written as for any current cluster.
        let (input, before) = read_files(&files, &namespace, name.as_deref())?;
        (input, before, None)
    };
    let current = minor.is_none_or(|m| m >= DEFAULT_ON_FROM);
    if access_mode == AccessMode::ReadWriteOncePod && !current {
        bail!(
            "--access-mode ReadWriteOncePod: this API server (1.{}) predates it (on by default from 1.{DEFAULT_ON_FROM}); \
             use ReadWriteOnce",
            minor.unwrap_or_default()
        );
    }
    let options = Options {
        mode: match access_mode {
            AccessMode::ReadWriteOnce => TemplateMode::ReadWriteOnce,
            AccessMode::ReadWriteOncePod => TemplateMode::ReadWriteOncePod,
        },
        pod_management: match pod_management_policy {
            PodManagementPolicy::OrderedReady => PodManagement::OrderedReady,
            PodManagementPolicy::Parallel => PodManagement::Parallel,
        },
        classes: classes(),
        retention_policy: current,
    };
    let conversion = match convert::convert(&input, &options) {
        Ok(c) => c,
        Err(e @ ConvertError::NothingPerReplica(_)) => {
            eprintln!("volguard convert: {e}; nothing written");
            return Ok(Exit::Clean);
        }
        Err(e) => return Err(e.into()),
    };
    let yaml = manifests(&conversion, &input)?;
    let plan = conversion.plan.to_markdown();
    let mut out = std::io::stdout().lock();
    if let Some(dir) = output_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let manifest = dir.join(convert::plan::MANIFEST_FILE);
        let plan_file = dir.join("plan.md");
        std::fs::write(&manifest, &yaml).with_context(|| format!("writing {}", manifest.display()))?;
        std::fs::write(&plan_file, &plan).with_context(|| format!("writing {}", plan_file.display()))?;
        writeln!(out, "wrote {} and {}", manifest.display(), plan_file.display())?;
        if diff {
            out.write_all(unified_diff(&before, &conversion)?.as_bytes())?;
        }
    } else if plan_only {
        out.write_all(plan.as_bytes())?;
    } else if diff {
        out.write_all(unified_diff(&before, &conversion)?.as_bytes())?;
        eprint!("{plan}");
    } else {
        out.write_all(yaml.as_bytes())?;
        eprint!("{plan}");
    }
    out.flush()?;
    Ok(Exit::Clean)
}

/// What each class can give: nothing known yet (the provisioner table of issue 17 plugs in here).
fn classes() -> &'static dyn ClassCapabilities {
    &UnknownClasses
}

/// The output documents, each after comments that say what it is and why it is so.
fn manifests(c: &Conversion, input: &Input) -> anyhow::Result<String> {
    let name = c.statefulset.metadata.name.as_deref().unwrap_or_default();
    let namespace = c.statefulset.metadata.namespace.as_deref().unwrap_or_default();
    let mut out = format!(
        "# volguard convert: Deployment {namespace}/{} to StatefulSet {name}.\n# Apply only as the plan says \
         (volguard convert --plan-only): the claims first, on the volumes the plan releases.\n",
        input.deployment.metadata.name.as_deref().unwrap_or_default()
    );
    for r in &c.rationale {
        out.push_str(&format!("# - {r}\n"));
    }
    let mut docs: Vec<(String, String)> = vec![("StatefulSet".into(), to_yaml(&c.statefulset)?)];
    if let Some(s) = &c.service {
        docs.push(("headless Service for serviceName".into(), to_yaml(s)?));
    }
    if let Some(reused) = &c.reused_service {
        out.push_str(&format!(
            "# serviceName: Service {reused} of the input (unchanged, not repeated here)\n"
        ));
    }
    for h in &c.autoscalers {
        docs.push(("HorizontalPodAutoscaler, retargeted".into(), to_yaml(h)?));
    }
    for claim in &c.ordinal_claims {
        docs.push((
            "claim of ordinal 0 (created in the plan's step before the StatefulSet)".into(),
            to_yaml(claim)?,
        ));
    }
    for (i, (what, yaml)) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&format!("# {what}\n{yaml}"));
        if !yaml.ends_with('\n') {
            out.push('\n');
        }
    }
    Ok(out)
}

fn to_yaml<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    serde_saphyr::to_string(value).context("writing YAML")
}

fn unified_diff(before: &serde_json::Value, c: &Conversion) -> anyhow::Result<String> {
    let before = to_yaml(before)?;
    let after = to_yaml(&c.statefulset)?;
    let name = c.statefulset.metadata.name.as_deref().unwrap_or_default();
    let text = similar::TextDiff::from_lines(&before, &after);
    let mut unified = text.unified_diff();
    unified
        .context_radius(3)
        .header(&format!("Deployment {name}"), &format!("StatefulSet {name}"));
    Ok(unified.to_string())
}
