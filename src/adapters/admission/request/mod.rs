//! Reading an AdmissionReview v1 request into typed objects, in one pass over the body.
//!
//! The API server writes the request's `kind` before its `object` and `oldObject`, so by the time the
//! decoder reaches an object it knows the object's type, and decodes it straight into the k8s-openapi type
//! ([`ObjectType`](crate::domain::workload::ObjectType)), leaving out `metadata.managedFields`, which no rule
//! reads. An object that comes before `kind` (some other client) is kept as raw JSON text and decoded once
//! the whole request has been read ([`one_pass`]).
//! Nothing goes through a `serde_json::Value` or serde's buffered `flatten`.
//!
//! A body that does not decode is read again, on that error path only, to say what is wrong with it
//! ([`ReviewError`]).
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request>.

mod one_pass;
mod scan;

pub(crate) use scan::ScanError;
pub use scan::scan;

use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::{GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Deserialize;
use serde::de::DeserializeSeed;

use crate::domain::workload::Resource;
use one_pass::{ObjectSeed, Request};

/// The only review version volguard speaks (registered with `admissionReviewVersions: [v1]`).
pub(crate) const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";

/// Why a request body is not a review volguard can read. Each maps to an HTTP 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReviewError {
    /// Not JSON, or not the shape of an AdmissionReview.
    #[error("the body is not an AdmissionReview: {0}")]
    Malformed(String),
    /// Some other apiVersion or kind.
    #[error(
        "expected apiVersion {REVIEW_API_VERSION} and kind AdmissionReview, got {api_version:?} {kind:?}"
    )]
    WrongType {
        /// What the body said.
        api_version: String,
        /// What the body said.
        kind: String,
    },
    /// An AdmissionReview without `request`.
    #[error("the AdmissionReview has no request")]
    NoRequest,
    /// The object (or oldObject) does not decode as its kind.
    #[error("the request's {field} does not decode as {kind}: {message}")]
    Object {
        /// `object` or `oldObject`.
        field: &'static str,
        /// The request kind.
        kind: String,
        /// What serde said.
        message: String,
    },
}

/// A review, decoded.
#[derive(Debug, Clone)]
pub struct Review {
    /// Where every answer starts: the response `AdmissionResponse::from(&request)` made (uid, types).
    pub response: AdmissionResponse,
    /// The request's uid.
    pub uid: String,
    /// CREATE, UPDATE, DELETE or CONNECT.
    pub operation: Operation,
    /// `group/version, Kind` of the object.
    pub kind: GroupVersionKind,
    /// The request's namespace.
    pub namespace: Option<String>,
    /// The request's name.
    pub name: String,
    /// The subresource (`scale`), if any.
    pub sub_resource: Option<String>,
    /// Whether the request is a dry run (answered the same: volguard has no side effects).
    pub dry_run: bool,
    /// The object, when volguard reads its kind and the request carries one (boxed: it is kilobytes).
    pub object: Option<Box<Resource>>,
    /// The object before an UPDATE.
    pub old_object: Option<Box<Resource>>,
}

/// Reads a review from a request body.
pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    let review: ReviewBody = from_body(body).map_err(|e| diagnose(body, &e))?;
    if review.api_version != REVIEW_API_VERSION || review.kind != "AdmissionReview" {
        return Err(ReviewError::WrongType {
            api_version: review.api_version,
            kind: review.kind,
        });
    }
    let Request {
        mut head,
        object,
        old_object,
    } = review.request.ok_or(ReviewError::NoRequest)?;
    // As kube's `AdmissionReview::try_into` does: the answer echoes the review's own type.
    head.types = TypeMeta {
        api_version: review.api_version,
        kind: review.kind,
    };
    let response = AdmissionResponse::from(&*head);
    let AdmissionRequest {
        uid,
        kind,
        namespace,
        name,
        sub_resource,
        operation,
        dry_run,
        ..
    } = *head;
    Ok(Review {
        response,
        uid,
        operation,
        kind,
        namespace,
        name,
        sub_resource,
        dry_run,
        object,
        old_object,
    })
}

/// Decodes a body: as text when it is UTF-8 (checked once, in bulk, so serde_json does not check each
/// string again as it does reading bytes: 8–10% of the parse of a typical review, `phases` in
/// `benches/decision.rs`), else as bytes, so serde_json says where the bad byte is.
pub(crate) fn from_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// An AdmissionReview, as the API server sends it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReviewBody {
    #[serde(default)]
    api_version: String,
    #[serde(default)]
    kind: String,
    request: Option<Request>,
}

/// Says what is wrong with a body that did not decode, reading it again (this error path only), in the
/// order a reader checks: not an AdmissionReview at all, another apiVersion or kind, no request, then which
/// of `object` and `oldObject` does not decode as the request's kind. Anything else (a missing uid, say) is
/// malformed, as serde said.
fn diagnose(body: &[u8], error: &serde_json::Error) -> ReviewError {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Envelope {
        #[serde(default)]
        api_version: String,
        #[serde(default)]
        kind: String,
        request: Option<EnvelopeRequest>,
    }
    #[derive(Deserialize)]
    struct EnvelopeRequest {
        kind: GroupVersionKind,
        #[allow(dead_code)] // Required, as in every request.
        resource: GroupVersionResource,
    }
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(e) => return ReviewError::Malformed(e.to_string()),
    };
    if envelope.api_version != REVIEW_API_VERSION || envelope.kind != "AdmissionReview" {
        return ReviewError::WrongType {
            api_version: envelope.api_version,
            kind: envelope.kind,
        };
    }
    let Some(request) = envelope.request else {
        return ReviewError::NoRequest;
    };
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ReviewError::Malformed(error.to_string());
    };
    let seed = ObjectSeed::for_kind(&request.kind);
    for field in ["object", "oldObject"] {
        if let Err(e) = seed.deserialize(&value["request"][field]) {
            return ReviewError::Object {
                field,
                kind: seed.type_name().to_owned(),
                message: e.to_string(),
            };
        }
    }
    ReviewError::Malformed(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::{Workload, WorkloadKind};
    use serde_json::json;

    /// A review whose request has these fields, in this order (JSON text: a `serde_json::Map` may sort).
    fn review(fields: &[(&str, serde_json::Value)]) -> Vec<u8> {
        let request: Vec<String> = fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect();
        format!(
            r#"{{"apiVersion":"{REVIEW_API_VERSION}","kind":"AdmissionReview","request":{{{}}}}}"#,
            request.join(",")
        )
        .into_bytes()
    }

    fn deployment(replicas: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
            "spec": {"replicas": replicas, "selector": {}, "template": {}}
        })
    }

    /// The request's fields but its objects, in the API server's order.
    fn head() -> Vec<(&'static str, serde_json::Value)> {
        vec![
            ("uid", json!("u-1")),
            (
                "kind",
                json!({"group": "apps", "version": "v1", "kind": "Deployment"}),
            ),
            (
                "resource",
                json!({"group": "apps", "version": "v1", "resource": "deployments"}),
            ),
            ("name", json!("web")),
            ("namespace", json!("shop")),
            ("operation", json!("CREATE")),
            ("userInfo", json!({"username": "admin"})),
            (
                "options",
                json!({"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}),
            ),
        ]
    }

    fn with(
        mut fields: Vec<(&'static str, serde_json::Value)>,
        key: &'static str,
        value: serde_json::Value,
    ) -> Vec<(&'static str, serde_json::Value)> {
        match fields.iter_mut().find(|(k, _)| *k == key) {
            Some(field) => field.1 = value,
            None => fields.push((key, value)),
        }
        fields
    }

    fn replicas(review: &Review) -> Option<i32> {
        match review.object.as_deref() {
            Some(Resource::Workload(Workload::Deployment(d))) => d.spec.as_ref().and_then(|s| s.replicas),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_object_before_the_kind_is_decoded_after_it() {
        let mut fields = vec![
            ("object", deployment(json!(3))),
            ("oldObject", serde_json::Value::Null),
        ];
        fields.extend(head());
        let review = parse(&review(&fields)).unwrap();
        assert_eq!(replicas(&review), Some(3));
        assert!(review.old_object.is_none());
        let meta = review.object.as_ref().unwrap().metadata();
        assert_eq!(meta.namespace.as_deref(), Some("shop"), "the request's namespace");
        assert_eq!(meta.managed_fields, None);
        assert_eq!(review.response.uid, "u-1");
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed_and_says_where() {
        let good = review(&with(head(), "object", deployment(json!(3))));
        assert_eq!(replicas(&parse(&good).unwrap()), Some(3));
        // The uid "u-1" with a lone continuation byte in it: not UTF-8, so not JSON.
        let at = good.windows(5).position(|w| w == b"\"u-1\"").unwrap() + 2;
        let mut bad = good.clone();
        bad[at] = 0x80;
        let ReviewError::Malformed(message) = parse(&bad).unwrap_err() else {
            panic!("malformed")
        };
        assert!(
            message.starts_with("invalid unicode code point at line 1 column"),
            "{message}"
        );
    }

    #[test]
    fn an_object_after_the_kind_decodes_the_same_and_managed_fields_are_not_kept() {
        let review = parse(&review(&with(head(), "object", deployment(json!(3))))).unwrap();
        assert_eq!(replicas(&review), Some(3));
        assert_eq!(review.uid, "u-1");
        assert_eq!(review.name, "web");
        assert_eq!(review.operation, Operation::Create);
        assert_eq!(review.object.unwrap().metadata().managed_fields, None);
    }

    #[test]
    fn a_bad_object_is_blamed_whichever_comes_first() {
        for old_object_first in [true, false] {
            let update = with(head(), "operation", json!("UPDATE"));
            let mut fields = Vec::new();
            if old_object_first {
                fields.push(("oldObject", deployment(json!("three"))));
            }
            fields.extend(with(update, "object", deployment(json!(2))));
            if !old_object_first {
                fields.push(("oldObject", deployment(json!("three"))));
            }
            let err = parse(&review(&fields)).unwrap_err();
            assert_eq!(
                err,
                ReviewError::Object {
                    field: "oldObject",
                    kind: "Deployment".into(),
                    message: "invalid type: string \"three\", expected i32".into()
                },
                "oldObject first: {old_object_first}"
            );
        }
    }

    #[test]
    fn missing_and_duplicate_fields_are_malformed() {
        let without_user: Vec<_> = head().into_iter().filter(|(k, _)| *k != "userInfo").collect();
        let err = parse(&review(&without_user)).unwrap_err();
        assert!(
            matches!(&err, ReviewError::Malformed(m) if m.contains("missing field `userInfo`")),
            "{err}"
        );
        let mut twice = head();
        twice.push(("uid", json!("u-2")));
        let err = parse(&review(&twice)).unwrap_err();
        assert!(
            matches!(&err, ReviewError::Malformed(m) if m.contains("duplicate field `uid`")),
            "{err}"
        );
    }

    #[test]
    fn an_unread_kind_needs_an_object_and_is_otherwise_let_through() {
        let config_map = with(
            head(),
            "kind",
            json!({"group": "", "version": "v1", "kind": "ConfigMap"}),
        );
        let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let fields = with(config_map.clone(), "object", object);
        assert!(parse(&review(&fields)).unwrap().object.is_none());
        let err = parse(&review(&with(config_map, "object", json!("not an object")))).unwrap_err();
        assert!(
            matches!(&err, ReviewError::Object { kind, .. } if kind == "DynamicObject"),
            "{err}"
        );
    }

    #[test]
    fn a_scale_knows_its_target_kind_from_the_resource() {
        let scale = with(
            head(),
            "kind",
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
        );
        let scale = with(
            scale,
            "resource",
            json!({"group": "apps", "version": "v1", "resource": "statefulsets"}),
        );
        let scale = with(scale, "subResource", json!("scale"));
        let object = json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "db"},
                            "spec": {"replicas": 2}});
        let review = parse(&review(&with(scale, "object", object))).unwrap();
        match review.object.as_deref() {
            Some(Resource::Scale(s)) => assert_eq!(s.target_kind, Some(WorkloadKind::StatefulSet)),
            other => panic!("{other:?}"),
        }
        assert_eq!(review.sub_resource.as_deref(), Some("scale"));
    }
}
