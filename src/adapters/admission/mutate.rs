//! The mutating path: the policy's repairs as a JSON patch against the object exactly as the API server
//! sent it. Judging is left to the validating webhook, which the API server calls after every mutation.

use kube::core::admission::Operation;
use serde::Deserialize;
use serde_json::Value;

use super::{Outcome, Review, ReviewError, response};
use crate::decision::Verdict;
use crate::decision::mutate::{self as repair, Stage};
use crate::domain::lookup::Lookup;
use crate::domain::policy::PolicySet;
use crate::domain::workload::{ObjectLimits, Resource};

#[derive(Deserialize)]
struct Received {
    request: Option<ReceivedRequest>,
}

#[derive(Deserialize)]
struct ReceivedRequest {
    #[serde(default)]
    object: Option<Value>,
}

/// `request.object` of a review body exactly as sent: the document a patch is computed against. Read
/// only on the mutating path, and only when there is something to mutate.
pub(crate) fn received_object(body: &[u8]) -> Result<Option<Value>, ReviewError> {
    let received: Received =
        serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    Ok(received.request.and_then(|r| r.object))
}

/// Answers a mutating review: allowed, with a patch when a selecting policy's repairs change the object.
/// `body` is the review as received (see [`received_object`]).
pub fn mutate(review: &Review, body: &[u8], lookup: &dyn Lookup, policies: &PolicySet) -> Outcome {
    mutate_within(review, body, lookup, policies, &ObjectLimits::default())
}

/// [`mutate`], leaving objects over `limits` to the failure mode (the validating webhook says which).
pub fn mutate_within(
    review: &Review,
    body: &[u8],
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
    // Most reviews have nothing to repair: the object as received is read only when a policy may.
    let Some(object) = review.object.as_ref().filter(|o| repair::wanted(o, policies)) else {
        return Outcome::allow(review);
    };
    let mutated = received_object(body)
        .map_err(|e| e.to_string())
        .and_then(|received| received.ok_or_else(|| "the request has no object".to_owned()))
        .and_then(|received| {
            repair::mutate(&received, object, stage, lookup, policies).map_err(|e| e.to_string())
        });
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
