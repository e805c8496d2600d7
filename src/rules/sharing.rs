//! Rules about one claim shared by every pod of a workload: `shared-rwo-claim`, `shared-claim-writable`,
//! `missing-claim` and `lookup-failed`.

use super::{ClaimState, Finding, ResolvedClaim, RuleId, Subject, claim_template_yaml};
use crate::access::{ROX, RWO, RWX, Sharing};
use crate::workload::{PodCount, WorkloadKind};

const MULTI_ATTACH: &str = "\"Multi-Attach error for volume ... Volume is already used by pod(s)\"";

/// How to stop sharing one claim between pods, for the workload's kind.
fn unshare_fix(subject: &Subject<'_>, c: &ResolvedClaim<'_>) -> String {
    let fp = subject.footprint;
    if fp.subject != fp.workload {
        let resize = match fp.subject.kind {
            crate::workload::Kind::HorizontalPodAutoscaler => "set maxReplicas: 1 (or remove the autoscaler)",
            _ => "keep replicas at 1",
        };
        return format!(
            "While {} shares claim \"{}\", {resize}. To scale it, stop sharing the claim.\n{}",
            fp.workload,
            c.use_.claim,
            workload_fix(subject, c)
        );
    }
    workload_fix(subject, c)
}

fn workload_fix(subject: &Subject<'_>, c: &ResolvedClaim<'_>) -> String {
    let template = claim_template_yaml(&c.use_.volume, c.claim());
    let volume = &c.use_.volume;
    match subject.footprint.kind {
        WorkloadKind::StatefulSet => format!(
            "Give each replica its own claim: remove volume \"{volume}\" from spec.template.spec.volumes and \
             add under spec:\n{template}"
        ),
        WorkloadKind::Deployment | WorkloadKind::ReplicaSet => format!(
            "If every replica needs its own data, run it as a StatefulSet and add under spec (removing volume \
             \"{volume}\" from the pod template):\n{template}If the replicas must share the data, use a claim \
             whose storage offers {RWX} (or {ROX}, mounted readOnly: true). Otherwise keep replicas: 1 with \
             strategy: {{type: Recreate}}."
        ),
        WorkloadKind::DaemonSet => format!(
            "A DaemonSet runs a pod on every node: share a claim whose storage offers {RWX} (or {ROX}, mounted \
             readOnly: true), or use a per-node volume (hostPath or a local PersistentVolume) instead."
        ),
        WorkloadKind::Job | WorkloadKind::CronJob => format!(
            "Run one pod at a time (Job: parallelism: 1; CronJob: concurrencyPolicy: Forbid), give each pod \
             its own scratch claim with a generic ephemeral volume, or share a claim whose storage offers \
             {RWX}."
        ),
    }
}

/// `shared-rwo-claim`: ReadWriteOnce is per node, ReadWriteOncePod per pod; more pods than that can hold
/// the volume hang at attach time.
pub(super) fn shared_rwo_claim(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if !fp.pods.is_multi_pod() {
        return;
    }
    for c in &subject.claims {
        let (claim, volume) = (&c.use_.claim, &c.use_.volume);
        match c.sharing() {
            Some(Sharing::OnePod) => {
                let msg = format!(
                    "{} that all mount claim \"{claim}\" (volume \"{volume}\"), whose access mode is \
                     ReadWriteOncePod: only one pod in the whole cluster may use it, so every other pod stays \
                     Pending or ContainerCreating, even on the same node.",
                    subject.who_runs()
                );
                out.push(
                    Finding::new(RuleId::SharedRwoClaim, &fp.subject, msg)
                        .on(c.use_)
                        .mode(Sharing::OnePod.mode())
                        .fix(unshare_fix(subject, c)),
                );
            }
            Some(Sharing::OneNode) if subject.is_pinned() => {
                let pin = fp.pinning.as_ref().map(ToString::to_string).unwrap_or_default();
                let msg = format!(
                    "{} that all mount claim \"{claim}\" (volume \"{volume}\", {RWO}). This works only while the \
                     pods are {pin}: {RWO} allows pods on one node to share the volume. Drop the pin, or drain \
                     the node, and pods on another node hang with {MULTI_ATTACH}.",
                    subject.who_runs()
                );
                out.push(
                    Finding::new(RuleId::SharedRwoClaim, &fp.subject, msg)
                        .on(c.use_)
                        .mode(RWO)
                        .fix(unshare_fix(subject, c))
                        .advisory(),
                );
            }
            Some(Sharing::OneNode) => {
                let read_only = if c.use_.is_read_only() {
                    " Mounting it read-only does not help: the limit is per node, not per writer."
                } else {
                    ""
                };
                let msg = format!(
                    "{} that all mount claim \"{claim}\" (volume \"{volume}\"), whose access mode is {RWO}: the \
                     volume attaches to one node at a time, so a pod scheduled on a second node hangs in \
                     ContainerCreating with {MULTI_ATTACH}.{read_only}",
                    subject.who_runs()
                );
                out.push(
                    Finding::new(RuleId::SharedRwoClaim, &fp.subject, msg)
                        .on(c.use_)
                        .mode(RWO)
                        .fix(unshare_fix(subject, c)),
                );
            }
            _ => {}
        }
    }
}

/// `shared-claim-writable`: a ReadOnlyMany claim is attached read-only on every node; a read-write mount
/// fails to start or fails its writes.
pub(super) fn shared_claim_writable(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if !fp.pods.is_multi_pod() {
        return;
    }
    for c in &subject.claims {
        if c.sharing() != Some(Sharing::ReadMany) {
            continue;
        }
        // A claim that also offers ReadWriteOnce can be written on a single node the pods are pinned to.
        let offers_rwo = c
            .claim()
            .is_some_and(|pvc| crate::access::effective_modes(pvc).iter().any(|m| m == RWO));
        if offers_rwo && subject.is_pinned() {
            continue;
        }
        for m in c.use_.writable_mounts() {
            let msg = format!(
                "{} that share claim \"{}\" ({ROX}), but container \"{}\" mounts volume \"{}\" read-write at {}: \
                 a {ROX} volume is attached read-only on every node, so the pod fails to start or its writes \
                 fail.",
                subject.who_runs(),
                c.use_.claim,
                m.container,
                c.use_.volume,
                m.mount_path
            );
            let fix = format!(
                "Mount it read-only in container \"{}\":\n  volumeMounts:\n  - name: {}\n    mountPath: {}\n    \
                 readOnly: true\nIf the pods must write, use a claim whose storage offers {RWX}.",
                m.container, c.use_.volume, m.mount_path
            );
            let mut f = Finding::new(RuleId::SharedClaimWritable, &fp.subject, msg)
                .on(c.use_)
                .mode(ROX)
                .fix(fix);
            f.container = Some(m.container.clone());
            out.push(f);
        }
    }
}

/// `missing-claim`: pods that mount a claim that does not exist stay Pending.
pub(super) fn missing_claim(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if fp.pods == PodCount::Exactly(0) {
        return;
    }
    for c in &subject.claims {
        if let ClaimState::Missing { scope } = c.state {
            let msg = format!(
                "{} mounts claim \"{}\" (volume \"{}\"), which is not in namespace {} in {scope}: its pods stay \
                 Pending until the claim exists, and volguard cannot check its access modes.",
                fp.workload, c.use_.claim, c.use_.volume, fp.workload.namespace
            );
            let fix = format!(
                "Create PersistentVolumeClaim \"{}\" in namespace {} (with the workload, in the same files), \
                 or correct claimName.",
                c.use_.claim, fp.workload.namespace
            );
            out.push(
                Finding::new(RuleId::MissingClaim, &fp.subject, msg)
                    .on(c.use_)
                    .fix(fix),
            );
        }
    }
}

/// `lookup-failed`: a claim that could not be looked up, judged by the policy's failure mode.
pub(super) fn lookup_failed(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    for c in &subject.claims {
        if let ClaimState::Unknown(why) = &c.state {
            let msg = format!(
                "volguard could not look up claim \"{}\" (volume \"{}\") of {}: {why}",
                c.use_.claim, c.use_.volume, fp.workload
            );
            out.push(Finding::new(RuleId::LookupFailed, &fp.subject, msg).on(c.use_));
        }
    }
}
