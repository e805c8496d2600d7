//! `rollout-attach-deadlock`: a one-replica Deployment whose rolling update starts the new pod before the
//! old one stops, while the old pod holds a ReadWriteOnce (on another node) or ReadWriteOncePod volume.

use super::{Finding, ResolvedClaim, RuleId, Subject};
use crate::domain::access::{RWO, RWOP, Sharing};
use crate::domain::workload::{PodCount, WorkloadKind};

pub(super) fn rollout_attach_deadlock(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if !subject.is_kind(WorkloadKind::Deployment) || fp.pods != PodCount::Exactly(1) {
        return;
    }
    // At one replica the old pod is kept until the new one is ready only when maxUnavailable resolves to
    // 0; with 1 the controller scales the old ReplicaSet down as soon as the new pod exists, and the new
    // pod's attach merely waits for the old pod to release the volume.
    let Some((surge, unavailable)) = fp.rollout.and_then(|r| r.fenceposts(1)) else {
        return;
    };
    if surge == 0 || unavailable > 0 {
        return;
    }
    for c in &subject.claims {
        let mode = match c.sharing() {
            Some(Sharing::OnePod) => RWOP,
            // On one pinned node the new pod shares the RWO volume with the old one.
            Some(Sharing::OneNode) if !held_on_one_node(c) => RWO,
            _ => continue,
        };
        let msg = format!(
            "{} runs 1 pod on claim \"{}\" (volume \"{}\", {mode}) and updates with RollingUpdate (maxSurge \
             {surge}, maxUnavailable 0): on every rollout the new pod starts before the old one stops and \
             waits for a volume the old pod holds ({}), so the rollout never completes.",
            fp.workload,
            c.use_.claim,
            c.use_.volume,
            if mode == RWOP {
                "ReadWriteOncePod allows one pod"
            } else {
                "a Multi-Attach error on another node"
            }
        );
        let fix = "Stop the old pod before starting the new one:\nspec:\n  strategy:\n    type: Recreate\n\
                   (and remove spec.strategy.rollingUpdate), or keep RollingUpdate with maxUnavailable: 1."
            .to_owned();
        out.push(
            Finding::new(RuleId::RolloutAttachDeadlock, &fp.subject, msg)
                .on(c)
                .mode(mode)
                .fix(fix),
        );
    }
}

/// Whether the workload's own pods land on one node (pinned, or held together by pod affinity), so that a
/// rollout's new pod joins the old one.
fn held_on_one_node(c: &ResolvedClaim) -> bool {
    c.footprint()
        .and_then(|cf| cf.anchors.first())
        .is_some_and(crate::domain::footprint::Anchor::is_confined)
}
