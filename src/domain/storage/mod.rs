//! StorageClasses and what their provisioners can give: a claim asking for an access mode its class's
//! provisioner cannot give never binds, and its pods stay Pending.
//!
//! A claim's class is the one it names, the cluster's default class when it names none, and no class at all
//! when it names `""` (static binding: nothing is provisioned, so nothing is judged). What a provisioner can
//! give comes from the built-in [`provisioners`] table, corrected or extended by the policy's
//! `spec.provisioners`. This module looks nothing up: `rules` resolves a claim's class through the lookup.
//! See <https://kubernetes.io/docs/concepts/storage/storage-classes/>.

pub mod provisioners;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::domain::access::{ROX, RWO, RWOP, RWX};

/// The annotation that marks the default class (and its beta form, still honoured by Kubernetes).
pub const DEFAULT_CLASS_ANNOTATIONS: [&str; 2] = [
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
];

/// The annotation older claims name their class with, before `spec.storageClassName` existed.
pub const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// A set of access modes.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Modes(u8);

impl Modes {
    /// No mode.
    pub const EMPTY: Modes = Modes(0);
    /// ReadWriteOnce.
    pub const RWO: Modes = Modes(1);
    /// ReadOnlyMany.
    pub const ROX: Modes = Modes(2);
    /// ReadWriteMany.
    pub const RWX: Modes = Modes(4);
    /// ReadWriteOncePod.
    pub const RWOP: Modes = Modes(8);
    const NAMED: [(Modes, &'static str); 4] = [
        (Modes::RWO, RWO),
        (Modes::ROX, ROX),
        (Modes::RWX, RWX),
        (Modes::RWOP, RWOP),
    ];

    /// Both sets.
    pub const fn or(self, other: Modes) -> Modes {
        Modes(self.0 | other.0)
    }

    /// Whether every mode of `other` is in the set.
    pub const fn contains(self, other: Modes) -> bool {
        self.0 & other.0 == other.0
    }

    /// The mode an API name stands for (None: not a mode Kubernetes knows).
    pub fn named(name: &str) -> Option<Modes> {
        Self::NAMED.iter().find(|(_, n)| *n == name).map(|(m, _)| *m)
    }

    /// The modes, as the API writes them, in a fixed order.
    pub fn names(self) -> Vec<&'static str> {
        Self::NAMED
            .iter()
            .filter(|(m, _)| self.contains(*m))
            .map(|(_, n)| *n)
            .collect()
    }
}

impl fmt::Debug for Modes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl fmt::Display for Modes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.names().as_slice() {
            [] => f.write_str("no access mode"),
            names => f.write_str(&names.join(", ")),
        }
    }
}

/// `volumeMode`: a filesystem (the default) or a raw block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VolumeMode {
    /// `Filesystem`.
    Filesystem,
    /// `Block`.
    Block,
}

impl VolumeMode {
    /// The claim's volume mode (Filesystem unless it says Block).
    pub fn of(spec: Option<&PersistentVolumeClaimSpec>) -> Self {
        match spec.and_then(|s| s.volume_mode.as_deref()) {
            Some("Block") => VolumeMode::Block,
            _ => VolumeMode::Filesystem,
        }
    }
}

impl fmt::Display for VolumeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VolumeMode::Filesystem => "Filesystem",
            VolumeMode::Block => "Block",
        })
    }
}

/// What one provisioner can give, and where that is said. Read on every claim judged: a built-in row's
/// texts are borrowed, not copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Modes with `volumeMode: Filesystem`.
    pub filesystem: Modes,
    /// Modes with `volumeMode: Block`.
    pub block: Modes,
    /// A provisioner of the same vendor that shares a filesystem read-write.
    pub shared_alternative: Option<&'static str>,
    /// Where it comes from: a documentation URL, or the policy that says so.
    pub source: Cow<'static, str>,
}

impl Capabilities {
    /// The modes offered in a volume mode.
    pub fn modes(&self, mode: VolumeMode) -> Modes {
        match mode {
            VolumeMode::Filesystem => self.filesystem,
            VolumeMode::Block => self.block,
        }
    }
}

/// A policy's word on a provisioner: added to the built-in table, or replacing its row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvisionerEntry {
    /// The provisioner name, exactly as the StorageClass writes it.
    pub provisioner: String,
    /// Modes with `volumeMode: Filesystem`.
    pub filesystem: Modes,
    /// Modes with `volumeMode: Block`.
    pub block: Modes,
    /// The policy that says so.
    pub policy: String,
}

/// The table a policy judges with: its own entries first, then the built-in rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProvisionerTable {
    /// The policy's entries.
    pub entries: Vec<ProvisionerEntry>,
}

impl ProvisionerTable {
    /// What `provisioner` can give, if it is known.
    pub fn capabilities(&self, provisioner: &str) -> Option<Capabilities> {
        if let Some(e) = self.entries.iter().find(|e| e.provisioner == provisioner) {
            return Some(Capabilities {
                filesystem: e.filesystem,
                block: e.block,
                shared_alternative: None,
                source: Cow::Owned(format!("policy \"{}\"", e.policy)),
            });
        }
        provisioners::builtin(provisioner).map(|p| Capabilities {
            filesystem: p.filesystem,
            block: p.block,
            shared_alternative: p.shared_alternative,
            source: Cow::Borrowed(p.source),
        })
    }
}

/// The class a claim (or claim template) asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClassRequest {
    /// A class by name.
    Named(String),
    /// No class named: the cluster's default class, when it has one.
    Default,
    /// `storageClassName: ""`: bound to a PersistentVolume made by hand; nothing is provisioned.
    NoClass,
}

impl ClassRequest {
    /// The class a claim template asks for by its `storageClassName` alone.
    pub fn named(name: Option<&str>) -> Self {
        match name {
            Some("") => ClassRequest::NoClass,
            Some(name) => ClassRequest::Named(name.to_owned()),
            None => ClassRequest::Default,
        }
    }

    /// The class a claim asks for: `spec.storageClassName`, else the beta annotation, else the default.
    pub fn of(claim: &PersistentVolumeClaim) -> Self {
        let named = claim
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref())
            .or_else(|| {
                claim
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
                    .map(String::as_str)
            });
        Self::named(named)
    }
}

/// A claim's class, found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedClass {
    /// The class's name.
    pub name: String,
    /// Its provisioner.
    pub provisioner: String,
    /// Whether the claim got it as the cluster's default class, naming none.
    pub defaulted: bool,
}

impl ResolvedClass {
    /// `class "gp3" (ebs.csi.aws.com)`, or `the default class "gp3" (ebs.csi.aws.com)`.
    pub fn describe(&self) -> String {
        let default = if self.defaulted {
            "the default class"
        } else {
            "class"
        };
        format!("{default} \"{}\" ({})", self.name, self.provisioner)
    }
}

/// Whether a StorageClass is marked as the default.
pub fn is_default(class: &StorageClass) -> bool {
    class.metadata.annotations.as_ref().is_some_and(|a| {
        DEFAULT_CLASS_ANNOTATIONS
            .iter()
            .any(|k| a.get(*k).is_some_and(|v| v == "true"))
    })
}

/// A set of StorageClasses with the table that says what their provisioners give: what a tool that holds
/// the classes (not a lookup) asks of them.
#[derive(Clone, Debug, Default)]
pub struct Classes {
    /// Class name → provisioner.
    by_name: std::collections::BTreeMap<String, String>,
    /// The default class, if any is marked.
    default: Option<String>,
    table: ProvisionerTable,
}

impl Classes {
    /// The classes, judged with `table`.
    pub fn new(classes: &[StorageClass], table: ProvisionerTable) -> Self {
        let arcs: Vec<Arc<StorageClass>> = classes.iter().cloned().map(Arc::new).collect();
        Self {
            by_name: classes
                .iter()
                .map(|c| (c.metadata.name.clone().unwrap_or_default(), c.provisioner.clone()))
                .collect(),
            default: newest_default(arcs.iter()).and_then(|c| c.metadata.name.clone()),
            table,
        }
    }

    /// Whether a claim naming `class` (`None`: the default) may get `mode` in `volume_mode`: None when the
    /// class or its provisioner is unknown, or the claim asks for no class (`""`).
    pub fn gives(&self, class: Option<&str>, mode: &str, volume_mode: VolumeMode) -> Option<bool> {
        let name = match class {
            Some("") => return None,
            Some(n) => n,
            None => self.default.as_deref()?,
        };
        let provisioner = self.by_name.get(name)?;
        let offered = self.table.capabilities(provisioner)?.modes(volume_mode);
        Modes::named(mode).map(|m| offered.contains(m))
    }
}

/// Access modes a claim asks for that its class's provisioner cannot give.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The class.
    pub class: ResolvedClass,
    /// What its provisioner can give.
    pub capabilities: Capabilities,
    /// The claim's volume mode.
    pub volume_mode: VolumeMode,
    /// The modes asked for that it cannot give, as the API writes them.
    pub missing: Vec<String>,
}

impl Gap {
    /// "class "gp3" (ebs.csi.aws.com, AWS EBS) cannot give ReadWriteMany with volumeMode: Filesystem; it
    /// gives ReadWriteOnce, ReadWriteOncePod"
    pub fn explain(&self) -> String {
        let offered = self.capabilities.modes(self.volume_mode);
        let gives = if offered == Modes::EMPTY {
            format!("it offers no {} volumes at all", self.volume_mode)
        } else {
            format!("it gives {offered}")
        };
        format!(
            "{} cannot give {} with volumeMode: {}; {gives} (source: {})",
            self.class.describe(),
            self.missing.join(" or "),
            self.volume_mode,
            self.capabilities.source
        )
    }
}

/// The modes in `asked` that `class` cannot give in `volume_mode`; None when it can give them all, or
/// when its provisioner is not known.
pub fn gap(
    asked: &[String],
    volume_mode: VolumeMode,
    class: &ResolvedClass,
    table: &ProvisionerTable,
) -> Option<Gap> {
    let capabilities = table.capabilities(&class.provisioner)?;
    let offered = capabilities.modes(volume_mode);
    let missing: Vec<String> = asked
        .iter()
        .filter(|m| Modes::named(m).is_some_and(|mode| !offered.contains(mode)))
        .cloned()
        .collect();
    (!missing.is_empty()).then(|| Gap {
        class: class.clone(),
        capabilities,
        volume_mode,
        missing,
    })
}

/// Whether a claim is bound already: it got its volume, so what its class can give no longer matters.
pub fn is_bound(claim: &PersistentVolumeClaim) -> bool {
    let bound_phase = claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound");
    let named_volume = claim
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.as_deref())
        .is_some_and(|v| !v.is_empty());
    bound_phase || named_volume
}

/// Picks the default class among several marked so: the newest, as Kubernetes does since 1.26, then the
/// first by name.
pub fn newest_default<'a>(classes: impl Iterator<Item = &'a Arc<StorageClass>>) -> Option<Arc<StorageClass>> {
    classes
        .filter(|c| is_default(c))
        .max_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| b.metadata.name.cmp(&a.metadata.name))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn class(v: serde_json::Value) -> Arc<StorageClass> {
        Arc::new(serde_json::from_value(v).unwrap())
    }

    fn resolved(provisioner: &str) -> ResolvedClass {
        ResolvedClass {
            name: "c".into(),
            provisioner: provisioner.into(),
            defaulted: false,
        }
    }

    #[test]
    fn a_gap_lists_only_the_modes_the_provisioner_lacks() {
        let table = ProvisionerTable::default();
        let asked = vec![RWO.to_owned(), RWX.to_owned()];
        let ebs = resolved("ebs.csi.aws.com");
        let g = gap(&asked, VolumeMode::Filesystem, &ebs, &table).unwrap();
        assert_eq!(g.missing, [RWX]);
        assert_eq!(
            g.explain(),
            "class \"c\" (ebs.csi.aws.com) cannot give ReadWriteMany with volumeMode: Filesystem; it gives \
             ReadWriteOnce, ReadWriteOncePod (source: \
             https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/multi-attach.md)"
        );
        // io2 Multi-Attach: raw block volumes may be shared.
        assert_eq!(gap(&asked, VolumeMode::Block, &ebs, &table), None);
        assert_eq!(
            gap(
                &asked,
                VolumeMode::Filesystem,
                &resolved("efs.csi.aws.com"),
                &table
            ),
            None
        );
        assert_eq!(
            gap(
                &asked,
                VolumeMode::Filesystem,
                &resolved("example.com/nas"),
                &table
            ),
            None
        );
    }

    #[test]
    fn a_policy_entry_replaces_the_builtin_row() {
        let table = ProvisionerTable {
            entries: vec![ProvisionerEntry {
                provisioner: "ebs.csi.aws.com".into(),
                filesystem: Modes::RWO.or(Modes::RWX),
                block: Modes::EMPTY,
                policy: "ours".into(),
            }],
        };
        let asked = vec![RWX.to_owned()];
        let ebs = resolved("ebs.csi.aws.com");
        assert_eq!(gap(&asked, VolumeMode::Filesystem, &ebs, &table), None);
        let g = gap(&asked, VolumeMode::Block, &ebs, &table).unwrap();
        assert!(
            g.explain()
                .ends_with("it offers no Block volumes at all (source: policy \"ours\")"),
            "{}",
            g.explain()
        );
    }

    #[test]
    fn the_class_a_claim_asks_for() {
        let claim = |v: serde_json::Value| -> PersistentVolumeClaim { serde_json::from_value(v).unwrap() };
        let named = claim(json!({"metadata": {"name": "a"}, "spec": {"storageClassName": "gp3"}}));
        assert_eq!(ClassRequest::of(&named), ClassRequest::Named("gp3".into()));
        let none = claim(json!({"metadata": {"name": "a"}, "spec": {"storageClassName": ""}}));
        assert_eq!(ClassRequest::of(&none), ClassRequest::NoClass);
        let beta = claim(json!({"metadata": {"name": "a",
            "annotations": {"volume.beta.kubernetes.io/storage-class": "slow"}}, "spec": {}}));
        assert_eq!(ClassRequest::of(&beta), ClassRequest::Named("slow".into()));
        let default = claim(json!({"metadata": {"name": "a"}, "spec": {}}));
        assert_eq!(ClassRequest::of(&default), ClassRequest::Default);
    }

    #[test]
    fn the_newest_default_class_wins() {
        let old = class(
            json!({"metadata": {"name": "old", "creationTimestamp": "2024-01-01T00:00:00Z",
            "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "a"}),
        );
        let new = class(
            json!({"metadata": {"name": "new", "creationTimestamp": "2025-01-01T00:00:00Z",
            "annotations": {"storageclass.beta.kubernetes.io/is-default-class": "true"}}, "provisioner": "b"}),
        );
        let plain = class(
            json!({"metadata": {"name": "plain", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "provisioner": "c"}),
        );
        let all = [old.clone(), new.clone(), plain];
        assert_eq!(
            newest_default(all.iter())
                .and_then(|c| c.metadata.name.clone())
                .as_deref(),
            Some("new")
        );
        assert_eq!(
            newest_default([old].iter())
                .map(|c| c.provisioner.clone())
                .as_deref(),
            Some("a")
        );
    }

    #[test]
    fn mode_sets() {
        let m = Modes::named(RWO).unwrap().or(Modes::RWX);
        assert!(m.contains(Modes::RWX) && !m.contains(Modes::ROX));
        assert_eq!(m.to_string(), "ReadWriteOnce, ReadWriteMany");
        assert_eq!(Modes::named("ReadWriteSometimes"), None);
        assert_eq!(Modes::EMPTY.to_string(), "no access mode");
    }
}
