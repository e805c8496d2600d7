//! Reading an AdmissionReview v1 request into typed objects.
//!
//! The body is read twice, cheaply: a first pass reads only the envelope (apiVersion, kind, the request's
//! uid, kind and operation), a second decodes straight into `AdmissionReview<Deployment>` (or the kind at
//! hand), so the object never round-trips through `serde_json::Value`.
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#request>.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::{HorizontalPodAutoscaler as HpaV1, Scale};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as HpaV2;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::core::{DynamicObject, GroupVersionKind};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::workload::{Autoscaler, Resource, ScaleRequest, Workload, WorkloadKind};

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
    resource: kube::core::GroupVersionResource,
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
    let env: Envelope = serde_json::from_slice(body).map_err(|e| ReviewError::Malformed(e.to_string()))?;
    if env.api_version != REVIEW_API_VERSION || env.kind != "AdmissionReview" {
        return Err(ReviewError::WrongType {
            api_version: env.api_version,
            kind: env.kind,
        });
    }
    let head = env.request.ok_or(ReviewError::NoRequest)?;
    let scale_target = WorkloadKind::from_resource(&head.resource.resource);
    let gvk = &head.kind;
    match (gvk.group.as_str(), gvk.version.as_str(), gvk.kind.as_str()) {
        ("apps", "v1", "Deployment") => {
            typed(body, |d: Deployment| Resource::Workload(Workload::Deployment(d)))
        }
        ("apps", "v1", "StatefulSet") => typed(body, |s: StatefulSet| {
            Resource::Workload(Workload::StatefulSet(s))
        }),
        ("apps", "v1", "DaemonSet") => typed(body, |d: DaemonSet| Resource::Workload(Workload::DaemonSet(d))),
        ("apps", "v1", "ReplicaSet") => {
            typed(body, |r: ReplicaSet| Resource::Workload(Workload::ReplicaSet(r)))
        }
        ("batch", "v1", "Job") => typed(body, |j: Job| Resource::Workload(Workload::Job(j))),
        ("batch", "v1", "CronJob") => typed(body, |c: CronJob| Resource::Workload(Workload::CronJob(c))),
        ("", "v1", "PersistentVolumeClaim") => typed(body, |c: PersistentVolumeClaim| Resource::Claim(c)),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => {
            typed(body, |h: HpaV1| Resource::Autoscaler(Autoscaler::from_v1(h)))
        }
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => {
            typed(body, |h: HpaV2| Resource::Autoscaler(Autoscaler::from_v2(h)))
        }
        ("autoscaling", "v1", "Scale") => typed(body, |scale: Scale| {
            Resource::Scale(ScaleRequest {
                scale,
                target_kind: scale_target,
            })
        }),
        _ => typed(body, |_: DynamicObject| None::<Resource>),
    }
}

/// Says which part of a review failed to decode. serde's error does not name the field, so on this
/// (error) path only, `object` and `oldObject` are tried on their own: the one that fails is blamed, and
/// when neither does, the envelope itself (a missing uid, say) is malformed.
fn decode_error<K: DeserializeOwned>(body: &[u8], error: &serde_json::Error) -> ReviewError {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return ReviewError::Malformed(error.to_string());
    };
    let kind = std::any::type_name::<K>()
        .rsplit("::")
        .next()
        .unwrap_or("object")
        .to_owned();
    for field in ["object", "oldObject"] {
        let object = &value["request"][field];
        if !object.is_null()
            && let Err(e) = K::deserialize(object)
        {
            return ReviewError::Object {
                field,
                kind,
                message: e.to_string(),
            };
        }
    }
    ReviewError::Malformed(error.to_string())
}

/// Decodes the body as `AdmissionReview<K>` and maps its objects.
fn typed<K, R>(body: &[u8], map: impl Fn(K) -> R) -> Result<Review, ReviewError>
where
    K: kube::Resource + DeserializeOwned,
    R: Into<Option<Resource>>,
{
    let review: AdmissionReview<K> = serde_json::from_slice(body).map_err(|e| decode_error::<K>(body, &e))?;
    let req: AdmissionRequest<K> = review.try_into().map_err(|_| ReviewError::NoRequest)?;
    let response = AdmissionResponse::from(&req);
    let namespace = req.namespace.clone();
    let with_namespace = |obj: Option<K>| -> Option<Resource> {
        let mut resource = obj.map(&map).and_then(Into::into)?;
        // On CREATE the object may omit its namespace; the request's is authoritative.
        if let Some(ns) = &namespace {
            resource.metadata_mut().namespace = Some(ns.clone());
        }
        Some(resource)
    };
    Ok(Review {
        response,
        uid: req.uid,
        operation: req.operation,
        kind: req.kind,
        namespace: req.namespace.clone(),
        name: req.name,
        sub_resource: req.sub_resource,
        dry_run: req.dry_run,
        object: with_namespace(req.object),
        old_object: with_namespace(req.old_object),
    })
}
