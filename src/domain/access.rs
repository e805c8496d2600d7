//! PersistentVolumeClaim access modes and what they allow when several pods share one claim.
//!
//! ReadWriteOnce limits a volume to one *node* (pods on that node may share it), ReadOnlyMany to read-only
//! use on many nodes, ReadWriteMany to read-write use on many nodes, ReadWriteOncePod to one *pod*.
//! See <https://kubernetes.io/docs/concepts/storage/persistent-volumes/#access-modes>.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

/// `ReadWriteOnce`.
pub const RWO: &str = "ReadWriteOnce";
/// `ReadOnlyMany`.
pub(crate) const ROX: &str = "ReadOnlyMany";
/// `ReadWriteMany`.
pub const RWX: &str = "ReadWriteMany";
/// `ReadWriteOncePod`.
pub(crate) const RWOP: &str = "ReadWriteOncePod";

/// How widely a claim may be shared, from its access modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Sharing {
    /// ReadWriteOncePod: one pod in the cluster.
    OnePod,
    /// ReadWriteOnce only: one node, read-write.
    OneNode,
    /// ReadOnlyMany without ReadWriteMany: many nodes, read-only.
    ReadMany,
    /// ReadWriteMany: many nodes, read-write.
    WriteMany,
}

impl Sharing {
    /// Classifies a set of access modes; `None` when it names none volguard knows.
    pub fn of<S: AsRef<str>>(modes: &[S]) -> Option<Self> {
        let has = |m: &str| modes.iter().any(|x| x.as_ref() == m);
        if has(RWOP) {
            Some(Sharing::OnePod)
        } else if has(RWX) {
            Some(Sharing::WriteMany)
        } else if has(ROX) {
            Some(Sharing::ReadMany)
        } else if has(RWO) {
            Some(Sharing::OneNode)
        } else {
            None
        }
    }

    /// The mode that sets the limit, as users write it.
    pub fn mode(self) -> &'static str {
        match self {
            Sharing::OnePod => RWOP,
            Sharing::OneNode => RWO,
            Sharing::ReadMany => ROX,
            Sharing::WriteMany => RWX,
        }
    }
}

/// The access modes that count: the bound volume's (`status.accessModes`) once the claim is Bound, else
/// the requested ones (`spec.accessModes`). A bound PV may offer more modes than were asked for.
pub(crate) fn effective_modes(claim: &PersistentVolumeClaim) -> &[String] {
    let status = claim.status.as_ref();
    let bound = status.and_then(|s| s.phase.as_deref()) == Some("Bound");
    let from_status = status
        .and_then(|s| s.access_modes.as_deref())
        .filter(|m| bound && !m.is_empty());
    from_status
        .or_else(|| claim.spec.as_ref().and_then(|s| s.access_modes.as_deref()))
        .unwrap_or(&[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(v: serde_json::Value) -> PersistentVolumeClaim {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn classification_takes_the_widest_mode_but_rwop_wins() {
        assert_eq!(Sharing::of(&[RWO]), Some(Sharing::OneNode));
        assert_eq!(Sharing::of(&[RWO, ROX]), Some(Sharing::ReadMany));
        assert_eq!(Sharing::of(&[ROX, RWX]), Some(Sharing::WriteMany));
        assert_eq!(Sharing::of(&[RWOP]), Some(Sharing::OnePod));
        assert_eq!(Sharing::of::<&str>(&[]), None);
    }

    #[test]
    fn bound_claims_use_status_modes() {
        let bound = claim(
            json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"]},
            "status": {"phase": "Bound", "accessModes": ["ReadWriteOnce", "ReadWriteMany"]}}),
        );
        assert_eq!(effective_modes(&bound), [RWO, RWX]);
        let pending = claim(
            json!({"metadata": {"name": "c"}, "spec": {"accessModes": ["ReadWriteOnce"]},
            "status": {"phase": "Pending", "accessModes": ["ReadWriteMany"]}}),
        );
        assert_eq!(effective_modes(&pending), [RWO]);
    }
}
