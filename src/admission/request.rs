//! Reading an AdmissionReview v1 request into typed objects, in one pass over the body.
//!
//! The API server writes the request's `kind` before its `object` and `oldObject`, so by the time the
//! decoder reaches an object it knows the object's type, and decodes it straight into the k8s-openapi type
//! ([`ObjectType`]), leaving out `metadata.managedFields`, which no rule reads. An object that comes before
//! `kind` (some other client) is kept as raw JSON text and decoded once the whole request has been read.
//! Nothing goes through a `serde_json::Value` or serde's buffered `flatten`.
//!
//! A body that does not decode is read again, on that error path only, to say what is wrong with it
//! ([`ReviewError`]).
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request>.

use std::fmt;

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, Operation};
use kube::core::{DynamicObject, GroupVersionKind, GroupVersionResource, TypeMeta};
use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::workload::{ObjectType, Resource, WorkloadKind};

/// The only review version volguard speaks (registered with `admissionReviewVersions: [v1]`).
pub const REVIEW_API_VERSION: &str = "admission.k8s.io/v1";

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
    /// The object, when volguard reads its kind and the request carries one.
    pub object: Option<Resource>,
    /// The object before an UPDATE.
    pub old_object: Option<Resource>,
}

/// Reads a review from a request body.
pub fn parse(body: &[u8]) -> Result<Review, ReviewError> {
    let review: ReviewBody = serde_json::from_slice(body).map_err(|e| diagnose(body, &e))?;
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
    let response = AdmissionResponse::from(&head);
    let AdmissionRequest {
        uid,
        kind,
        namespace,
        name,
        sub_resource,
        operation,
        dry_run,
        ..
    } = head;
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

/// The review's `request`: kube's `AdmissionRequest` for everything but the objects, which are typed.
struct Request {
    /// Every field of the request, with `object` and `oldObject` left `None` (they are below) and
    /// `options` not read (no rule looks at them).
    head: AdmissionRequest<DynamicObject>,
    object: Option<Resource>,
    old_object: Option<Resource>,
}

/// The request's fields, as kube's `AdmissionRequest` names them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum Field {
    Uid,
    Kind,
    Resource,
    SubResource,
    RequestKind,
    RequestResource,
    RequestSubResource,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    OldObject,
    DryRun,
    #[serde(other)]
    Other,
}

/// An object field as read: decoded, or (when it came before the request's `kind`) its JSON text, to decode
/// once `kind` is known.
// Read once per object and moved into the Review; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Decoded(Option<Resource>),
    Raw(Option<Box<RawValue>>),
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(RequestVisitor)
    }
}

struct RequestVisitor;

impl<'de> Visitor<'de> for RequestVisitor {
    type Value = Request;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("struct AdmissionRequest")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let mut uid: Option<String> = None;
        let mut kind: Option<GroupVersionKind> = None;
        let mut resource: Option<GroupVersionResource> = None;
        let mut sub_resource: Option<Option<String>> = None;
        let mut request_kind: Option<Option<GroupVersionKind>> = None;
        let mut request_resource: Option<Option<GroupVersionResource>> = None;
        let mut request_sub_resource: Option<Option<String>> = None;
        let mut name: Option<String> = None;
        let mut namespace: Option<Option<String>> = None;
        let mut operation: Option<Operation> = None;
        let mut user_info: Option<UserInfo> = None;
        let mut object: Option<Slot> = None;
        let mut old_object: Option<Slot> = None;
        let mut dry_run: Option<bool> = None;
        // Each field once, as serde's derive (and so kube's AdmissionRequest) requires.
        macro_rules! read_once {
            ($slot:ident, $name:literal, $value:expr) => {{
                if $slot.is_some() {
                    return Err(de::Error::duplicate_field($name));
                }
                $slot = Some($value);
            }};
        }
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Uid => read_once!(uid, "uid", map.next_value()?),
                Field::Kind => read_once!(kind, "kind", map.next_value()?),
                Field::Resource => read_once!(resource, "resource", map.next_value()?),
                Field::SubResource => read_once!(sub_resource, "subResource", map.next_value()?),
                Field::RequestKind => read_once!(request_kind, "requestKind", map.next_value()?),
                Field::RequestResource => read_once!(request_resource, "requestResource", map.next_value()?),
                Field::RequestSubResource => {
                    read_once!(request_sub_resource, "requestSubResource", map.next_value()?)
                }
                Field::Name => read_once!(name, "name", map.next_value()?),
                Field::Namespace => read_once!(namespace, "namespace", map.next_value()?),
                Field::Operation => read_once!(operation, "operation", map.next_value()?),
                Field::UserInfo => read_once!(user_info, "userInfo", map.next_value()?),
                Field::Object => read_once!(object, "object", read_object(&mut map, kind.as_ref())?),
                Field::OldObject => {
                    read_once!(old_object, "oldObject", read_object(&mut map, kind.as_ref())?)
                }
                Field::DryRun => read_once!(dry_run, "dryRun", map.next_value()?),
                // `options` (CreateOptions and the like) included: accepted as any JSON, not read.
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let kind = kind.ok_or_else(|| de::Error::missing_field("kind"))?;
        let resource = resource.ok_or_else(|| de::Error::missing_field("resource"))?;
        let target = ObjectSeed::for_kind(&kind);
        // On CREATE the object may omit its namespace; the request's is authoritative. A Scale's target
        // kind is the resource's (`deployments/scale`).
        let namespace = namespace.flatten();
        let scale_target = WorkloadKind::from_resource(&resource.resource);
        let finish = |slot: Option<Slot>| -> Result<Option<Resource>, A::Error> {
            let mut resource = match slot {
                None => return Ok(None),
                Some(Slot::Decoded(object)) => object,
                Some(Slot::Raw(raw)) => match raw {
                    None => None,
                    Some(raw) => target
                        .deserialize(&mut serde_json::Deserializer::from_str(raw.get()))
                        .map_err(de::Error::custom)?,
                },
            };
            if let Some(r) = &mut resource {
                if let Some(ns) = &namespace {
                    r.metadata_mut().namespace = Some(ns.clone());
                }
                if let Resource::Scale(scale) = r {
                    scale.target_kind = scale_target;
                }
            }
            Ok(resource)
        };
        let object = finish(object)?;
        let old_object = finish(old_object)?;
        let head = AdmissionRequest {
            types: TypeMeta::default(),
            uid: uid.ok_or_else(|| de::Error::missing_field("uid"))?,
            kind,
            resource,
            sub_resource: sub_resource.flatten(),
            request_kind: request_kind.flatten(),
            request_resource: request_resource.flatten(),
            request_sub_resource: request_sub_resource.flatten(),
            name: name.unwrap_or_default(),
            namespace,
            operation: operation.ok_or_else(|| de::Error::missing_field("operation"))?,
            user_info: user_info.ok_or_else(|| de::Error::missing_field("userInfo"))?,
            object: None,
            old_object: None,
            dry_run: dry_run.unwrap_or_default(),
            options: None,
        };
        Ok(Request {
            head,
            object,
            old_object,
        })
    }
}

/// Reads `object` or `oldObject`: typed when the request's kind is already known, else as raw JSON.
fn read_object<'de, A: MapAccess<'de>>(
    map: &mut A,
    kind: Option<&GroupVersionKind>,
) -> Result<Slot, A::Error> {
    Ok(match kind {
        Some(kind) => Slot::Decoded(map.next_value_seed(ObjectSeed::for_kind(kind))?),
        // RawValue works with serde_json only, which is what `parse` reads with.
        None => Slot::Raw(map.next_value()?),
    })
}

/// Decodes a request's object (or `null`) as the type the request's kind names. The object of a kind
/// volguard does not read is still checked to be an object (as kube's `DynamicObject`), then dropped.
#[derive(Clone, Copy)]
struct ObjectSeed(Option<ObjectType>);

impl ObjectSeed {
    fn for_kind(kind: &GroupVersionKind) -> Self {
        Self(ObjectType::of(&kind.api_version(), &kind.kind))
    }

    /// The type's name, for errors.
    fn type_name(self) -> &'static str {
        self.0.map_or("DynamicObject", ObjectType::kind)
    }
}

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Option<Resource>;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Option<Resource>, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for ObjectSeed {
    type Value = Option<Resource>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} or null", self.type_name())
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.0 {
            Some(ty) => ty.deserialize(deserializer).map(Some),
            None => DynamicObject::deserialize(deserializer).map(|_| None),
        }
    }
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
    use crate::workload::Workload;
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
        match &review.object {
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
        match review.object {
            Some(Resource::Scale(s)) => assert_eq!(s.target_kind, Some(WorkloadKind::StatefulSet)),
            other => panic!("{other:?}"),
        }
        assert_eq!(review.sub_resource.as_deref(), Some("scale"));
    }
}
