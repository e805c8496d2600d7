//! Rules about where a workload's claims should come from: `statefulset-claim-template-modes`,
//! `statefulset-shared-claim`, and the opt-in `stateless-deployment`.
//! See <https://kubernetes.io/docs/concepts/workloads/controllers/statefulset/#volume-claim-templates>.

use super::{Finding, RuleId, Source, Subject, claim_template_yaml};
use crate::domain::access::{RWO, RWX, Sharing};
use crate::domain::workload::{PerPodSource, WorkloadKind};

pub(super) fn claim_template_modes(subject: &Subject<'_>, allowed: &[String], out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if !subject.is_kind(WorkloadKind::StatefulSet) {
        return;
    }
    let allowed_list = allowed.join(", ");
    for t in fp
        .per_pod
        .iter()
        .filter(|t| t.source == PerPodSource::ClaimTemplate)
    {
        let fix = format!(
            "In volumeClaimTemplates, set for \"{}\":\n  spec:\n    accessModes: [\"{RWO}\"]",
            t.name
        );
        if t.access_modes.is_empty() {
            let msg = format!(
                "{} has volumeClaimTemplate \"{}\" with no accessModes; allowed here: {allowed_list}.",
                fp.workload, t.name
            );
            let mut f =
                Finding::new(RuleId::StatefulsetClaimTemplateModes, &fp.subject, msg).fix(fix.clone());
            f.volume = Some(t.name.clone());
            out.push(f);
        }
        for mode in t.access_modes.iter().filter(|m| !allowed.contains(m)) {
            let msg = format!(
                "{} has volumeClaimTemplate \"{}\" asking for {mode}: each replica already gets its own claim \
                 from the template, so a shared access mode buys nothing and limits you to the storage that \
                 offers it. Allowed here: {allowed_list}.",
                fp.workload, t.name
            );
            let mut f = Finding::new(RuleId::StatefulsetClaimTemplateModes, &fp.subject, msg)
                .mode(mode)
                .fix(fix.clone());
            f.volume = Some(t.name.clone());
            out.push(f);
        }
    }
}

pub(super) fn shared_claim(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if !subject.is_kind(WorkloadKind::StatefulSet) || !fp.pods.is_multi_pod() {
        return;
    }
    // Read-only shared content (a ReadOnlyMany claim mounted readOnly) is the safe way to share. A
    // ReadWriteMany claim is shared on purpose at times (uploads, a media library), on storage built for
    // many writers: advisory, never more than a warning.
    let shared = |c: &&super::ResolvedClaim| c.source == Source::Claim && !c.use_.is_read_only();
    for c in subject.claims.iter().filter(shared) {
        let many_writers = c.sharing() == Some(Sharing::WriteMany);
        let msg = if many_writers {
            format!(
                "{} that all mount one claim \"{}\" through volume \"{}\" of the pod template, read-write \
                 ({RWX}). Every replica can attach it, but they all write the same files: a StatefulSet usually \
                 gives each replica its own claim through volumeClaimTemplates. If the replicas are meant to share \
                 it, mount it readOnly: true where a replica only reads.",
                subject.who_runs(),
                c.use_.claim,
                c.use_.volume
            )
        } else {
            format!(
                "{} that all mount one claim \"{}\" through volume \"{}\" of the pod template, read-write. A \
                 StatefulSet should give each replica its own claim through volumeClaimTemplates: kept when its \
                 pod is deleted or the set is scaled down, and never written by two replicas.",
                subject.who_runs(),
                c.use_.claim,
                c.use_.volume
            )
        };
        let fix = format!(
            "Remove volume \"{}\" from spec.template.spec.volumes and add under spec:\n{}",
            c.use_.volume,
            claim_template_yaml(&c.use_.volume, c.claim())
        );
        let f = Finding::new(RuleId::StatefulsetSharedClaim, &fp.subject, msg)
            .on(c)
            .fix(fix);
        out.push(if many_writers { f.advisory() } else { f });
    }
}

pub(super) fn stateless_deployment(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    if !subject.is_kind(WorkloadKind::Deployment) {
        return;
    }
    for c in subject.claims.iter().filter(|c| c.source == Source::Claim) {
        let msg = format!(
            "{} mounts PersistentVolumeClaim \"{}\" (volume \"{}\"); this policy keeps Deployments stateless.",
            fp.workload, c.use_.claim, c.use_.volume
        );
        let fix = "Run stateful workloads as a StatefulSet with volumeClaimTemplates; for scratch space use \
                   emptyDir or a generic ephemeral volume."
            .to_owned();
        out.push(
            Finding::new(RuleId::StatelessDeployment, &fp.subject, msg)
                .on(c)
                .fix(fix),
        );
    }
}
