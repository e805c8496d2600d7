//! Rules about one volume shared by pods, of one workload or of several: `shared-rwo-claim`,
//! `shared-claim-writable`, `missing-claim` and `lookup-failed`, for the workload under review; and
//! [`claim`], the same judgement of a claim created under the workloads that mount it.

use super::storage::{rwop_share, share_phrase};
use super::{ClaimState, Finding, ResolvedClaim, RuleId, Source, Subject, claim_template_yaml};
use crate::domain::access::{ROX, RWO, RWOP, RWX, Sharing};
use crate::domain::footprint::{Anchor, ClaimFootprint, Spread, User};
use crate::domain::lookup::Answer;
use crate::domain::storage::ProvisionerTable;
use crate::domain::workload::{Kind, ObjectRef, PodCount, WorkloadKind};

const MULTI_ATTACH: &str = "\"Multi-Attach error for volume ... Volume is already used by pod(s)\"";

/// How to stop sharing one claim between pods, for the workload's kind.
fn unshare_fix(subject: &Subject<'_>, c: &ResolvedClaim, table: &ProvisionerTable) -> String {
    let fp = subject.footprint;
    if fp.subject != fp.workload {
        let resize = match fp.subject.kind {
            Kind::HorizontalPodAutoscaler => "set maxReplicas: 1 (or remove the autoscaler)",
            _ => "keep replicas at 1",
        };
        return format!(
            "While {} shares claim \"{}\", {resize}. To scale it, stop sharing the claim.\n{}",
            fp.workload,
            c.use_.claim,
            workload_fix(subject.footprint.kind, c, table)
        );
    }
    workload_fix(subject.footprint.kind, c, table)
}

/// "a claim whose storage offers ReadWriteMany (or ReadOnlyMany, mounted readOnly: true)", or, when the
/// claim's class is known, only what that class can give.
fn a_shared_claim(c: &ResolvedClaim, table: &ProvisionerTable, read_only_too: bool) -> String {
    match share_phrase(c, table) {
        None if read_only_too => {
            format!("a claim whose storage offers {RWX} (or {ROX}, mounted readOnly: true)")
        }
        None => format!("a claim whose storage offers {RWX}"),
        Some(advice) => match advice.read_only.filter(|_| read_only_too) {
            Some(ro) => format!("{} {ro}", advice.read_write),
            None => advice.read_write,
        },
    }
}

fn workload_fix(kind: WorkloadKind, c: &ResolvedClaim, table: &ProvisionerTable) -> String {
    let volume = &c.use_.volume;
    if let Source::Disk(d) = &c.source {
        return format!(
            "{d} attaches to one node at a time. Keep one pod on it (replicas: 1, strategy: {{type: Recreate}}), \
             or move the data to a PersistentVolumeClaim: per replica through a StatefulSet's \
             volumeClaimTemplates, or shared through storage that offers {RWX}."
        );
    }
    let template = claim_template_yaml(volume, c.claim());
    let shared = a_shared_claim(c, table, true);
    match kind {
        WorkloadKind::StatefulSet => format!(
            "Give each replica its own claim: remove volume \"{volume}\" from spec.template.spec.volumes and \
             add under spec:\n{template}"
        ),
        WorkloadKind::Deployment | WorkloadKind::ReplicaSet | WorkloadKind::ReplicationController => format!(
            "If every replica needs its own data, run it as a StatefulSet and add under spec (removing volume \
             \"{volume}\" from the pod template):\n{template}If the replicas must share the data, use \
             {shared}. Otherwise keep replicas: 1 with strategy: {{type: Recreate}}."
        ),
        WorkloadKind::DaemonSet => format!(
            "A DaemonSet runs a pod on every node: share {shared}, or use a per-node volume (hostPath or a \
             local PersistentVolume) instead."
        ),
        WorkloadKind::Job | WorkloadKind::CronJob => format!(
            "Run one pod at a time (Job: parallelism: 1; CronJob: concurrencyPolicy: Forbid), give each pod \
             its own scratch claim with a generic ephemeral volume, or share {}.",
            a_shared_claim(c, table, false)
        ),
        WorkloadKind::Pod => format!(
            "Give the pod a claim of its own, share {shared}, or schedule it beside the claim's other pods \
             with a required pod affinity on kubernetes.io/hostname."
        ),
    }
}

/// How to stop several workloads' pods from sharing one claim on different nodes.
fn shared_between_fix(
    subject: &ObjectRef,
    cf: &ClaimFootprint,
    mode: &str,
    c: &ResolvedClaim,
    table: &ProvisionerTable,
) -> String {
    let others = cf.list_others_names();
    let hold = format!(
        "To keep sharing it, hold every pod on one node: a required pod affinity on kubernetes.io/hostname to the \
         pods of {others} (see \"How volguard counts pods\" in the README), or the same kubernetes.io/hostname \
         nodeSelector on all of them."
    );
    if mode == RWOP {
        let rwx = rwop_share(c, table).unwrap_or_else(|| RWX.to_owned());
        return format!(
            "Only one pod may use a {RWOP} claim: give {subject} a claim of its own, or let the workloads take \
             turns (stop {others} before {subject} starts). To share it, use {RWO} with every pod on one node, or \
             {rwx}."
        );
    }
    match share_phrase(c, table) {
        None => format!(
            "Give {subject} a claim of its own (for one per replica, a StatefulSet's volumeClaimTemplates), or \
             share {} through storage that offers {RWX} (or {ROX}, mounted readOnly: true). {hold}",
            c.what()
        ),
        Some(_) => format!(
            "Give {subject} a claim of its own (for one per replica, a StatefulSet's volumeClaimTemplates), or \
             share {}. {hold}",
            a_shared_claim(c, table, true)
        ),
    }
}

impl ClaimFootprint {
    /// The other users' workloads, with pods: "Deployment shop/a and Job shop/b".
    fn list_others_names(&self) -> String {
        crate::domain::footprint::join(self.others().map(|u| u.workload().to_string()).collect())
    }
}

/// "Job shop/b (1 pod) also mounts", "Job shop/b (1 pod) and Pod shop/c (1 pod) also mount".
fn also_mount(cf: &ClaimFootprint) -> String {
    let verb = if cf.others().count() == 1 {
        "mounts"
    } else {
        "mount"
    };
    format!("{} also {verb}", cf.list_others())
}

fn total_text(cf: &ClaimFootprint) -> String {
    match cf.total_pods() {
        u32::MAX => "pods on every node".to_owned(),
        n => format!("{n} pods"),
    }
}

/// " It ... so ..." when the subject's own pod affinity looked like it would hold its pods together.
fn why_spread(cf: &ClaimFootprint) -> String {
    match cf.anchors.first() {
        Some(Anchor::Anywhere { why: Some(why) }) => {
            let mut why = why.clone();
            if let Some(first) = why.get_mut(0..1) {
                first.make_ascii_uppercase();
            }
            format!(" {why}.")
        }
        _ => String::new(),
    }
}

/// `shared-rwo-claim`: ReadWriteOnce is per node, ReadWriteOncePod per pod; more pods than that can hold
/// the volume hang at attach time, whichever workloads they belong to.
pub(super) fn shared_rwo_claim(subject: &Subject<'_>, table: &ProvisionerTable, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    for c in &subject.claims {
        let Some(cf) = c.footprint() else {
            continue;
        };
        let me = &cf.users[0];
        if !me.has_pods() || cf.total_pods() <= 1 {
            continue;
        }
        let volume = &c.use_.volume;
        let what = c.what();
        let alone = cf.others().next().is_none();
        let who = subject_runs(subject, me);
        // Alone: the workload's own pods; else every user's, named.
        let (mode, advisory, msg) = match (c.sharing(), cf.spread()) {
            (Some(Sharing::OnePod), _) if alone => (
                RWOP,
                false,
                format!(
                    "{who} that all mount {what} (volume \"{volume}\"), whose access mode is ReadWriteOncePod: only \
                     one pod in the whole cluster may use it, so every other pod stays Pending or ContainerCreating, \
                     even on the same node."
                ),
            ),
            (Some(Sharing::OnePod), _) => (
                RWOP,
                false,
                format!(
                    "{who} on {what} (volume \"{volume}\"), whose access mode is ReadWriteOncePod, which {}: {} in \
                     all, but only one pod in the whole cluster may use it, so every other pod stays Pending or \
                     ContainerCreating, even on the same node.",
                    also_mount(cf),
                    total_text(cf)
                ),
            ),
            (Some(Sharing::OneNode), Spread::OneNode(anchor)) if alone => (
                RWO,
                true,
                format!(
                    "{who} that all mount {what} (volume \"{volume}\", {RWO}). This works only while the pods are \
                     {anchor}: {RWO} allows pods on one node to share the volume. Drop the pin, or drain the node, \
                     and pods on another node hang with {MULTI_ATTACH}."
                ),
            ),
            (Some(Sharing::OneNode), Spread::OneNode(anchor)) => (
                RWO,
                true,
                format!(
                    "{who} on {what} (volume \"{volume}\", {RWO}), which {}: {} in all. This works only while they \
                     are {anchor}: {RWO} allows pods on one node to share the volume. Drop the pin, or drain the \
                     node, and pods on another node hang with {MULTI_ATTACH}.",
                    also_mount(cf),
                    total_text(cf)
                ),
            ),
            (Some(Sharing::OneNode), Spread::Nodes) => {
                let read_only = if c.use_.is_read_only() {
                    " Mounting it read-only does not help: the limit is per node, not per writer."
                } else {
                    ""
                };
                let attach = match &c.source {
                    Source::Disk(_) => "an inline disk of this kind".to_owned(),
                    _ => format!("whose access mode is {RWO}"),
                };
                let why = why_spread(cf);
                let msg = if alone {
                    format!(
                        "{who} that all mount {what} (volume \"{volume}\"), {attach}: the volume attaches to one node \
                         at a time, so a pod scheduled on a second node hangs in ContainerCreating with \
                         {MULTI_ATTACH}.{read_only}{why}"
                    )
                } else {
                    format!(
                        "{who} on {what} (volume \"{volume}\"), {attach}, which {}: {} in all, not held on one node. \
                         The volume attaches to one node at a time, so a pod scheduled on a second node hangs in \
                         ContainerCreating with {MULTI_ATTACH}.{read_only}{why}",
                        also_mount(cf),
                        total_text(cf)
                    )
                };
                (RWO, false, msg)
            }
            _ => continue,
        };
        let fix = if alone {
            unshare_fix(subject, c, table)
        } else {
            shared_between_fix(&fp.workload, cf, mode, c, table)
        };
        let f = Finding::new(RuleId::SharedRwoClaim, &fp.subject, msg)
            .on(c)
            .mode(mode)
            .fix(fix);
        out.push(if advisory { f.advisory() } else { f });
    }
}

/// "Deployment shop/web may run 3 pods", or for a replica's own claim, "StatefulSet db/pg runs replica 0".
fn subject_runs(subject: &Subject<'_>, me: &User) -> String {
    match me.replica {
        Some(r) => format!(
            "{} runs replica {r} (1 pod, its own claim from volumeClaimTemplate \"{}\")",
            subject.footprint.workload, me.volume
        ),
        None => subject.who_runs(),
    }
}

/// `shared-claim-writable`: a ReadOnlyMany claim is attached read-only on every node; a read-write mount
/// fails to start or fails its writes.
pub(super) fn shared_claim_writable(subject: &Subject<'_>, table: &ProvisionerTable, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    for c in &subject.claims {
        if c.sharing() != Some(Sharing::ReadMany) {
            continue;
        }
        let Some(cf) = c.footprint() else {
            continue;
        };
        if cf.total_pods() <= 1 || !cf.users[0].has_pods() {
            continue;
        }
        // A claim that also offers ReadWriteOnce can be written on a single node the pods are held on.
        let offers_rwo = c.claim().is_some_and(|pvc| {
            crate::domain::access::effective_modes(pvc)
                .iter()
                .any(|m| m == RWO)
        });
        if offers_rwo && matches!(cf.spread(), Spread::OneNode(_)) {
            continue;
        }
        let with = if cf.others().next().is_none() {
            String::new()
        } else {
            format!(" with {}", cf.list_others())
        };
        for m in c.use_.writable_mounts() {
            let msg = format!(
                "{} that share {} ({ROX}){with}, but container \"{}\" mounts volume \"{}\" read-write at {}: a {ROX} \
                 volume is attached read-only on every node, so the pod fails to start or its writes fail.",
                subject.who_runs(),
                c.what(),
                m.container,
                c.use_.volume,
                m.mount_path
            );
            let fix = format!(
                "Mount it read-only in container \"{}\":\n  volumeMounts:\n  - name: {}\n    mountPath: {}\n    \
                 readOnly: true\nIf the pods must write, use {}.",
                m.container,
                c.use_.volume,
                m.mount_path,
                a_shared_claim(c, table, false)
            );
            let mut f = Finding::new(RuleId::SharedClaimWritable, &fp.subject, msg)
                .on(c)
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
    for c in subject.claims.iter().filter(|c| c.source == Source::Claim) {
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
                    .on(c)
                    .fix(fix),
            );
        }
    }
}

/// `lookup-failed`: a claim, or who else mounts it, that could not be looked up, judged by the policy's
/// failure mode.
pub(super) fn lookup_failed(subject: &Subject<'_>, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    for c in &subject.claims {
        let msg = match (&c.state, &c.users) {
            (ClaimState::Unknown(why), _) => format!(
                "volguard could not look up {} (volume \"{}\") of {}: {why}",
                c.what(),
                c.use_.volume,
                fp.workload
            ),
            (_, Answer::Unknown(why)) => format!(
                "volguard could not look up the other workloads mounting {} (volume \"{}\") of {}: {why}",
                c.what(),
                c.use_.volume,
                fp.workload
            ),
            _ => continue,
        };
        out.push(Finding::new(RuleId::LookupFailed, &fp.subject, msg).on(c));
    }
}

/// The sharing rules, for a claim created (or updated) under the workloads that mount it: every finding
/// the users' own reviews would give, said of the claim. `rule` is the rule to run; the caller gives each
/// finding its users' action.
pub(crate) fn claim(
    object: &ObjectRef,
    state: &ClaimState,
    cf: &ClaimFootprint,
    rule: RuleId,
    sharable: Option<&str>,
    out: &mut Vec<(Finding, Vec<ObjectRef>)>,
) {
    let ClaimState::Found { claim, sharing } = state else {
        return;
    };
    let active: Vec<&User> = cf.active().map(|(u, _)| u).collect();
    let workloads: Vec<ObjectRef> = active.iter().map(|u| u.workload().clone()).collect();
    if active.is_empty() {
        return;
    }
    let users = cf.list_users();
    let total = total_text(cf);
    let modes = sharable.map_or_else(
        || format!("an access mode its workloads can share ({RWX}, or {ROX} mounted readOnly: true)"),
        str::to_owned,
    );
    let fix = format!(
        "Create the claim with {modes}, or change the workloads before creating it: one pod on it at a time, or \
         every pod held on one node (see \"How volguard counts pods\" in the README)."
    );
    let with = |f: Finding| {
        let mut f = f.fix(fix.clone());
        f.claim = Some(object.name.clone());
        f
    };
    match (rule, sharing) {
        (RuleId::SharedRwoClaim, Some(Sharing::OnePod)) if cf.total_pods() > 1 => {
            let msg = format!(
                "{object} has access mode ReadWriteOncePod and is mounted by {users}: {total} in all, but only one \
                 pod in the whole cluster may use it, so every other pod stays Pending or ContainerCreating."
            );
            out.push((with(Finding::new(rule, object, msg)).mode(RWOP), workloads));
        }
        (RuleId::SharedRwoClaim, Some(Sharing::OneNode)) if cf.total_pods() > 1 => match cf.spread() {
            Spread::OnePod => {}
            Spread::OneNode(anchor) => {
                let msg = format!(
                    "{object} has access mode {RWO} and is mounted by {users}: {total}, which works only while they \
                     are {anchor}. Drop the pin, or drain the node, and pods on another node hang with \
                     {MULTI_ATTACH}."
                );
                out.push((
                    with(Finding::new(rule, object, msg)).mode(RWO).advisory(),
                    workloads,
                ));
            }
            Spread::Nodes => {
                let msg = format!(
                    "{object} has access mode {RWO} and is mounted by {users}: {total}, not held on one node. The \
                     volume attaches to one node at a time, so a pod scheduled on a second node hangs in \
                     ContainerCreating with {MULTI_ATTACH}."
                );
                out.push((with(Finding::new(rule, object, msg)).mode(RWO), workloads));
            }
        },
        (RuleId::SharedClaimWritable, Some(Sharing::ReadMany)) if cf.total_pods() > 1 => {
            let offers_rwo = claim.as_deref().is_some_and(|pvc| {
                crate::domain::access::effective_modes(pvc)
                    .iter()
                    .any(|m| m == RWO)
            });
            if offers_rwo && matches!(cf.spread(), Spread::OneNode(_)) {
                return;
            }
            for u in &active {
                for m in u.writable_mounts() {
                    let msg = format!(
                        "{object} has access mode {ROX} and is mounted by {users}, but container \"{}\" of {} mounts \
                         it read-write at {}: a {ROX} volume is attached read-only on every node, so the pod fails \
                         to start or its writes fail.",
                        m.container,
                        u.workload(),
                        m.mount_path
                    );
                    let mut f = with(Finding::new(rule, object, msg)).mode(ROX);
                    f.container = Some(m.container.clone());
                    f.volume = Some(u.volume.clone());
                    out.push((f, vec![u.workload().clone()]));
                }
            }
        }
        (RuleId::StatefulsetSharedClaim, sharing) => {
            for u in &active {
                let multi = u.pods.peak() > 1;
                if u.footprint.kind != WorkloadKind::StatefulSet
                    || !multi
                    || u.is_read_only()
                    || u.replica.is_some()
                {
                    continue;
                }
                let msg = format!(
                    "{object} is mounted read-write by every pod of {}: a StatefulSet should give each replica its \
                     own claim through volumeClaimTemplates.",
                    u.describe()
                );
                let many_writers = *sharing == Some(Sharing::WriteMany);
                let f = Finding::new(rule, object, msg);
                let mut f = if many_writers { f.advisory() } else { f };
                f = f.fix(format!(
                    "Remove volume \"{}\" from the StatefulSet's pod template and add under its spec:\n{}",
                    u.volume,
                    claim_template_yaml(&u.volume, claim.as_deref())
                ));
                f.claim = Some(object.name.clone());
                f.volume = Some(u.volume.clone());
                out.push((f, vec![u.workload().clone()]));
            }
        }
        _ => {}
    }
}
