//! The result of `volguard check` as data: one [`Report`] that every renderer reads (text, JSON, YAML,
//! SARIF, JUnit).
//!
//! This is the machine-readable contract of `volguard check -o json|yaml`: field names are camelCase,
//! every key is always present (`null` when it does not apply), and new fields are only ever added.
//! README.md ("JSON and YAML output") documents the shape.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::Exit;
use crate::adapters::manifest;
use crate::decision::exceptions::Exception;
use crate::decision::mutate::Change;
use crate::decision::{Evaluation, Judged, Verdict};
use crate::domain::policy::Action;
use crate::domain::rules::{RuleId, Severity};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use crate::domain::access::effective_modes;
use crate::domain::workload::{DEFAULT_NAMESPACE, Kind, ObjectRef};

/// Everything one `volguard check` run found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The counts, and the exit code they lead to.
    pub summary: Summary,
    /// Every object volguard judged, in input order (files in the order given, documents in file order).
    pub objects: Vec<ObjectReport>,
    /// Every PersistentVolumeClaim read: not judged itself, but what the workloads' claims resolve to.
    pub claims: Vec<ClaimReport>,
    /// Every well-formed object of a kind (or apiVersion) volguard does not judge.
    pub skipped: Vec<SkippedObject>,
    /// What could not be read, parsed, decoded or judged.
    pub errors: Vec<InputError>,
    #[serde(skip)]
    exit: Exit,
}

/// The counts of a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Objects judged: workloads, HorizontalPodAutoscalers and Scales.
    pub objects: usize,
    /// Objects with verdict Deny.
    pub denied: usize,
    /// Objects with verdict Warn.
    pub warned: usize,
    /// PersistentVolumeClaims read (they are looked up, not judged).
    pub claims: usize,
    /// Skipped objects, by kind; a kind volguard judges in another apiVersion is counted as
    /// `Deployment (extensions/v1beta1)`, so it cannot pass for a checked one.
    pub skipped: BTreeMap<String, usize>,
    /// Input errors.
    pub input_errors: usize,
    /// Whether warnings fail the run (`--strict`).
    pub strict: bool,
    /// The process exit code: 0 clean, 1 denied (or warned under `--strict`), 2 input error.
    pub exit_code: u8,
}

/// Where an object or an error is in the input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Location {
    /// The file as given (`-` for standard input).
    pub file: String,
    /// 1-based document number in the file (documents with only comments are not counted); `null` when
    /// the error concerns the whole file.
    pub document: Option<usize>,
    /// The line the document starts on; `null` when unknown (JSON files).
    pub line: Option<u64>,
    /// The position in a `kind: List`'s `items`; `null` when the document is not a List.
    pub item: Option<usize>,
    /// Read from the cluster (`audit`): `file` is then `cluster`, and there is no file to point at.
    #[serde(skip)]
    pub in_cluster: bool,
}

impl Location {
    /// Where `audit` finds every object: the cluster.
    pub(crate) fn cluster() -> Self {
        Self {
            file: "cluster".to_owned(),
            document: None,
            line: None,
            item: None,
            in_cluster: true,
        }
    }
}

impl From<&manifest::Origin> for Location {
    fn from(o: &manifest::Origin) -> Self {
        Self {
            file: o.source.clone(),
            document: Some(o.document),
            line: (o.line > 0).then_some(o.line),
            item: o.item,
            in_cluster: false,
        }
    }
}

impl fmt::Display for Location {
    /// `file document 2, line 14` (or `…, items[3]`), the way the text report names places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(d) = self.document {
            write!(f, " document {d}")?;
        }
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
        }
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

/// One judged object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectReport {
    /// Where it is.
    pub origin: Location,
    /// Its kind.
    pub kind: String,
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// `Allow`, `Warn` or `Deny`.
    pub verdict: Verdict,
    /// The policies that selected it; empty when none did (the object is then not judged).
    pub policies: Vec<String>,
    /// Its findings, in rule order (with `--mutate`: of the repaired object).
    pub findings: Vec<Finding>,
    /// The rules it skips with the `volguard.io/skip` annotation, honoured, each with its reason (empty:
    /// none).
    pub exceptions: Vec<Exception>,
    /// With `--mutate`: what the policies' repairs changed (empty: nothing).
    pub changes: Vec<Change>,
    /// With `--mutate`: the RFC 6902 patch the mutating webhook would send, against the object as written
    /// (null: none).
    pub patch: Option<json_patch::Patch>,
}

impl ObjectReport {
    /// Whether the object fails the run: denied, or warned under `--strict`.
    pub fn fails(&self, strict: bool) -> bool {
        self.verdict == Verdict::Deny || (strict && self.verdict == Verdict::Warn)
    }

    /// The report of one evaluation.
    pub fn new(origin: &manifest::Origin, evaluation: &Evaluation) -> Self {
        Self::at(origin.into(), evaluation)
    }

    /// The report of one evaluation of an object at `origin` (`cluster`, for `audit`).
    pub fn at(origin: Location, evaluation: &Evaluation) -> Self {
        let ObjectRef {
            kind,
            namespace,
            name,
        } = &evaluation.object;
        Self {
            origin,
            kind: kind.to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            verdict: evaluation.verdict(),
            policies: evaluation.policies.clone(),
            findings: evaluation.findings.iter().map(Finding::from).collect(),
            exceptions: evaluation.exceptions.clone(),
            changes: Vec::new(),
            patch: None,
        }
    }

    /// `Deployment shop/web`.
    pub fn object(&self) -> String {
        format!("{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// A PersistentVolumeClaim found in the input.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimReport {
    /// Where it is.
    pub origin: Location,
    /// Its namespace (`default` when the manifest names none).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The access modes the rules go by: `status.accessModes` once Bound, else `spec.accessModes`.
    pub access_modes: Vec<String>,
}

impl ClaimReport {
    /// The report of one claim.
    pub fn new(origin: &manifest::Origin, claim: &PersistentVolumeClaim) -> Self {
        let meta = &claim.metadata;
        Self {
            origin: origin.into(),
            namespace: meta
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name: meta.name.clone().unwrap_or_default(),
            access_modes: effective_modes(claim).to_vec(),
        }
    }
}

/// One finding with the action the policies gave it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// The rule's stable id, e.g. `shared-rwo-claim`.
    pub rule: RuleId,
    /// `Deny`, `Warn` or `Audit`.
    pub action: Action,
    /// The policy that gave the action.
    pub policy: String,
    /// `violation`, or `advisory` (works for now; never more than Warn).
    pub severity: Severity,
    /// What is wrong and why it breaks at run time.
    pub message: String,
    /// How to fix it, often YAML to paste (multi-line).
    pub fix: Option<String>,
    /// The container concerned.
    pub container: Option<String>,
    /// The pod volume (or claim template) concerned.
    pub volume: Option<String>,
    /// The PersistentVolumeClaim concerned.
    pub claim: Option<String>,
    /// The access mode that sets the limit.
    pub access_mode: Option<String>,
}

impl From<&Judged> for Finding {
    fn from(j: &Judged) -> Self {
        let f = &j.finding;
        Self {
            rule: f.rule,
            action: j.action,
            policy: j.policy.clone(),
            severity: f.severity,
            message: f.message.clone(),
            fix: f.fix.clone(),
            container: f.container.clone(),
            volume: f.volume.clone(),
            claim: f.claim.clone(),
            access_mode: f.access_mode.clone(),
        }
    }
}

/// An object of a kind (or apiVersion) volguard does not judge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SkippedObject {
    /// Where it is.
    pub origin: Location,
    /// Its apiVersion.
    pub api_version: String,
    /// Its kind.
    pub kind: String,
    /// Its namespace, as written (`null` when the manifest names none, or the kind is cluster-scoped).
    pub namespace: Option<String>,
    /// Its name, as written.
    pub name: Option<String>,
    /// `ConfigMap shop/web-config`, as far as the manifest names it.
    #[serde(skip)]
    pub object: String,
}

impl SkippedObject {
    /// Whether volguard judges this kind in another apiVersion (an old `extensions/v1beta1` Deployment).
    pub(crate) fn is_judged_kind(&self) -> bool {
        serde_json::from_value::<Kind>(serde_json::Value::String(self.kind.clone())).is_ok()
    }

    fn summary_key(&self) -> String {
        if self.is_judged_kind() {
            format!("{} ({})", self.kind, self.api_version)
        } else {
            self.kind.clone()
        }
    }
}

/// The stage at which an input error happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// A file or directory could not be read.
    Read,
    /// The text is not YAML or JSON.
    Parse,
    /// A document is not a Kubernetes object, or does not fit its kind's schema.
    Decode,
    /// The object decoded but could not be judged (e.g. an invalid maxSurge).
    Evaluate,
    /// `--mutate`: the object's repairs could not be made.
    Mutate,
}

impl Stage {
    /// The stage as the JSON report writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Read => "read",
            Stage::Parse => "parse",
            Stage::Decode => "decode",
            Stage::Evaluate => "evaluate",
            Stage::Mutate => "mutate",
        }
    }
}

/// A line and column in a file (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Position {
    /// 1-based line.
    pub line: u64,
    /// 1-based column.
    pub column: u64,
}

/// Something in the input that could not be checked. The rest of the input still is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InputError {
    /// Where: the file, and the document when it is known.
    pub origin: Location,
    /// How far it got.
    pub stage: Stage,
    /// For a syntax error, the exact place the parser stopped.
    pub at: Option<Position>,
    /// The object, when it decoded far enough to be named (`Deployment shop/web`).
    pub object: Option<String>,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for InputError {
    /// `web.yaml document 2, line 14: invalid Deployment (apps/v1): …` — the place first, so a reader (or
    /// an editor) finds it without reading the message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.origin)?;
        if let Some(Position { line, column }) = self.at {
            write!(f, "syntax error at line {line} column {column}: ")?;
        }
        if let Some(o) = &self.object {
            write!(f, "{o}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl Report {
    /// Counts the findings and decides the exit code.
    pub fn new(
        objects: Vec<ObjectReport>,
        claims: Vec<ClaimReport>,
        skipped: Vec<SkippedObject>,
        errors: Vec<InputError>,
        strict: bool,
    ) -> Self {
        let count = |v: Verdict| objects.iter().filter(|o| o.verdict == v).count();
        let (denied, warned) = (count(Verdict::Deny), count(Verdict::Warn));
        let mut by_kind = BTreeMap::new();
        for s in &skipped {
            *by_kind.entry(s.summary_key()).or_insert(0) += 1;
        }
        // An input error wins: the run could not check everything it was given, so "no denials" means
        // nothing, and CI must not read it as a pass.
        let exit = if !errors.is_empty() {
            Exit::Usage
        } else if objects.iter().any(|o| o.fails(strict)) {
            Exit::Denied
        } else {
            Exit::Clean
        };
        Self {
            summary: Summary {
                objects: objects.len(),
                denied,
                warned,
                claims: claims.len(),
                skipped: by_kind,
                input_errors: errors.len(),
                strict,
                exit_code: exit.code(),
            },
            objects,
            claims,
            skipped,
            errors,
            exit,
        }
    }

    /// How the run ends.
    pub fn exit(&self) -> Exit {
        self.exit
    }
}

#[cfg(test)]
mod tests {
    use super::Stage;

    #[test]
    fn a_stage_is_named_as_the_json_report_names_it() {
        for stage in [
            Stage::Read,
            Stage::Parse,
            Stage::Decode,
            Stage::Evaluate,
            Stage::Mutate,
        ] {
            assert_eq!(serde_json::to_value(stage).unwrap(), stage.as_str());
        }
    }
}
