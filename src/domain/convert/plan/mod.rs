//! The data plan: ordered kubectl steps that move today's data to the StatefulSet's ordinal 0, each with
//! the check that shows it worked and how to undo it. Rendered as Markdown, the shell in fenced blocks.
//!
//! A volume known by name is rebound: set to Retain, released by deleting its claim, reserved for the
//! new claim through `spec.claimRef`, and bound to it by `volumeName`
//! (<https://kubernetes.io/docs/concepts/storage/persistent-volumes/#reserving-a-persistentvolume>).
//! A volume not known is copied by a Job into the new claim's volume.

mod steps;

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::volumes::ClaimMove;
pub(super) use steps::build;

/// The plan: notes, then steps in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The title line.
    pub title: String,
    /// What to know before starting.
    pub notes: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// One step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// What it does.
    pub title: String,
    /// Why, and what to watch for.
    pub why: String,
    /// The shell to run, one command (or heredoc) per entry.
    pub run: Vec<String>,
    /// How to tell it worked.
    pub checks: Vec<Check>,
    /// How to undo it (shell; `#` lines are explanations).
    pub rollback: Vec<String>,
}

/// A command and what it prints when the step worked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    /// The command.
    pub command: String,
    /// Its expected output, trimmed (empty: prints nothing).
    pub expect: String,
    /// Set by a controller (the PV controller, the StatefulSet controller, a kubelet): true a few seconds
    /// after the step in a working cluster, never in one without controllers.
    pub by_controller: bool,
}

impl Check {
    pub(super) fn now(command: String, expect: impl Into<String>) -> Self {
        Self {
            command,
            expect: expect.into(),
            by_controller: false,
        }
    }

    pub(super) fn later(command: String, expect: impl Into<String>) -> Self {
        Self {
            command,
            expect: expect.into(),
            by_controller: true,
        }
    }
}

/// What the plan is about.
pub(super) struct Subject<'a> {
    pub(super) namespace: &'a str,
    pub(super) deployment: &'a str,
    pub(super) replicas: i32,
    pub(super) selector: &'a BTreeMap<String, String>,
    pub(super) moves: &'a [ClaimMove],
    pub(super) ordinal_claims: &'a [PersistentVolumeClaim],
    pub(super) statefulset: &'a str,
    pub(super) autoscaled: bool,
}

/// The file the plan applies: the StatefulSet, its Service and HPA, the ordinal-0 claims.
pub const MANIFEST_FILE: &str = "statefulset.yaml";

/// What the ordinals after 0 start with.
pub(super) fn later_ordinals(replicas: i32) -> String {
    if replicas == 2 {
        "ordinal 1 starts with an empty claim".to_owned()
    } else {
        format!("ordinals 1 to {} start with empty claims", replicas - 1)
    }
}

/// `-l` for the Deployment's matchLabels, `None` when it has none.
pub(super) fn selector_arg(labels: &BTreeMap<String, String>) -> Option<String> {
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

impl Plan {
    /// The plan as Markdown: notes, then each step's shell in fenced `sh` blocks under `Run:`, `Check
    /// (expect …):` and `Roll back:`.
    pub fn to_markdown(&self) -> String {
        let mut out = format!("# {}\n\n", self.title);
        for n in &self.notes {
            let _ = writeln!(out, "- {n}");
        }
        for (i, step) in self.steps.iter().enumerate() {
            let _ = write!(
                out,
                "{}## Step {}. {}\n\n{}\n\nRun:\n\n",
                if i == 0 { "\n" } else { "" },
                i + 1,
                step.title,
                step.why
            );
            fence(&mut out, &step.run);
            for c in &step.checks {
                let when = if c.by_controller {
                    "Check, once the controllers have acted"
                } else {
                    "Check"
                };
                let expect = if c.expect.is_empty() {
                    "nothing printed".to_owned()
                } else {
                    format!("`{}`", c.expect)
                };
                let _ = write!(out, "{when} (expect {expect}):\n\n");
                fence(&mut out, std::slice::from_ref(&c.command));
            }
            out.push_str("Roll back:\n\n");
            fence(&mut out, &step.rollback);
        }
        out
    }
}

fn fence(out: &mut String, lines: &[String]) {
    out.push_str("```sh\n");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out.push_str("```\n\n");
}
