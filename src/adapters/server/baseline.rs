//! The load benchmark's baseline: the same server answering every review `allowed: true` after reading
//! only the request's uid, without decoding the object or evaluating a policy.
//!
//! `volguard serve --baseline-allow-all` (hidden) turns it on, and `cargo bench --bench load` compares the
//! real server against it, so what volguard's own work costs shows as a ratio measured in one run on one
//! machine. Everything else stays the same: TLS, hyper-util, the router and its layers, the body limit,
//! the review span, the log line and the metrics. Never deploy it: it allows everything.

use serde::{Deserialize, Serialize};

use crate::adapters::admission::{self, REVIEW_API_VERSION, ReviewError};

/// The least of an AdmissionReview an answer needs: the request's uid. serde still reads past the rest of
/// the body, as any webhook must to find the uid, but builds nothing from it.
#[derive(Deserialize)]
struct Envelope {
    request: Option<Request>,
}

#[derive(Deserialize)]
struct Request {
    uid: String,
}

/// An AdmissionReview answering `allowed: true` for one uid.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedReview {
    api_version: &'static str,
    kind: &'static str,
    response: AllowedResponse,
}

#[derive(Debug, Serialize)]
struct AllowedResponse {
    uid: String,
    allowed: bool,
}

impl AllowedReview {
    /// The uid the answer echoes.
    pub fn uid(&self) -> &str {
        &self.response.uid
    }
}

/// Reads the uid from a review body and allows it, whatever it asks.
pub fn allow(body: &[u8]) -> Result<AllowedReview, ReviewError> {
    // Read as volguard reads a review (text when UTF-8), so the baseline is no slower for how it reads.
    let envelope: Envelope = admission::from_body(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    let request = envelope.request.ok_or(ReviewError::NoRequest)?;
    Ok(AllowedReview {
        api_version: REVIEW_API_VERSION,
        kind: "AdmissionReview",
        response: AllowedResponse {
            uid: request.uid,
            allowed: true,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_review_is_allowed_with_its_uid() {
        let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview",
            "request":{"uid":"u-1","object":{"kind":"Deployment","spec":{"replicas":3}}}}"#;
        let answer = serde_json::to_value(allow(body).unwrap()).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "response": {"uid": "u-1", "allowed": true}
            })
        );
    }

    #[test]
    fn a_body_without_a_request_or_not_json_is_an_error() {
        assert_eq!(
            allow(br#"{"kind":"AdmissionReview"}"#).unwrap_err(),
            ReviewError::NoRequest
        );
        assert!(matches!(allow(b"not json"), Err(ReviewError::Malformed(_))));
    }
}
