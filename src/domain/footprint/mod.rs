//! One claim, all of its users: the pods that may mount a claim (or an inline disk) at the same time, from
//! every workload that mounts it, and whether the scheduler must put them all on one node.
//!
//! ```text
//!   claim "data" (ReadWriteOnce)
//!     ├─ Deployment web      3 pods   Node(n1) | Group | Anywhere
//!     ├─ Job backup          1 pod    follows web's pods (required pod affinity)
//!     └─ StatefulSet pg      1 pod    (replica 0's own claim, from a volumeClaimTemplate)
//! ```
//!
//! A [`ClaimFootprint`] is built from the workload under review and what the lookup knows mounts the same
//! volume; [`ClaimFootprint::judge`] is the one pure decision the rules render, for a workload, an
//! autoscaler, a Scale or the claim itself. See
//! <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes>.

mod colocation;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub(crate) use colocation::Anchor;
pub use colocation::resolve;

use crate::domain::lookup::{Answer, Lookup, VolumeKey};
use crate::domain::workload::{Footprint, Mount, ObjectRef, PodCount, Workload, WorkloadKind};

/// One workload's share of a volume.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// The workload's footprint (its pods, placement, labels), with any autoscaler applied; shared by
    /// every volume the workload mounts.
    pub footprint: Arc<Footprint>,
    /// The pod volume (or volumeClaimTemplate) through which it mounts the volume.
    pub volume: String,
    /// How many of its pods mount the volume at once: all of them, or one (a replica's own claim).
    pub pods: PodCount,
    /// The replica whose own claim this is (a StatefulSet's volumeClaimTemplate), if it is one.
    pub replica: Option<u32>,
    /// The volume source's own `readOnly`.
    pub volume_read_only: bool,
    /// The container mounts of the volume.
    pub mounts: Vec<Mount>,
}

impl User {
    /// The workload's share of `volume`, if it mounts it.
    pub fn of(footprint: &Arc<Footprint>, volume: &VolumeKey) -> Option<Self> {
        let user = |volume: &str, pods, replica, volume_read_only, mounts: &[Mount]| User {
            footprint: Arc::clone(footprint),
            volume: volume.to_owned(),
            pods,
            replica,
            volume_read_only,
            mounts: mounts.to_vec(),
        };
        match volume {
            VolumeKey::Claim { name, .. } => {
                if let Some(c) = footprint.claims.iter().find(|c| &c.claim == name) {
                    return Some(user(
                        &c.volume,
                        footprint.pods,
                        None,
                        c.volume_read_only,
                        &c.mounts,
                    ));
                }
                // A replica's own claim: written by that one pod (its mounts do not change the verdict).
                let (ordinal, template) = footprint.replica_claim(name)?;
                Some(user(
                    &template.name,
                    PodCount::Exactly(1),
                    Some(ordinal),
                    false,
                    &[],
                ))
            }
            VolumeKey::Disk(disk) => {
                let d = footprint.disks.iter().find(|d| &d.disk == disk)?;
                Some(user(
                    &d.volume,
                    footprint.pods,
                    None,
                    d.volume_read_only,
                    &d.mounts,
                ))
            }
        }
    }

    /// The labels of the pods that mount the volume: the workload's pods' labels, and for a StatefulSet
    /// replica's own claim the labels its controller gives that one pod.
    pub fn labels(&self) -> BTreeMap<String, String> {
        match self.replica {
            Some(ordinal) => replica_labels(&self.footprint, ordinal),
            None => self.footprint.labels.clone(),
        }
    }

    /// Whether any of its pods mount the volume.
    pub(crate) fn has_pods(&self) -> bool {
        self.pods.peak() > 0
    }

    /// The workload.
    pub fn workload(&self) -> &ObjectRef {
        &self.footprint.workload
    }

    /// Whether no container can write: the volume is read-only, or every mount is. A replica's own
    /// claim is written by its pod.
    pub(crate) fn is_read_only(&self) -> bool {
        self.replica.is_none()
            && (self.volume_read_only || (!self.mounts.is_empty() && self.mounts.iter().all(|m| m.read_only)))
    }

    /// The mounts that can write (none when the volume itself is read-only).
    pub(crate) fn writable_mounts(&self) -> impl Iterator<Item = &Mount> {
        self.mounts
            .iter()
            .filter(move |m| !self.volume_read_only && !m.read_only)
    }

    /// "Deployment shop/web (3 pods)", "StatefulSet db/pg (replica 0)".
    pub(crate) fn describe(&self) -> String {
        match self.replica {
            Some(r) => format!(
                "{} (replica {r}, through volumeClaimTemplate \"{}\")",
                self.workload(),
                self.volume
            ),
            None => format!("{} ({})", self.workload(), self.pods),
        }
    }
}

/// The label the StatefulSet controller gives each pod with the pod's name.
pub(crate) const STATEFULSET_POD_NAME: &str = "statefulset.kubernetes.io/pod-name";
/// The label the StatefulSet controller gives each pod with its ordinal (Kubernetes 1.28 and newer).
pub(crate) const POD_INDEX: &str = "apps.kubernetes.io/pod-index";

/// The labels of a StatefulSet's replica `ordinal`.
pub(crate) fn replica_labels(fp: &Footprint, ordinal: u32) -> BTreeMap<String, String> {
    let mut labels = fp.labels.clone();
    labels.insert(
        STATEFULSET_POD_NAME.to_owned(),
        format!("{}-{ordinal}", fp.workload.name),
    );
    labels.insert(POD_INDEX.to_owned(), ordinal.to_string());
    labels
}

/// Every user of one volume, with where each one's pods may land.
#[derive(Clone, Debug, PartialEq)]
pub struct ClaimFootprint {
    /// The claim or disk.
    pub volume: VolumeKey,
    /// Its users, the one under review first when there is one.
    pub users: Vec<User>,
    /// Where each user's pods may land, in the same order (resolved only when a verdict needs it).
    pub anchors: Vec<Anchor>,
}

/// How far a volume's pods may spread.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Spread {
    /// At most one pod at a time.
    OnePod,
    /// Every pod on one node (pinned, or held together by pod affinity).
    OneNode(Anchor),
    /// Pods that may land on different nodes.
    Nodes,
}

impl ClaimFootprint {
    /// The users of `volume` other than `subject` (whose own version the lookup may hold, older or from the
    /// files), found through `lookup`, after `subject`'s own share. Each user counts at the most pods its
    /// autoscalers allow. Unknown when the lookup cannot tell who mounts the volume.
    pub(crate) fn gather(subject: &Arc<Footprint>, volume: &VolumeKey, lookup: &dyn Lookup) -> Answer<Self> {
        let Some(me) = User::of(subject, volume) else {
            return Answer::Missing;
        };
        let mut users = vec![me];
        // The subject itself (its older version), and what it controls: its own pods, counted in it.
        let others = |w: &Workload| !is_same(w, &subject.workload) && !is_controlled_by(w, &subject.workload);
        match users_of(volume, lookup, others) {
            Answer::Found(more) => users.extend(more),
            Answer::Missing => {}
            Answer::Unknown(why) => return Answer::Unknown(why),
        }
        Answer::Found(Self {
            volume: volume.clone(),
            users,
            anchors: Vec::new(),
        })
    }

    /// Every user of a claim, for judging the claim itself (a claim created under running workloads).
    pub(crate) fn of_claim(volume: &VolumeKey, lookup: &dyn Lookup) -> Answer<Self> {
        users_of(volume, lookup, |_| true).map(|users| Self {
            volume: volume.clone(),
            users,
            anchors: Vec::new(),
        })
    }

    /// Resolves where each user's pods may land (pod affinities read the other workloads through `lookup`).
    pub fn place(&mut self, lookup: &dyn Lookup) {
        if self.anchors.len() != self.users.len() {
            self.anchors = resolve(&self.users, lookup);
        }
    }

    /// The users with pods that mount the volume, with their anchors.
    pub(crate) fn active(&self) -> impl Iterator<Item = (&User, Option<&Anchor>)> {
        self.users
            .iter()
            .enumerate()
            .filter(|(_, u)| u.has_pods())
            .map(|(i, u)| (u, self.anchors.get(i)))
    }

    /// How many pods mount the volume at once, every user together (saturating: one on every node is
    /// unbounded).
    pub(crate) fn total_pods(&self) -> u32 {
        self.users
            .iter()
            .fold(0u32, |sum, u| sum.saturating_add(u.pods.peak()))
    }

    /// How far the pods may spread: needs [`ClaimFootprint::place`] first.
    pub(crate) fn spread(&self) -> Spread {
        if self.total_pods() <= 1 {
            return Spread::OnePod;
        }
        let mut anchors = self.active().map(|(_, a)| a);
        let Some(Some(first)) = anchors.next() else {
            return Spread::Nodes;
        };
        if !first.is_confined() {
            return Spread::Nodes;
        }
        if anchors.all(|a| a == Some(first)) {
            Spread::OneNode(first.clone())
        } else {
            Spread::Nodes
        }
    }

    /// The users other than the first (the one under review), with pods.
    pub fn others(&self) -> impl Iterator<Item = &User> {
        self.users.iter().skip(1).filter(|u| u.has_pods())
    }

    /// "Deployment shop/a (1 pod) and Job shop/b (1 pod)".
    pub(crate) fn list_others(&self) -> String {
        join(self.others().map(User::describe).collect())
    }

    /// "Deployment shop/a (1 pod), Job shop/b (1 pod) and ..." for every user with pods.
    pub(crate) fn list_users(&self) -> String {
        join(self.active().map(|(u, _)| u.describe()).collect())
    }
}

/// The users of `volume` the lookup knows of, each at the most pods its autoscalers allow, but those
/// `keep` leaves out.
fn users_of(volume: &VolumeKey, lookup: &dyn Lookup, keep: impl Fn(&Workload) -> bool) -> Answer<Vec<User>> {
    let workloads = match lookup.users(volume) {
        Answer::Found(o) => o,
        Answer::Missing => Vec::new(),
        Answer::Unknown(why) => return Answer::Unknown(why),
    };
    let mut users = Vec::new();
    for w in workloads.iter().filter(|w| keep(w)) {
        let Ok(mut fp) = Footprint::of(w) else {
            continue;
        };
        let fp = match autoscale(&mut fp, w, lookup) {
            Answer::Found(()) => Arc::new(fp),
            Answer::Missing => continue,
            Answer::Unknown(why) => return Answer::Unknown(why),
        };
        users.extend(User::of(&fp, volume));
    }
    Answer::Found(users)
}

/// "a", "a and b", "a, b and c".
pub fn join(items: Vec<String>) -> String {
    match items.as_slice() {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn is_same(w: &Workload, r: &ObjectRef) -> bool {
    w.object_ref() == *r
}

/// Whether `r` is the controller of `w` (a Deployment of its ReplicaSet, a CronJob of its Job).
fn is_controlled_by(w: &Workload, r: &ObjectRef) -> bool {
    w.controller()
        .is_some_and(|o| o.kind == r.kind.as_str() && o.name == r.name)
        && crate::domain::workload::namespace_of(w.metadata()) == r.namespace
}

/// Raises a workload's footprint to the most pods its autoscalers allow: the larger of its own replicas
/// and what each HorizontalPodAutoscaler may scale it to. When they cannot be looked up the footprint is
/// left as it was and the answer says why.
pub(crate) fn autoscale(fp: &mut Footprint, workload: &Workload, lookup: &dyn Lookup) -> Answer<()> {
    let PodCount::Exactly(replicas) = fp.pods else {
        return Answer::Found(());
    };
    if !WorkloadKind::SCALABLE.contains(&fp.kind) {
        return Answer::Found(());
    }
    let meta = workload.metadata();
    let name = meta.name.as_deref().unwrap_or_default();
    let hpas = match lookup.autoscalers(fp.kind, &fp.workload.namespace, name) {
        Answer::Found(h) => h,
        Answer::Missing => Vec::new(),
        Answer::Unknown(why) => return Answer::Unknown(why),
    };
    for hpa in hpas {
        let max = hpa.max_pods(replicas);
        if max > fp.pods.peak() {
            fp.pods = PodCount::Exactly(max);
            fp.scaled_by = Some(ObjectRef {
                kind: crate::domain::workload::Kind::HorizontalPodAutoscaler,
                namespace: fp.workload.namespace.clone(),
                name: hpa.metadata.name.clone().unwrap_or_default(),
            });
        }
    }
    Answer::Found(())
}

impl fmt::Display for VolumeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeKey::Claim { name, .. } => write!(f, "claim \"{name}\""),
            VolumeKey::Disk(d) => write!(f, "{d}"),
        }
    }
}
