//! `volguard convert`: a Deployment (from files, or read from the cluster) → the StatefulSet, its headless
//! Service, the retargeted HPA and the ordinal-0 claims as YAML, and the data plan as Markdown.
//!
//! The conversion is [`domain::convert`]; this module reads its input and writes its output. Nothing is
//! applied: the cluster is only read (GET and LIST, each bounded by `--cluster-timeout`).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};

use super::Exit;
use crate::adapters::manifest;
use crate::domain::convert::{
    self, ClassCapabilities, Conversion, ConvertError, Input, Options, PodManagement, TemplateMode,
    UnknownClasses,
};
use crate::domain::workload::DEFAULT_NAMESPACE;

/// Largest input file read.
const MAX_FILE_BYTES: u64 = 16 << 20;
/// Most Services or HPAs listed in the namespace.
const MAX_LISTED: u32 = 500;

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

/// The Deployment, its claims, volumes, HPAs and Services from files; the Deployment as written.
fn read_files(
    files: &[PathBuf],
    namespace: &str,
    name: Option<&str>,
) -> anyhow::Result<(Input, serde_json::Value)> {
    let mut input = Input::default();
    let mut deployments: Vec<(Deployment, serde_json::Value)> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for path in manifest::expand_paths(files) {
        let path = path?;
        check_size(&path)?;
        for doc in manifest::read_path(&path)? {
            let mut value = doc.value()?;
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            if value["metadata"]["namespace"].as_str().is_none_or(str::is_empty)
                && kind != "PersistentVolume"
                && let Some(meta) = value["metadata"].as_object_mut()
            {
                meta.insert("namespace".into(), namespace.into());
            }
            let at = || format!("{}: {kind}", doc.origin);
            match kind.as_str() {
                "Deployment" => {
                    let d: Deployment = serde_json::from_value(value.clone()).with_context(at)?;
                    deployments.push((d, value));
                }
                "PersistentVolumeClaim" => input
                    .claims
                    .push(serde_json::from_value::<PersistentVolumeClaim>(value).with_context(at)?),
                "PersistentVolume" => input
                    .volumes
                    .push(serde_json::from_value::<PersistentVolume>(value).with_context(at)?),
                "Service" => input
                    .services
                    .push(serde_json::from_value::<Service>(value).with_context(at)?),
                "HorizontalPodAutoscaler" => input.autoscalers.push(value),
                other => others.push(format!(
                    "{other} {}",
                    value["metadata"]["name"].as_str().unwrap_or("?")
                )),
            }
        }
    }
    let candidates: Vec<usize> = deployments
        .iter()
        .enumerate()
        .filter(|(_, (d, _))| name.is_none_or(|n| d.metadata.name.as_deref() == Some(n)))
        .map(|(i, _)| i)
        .collect();
    let names = || {
        deployments
            .iter()
            .filter_map(|(d, _)| d.metadata.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match (candidates.as_slice(), name) {
        ([i], _) => *i,
        ([], Some(n)) if !deployments.is_empty() => {
            bail!("no Deployment named {n} in the input (it holds {})", names())
        }
        ([], _) => bail!(
            "the input holds no Deployment{}: volguard convert converts a Deployment into a StatefulSet",
            if others.is_empty() {
                String::new()
            } else {
                format!(" (it holds {})", others.join(", "))
            }
        ),
        (_, _) => bail!(
            "the input holds several Deployments ({}): choose one with --name",
            names()
        ),
    };
    let (deployment, before) = deployments.swap_remove(index);
    input.deployment = deployment;
    Ok((input, before))
}

fn check_size(path: &Path) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{}: {len} bytes, over the {MAX_FILE_BYTES}-byte limit of one input file",
            path.display()
        );
    }
    Ok(())
}

/// The Deployment and what surrounds it, read from the cluster within `timeout`, and the server's minor
/// version.
fn read_cluster(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(Input, serde_json::Value, Option<u32>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async {
        let client = crate::adapters::kube_lookup::client(kubeconfig, context)
            .await
            .context("connecting to the cluster (--kubeconfig, --context)")?;
        let read = async {
            let version = client
                .apiserver_version()
                .await
                .context("reading the API server's version")?;
            let (input, before) = cluster_input(client, namespace, name).await?;
            anyhow::Ok((input, before, server_minor(&version.major, &version.minor)))
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            anyhow::anyhow!(
                "reading Deployment {namespace}/{name} and its claims took over {}s (--cluster-timeout)",
                timeout.as_secs()
            )
        })?
    })
}

/// The server's minor version when it is a 1.x (`None`: unknown, taken as current). Minor versions may
/// carry a suffix (`27+` on some managed clusters).
fn server_minor(major: &str, minor: &str) -> Option<u32> {
    if major != "1" {
        return None;
    }
    minor.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
}

/// Both `persistentVolumeClaimRetentionPolicy` (alpha in 1.23) and `ReadWriteOncePod` (alpha in 1.22) are
/// on by default from 1.27; before, kubectl refuses the field by the server's schema and the server the mode.
const DEFAULT_ON_FROM: u32 = 27;

async fn cluster_input(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<(Input, serde_json::Value)> {
    use kube::Api;
    use kube::api::ListParams;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments
        .get_opt(name)
        .await
        .with_context(|| format!("reading Deployment {namespace}/{name}"))?
        .with_context(|| format!("Deployment {namespace}/{name} not found"))?;
    let mut before = serde_json::to_value(&deployment)?;
    if let Some(meta) = before["metadata"].as_object_mut() {
        meta.remove("managedFields");
    }
    if let Some(obj) = before.as_object_mut() {
        obj.remove("status");
    }
    let mut input = Input {
        deployment,
        ..Input::default()
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let claim_names: Vec<String> = input
        .deployment
        .spec
        .iter()
        .flat_map(|s| s.template.spec.iter())
        .flat_map(|p| p.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
        .collect();
    for claim_name in claim_names {
        let Some(claim) = claims
            .get_opt(&claim_name)
            .await
            .with_context(|| format!("reading claim {namespace}/{claim_name}"))?
        else {
            continue;
        };
        let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        if let Some(volume_name) = volume_name.filter(|v| !v.is_empty())
            && let Some(pv) = volumes
                .get_opt(&volume_name)
                .await
                .with_context(|| format!("reading PersistentVolume {volume_name}"))?
        {
            input.volumes.push(pv);
        }
        input.claims.push(claim);
    }
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    input.services = services
        .list(&ListParams::default().limit(MAX_LISTED))
        .await
        .with_context(|| format!("listing Services in {namespace}"))?
        .items;
    input.autoscalers = autoscalers(&client, namespace).await?;
    Ok((input, before))
}

/// The namespace's HPAs in the newest `autoscaling` version the server serves (v2, then v2beta2, then v1),
/// so no metric is lost in a version's translation.
async fn autoscalers(client: &kube::Client, namespace: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
    for version in ["v2", "v2beta2", "v1"] {
        let gvk = GroupVersionKind::gvk("autoscaling", version, "HorizontalPodAutoscaler");
        let resource = ApiResource::from_gvk(&gvk);
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), namespace, &resource);
        match api.list(&ListParams::default().limit(MAX_LISTED)).await {
            Ok(list) => {
                let mut out = Vec::new();
                for item in list.items {
                    let mut value = serde_json::to_value(&item)?;
                    value["apiVersion"] = format!("autoscaling/{version}").into();
                    value["kind"] = "HorizontalPodAutoscaler".into();
                    out.push(value);
                }
                return Ok(out);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e).context("listing HorizontalPodAutoscalers"),
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions_are_read_with_their_suffixes() {
        assert_eq!(server_minor("1", "20"), Some(20));
        assert_eq!(server_minor("1", "27+"), Some(27));
        assert_eq!(server_minor("2", "0"), None);
        assert_eq!(server_minor("1", ""), None);
    }
}
