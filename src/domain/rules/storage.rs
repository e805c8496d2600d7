//! Rules about what a claim's StorageClass can give: `unsupported-access-mode` (a claim, a StatefulSet's
//! volumeClaimTemplate or a generic ephemeral volume asking for a mode its class's provisioner cannot give:
//! it never binds) and `unbindable-claim` (a workload mounting such a claim: its pods stay Pending); and
//! [`share_phrase`], which keeps the other rules' fixes to what the claim's class can do.
//! See <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes>.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::{ClaimState, Finding, ResolvedClaim, RuleId, Source, Subject};
use crate::domain::access::{ROX, RWO, RWX};
use crate::domain::lookup::{Answer, Lookup};
use crate::domain::storage::{
    self, Capabilities, ClassRequest, Gap, Modes, ProvisionerTable, ResolvedClass, VolumeMode,
};
use crate::domain::workload::{ObjectRef, PerPodSource};

/// How to ask for what the class can give, for a claim that asks for what it cannot.
fn fix_for(gap: &Gap, subject: &str) -> String {
    let offered = gap.capabilities.modes(gap.volume_mode);
    let mut out = Vec::new();
    let wants_sharing = gap.missing.iter().any(|m| m == RWX || m == ROX);
    if wants_sharing && offered.contains(Modes::RWO) {
        out.push(format!(
            "If one node at a time is enough, ask {subject} for {RWO} only (for one claim per replica, a \
             StatefulSet's volumeClaimTemplates)."
        ));
    }
    let other_mode = match gap.volume_mode {
        VolumeMode::Filesystem => VolumeMode::Block,
        VolumeMode::Block => VolumeMode::Filesystem,
    };
    let in_other_mode = gap.capabilities.modes(other_mode);
    if gap
        .missing
        .iter()
        .all(|m| Modes::named(m).is_some_and(|mode| in_other_mode.contains(mode)))
    {
        out.push(format!(
            "{} gives {} with volumeMode: {other_mode}{}.",
            gap.class.provisioner,
            gap.missing.join(" and "),
            if other_mode == VolumeMode::Block {
                " (a raw device: the application must write to it as one, through volumeDevices)"
            } else {
                ""
            }
        ));
    }
    let alternative = gap
        .capabilities
        .shared_alternative
        .filter(|_| wants_sharing)
        .map(|alt| format!(" (for this vendor, {alt})"))
        .unwrap_or_default();
    out.push(format!(
        "Or name a StorageClass whose provisioner gives {}{alternative}; accessModes and storageClassName cannot \
         change once a claim exists, so create a new claim and move the data.",
        gap.missing.join(" and ")
    ));
    out.join(" ")
}

/// The class a claim (or template) resolves to: `Missing` when it names none and there is no default, or
/// names one that the lookup does not hold (for files: not among them), and when it asks for no class.
pub(super) fn resolve_class(request: &ClassRequest, lookup: &dyn Lookup) -> Answer<ResolvedClass> {
    let (name, defaulted) = match request {
        ClassRequest::NoClass => return Answer::Missing,
        ClassRequest::Named(n) => (Some(n.as_str()), false),
        ClassRequest::Default => (None, true),
    };
    lookup.storage_class(name).map(|c| ResolvedClass {
        name: c.metadata.name.clone().unwrap_or_default(),
        provisioner: c.provisioner.clone(),
        defaulted,
    })
}

/// What a claim asks of its class that the class cannot give, while it may still be provisioned (not
/// bound yet).
fn unbound_gap(claim: &PersistentVolumeClaim, lookup: &dyn Lookup, table: &ProvisionerTable) -> Option<Gap> {
    if storage::is_bound(claim) {
        return None;
    }
    let Answer::Found(class) = resolve_class(&ClassRequest::of(claim), lookup) else {
        return None;
    };
    let spec = claim.spec.as_ref();
    let asked = spec.and_then(|s| s.access_modes.as_deref()).unwrap_or_default();
    storage::gap(asked, VolumeMode::of(spec), &class, table)
}

/// `unsupported-access-mode` for a claim under review (created or updated).
pub(crate) fn claim(
    claim: &PersistentVolumeClaim,
    object: &ObjectRef,
    lookup: &dyn Lookup,
    table: &ProvisionerTable,
) -> Option<Finding> {
    let gap = unbound_gap(claim, lookup, table)?;
    let msg = format!(
        "{object} asks for {}, but {}. The claim never binds: it stays Pending, and so does every pod that \
         mounts it.",
        gap.missing.join(" and "),
        gap.explain()
    );
    let mut f = Finding::new(RuleId::UnsupportedAccessMode, object, msg)
        .mode(&gap.missing[0])
        .fix(fix_for(&gap, "the claim"));
    f.claim = Some(object.name.clone());
    Some(f)
}

/// `unsupported-access-mode` for a workload's per-pod claims: a StatefulSet's volumeClaimTemplates and any
/// generic ephemeral volume.
pub(super) fn templates(subject: &Subject<'_>, table: &ProvisionerTable, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    for (t, class) in fp.per_pod.iter().zip(&subject.per_pod_classes) {
        let Some(class) = class else { continue };
        let Some(gap) = storage::gap(&t.access_modes, t.volume_mode, class, table) else {
            continue;
        };
        let (what, whose) = match t.source {
            PerPodSource::ClaimTemplate => ("volumeClaimTemplate", "Each replica's claim"),
            PerPodSource::Ephemeral => ("generic ephemeral volume", "Each pod's claim"),
        };
        let msg = format!(
            "{} has {what} \"{}\" asking for {}, but {}. {whose} never binds, so its pod stays Pending.",
            fp.workload,
            t.name,
            gap.missing.join(" and "),
            gap.explain()
        );
        let mut f = Finding::new(RuleId::UnsupportedAccessMode, &fp.subject, msg)
            .mode(&gap.missing[0])
            .fix(fix_for(&gap, &format!("{what} \"{}\"", t.name)));
        f.volume = Some(t.name.clone());
        out.push(f);
    }
}

/// `unbindable-claim`: a workload mounting a claim that cannot be provisioned as it asks.
pub(super) fn unbindable(subject: &Subject<'_>, table: &ProvisionerTable, out: &mut Vec<Finding>) {
    let fp = subject.footprint;
    for c in subject.claims.iter().filter(|c| c.source == Source::Claim) {
        let (Some(claim), Some(view)) = (c.claim(), c.class.as_ref()) else {
            continue;
        };
        if storage::is_bound(claim) {
            continue;
        }
        let asked = claim
            .spec
            .as_ref()
            .and_then(|s| s.access_modes.as_deref())
            .unwrap_or_default();
        let Some(gap) = storage::gap(asked, view.volume_mode, &view.class, table) else {
            continue;
        };
        let relies = if fp.pods.is_multi_pod() && gap.missing.iter().any(|m| m == RWX || m == ROX) {
            format!(
                " {} and relies on {} to share it across nodes.",
                subject.who_runs(),
                gap.missing.join(" and ")
            )
        } else {
            String::new()
        };
        let msg = format!(
            "{} mounts claim \"{}\" (volume \"{}\"), which asks for {}, but {}. The claim never binds, so these \
             pods stay Pending.{relies}",
            fp.workload,
            c.use_.claim,
            c.use_.volume,
            gap.missing.join(" and "),
            gap.explain()
        );
        out.push(
            Finding::new(RuleId::UnbindableClaim, &fp.subject, msg)
                .on(c)
                .mode(&gap.missing[0])
                .fix(fix_for(&gap, &format!("claim \"{}\"", c.use_.claim))),
        );
    }
}

/// What a shared volume's class says about sharing it, for fixes: None when the class (or its provisioner)
/// is unknown, and the fix keeps its general advice.
pub(super) struct ShareAdvice {
    /// "a claim that asks for ReadWriteMany (class "efs" (efs.csi.aws.com) gives it)", or what else.
    pub read_write: String,
    /// The ReadOnlyMany option, when the class gives it: "(or ReadOnlyMany, mounted readOnly: true)".
    pub read_only: Option<String>,
}

/// The sharing a claim's class can give, as the noun phrase a fix proposes.
pub(super) fn share_phrase(c: &ResolvedClaim, table: &ProvisionerTable) -> Option<ShareAdvice> {
    let ClaimState::Found { .. } = &c.state else {
        return None;
    };
    let view = c.class.as_ref()?;
    let caps = table.capabilities(&view.class.provisioner)?;
    let offered = caps.modes(view.volume_mode);
    let class = view.class.describe();
    let read_only = offered
        .contains(Modes::ROX)
        .then(|| format!("(or {ROX}, mounted readOnly: true, which it gives too)"));
    let read_write = if offered.contains(Modes::RWX) {
        format!("a claim that asks {class} for {RWX}, which it gives")
    } else {
        let alternative = such_as(&caps);
        format!(
            "a claim of a class that gives {RWX}{alternative}: {class} cannot with volumeMode: {}",
            view.volume_mode
        )
    };
    Some(ShareAdvice {
        read_write,
        read_only,
    })
}

/// ", such as one of efs.csi.aws.com": the same vendor's provisioner that shares read-write, if any.
fn such_as(caps: &Capabilities) -> String {
    caps.shared_alternative
        .map(|a| format!(", such as one of {a}"))
        .unwrap_or_default()
}

/// The ReadWriteOncePod fix's mention of ReadWriteMany, when the class cannot give it.
pub(super) fn rwop_share(c: &ResolvedClaim, table: &ProvisionerTable) -> Option<String> {
    let view = c.class.as_ref()?;
    let caps = table.capabilities(&view.class.provisioner)?;
    let offered = caps.modes(view.volume_mode);
    Some(if offered.contains(Modes::RWX) {
        format!("{RWX} (which {} gives)", view.class.describe())
    } else {
        format!(
            "a class that gives {RWX} ({} cannot with volumeMode: {})",
            view.class.describe(),
            view.volume_mode
        )
    })
}

/// What a claim under review can be created with for its workloads to share it, when its class is known:
/// "an access mode its workloads can share that class "efs" (efs.csi.aws.com) gives: ReadWriteMany, or
/// ReadOnlyMany mounted readOnly: true".
pub(crate) fn sharable_modes(
    claim: &PersistentVolumeClaim,
    lookup: &dyn Lookup,
    table: &ProvisionerTable,
) -> Option<String> {
    let Answer::Found(class) = resolve_class(&ClassRequest::of(claim), lookup) else {
        return None;
    };
    let volume_mode = VolumeMode::of(claim.spec.as_ref());
    let caps = table.capabilities(&class.provisioner)?;
    let offered = caps.modes(volume_mode);
    let described = class.describe();
    Some(
        match (offered.contains(Modes::RWX), offered.contains(Modes::ROX)) {
            (true, true) => format!(
                "an access mode its workloads can share, which {described} gives: {RWX}, or {ROX} mounted readOnly: true"
            ),
            (true, false) => format!("{RWX}, which {described} gives"),
            (false, true) => format!(
                "{ROX}, mounted readOnly: true, which {described} gives ({RWX} it cannot, with volumeMode: {volume_mode})"
            ),
            (false, false) => {
                let alternative = such_as(&caps);
                format!(
                    "a class that gives {RWX}{alternative} ({described} gives neither {RWX} nor {ROX} with volumeMode: \
                 {volume_mode})"
                )
            }
        },
    )
}
