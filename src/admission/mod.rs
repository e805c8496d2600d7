//! Admission: one AdmissionReview v1 in, one AdmissionResponse out, through the same
//! [`policy::evaluate`](crate::policy::evaluate) that `volguard check` uses.
//!
//! Transport-free: the HTTP server and `volguard review` both call [`validate`] and [`mutate`].

mod mutate;
mod request;
pub mod response;

use kube::core::admission::{AdmissionResponse, Operation};

pub use mutate::{mutate, received_object};
pub use request::{REVIEW_API_VERSION, Review, ReviewError, parse};

use crate::lookup::Lookup;
pub use crate::policy::RATCHET_NOTE;
use crate::policy::{FailureMode, PolicySet, Verdict, evaluate, evaluate_update};
use crate::rules::RuleId;

/// What a review decided, for the response, logs and metrics.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The answer to send.
    pub response: AdmissionResponse,
    /// Allow, Warn or Deny.
    pub verdict: Verdict,
    /// The rules with findings (any action), for metrics.
    pub rules: Vec<RuleId>,
    /// Whether the response carries a patch (the mutating path).
    pub patched: bool,
}

impl Outcome {
    /// A review volguard could not decide: no policy selects the object (allowed), or the failure mode
    /// says (Ignore: allowed with a warning saying why; Fail: denied, saying why).
    fn undecided(review: &Review, mode: Option<FailureMode>, what: String, rules: Vec<RuleId>) -> Self {
        let response = match mode {
            None => review.response.clone(),
            Some(FailureMode::Ignore) => {
                let mut r = review.response.clone();
                r.warnings = Some(vec![response::warning_text(&what)]);
                r
            }
            Some(FailureMode::Fail) => review.response.clone().deny(what),
        };
        let verdict = if response.allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        };
        Self {
            response,
            verdict,
            rules,
            patched: false,
        }
    }

    fn allow(review: &Review) -> Self {
        Self {
            response: review.response.clone(),
            verdict: Verdict::Allow,
            rules: Vec::new(),
            patched: false,
        }
    }
}

/// Answers a validating review. An UPDATE is ratcheted against the object before it (see
/// [`evaluate_update`]), so a violating workload can still be scaled down or get a new image.
pub fn validate(review: &Review, lookup: &dyn Lookup, policies: &PolicySet) -> Outcome {
    if matches!(review.operation, Operation::Delete | Operation::Connect) {
        return Outcome::allow(review);
    }
    let Some(object) = &review.object else {
        return Outcome::allow(review);
    };
    let judged = match (&review.operation, &review.old_object) {
        (Operation::Update, Some(old)) => evaluate_update(object, old, lookup, policies),
        _ => evaluate(object, lookup, policies),
    };
    let eval = match judged {
        Ok(eval) => eval,
        Err(e) => {
            // Not decidable (the API server validates after mutating webhooks, so this reaches /mutate
            // first): the policy's failure mode decides.
            let what = format!("volguard could not judge {}: {e}", object.object_ref());
            let mode = policies.failure_mode_for(object);
            return Outcome::undecided(review, mode, what, vec![RuleId::LookupFailed]);
        }
    };
    let mut rules: Vec<RuleId> = eval.findings.iter().map(|j| j.finding.rule).collect();
    rules.dedup();
    Outcome {
        response: response::for_validate(review.response.clone(), &eval),
        verdict: eval.verdict(),
        rules,
        patched: false,
    }
}
