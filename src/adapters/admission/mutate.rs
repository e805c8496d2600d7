//! The mutating path: the policy's repairs as a JSON patch against the object exactly as the API server
//! sent it, computed from the typed object decoded once with the rest of the review. Judging is left to
//! the validating webhook, which the API server calls after every mutation.

use super::{Outcome, Review, response};
use crate::decision::Verdict;
use crate::decision::mutate::{self as repair, Stage};
use crate::domain::lookup::Lookup;
use crate::domain::policy::PolicySet;
use crate::domain::workload::{ObjectLimits, Resource};
use kube::core::admission::Operation;

/// Answers a mutating review: allowed, with a patch when a selecting policy's repairs change the object.
pub fn mutate(review: &Review, lookup: &dyn Lookup, policies: &PolicySet) -> Outcome {
    mutate_within(review, lookup, policies, &ObjectLimits::default())
}

/// [`mutate`], leaving objects over `limits` to the failure mode (the validating webhook says which).
/// The patch comes from the typed object alone ([`repair::plan`]): the body is not read a second time.
pub fn mutate_within(
    review: &Review,
    lookup: &dyn Lookup,
    policies: &PolicySet,
    limits: &ObjectLimits,
) -> Outcome {
    if let Some(object) = &review.object
        && let Some(outcome) = super::over_limits(review, object, policies, limits)
    {
        return outcome;
    }
    let stage = match review.operation {
        Operation::Create => Stage::Create,
        Operation::Update => Stage::Update,
        Operation::Delete | Operation::Connect => return Outcome::allow(review),
    };
    // Without an object, or one no repairing policy selects (`plan` says so), nothing to change.
    let Some(object) = review.object.as_ref() else {
        return Outcome::allow(review);
    };
    let mutated = repair::plan(object, stage, lookup, policies).map_err(|e| e.to_string());
    match mutated {
        Ok(mutation) if mutation.is_empty() => Outcome::allow(review),
        Ok(mutation) => match response::for_mutate(review.response.clone(), &mutation) {
            Ok(response) => Outcome {
                response,
                verdict: Verdict::Allow,
                // Repairs are not findings: the validating webhook, called next, counts what is left.
                rules: Vec::new(),
                patched: true,
            },
            Err(e) => failed(review, object, policies, &e.to_string()),
        },
        Err(e) => failed(review, object, policies, &e),
    }
}

/// A mutation that could not be made: the policy's failure mode decides, as for a lookup that failed.
fn failed(review: &Review, object: &Resource, policies: &PolicySet, why: &str) -> Outcome {
    let what = format!("volguard could not repair {}: {why}", object.object_ref());
    Outcome::undecided(review, policies.failure_mode_for(object), what, Vec::new())
}
