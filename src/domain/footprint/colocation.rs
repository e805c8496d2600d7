//! Whether the users of one volume all land on one node, as the scheduler places them.
//!
//! A user's pods are held on one node when:
//! - they are pinned to a node (`nodeName`, a hostname `nodeSelector`, required node affinity to one node);
//! - a required pod affinity on `kubernetes.io/hostname` selects exactly the pods of a group of workloads
//!   that all carry such a term (the group's first pod lands anywhere, every later one must join it) — a
//!   workload alone whose term selects its own pods and nothing else is the classic case;
//! - such a term selects exactly one other workload's pods, and that workload is held on one node (the
//!   user *follows* it);
//! - it runs at most one pod at a time.
//!
//! A term whose selector also matches pods of workloads outside the group lets pods follow those anywhere;
//! one that reads namespaces by labels volguard cannot see is not trusted; `matchLabelKeys:
//! [pod-template-hash]` holds only one ReplicaSet revision together, so a rolling update's new pods may
//! start elsewhere. See <https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/#inter-pod-affinity-and-anti-affinity>.

use std::collections::BTreeSet;
use std::fmt;

use super::User;
use crate::domain::labels;
use crate::domain::lookup::{Answer, Lookup};
use crate::domain::workload::{
    Footprint, HostAffinity, ObjectRef, Placement, Rollout, TermNamespaces, WorkloadKind, pod_labels,
};

/// At most this many hostname terms of one user are read; more are not trusted to hold pods together
/// (bounds the work a crafted object can ask for).
const MAX_TERMS: usize = 8;

/// Where a user's pods land.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchor {
    /// Every pod on this node.
    Node(String),
    /// Every pod of these workloads on one node, whichever the first one landed on.
    Group {
        /// The workloads whose pods are held together, sorted.
        members: Vec<ObjectRef>,
        /// What holds them together.
        how: Held,
    },
    /// The pods may land on different nodes.
    Anywhere {
        /// Why pod affinity does not hold them together, when the workload has some.
        why: Option<String>,
    },
}

/// What holds a group's pods on one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// One workload's required pod affinity to its own pods.
    OwnAffinity,
    /// Required pod affinities of several workloads, each selecting all of their pods.
    MutualAffinity,
    /// One workload that runs at most one pod at a time (others follow it).
    OnePod,
}

impl Anchor {
    /// Whether the pods it describes are on one node.
    pub(crate) fn is_confined(&self) -> bool {
        !matches!(self, Anchor::Anywhere { .. })
    }

    fn anywhere() -> Self {
        Anchor::Anywhere { why: None }
    }
}

impl fmt::Display for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Anchor::Node(n) => write!(f, "pinned to node {n}"),
            Anchor::Group {
                how: Held::OwnAffinity,
                members,
            } if members.len() == 1 => {
                f.write_str("co-located on one node by a required pod affinity to its own labels")
            }
            Anchor::Group { members, how } => {
                let names = super::join(members.iter().map(ToString::to_string).collect());
                match how {
                    Held::OnePod => write!(
                        f,
                        "held on the node of {names}'s one pod by required pod affinity"
                    ),
                    _ => write!(
                        f,
                        "held on one node by required pod affinities among the pods of {names}"
                    ),
                }
            }
            Anchor::Anywhere { .. } => f.write_str("free to run on any node"),
        }
    }
}

/// What one hostname term of a user selects.
#[derive(Clone, Debug, Default)]
struct Selection {
    /// The users whose pods it selects (by index).
    users: BTreeSet<usize>,
    /// Workloads outside the volume's users whose pods it selects, with where their pods land.
    outside: Vec<(ObjectRef, Anchor)>,
    /// Why it cannot be trusted to hold pods together at all.
    untrusted: Option<String>,
}

/// Where each user's pods land, in the order of `users`. Other workloads (whose pods an affinity may
/// select) are read through `lookup`.
pub fn resolve(users: &[User], lookup: &dyn Lookup) -> Vec<Anchor> {
    let selections: Vec<Vec<Selection>> = (0..users.len()).map(|i| select(users, i, lookup)).collect();
    let mut anchors: Vec<Option<Anchor>> = vec![None; users.len()];
    for i in 0..users.len() {
        let mut visiting = BTreeSet::new();
        anchor_of(i, users, &selections, &mut anchors, &mut visiting);
    }
    anchors
        .into_iter()
        .map(|a| a.unwrap_or_else(Anchor::anywhere))
        .collect()
}

fn anchor_of(
    i: usize,
    users: &[User],
    selections: &[Vec<Selection>],
    done: &mut Vec<Option<Anchor>>,
    visiting: &mut BTreeSet<usize>,
) -> Anchor {
    if let Some(a) = &done[i] {
        return a.clone();
    }
    if !visiting.insert(i) {
        // Following in a circle: no pod can be the first, or each may; trust neither.
        return Anchor::anywhere();
    }
    let fp = &users[i].footprint;
    let anchor = if let Placement::Node(n) = &fp.placement {
        Anchor::Node(n.clone())
    } else if let Some(group) = group_of(i, users, selections) {
        group
    } else if let Some(leader) = followed(i, users, selections, done, visiting) {
        leader
    } else if users[i].replica.is_some() || (users[i].pods.peak() <= 1 && fp.peak() <= 1) {
        Anchor::Group {
            members: vec![fp.workload.clone()],
            how: Held::OnePod,
        }
    } else {
        Anchor::Anywhere {
            why: selections[i].iter().find_map(|s| s.untrusted.clone()).or_else(|| {
                selections[i].iter().find(|s| !s.outside.is_empty()).map(|s| {
                    let names: Vec<String> = s.outside.iter().map(|(r, _)| r.to_string()).collect();
                    format!(
                        "its required pod affinity also selects the pods of {}, so its pods may follow those to \
                         any node",
                        super::join(names)
                    )
                })
            }),
        }
    };
    visiting.remove(&i);
    done[i] = Some(anchor.clone());
    anchor
}

/// A group `i` belongs to: a term of `i` selects exactly some users' pods, `i`'s own included, and every
/// one of them has a term that selects exactly the same.
fn group_of(i: usize, users: &[User], selections: &[Vec<Selection>]) -> Option<Anchor> {
    selections[i]
        .iter()
        .filter(|s| s.untrusted.is_none() && s.outside.is_empty() && s.users.contains(&i))
        .find(|s| {
            s.users.iter().all(|j| {
                selections[*j]
                    .iter()
                    .any(|t| t.untrusted.is_none() && t.outside.is_empty() && t.users == s.users)
            })
        })
        .map(|s| {
            let mut members: Vec<ObjectRef> = s.users.iter().map(|j| users[*j].workload().clone()).collect();
            members.sort();
            members.dedup();
            let how = if members.len() == 1 {
                Held::OwnAffinity
            } else {
                Held::MutualAffinity
            };
            Anchor::Group { members, how }
        })
}

/// Where `i`'s pods land when a term of `i` selects exactly one other workload's pods (and not `i`'s):
/// wherever that workload's pods are, if they are on one node.
fn followed(
    i: usize,
    users: &[User],
    selections: &[Vec<Selection>],
    done: &mut Vec<Option<Anchor>>,
    visiting: &mut BTreeSet<usize>,
) -> Option<Anchor> {
    for s in selections[i].iter().filter(|s| s.untrusted.is_none()) {
        if s.users.contains(&i) || s.users.len() + s.outside.len() != 1 {
            continue;
        }
        let leader = match (s.users.iter().next(), s.outside.first()) {
            (Some(j), _) => anchor_of(*j, users, selections, done, visiting),
            (None, Some((_, anchor))) => anchor.clone(),
            (None, None) => continue,
        };
        if leader.is_confined() {
            return Some(leader);
        }
    }
    None
}

/// What each usable hostname term of user `i` selects.
fn select(users: &[User], i: usize, lookup: &dyn Lookup) -> Vec<Selection> {
    let fp = &users[i].footprint;
    let Placement::Affinity(terms) = &fp.placement else {
        return Vec::new();
    };
    terms
        .iter()
        .take(MAX_TERMS)
        .map(|term| select_term(users, i, term, lookup))
        .collect()
}

fn select_term(users: &[User], i: usize, term: &HostAffinity, lookup: &dyn Lookup) -> Selection {
    let untrusted = |why: &str| Selection {
        untrusted: Some(why.to_owned()),
        ..Selection::default()
    };
    let fp = &users[i].footprint;
    let own_ns = fp.workload.namespace.as_str();
    if term.opaque {
        return untrusted(
            "its required pod affinity uses mismatchLabelKeys on pod-template-hash, a value only the Deployment \
             controller knows",
        );
    }
    let Some(selector) = &term.selector else {
        return untrusted("its required pod affinity has no labelSelector, which selects no pod");
    };
    let empty = selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
    if empty {
        return untrusted(
            "its required pod affinity has an empty labelSelector, which selects every pod in the namespace: each \
             pod only needs some pod beside it, on any node",
        );
    }
    // The hash is known to the Deployment controller only: the term selects this revision's pods, which
    // no other workload has, and only a Recreate rollout keeps two revisions from running at once.
    let per_revision = term.per_revision && fp.kind == WorkloadKind::Deployment;
    if per_revision && !matches!(fp.rollout, Some(Rollout::Recreate)) {
        return untrusted(
            "its required pod affinity uses matchLabelKeys: [pod-template-hash], which holds only one ReplicaSet \
             revision together: during a rolling update the new revision's first pod may start on another node",
        );
    }
    let namespaces: Vec<String> = match &term.namespaces {
        TermNamespaces::Own => vec![own_ns.to_owned()],
        TermNamespaces::Named(n) => n.clone(),
        TermNamespaces::Any => {
            return untrusted(
                "its required pod affinity reads pods in namespaces chosen by labels, which volguard cannot see",
            );
        }
    };
    let mut selection = Selection::default();
    for (j, user) in users.iter().enumerate() {
        let in_scope = namespaces.contains(&user.workload().namespace);
        let selects = in_scope && labels::matches(selector, Some(&user.labels()));
        if selects && (!per_revision || j == i) {
            selection.users.insert(j);
        }
        // A replica's own claim is one pod's, but a selector on the StatefulSet's template labels selects
        // every replica, on whichever nodes they run.
        if in_scope && let Some(ordinal) = user.replica {
            let fp = &user.footprint;
            let other = if ordinal > fp.first_ordinal {
                ordinal - 1
            } else {
                ordinal + 1
            };
            let replicas = fp.pods.peak();
            if replicas > 1 && labels::matches(selector, Some(&super::replica_labels(fp, other))) {
                let anchor = match &fp.placement {
                    Placement::Node(n) => Anchor::Node(n.clone()),
                    _ => Anchor::anywhere(),
                };
                selection.outside.push((fp.workload.clone(), anchor));
            }
        }
    }
    if per_revision {
        return selection;
    }
    for ns in &namespaces {
        let workloads = match lookup.workloads_in(ns) {
            Answer::Found(w) => w,
            Answer::Missing => Vec::new(),
            Answer::Unknown(why) => {
                return untrusted(&format!("volguard could not list the workloads: {why}"));
            }
        };
        for w in workloads {
            let r = w.object_ref();
            if users.iter().any(|u| *u.workload() == r) {
                continue;
            }
            if labels::matches(selector, Some(&pod_labels(&w))) {
                let anchor = match Footprint::of(&w) {
                    Ok(other) => own_anchor(&other),
                    Err(_) => Anchor::anywhere(),
                };
                selection.outside.push((r, anchor));
            }
        }
    }
    selection
}

/// Where a workload outside the volume's users keeps its pods, without following its own affinities.
fn own_anchor(fp: &Footprint) -> Anchor {
    match &fp.placement {
        Placement::Node(n) => Anchor::Node(n.clone()),
        _ if fp.peak() <= 1 => Anchor::Group {
            members: vec![fp.workload.clone()],
            how: Held::OnePod,
        },
        _ => Anchor::anywhere(),
    }
}
