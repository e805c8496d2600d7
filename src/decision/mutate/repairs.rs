//! Opt-in repairs of what the rules find, each switched on in a policy's `mutate.repairs`:
//!
//! - `recreateStrategy`: a `rollout-attach-deadlock` Deployment gets `strategy: {type: Recreate}` (its
//!   `rollingUpdate` block removed), so the old pod lets go of the volume before the new one starts.
//! - `readOnlyMounts`: every read-write mount a `shared-claim-writable` finding names gets
//!   `readOnly: true`: a ReadOnlyMany volume is attached read-only on every node anyway.
//!
//! A StatefulSet's shared claim (`statefulset-shared-claim`) is never rewritten into a claim template:
//! each replica would start on an empty volume while the data stayed behind. That stays a finding.

use k8s_openapi::api::apps::v1::DeploymentStrategy;

use super::Change;
use crate::domain::lookup::Lookup;
use crate::domain::policy::Policy;
use crate::domain::rules::{self, Finding, RuleId, Subject};
use crate::domain::workload::{Footprint, Workload};

/// Runs the repairs the selecting policies switch on, judging `before` and editing `after`; a rule in
/// `skipped` (validly skipped by the workload) has no finding, so nothing to repair.
pub(super) fn apply(
    before: &Workload,
    after: &mut Workload,
    lookup: &dyn Lookup,
    policies: &[&Policy],
    skipped: &[RuleId],
    changes: &mut Vec<Change>,
) {
    if !policies
        .iter()
        .any(|p| p.mutation.recreate_strategy || p.mutation.read_only_mounts)
    {
        return;
    }
    // A workload whose footprint cannot be read is not repaired; the validating path reports why.
    let Ok(footprint) = Footprint::of(before) else {
        return;
    };
    let footprint = std::sync::Arc::new(footprint);
    let subject = Subject::resolve(&footprint, lookup);
    for policy in policies {
        let m = &policy.mutation;
        let wanted = |rule: RuleId| {
            !skipped.contains(&rule)
                && match rule {
                    RuleId::RolloutAttachDeadlock => m.recreate_strategy,
                    RuleId::SharedClaimWritable => m.read_only_mounts,
                    _ => false,
                }
        };
        for finding in rules::check(&subject, &policy.params, wanted) {
            let made = match finding.rule {
                RuleId::RolloutAttachDeadlock => recreate(after, &finding),
                RuleId::SharedClaimWritable => read_only(after, &finding),
                _ => None,
            };
            if let Some((field, message)) = made {
                changes.push(Change {
                    rule: Some(finding.rule),
                    field,
                    policy: policy.name.clone(),
                    message,
                });
            }
        }
    }
}

/// `strategy: {type: Recreate}`, unless the Deployment already has it.
fn recreate(workload: &mut Workload, finding: &Finding) -> Option<(String, String)> {
    let Workload::Deployment(d) = workload else {
        return None;
    };
    let spec = d.spec.as_mut()?;
    if spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .is_some_and(|t| t == "Recreate")
    {
        return None;
    }
    spec.strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".to_owned()),
        rolling_update: None,
    });
    let field = "spec.strategy".to_owned();
    Some((
        field,
        format!(
            "set spec.strategy to Recreate (rollingUpdate removed): with 1 replica on claim \"{}\" ({}), a rolling \
         update would start the new pod before the old one releases the volume",
            finding.claim.as_deref().unwrap_or_default(),
            finding.access_mode.as_deref().unwrap_or_default()
        ),
    ))
}

/// `readOnly: true` on the mounts of the finding's volume in the finding's container.
fn read_only(workload: &mut Workload, finding: &Finding) -> Option<(String, String)> {
    let (container, volume) = (finding.container.as_deref()?, finding.volume.as_deref()?);
    let pod = workload.pod_spec_path();
    let spec = workload.pod_spec_mut()?;
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
        .filter(|c| c.name == container);
    let mut paths = Vec::new();
    for c in containers {
        for m in c.volume_mounts.iter_mut().flatten() {
            if m.name == volume && m.read_only != Some(true) {
                m.read_only = Some(true);
                paths.push(m.mount_path.clone());
            }
        }
    }
    if paths.is_empty() {
        return None;
    }
    let field = format!("{pod}.containers[{container}].volumeMounts[{volume}].readOnly");
    Some((
        field,
        format!(
            "mounted volume \"{volume}\" read-only at {} in container \"{container}\": claim \"{}\" is {}, attached \
         read-only on every node",
            paths.join(", "),
            finding.claim.as_deref().unwrap_or_default(),
            finding.access_mode.as_deref().unwrap_or_default()
        ),
    ))
}
