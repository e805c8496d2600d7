//! `volguard check`: manifest files → decode → one bundle of claims and workloads → `decision::evaluate`
//! for every object → a [`Report`] → text, JSON, YAML, SARIF or JUnit XML, and an exit code.
//!
//! Nothing here decides anything: the decision is [`decision::evaluate`], the same one the webhook makes,
//! with the claims and workloads of the checked files standing in for the cluster.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use rayon::prelude::*;

use super::report::{ClaimReport, InputError, ObjectReport, Report, SkippedObject, Stage};
use super::{Exit, ObjectLimitArgs, input, render};
use crate::adapters::kube_lookup::{self, ClusterLookup};
use crate::adapters::manifest::walk::{self, Exclude};
use crate::adapters::manifest::{Document, WrittenName};
use crate::decision::mutate::{self, Mutation, Stage as MutateStage};
use crate::domain::lookup::{Answer, Bundle, FilesThenCluster, Lookup};
use crate::domain::policy::{self, PolicySet};
use crate::domain::workload::{DEFAULT_NAMESPACE, DecodeError, Decoded, ObjectLimits, Resource};

/// `volguard check` flags.
#[derive(Clone, Debug, Args)]
pub struct CheckArgs {
    /// Manifest files or directories to check (directories recursively: .yaml, .yml, .json); `-` reads
    /// standard input. Repeat the flag or list several paths.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "PATH",
        env = "VOLGUARD_FILENAME",
        required_unless_present = "paths",
        num_args = 1..
    )]
    pub files: Vec<PathBuf>,
    /// More paths, as `-f` takes them: what pre-commit and xargs append after the other flags.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Leave out the files and directories this glob matches (repeatable): with a `/`, matched against
    /// the path (`vendor/**`); without, against each name (`*.test.yaml`).
    #[arg(long, value_name = "GLOB", env = "VOLGUARD_EXCLUDE",
        value_parser = parse_exclude)]
    pub exclude: Vec<globset::Glob>,
    /// The policy and the report, as `audit` takes them.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Also look claims, scale targets and the workloads mounting a claim up in the live cluster
    /// (read-only: list and watch only), for whatever the files do not hold.
    #[arg(long, env = "VOLGUARD_CHECK_CLUSTER")]
    pub cluster: bool,
    /// With --cluster: the kubeconfig (default: KUBECONFIG, then ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "PATH", env = "VOLGUARD_KUBECONFIG", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: the kubeconfig context.
    #[arg(long, value_name = "NAME", env = "VOLGUARD_CONTEXT", requires = "cluster")]
    pub context: Option<String>,
    /// With --cluster: how long to wait for the cluster's claims and workloads to be listed.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_CLUSTER_TIMEOUT", default_value = "30s",
        value_parser = super::serve::parse_duration, requires = "cluster")]
    pub cluster_timeout: std::time::Duration,
    /// Make the policies' repairs (`spec.mutate`) as the mutating webhook would when the objects are
    /// created (updated, for workloads --cluster finds), then judge the repaired objects. With `-o yaml`,
    /// print the repaired manifests, ready for `kubectl apply -f -`, and the report on standard error.
    #[arg(long, env = "VOLGUARD_MUTATE")]
    pub mutate: bool,
    /// Print, for every object a repair changes, the JSON patch and a unified diff of its YAML (implies
    /// --mutate).
    #[arg(long, env = "VOLGUARD_DIFF")]
    pub diff: bool,
    /// The namespace of objects that name none (or name `""`), as kubectl's `--namespace`.
    #[arg(short = 'n', long, value_name = "NAME", env = "VOLGUARD_DEFAULT_NAMESPACE",
        default_value = DEFAULT_NAMESPACE)]
    pub namespace: String,
    /// What one object may ask of a decision: as `serve` has it, so a manifest check passes for what the
    /// webhook will judge.
    #[command(flatten)]
    pub object_limits: ObjectLimitArgs,
}

/// `-o`: how the report is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// For people: findings with their fixes, then a summary line.
    Text,
    /// For machines: the whole report as one JSON document.
    Json,
    /// The JSON document's structure, as YAML.
    Yaml,
    /// SARIF 2.1.0, for code scanning (GitHub, GitLab, Azure DevOps): every finding at its file and line.
    Sarif,
    /// JUnit XML, for CI test reports: a test suite per file, a test case per object.
    Junit,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// Colour when writing to a terminal, unless NO_COLOR is set.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

impl From<ColorWhen> for anstream::ColorChoice {
    fn from(c: ColorWhen) -> Self {
        match c {
            ColorWhen::Auto => anstream::ColorChoice::Auto,
            ColorWhen::Always => anstream::ColorChoice::Always,
            ColorWhen::Never => anstream::ColorChoice::Never,
        }
    }
}

/// The flags `check` and `audit` share: the policy judged with, and how the report is written.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportArgs {
    /// A VolumePolicy file, or a directory of them; default: the built-in policy.
    #[arg(long, value_name = "PATH", env = "VOLGUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, env = "VOLGUARD_OUTPUT", default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
    /// Fail (exit 1) on warnings too, not only on denials.
    #[arg(long, env = "VOLGUARD_STRICT")]
    pub strict: bool,
    /// Text output: also list objects without findings, and the skipped ones.
    #[arg(short, long, env = "VOLGUARD_VERBOSE")]
    pub verbose: bool,
    /// When to colour text output; `auto` colours a terminal only, and honours NO_COLOR.
    #[arg(long, value_enum, env = "VOLGUARD_COLOR", default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

/// Runs `volguard check`.
pub fn run(args: CheckArgs) -> anyhow::Result<Exit> {
    let CheckArgs {
        mut files,
        paths,
        exclude,
        report:
            ReportArgs {
                policy,
                output,
                strict,
                verbose,
                color,
            },
        cluster,
        kubeconfig,
        context,
        cluster_timeout,
        mutate,
        diff,
        namespace,
        object_limits,
    } = args;
    let mutate = mutate || diff;
    files.extend(paths);
    let policies = match load_policies(policy.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            // `file:line:column: message`: nothing can be judged without the policy.
            render::error_line(&e.to_string(), color.into()).context("writing to standard error")?;
            return Ok(Exit::Usage);
        }
    };
    let exclude = match Exclude::new(&exclude) {
        Ok(e) => e,
        Err(e) => {
            render::error_line(&format!("--exclude: {e}"), color.into())
                .context("writing to standard error")?;
            return Ok(Exit::Usage);
        }
    };
    let options = Options {
        strict,
        mutate,
        namespace,
        limits: object_limits.into(),
        exclude,
    };
    let (report, documents) = if cluster {
        let connected = connect(kubeconfig.as_deref(), context.as_deref(), cluster_timeout);
        match connected {
            Ok((_runtime, lookup, _client)) => run_check(&files, &policies, options, Some(&lookup)),
            Err(e) => {
                render::error_line(&format!("{e:#}"), color.into()).context("writing to standard error")?;
                return Ok(Exit::Usage);
            }
        }
    } else {
        run_check(&files, &policies, options, None)
    };
    tracing::info!(
        objects = report.summary.objects,
        denied = report.summary.denied,
        warned = report.summary.warned,
        claims = report.summary.claims,
        input_errors = report.summary.input_errors,
        "Check finished"
    );
    let written = if diff {
        render::diff(&report, &documents, color.into())
    } else if mutate && output == OutputFormat::Yaml {
        render::manifests(&report, &documents, verbose, color.into())
    } else {
        render::write(&report, output, verbose, color.into())
    };
    match written {
        // `volguard check … | head`: the reader has seen enough; the verdict stands.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.context("writing the report")?,
    }
    Ok(report.exit())
}

/// `--exclude GLOB`: a glob whose `*` stays within one name.
fn parse_exclude(s: &str) -> Result<globset::Glob, String> {
    walk::parse_glob(s).map_err(|e| e.to_string())
}

pub(super) fn load_policies(path: Option<&Path>) -> Result<PolicySet, policy::LoadError> {
    match path {
        Some(p) => policy::load_path(p),
        None => PolicySet::builtin(),
    }
}

/// Connects to the cluster and waits, at most `timeout`, for the first full list of its claims,
/// Deployments, StatefulSets and ReplicaSets.
///
/// The same watch-fed caches as the webhook, rather than one GET per name: `claim-breaks-workloads` needs
/// every workload that mounts a claim, which only a list can tell, and a dry run over many files then costs
/// four LISTs, whatever the number of objects. The runtime is returned because it owns the watches; the
/// check reads the caches synchronously.
pub(super) fn connect(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    timeout: std::time::Duration,
) -> anyhow::Result<(tokio::runtime::Runtime, ClusterLookup, kube::Client)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting tokio")?;
    let lookup = runtime.block_on(async {
        let client = kube_lookup::client(kubeconfig, context)
            .await
            .context("connecting to the cluster (--kubeconfig, --context)")?;
        // Reads only; a dry run never needs a cache miss fetched (the caches hold everything).
        let lookup = ClusterLookup::start(client.clone(), std::time::Duration::from_secs(5));
        match tokio::time::timeout(timeout, lookup.wait_synced()).await {
            Ok(true) => Ok((lookup, client)),
            Ok(false) => anyhow::bail!("the cluster caches stopped before their first sync"),
            Err(_) => anyhow::bail!(
                "the cluster's claims and workloads were not listed within {}s (volguard needs list and watch on \
                 persistentvolumeclaims, deployments, statefulsets and replicasets in all namespaces; {} watch \
                 errors so far, see --log-level debug)",
                timeout.as_secs(),
                lookup.watch_errors()
            ),
        }
    })?;
    Ok((runtime, lookup.0, lookup.1))
}

/// Checks manifest files: every claim and workload in any of them is visible to every object, so a claim
/// in another file is found, as it would be in the cluster.
pub fn check(files: &[PathBuf], policies: &PolicySet, strict: bool) -> Report {
    check_against(files, policies, strict, None)
}

/// [`check`], looking up in `cluster` what the files do not hold. A claim in the files is then also judged
/// by the cluster's workloads that mount it (`claim-breaks-workloads`), and reported as an object when it
/// has findings.
pub(crate) fn check_against(
    files: &[PathBuf],
    policies: &PolicySet,
    strict: bool,
    cluster: Option<&dyn Lookup>,
) -> Report {
    let options = Options {
        strict,
        ..Options::default()
    };
    run_check(files, policies, options, cluster).0
}

/// How a check runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// Warnings fail the run.
    pub strict: bool,
    /// Make the policies' repairs first, and judge the repaired objects.
    pub mutate: bool,
    /// The namespace of objects that name none.
    pub namespace: String,
    /// What one object may ask of a decision; an object over a limit is an input error, not judged.
    pub limits: ObjectLimits,
    /// The paths `--exclude` leaves out.
    pub exclude: Exclude,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            strict: false,
            mutate: false,
            namespace: DEFAULT_NAMESPACE.to_owned(),
            limits: ObjectLimits::default(),
            exclude: Exclude::default(),
        }
    }
}

/// One input document after `--mutate`, for the manifests and the diff.
#[derive(Clone, Debug)]
pub struct OutputDocument {
    /// Where it came from.
    pub origin: crate::adapters::manifest::Origin,
    /// As written.
    pub before: serde_json::Value,
    /// As repaired, when a repair changed it.
    pub after: Option<serde_json::Value>,
}

/// [`check_against`] with every option; with `mutate`, also every input document (repaired where a policy
/// repairs it), in input order.
pub fn run_check(
    files: &[PathBuf],
    policies: &PolicySet,
    options: Options,
    cluster: Option<&dyn Lookup>,
) -> (Report, Vec<OutputDocument>) {
    let input = input::read(files, &options.exclude);
    let mut errors = input.errors;
    // The documents as written are kept only when they are to be repaired and printed.
    let mut documents = if options.mutate {
        as_written(&input.documents, &mut errors)
    } else {
        Vec::new()
    };
    let (mut resources, skipped) = decode_all(input.documents, &options, &mut errors);
    // Every object stands for the cluster: a claim's other users, an HPA's target and the workloads an
    // affinity term selects are all looked up.
    let bundle: Bundle = resources.iter().map(|(_, _, r)| r.as_ref()).collect();
    let both;
    let lookup: &dyn Lookup = match cluster {
        Some(c) => {
            both = FilesThenCluster::new(&bundle, c);
            &both
        }
        None => &bundle,
    };
    let repaired = if options.mutate {
        repair_all(
            &mut resources,
            &mut documents,
            lookup,
            policies,
            cluster,
            &mut errors,
        )
    } else {
        vec![None; resources.len()]
    };
    let (objects, claims) = judge_all(&resources, &repaired, lookup, policies, cluster, &mut errors);
    // Errors in input order: files in the order read, then by place in the file (whole-file errors first).
    let rank = |e: &InputError| {
        let file = input.files.iter().position(|f| *f == e.origin.file);
        (file, e.origin.document, e.origin.item, e.at.map(|p| p.line))
    };
    errors.sort_by_key(rank);
    let documents = documents.into_iter().flatten().collect();
    (
        Report::new(objects, claims, skipped, errors, options.strict),
        documents,
    )
}

/// A decoded object to judge: its document's index, where it was written, and the object.
type Judged = (usize, crate::adapters::manifest::Origin, Box<Resource>);

/// Each document as written, for `--mutate` to print repaired (one entry per document, None when it
/// could not be read again, so a resource finds its own by index).
fn as_written(documents: &[Document], errors: &mut Vec<InputError>) -> Vec<Option<OutputDocument>> {
    documents
        .iter()
        .map(|d| match d.value() {
            // Parsed once already; parsed again here only for what is printed.
            Ok(before) => Some(OutputDocument {
                origin: d.origin.clone(),
                before,
                after: None,
            }),
            Err(e) => {
                errors.push(InputError {
                    origin: (&d.origin).into(),
                    stage: Stage::Parse,
                    at: None,
                    object: None,
                    message: e.to_string(),
                });
                None
            }
        })
        .collect()
}

/// Decodes every document (spread over the cores, in order), defaults namespaces, and sets aside what
/// is not judged: kinds volguard does not read, and objects over the limits.
fn decode_all(
    documents: Vec<Document>,
    options: &Options,
    errors: &mut Vec<InputError>,
) -> (Vec<Judged>, Vec<SkippedObject>) {
    let mut resources = Vec::new();
    let mut skipped = Vec::new();
    let decoded: Vec<Decode> = documents.into_par_iter().map(decode_document).collect();
    for (index, d) in decoded.into_iter().enumerate() {
        match d {
            Decode::Resource(origin, mut r) => {
                r.default_namespace(&options.namespace);
                if let Err(exceeded) = options.limits.check_resource(&r) {
                    errors.push(InputError {
                        origin: (&origin).into(),
                        stage: Stage::Evaluate,
                        at: None,
                        object: Some(r.object_ref().to_string()),
                        message: format!("not judged: {exceeded}"),
                    });
                    continue;
                }
                resources.push((index, origin, r));
            }
            Decode::Skipped(s) => skipped.push(s),
            Decode::Error(e) => errors.push(e),
        }
    }
    (resources, skipped)
}

/// `--mutate`: repairs each object whose document could be read again, replacing it by the repaired
/// object (which is what gets judged) and recording the patched document; the mutation per object.
fn repair_all(
    resources: &mut [Judged],
    documents: &mut [Option<OutputDocument>],
    lookup: &dyn Lookup,
    policies: &PolicySet,
    cluster: Option<&dyn Lookup>,
    errors: &mut Vec<InputError>,
) -> Vec<Option<Mutation>> {
    let mut repaired: Vec<Option<Mutation>> = vec![None; resources.len()];
    for ((index, origin, resource), repaired) in resources.iter_mut().zip(repaired.iter_mut()) {
        let Some(Some(doc)) = documents.get_mut(*index) else {
            continue;
        };
        match repair(&doc.before, resource, lookup, policies, cluster) {
            Ok(Some((mutation, fixed))) => {
                *resource = fixed;
                doc.after = mutation.object.clone();
                *repaired = Some(mutation);
            }
            Ok(None) => {}
            Err(e) => errors.push(InputError {
                origin: (&*origin).into(),
                stage: Stage::Mutate,
                at: None,
                object: Some(resource.object_ref().to_string()),
                message: e,
            }),
        }
    }
    repaired
}

/// Judges every object (spread over the cores): an object the cluster already has as an update of it,
/// ratcheted as the webhook ratchets; a claim only against the cluster's workloads (without a cluster,
/// every workload that mounts it is in the files and judged there).
fn judge_all(
    resources: &[Judged],
    repaired: &[Option<Mutation>],
    lookup: &dyn Lookup,
    policies: &PolicySet,
    cluster: Option<&dyn Lookup>,
    errors: &mut Vec<InputError>,
) -> (Vec<ObjectReport>, Vec<ClaimReport>) {
    let judged: Vec<Judge> = resources
        .par_iter()
        .zip(repaired.par_iter())
        .map(|((_, origin, resource), repaired)| {
            let judge = || match cluster.and_then(|c| in_cluster(resource, c)) {
                Some(old) => crate::decision::evaluate_update(resource, &old, lookup, policies),
                None => crate::decision::evaluate(resource, lookup, policies),
            };
            if let Resource::Claim(claim) = resource.as_ref() {
                let report = ClaimReport::new(origin, claim);
                // Offline, the workloads in the files report how they share the claim; the claim itself
                // reports only what it alone gets wrong (a mode its class cannot give), and what its
                // judging does (a skip that cannot be honoured), as the webhook would.
                let judged = judge().ok().map(|mut evaluation| {
                    if cluster.is_none() {
                        evaluation
                            .findings
                            .retain(|j| CLAIM_ALONE.contains(&j.finding.rule) || j.finding.rule.is_meta());
                    }
                    evaluation
                });
                let findings = judged
                    .filter(|evaluation| !evaluation.findings.is_empty())
                    .map(|evaluation| ObjectReport::new(origin, &evaluation));
                return Judge::Claim(report, findings);
            }
            if let Resource::StorageClass(_) = resource.as_ref() {
                // Read, for what its claims can be given; never judged.
                return Judge::Read;
            }
            match judge() {
                Ok(evaluation) => {
                    tracing::debug!(object = %evaluation.object, verdict = ?evaluation.verdict(), "Evaluated");
                    let mut report = ObjectReport::new(origin, &evaluation);
                    if let Some(m) = repaired {
                        report.changes = m.changes.clone();
                        report.patch = Some(m.patch.clone());
                    }
                    Judge::Object(report)
                }
                Err(e) => Judge::Error(InputError {
                    origin: origin.into(),
                    stage: Stage::Evaluate,
                    at: None,
                    object: Some(resource.object_ref().to_string()),
                    message: e.to_string(),
                }),
            }
        })
        .collect();
    let mut objects = Vec::with_capacity(resources.len());
    let mut claims = Vec::new();
    for j in judged {
        match j {
            Judge::Claim(c, object) => {
                claims.push(c);
                objects.extend(object);
            }
            Judge::Object(o) => objects.push(o),
            Judge::Error(e) => errors.push(e),
            Judge::Read => {}
        }
    }
    (objects, claims)
}

/// The cluster's version of an object in the files, when it has one: applying the files updates it.
fn in_cluster(resource: &Resource, cluster: &dyn Lookup) -> Option<Resource> {
    let object = resource.object_ref();
    match resource {
        Resource::Workload(w) => match cluster.workload(w.kind(), &object.namespace, &object.name) {
            Answer::Found(old) => Some(Resource::Workload((*old).clone())),
            _ => None,
        },
        Resource::Claim(_) => match cluster.claim(&object.namespace, &object.name) {
            // A claim a StatefulSet would make is not one the cluster has.
            Answer::Found(old)
                if !old
                    .metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key(crate::domain::lookup::GENERATED_BY)) =>
            {
                Some(Resource::Claim((*old).clone()))
            }
            _ => None,
        },
        Resource::Autoscaler(_) | Resource::Scale(_) | Resource::StorageClass(_) => None,
    }
}

/// The repairs of one object, as the mutating webhook would make them: at creation, or as an update when
/// the cluster already has the workload (a StatefulSet's claim templates can then no longer change).
/// Returns the mutation and the repaired object, or None when nothing changes.
fn repair(
    written: &serde_json::Value,
    resource: &Resource,
    lookup: &dyn Lookup,
    policies: &PolicySet,
    cluster: Option<&dyn Lookup>,
) -> Result<Option<(Mutation, Box<Resource>)>, String> {
    let Resource::Workload(workload) = resource else {
        return Ok(None);
    };
    let object = workload.object_ref();
    let exists = cluster.is_some_and(|c| {
        matches!(
            c.workload(workload.kind(), &object.namespace, &object.name),
            Answer::Found(_)
        )
    });
    let stage = if exists {
        MutateStage::Update
    } else {
        MutateStage::Create
    };
    let mut mutation =
        mutate::mutate(written, resource, stage, lookup, policies).map_err(|e| e.to_string())?;
    // The mutation already decoded the repaired object: take it rather than decode or copy it again.
    Ok(mutation.repaired.take().map(|fixed| (mutation, fixed)))
}

/// `ConfigMap shop/web-config`, as far as the manifest names the object (no namespace defaulting: it may be
/// cluster-scoped).
fn written_name(kind: &str, written: &WrittenName) -> String {
    match (&written.namespace, &written.name) {
        (Some(ns), Some(n)) => format!("{kind} {ns}/{n}"),
        (None, Some(n)) => format!("{kind} {n}"),
        _ => kind.to_owned(),
    }
}

/// What one document decoded to.
enum Decode {
    Resource(crate::adapters::manifest::Origin, Box<Resource>),
    Skipped(SkippedObject),
    Error(InputError),
}

/// What judging one decoded resource gave.
enum Judge {
    /// A claim, and its findings against the cluster's workloads when there are any.
    Claim(ClaimReport, Option<ObjectReport>),
    Object(ObjectReport),
    /// Read for the lookups only (a StorageClass).
    Read,
    Error(InputError),
}

/// The rules that judge a claim by itself, whatever mounts it.
const CLAIM_ALONE: [crate::domain::rules::RuleId; 1] = [crate::domain::rules::RuleId::UnsupportedAccessMode];

fn decode_document(doc: Document) -> Decode {
    let Document {
        origin,
        decoded,
        written,
        ..
    } = doc;
    match decoded {
        Ok(Decoded::Resource(r)) => Decode::Resource(origin, r),
        Ok(Decoded::Skipped { api_version, kind }) => {
            let s = SkippedObject {
                origin: (&origin).into(),
                object: written_name(&kind, &written),
                api_version,
                kind,
                namespace: written.namespace,
                name: written.name,
            };
            if s.is_judged_kind() {
                tracing::warn!(origin = %origin, object = %s.object, api_version = %s.api_version,
                    "Skipped an apiVersion volguard does not read");
            } else {
                tracing::debug!(origin = %origin, object = %s.object, "Skipped");
            }
            Decode::Skipped(s)
        }
        Err(e) => {
            let object = match &e {
                DecodeError::Invalid { kind, .. } => Some(written_name(kind, &written)),
                DecodeError::NotAnObject(_) => None,
            };
            Decode::Error(InputError {
                origin: (&origin).into(),
                stage: Stage::Decode,
                at: None,
                object,
                message: e.to_string(),
            })
        }
    }
}
