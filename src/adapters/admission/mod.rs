//! Admission: one AdmissionReview v1 in, one AdmissionResponse out, through the same
//! [`decision::evaluate`](crate::decision::evaluate) that `volguard check` uses.
//!
//! Transport-free: the HTTP server and `volguard review` both call [`validate`] and [`mutate`].

mod mutate;
mod request;
pub mod response;

use kube::core::admission::{AdmissionResponse, Operation};

pub use mutate::{mutate, mutate_within};
pub(crate) use request::{REVIEW_API_VERSION, Review, ReviewError, ScanError, from_body};
pub use request::{parse, scan};

pub use crate::decision::RATCHET_NOTE;
use crate::decision::{Verdict, evaluate, evaluate_update};
use crate::domain::lookup::Lookup;
use crate::domain::policy::{FailureMode, PolicySet};
use crate::domain::rules::RuleId;
use crate::domain::workload::{ObjectLimits, Resource};

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

    /// An outcome for a response built elsewhere (see [`undecided_uid`]).
    pub(crate) fn from_response(response: AdmissionResponse) -> Self {
        let verdict = match (
            response.allowed,
            response.warnings.as_ref().is_some_and(|w| !w.is_empty()),
        ) {
            (false, _) => Verdict::Deny,
            (true, true) => Verdict::Warn,
            (true, false) => Verdict::Allow,
        };
        Self {
            response,
            verdict,
            rules: Vec::new(),
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
    validate_within(review, lookup, policies, &ObjectLimits::default())
}

/// [`validate`], refusing to judge objects over `limits`: the policy's failure mode answers, saying which
/// limit.
pub fn validate_within(
    review: &Review,
    lookup: &dyn Lookup,
    policies: &PolicySet,
    limits: &ObjectLimits,
) -> Outcome {
    if matches!(review.operation, Operation::Delete | Operation::Connect) {
        return Outcome::allow(review);
    }
    let Some(object) = &review.object else {
        return Outcome::allow(review);
    };
    if let Some(outcome) = over_limits(review, object, policies, limits) {
        return outcome;
    }
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

/// A review that could not be judged (not in time, too large): the failure mode `mode` decides, saying
/// `what` (None: no policy selects the object, which is allowed).
pub(crate) fn undecided(review: &Review, mode: Option<FailureMode>, what: String) -> Outcome {
    Outcome::undecided(review, mode, what, Vec::new())
}

/// The answer when the object (or the object before an UPDATE) goes over a limit.
fn over_limits(
    review: &Review,
    object: &Resource,
    policies: &PolicySet,
    limits: &ObjectLimits,
) -> Option<Outcome> {
    let exceeded = [Some(object), review.old_object.as_deref()]
        .into_iter()
        .flatten()
        .find_map(|o| limits.check_resource(o).err())?;
    let what = format!("volguard could not judge {}: {exceeded}", object.object_ref());
    let mode = policies.failure_mode_for(object);
    Some(Outcome::undecided(review, mode, what, Vec::new()))
}

/// The strictest failure mode of all the policies: what to do with a review that could not even be read
/// far enough to know which policies select it (too large, or not answered in time).
pub(crate) fn strictest_failure_mode(policies: &PolicySet) -> Option<FailureMode> {
    policies.policies().iter().map(|p| p.failure_mode).min()
}

/// The answer for a review known only by its uid (see [`uid_of`]): the strictest failure mode decides
/// (Fail denies, saying why; Ignore allows, with the reason as a warning).
pub(crate) fn undecided_uid(uid: &str, policies: &PolicySet, why: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::invalid("");
    response.uid = uid.to_owned();
    response.types = kube::core::TypeMeta {
        api_version: REVIEW_API_VERSION.to_owned(),
        kind: "AdmissionReview".to_owned(),
    };
    response.result = kube::core::Status::default();
    match strictest_failure_mode(policies) {
        Some(FailureMode::Fail) => {
            let mut denied = response.deny(why);
            denied.result.code = 403;
            denied.result.reason = "Forbidden".to_owned();
            denied
        }
        _ => {
            response.allowed = true;
            response.warnings = Some(vec![response::warning_text(why)]);
            response
        }
    }
}

/// The uid of a review body, read without building the rest of it.
pub(crate) fn uid_of(body: &[u8]) -> Result<String, ReviewError> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        request: Option<Request>,
    }
    #[derive(serde::Deserialize)]
    struct Request {
        uid: String,
    }
    let envelope: Envelope = from_body(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    envelope.request.map(|r| r.uid).ok_or(ReviewError::NoRequest)
}
