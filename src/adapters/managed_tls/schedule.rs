//! When the self-managed certificate needs work, and what the caBundle holds: pure functions of what the
//! Secret holds and the time, no I/O (the leader loop in [`super`] acts on the answer).
//!
//! The leaf is renewed two thirds through its life; the CA too, but a new CA first only joins the
//! caBundle (beside the old one, which keeps its place until it expires), and signs a leaf only once the
//! webhooks trust it and `settle` has passed, so no client sees a leaf signed by a CA it does not trust yet.

/// A certificate's validity, in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Validity {
    /// `notBefore`.
    pub not_before: i64,
    /// `notAfter`.
    pub not_after: i64,
}

impl Validity {
    /// Two thirds through its life: when it is renewed.
    pub(crate) fn renew_at(self) -> i64 {
        self.not_before + (self.not_after - self.not_before) * 2 / 3
    }

    /// Seconds left at `now` (negative once expired).
    pub(crate) fn left(self, now: i64) -> i64 {
        self.not_after - now
    }

    /// Less than a sixth of its life left: renewal (due at a third left) has failed for a while.
    pub(crate) fn is_expiring(self, now: i64) -> bool {
        self.left(now) < (self.not_after - self.not_before) / 6
    }
}

/// What the Secret holds, as far as the schedule cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Observed {
    /// The CAs of `ca.crt`, newest (the signing one) first.
    pub cas: Vec<Validity>,
    /// `ca.key` is present and belongs to the first CA.
    pub signing_key_ok: bool,
    /// The serving certificate, when it parses, matches its key and has the wanted names.
    pub leaf: Option<Leaf>,
    /// The webhook configurations' caBundle already holds the first CA.
    pub bundle_published: bool,
}

/// The serving certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Leaf {
    /// Its validity.
    pub validity: Validity,
    /// Which CA of `ca.crt` signed it (None: none of them).
    pub issuer: Option<usize>,
}

/// The next thing to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Nothing usable: a new CA and a serving certificate signed by it, at once.
    CreateAll,
    /// The CA is two thirds through its life: a new CA joins the caBundle (first), the old one stays.
    RotateCa,
    /// A new serving certificate from the first CA.
    IssueLeaf,
    /// Drop expired CAs from the caBundle.
    PruneBundle,
    /// Nothing now.
    Wait,
}

/// The step due at `now`, and when to look again (Unix seconds) if nothing changes meanwhile. `settle`:
/// how long after a new CA's `notBefore` (a minute before it was made) it may sign the serving
/// certificate, time for the API server to see it in the caBundle.
pub(crate) fn next_step(observed: Option<&Observed>, settle: i64, now: i64) -> (Step, i64) {
    let Some(o) = observed else {
        return (Step::CreateAll, now);
    };
    let Some(&ca) = o.cas.first() else {
        return (Step::CreateAll, now);
    };
    if !o.signing_key_ok || ca.left(now) <= 0 {
        return (Step::CreateAll, now);
    }
    if now >= ca.renew_at() {
        return (Step::RotateCa, now);
    }
    // A new CA signs only once the API server trusts it.
    let ca_settled_at = ca.not_before + settle;
    let mut wake = ca.renew_at();
    let leaf = match o.leaf {
        Some(leaf) if leaf.issuer.is_some() && leaf.validity.left(now) > 0 => leaf,
        // Missing, broken, expired, or signed by no CA held: a serving certificate is needed now.
        _ => return (Step::IssueLeaf, now),
    };
    if leaf.issuer == Some(0) {
        if now >= leaf.validity.renew_at() {
            return (Step::IssueLeaf, now);
        }
        wake = wake.min(leaf.validity.renew_at());
    } else {
        // Signed by an older CA still in the bundle: a rotation in progress.
        if o.bundle_published && now >= ca_settled_at {
            return (Step::IssueLeaf, now);
        }
        wake = wake.min(ca_settled_at.max(now + 1));
    }
    if o.cas.iter().skip(1).any(|c| c.left(now) <= 0) {
        return (Step::PruneBundle, now);
    }
    if let Some(oldest_expiry) = o.cas.iter().skip(1).map(|c| c.not_after).min() {
        wake = wake.min(oldest_expiry + 1);
    }
    (Step::Wait, wake.max(now + 1))
}

/// The caBundle: `new` (when a CA was just made) first, then the CAs already held, newest first, without
/// duplicates or expired ones. Every CA that signed a serving certificate some replica may still serve
/// stays until it expires.
pub(crate) fn compose_bundle<T: Clone + PartialEq>(
    new: Option<(T, Validity)>,
    held: &[(T, Validity)],
    now: i64,
) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for (cert, validity) in new.iter().chain(held) {
        if validity.left(now) > 0 && !out.contains(cert) {
            out.push(cert.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;
    const LIFE: i64 = 120;

    fn v(not_before: i64, not_after: i64) -> Validity {
        Validity {
            not_before,
            not_after,
        }
    }

    fn healthy(now: i64) -> Observed {
        Observed {
            cas: vec![v(now - 10 * DAY, now + 890 * DAY)],
            signing_key_ok: true,
            leaf: Some(Leaf {
                validity: v(now - DAY, now + 89 * DAY),
                issuer: Some(0),
            }),
            bundle_published: true,
        }
    }

    #[test]
    fn nothing_held_means_a_new_ca_and_leaf() {
        assert_eq!(next_step(None, LIFE, 1000), (Step::CreateAll, 1000));
        let mut o = healthy(1000);
        o.cas.clear();
        assert_eq!(next_step(Some(&o), LIFE, 1000).0, Step::CreateAll);
        let mut o = healthy(1000);
        o.signing_key_ok = false;
        assert_eq!(next_step(Some(&o), LIFE, 1000).0, Step::CreateAll);
    }

    #[test]
    fn a_healthy_secret_waits_until_the_leaf_is_two_thirds_through_its_life() {
        let now = 100 * DAY;
        let o = healthy(now);
        let leaf = o.leaf.expect("leaf").validity;
        assert_eq!(next_step(Some(&o), LIFE, now), (Step::Wait, leaf.renew_at()));
        assert_eq!(leaf.renew_at(), now - DAY + 60 * DAY);
        assert_eq!(
            next_step(Some(&o), LIFE, leaf.renew_at()).0,
            Step::IssueLeaf,
            "renewed at two thirds"
        );
        assert_eq!(next_step(Some(&o), LIFE, leaf.renew_at() - 1).0, Step::Wait);
    }

    #[test]
    fn a_short_lived_leaf_renews_every_two_thirds_of_its_life() {
        let o = Observed {
            cas: vec![v(0, 900 * DAY)],
            signing_key_ok: true,
            leaf: Some(Leaf {
                validity: v(1000, 1030),
                issuer: Some(0),
            }),
            bundle_published: true,
        };
        assert_eq!(next_step(Some(&o), LIFE, 1005), (Step::Wait, 1020));
        assert_eq!(next_step(Some(&o), LIFE, 1020).0, Step::IssueLeaf);
    }

    #[test]
    fn a_broken_or_foreign_leaf_is_replaced_at_once() {
        let now = 100 * DAY;
        let mut o = healthy(now);
        o.leaf = None;
        assert_eq!(next_step(Some(&o), LIFE, now), (Step::IssueLeaf, now));
        o.leaf = Some(Leaf {
            validity: v(now - DAY, now + DAY),
            issuer: None,
        });
        assert_eq!(next_step(Some(&o), LIFE, now).0, Step::IssueLeaf);
        o.leaf = Some(Leaf {
            validity: v(now - 2 * DAY, now - DAY),
            issuer: Some(0),
        });
        assert_eq!(next_step(Some(&o), LIFE, now).0, Step::IssueLeaf, "expired");
    }

    #[test]
    fn the_ca_rotates_two_thirds_through_its_life_and_signs_only_once_trusted_and_settled() {
        let ca = v(0, 900 * DAY);
        let mut o = Observed {
            cas: vec![ca],
            signing_key_ok: true,
            leaf: Some(Leaf {
                validity: v(590 * DAY, 680 * DAY),
                issuer: Some(0),
            }),
            bundle_published: true,
        };
        assert_eq!(next_step(Some(&o), LIFE, 599 * DAY).0, Step::Wait);
        assert_eq!(next_step(Some(&o), LIFE, 600 * DAY).0, Step::RotateCa);

        // Rotated: the new CA first, the old one still trusted; the leaf is the old CA's.
        let t = 600 * DAY;
        let new_ca = v(t - 60, t + 900 * DAY);
        o.cas = vec![new_ca, ca];
        o.leaf = Some(Leaf {
            validity: v(590 * DAY, 680 * DAY),
            issuer: Some(1),
        });
        o.bundle_published = false;
        let (step, wake) = next_step(Some(&o), LIFE, t + 120);
        assert_eq!(step, Step::Wait, "not published yet");
        assert!(wake > t + 120);
        o.bundle_published = true;
        assert_eq!(
            next_step(Some(&o), LIFE, t + 30),
            (Step::Wait, t + 60),
            "not settled yet"
        );
        assert_eq!(next_step(Some(&o), LIFE, t + 60).0, Step::IssueLeaf);

        // Re-signed: the old CA stays in the bundle until it expires, then is pruned.
        o.leaf = Some(Leaf {
            validity: v(t, t + 90 * DAY),
            issuer: Some(0),
        });
        assert_eq!(next_step(Some(&o), LIFE, t + 61), (Step::Wait, t + 60 * DAY));
        o.leaf = Some(Leaf {
            validity: v(880 * DAY, 970 * DAY),
            issuer: Some(0),
        });
        assert_eq!(next_step(Some(&o), LIFE, 890 * DAY), (Step::Wait, 900 * DAY + 1));
        assert_eq!(next_step(Some(&o), LIFE, 900 * DAY + 1).0, Step::PruneBundle);
    }

    #[test]
    fn the_bundle_keeps_every_unexpired_ca_newest_first_once() {
        let (old, older, dead) = (v(0, 100), v(-50, 60), v(-100, 10));
        let held = [("old", old), ("older", older), ("dead", dead), ("old", old)];
        assert_eq!(compose_bundle(None, &held, 20), ["old", "older"]);
        assert_eq!(
            compose_bundle(Some(("new", v(20, 300))), &held, 20),
            ["new", "old", "older"]
        );
        assert_eq!(compose_bundle(Some(("new", v(20, 300))), &held, 100), ["new"]);
    }

    #[test]
    fn an_expiry_is_worth_a_warning_with_less_than_a_sixth_of_its_life_left() {
        let c = v(0, 600);
        assert!(!c.is_expiring(500));
        assert!(c.is_expiring(501));
    }
}
