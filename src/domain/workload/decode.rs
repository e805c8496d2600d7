//! From a document to the typed object its `apiVersion` and `kind` name.
//!
//! [`ObjectType`] names every type volguard decodes. It is a serde `DeserializeSeed`, so any format
//! (JSON text, YAML text, a `serde_json::Value`) decodes straight into the k8s-openapi type, never through
//! an intermediate tree, and without the fields no rule reads (`metadata.managedFields`, a container's
//! image and env, …: see [`Unread`]).
//! A decoding error names the field it is about (`spec.replicas: invalid type: …`).

use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::{HorizontalPodAutoscaler as HpaV1, Scale};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler as HpaV2;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, ReplicationController};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::de::{DeserializeSeed, Deserializer};

use super::unread::Unread;
use super::{Autoscaler, Resource, ScaleRequest, Workload};

/// Why a document could not be decoded.
#[derive(Clone, Debug, thiserror::Error, PartialEq)]
pub enum DecodeError {
    /// The document is not a mapping with string `apiVersion` and `kind`.
    #[error("not a Kubernetes object: {0}")]
    NotAnObject(&'static str),
    /// The object is of a kind volguard judges but does not fit its schema.
    #[error("invalid {kind} ({api_version}): {message}")]
    Invalid {
        /// The document's apiVersion.
        api_version: String,
        /// The document's kind.
        kind: String,
        /// What serde said was wrong, after the path of the field it is about.
        message: String,
    },
}

/// The result of decoding one document.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A resource volguard reads.
    Resource(Box<Resource>),
    /// A well-formed object of a kind (or apiVersion) volguard does not judge.
    Skipped {
        /// The document's apiVersion.
        api_version: String,
        /// The document's kind.
        kind: String,
    },
}

/// An `apiVersion` and `kind` volguard decodes, each into its k8s-openapi type.
///
/// As a `DeserializeSeed` it decodes an object of that type into a [`Resource`]. A Scale decoded this
/// way does not know the kind of its target (`target_kind` is `None`): only an admission request says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ObjectType {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 ReplicationController.
    ReplicationController,
    /// v1 Pod.
    Pod,
    /// v1 PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// autoscaling/v1 HorizontalPodAutoscaler.
    HorizontalPodAutoscalerV1,
    /// autoscaling/v2 HorizontalPodAutoscaler.
    HorizontalPodAutoscalerV2,
    /// autoscaling/v1 Scale.
    Scale,
    /// storage.k8s.io/v1 StorageClass.
    StorageClass,
}

impl ObjectType {
    /// The type an `apiVersion` and `kind` name, if volguard decodes it.
    pub(crate) fn of(api_version: &str, kind: &str) -> Option<Self> {
        Some(match (api_version, kind) {
            ("apps/v1", "Deployment") => Self::Deployment,
            ("apps/v1", "StatefulSet") => Self::StatefulSet,
            ("apps/v1", "DaemonSet") => Self::DaemonSet,
            ("apps/v1", "ReplicaSet") => Self::ReplicaSet,
            ("batch/v1", "Job") => Self::Job,
            ("batch/v1", "CronJob") => Self::CronJob,
            ("v1", "ReplicationController") => Self::ReplicationController,
            ("v1", "Pod") => Self::Pod,
            ("v1", "PersistentVolumeClaim") => Self::PersistentVolumeClaim,
            ("autoscaling/v1", "HorizontalPodAutoscaler") => Self::HorizontalPodAutoscalerV1,
            ("autoscaling/v2", "HorizontalPodAutoscaler") => Self::HorizontalPodAutoscalerV2,
            ("autoscaling/v1", "Scale") => Self::Scale,
            ("storage.k8s.io/v1", "StorageClass") => Self::StorageClass,
            _ => return None,
        })
    }

    /// The type whose typed list (`DeploymentList`, as the API server and `kubectl get -o json` name a
    /// list of one kind) an `apiVersion` and `kind` name.
    pub(crate) fn of_list(api_version: &str, kind: &str) -> Option<Self> {
        Self::of(api_version, kind.strip_suffix("List")?)
    }

    /// The `kind`, as written in a manifest.
    pub(crate) fn kind(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::ReplicaSet => "ReplicaSet",
            Self::Job => "Job",
            Self::CronJob => "CronJob",
            Self::ReplicationController => "ReplicationController",
            Self::Pod => "Pod",
            Self::PersistentVolumeClaim => "PersistentVolumeClaim",
            Self::HorizontalPodAutoscalerV1 | Self::HorizontalPodAutoscalerV2 => "HorizontalPodAutoscaler",
            Self::Scale => "Scale",
            Self::StorageClass => "StorageClass",
        }
    }

    /// The `apiVersion`, as written in a manifest.
    pub(crate) fn api_version(self) -> &'static str {
        match self {
            Self::Deployment | Self::StatefulSet | Self::DaemonSet | Self::ReplicaSet => "apps/v1",
            Self::Job | Self::CronJob => "batch/v1",
            Self::PersistentVolumeClaim | Self::ReplicationController | Self::Pod => "v1",
            Self::HorizontalPodAutoscalerV1 | Self::Scale => "autoscaling/v1",
            Self::HorizontalPodAutoscalerV2 => "autoscaling/v2",
            Self::StorageClass => "storage.k8s.io/v1",
        }
    }

    /// Decodes from `deserializer`, tracking the path of the field being read, so that an error can say
    /// which field it is about (`spec.replicas`). Slower than decoding untracked (an allocation per key):
    /// callers decode untracked first and come back here only when that fails.
    pub(crate) fn deserialize_tracked<'de, D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Resource, serde_path_to_error::Error<D::Error>> {
        let mut track = serde_path_to_error::Track::new();
        self.deserialize(serde_path_to_error::Deserializer::new(deserializer, &mut track))
            .map_err(|e| serde_path_to_error::Error::new(track.path(), e))
    }

    /// The error for an object of this type that does not decode.
    pub(crate) fn invalid(self, message: String) -> DecodeError {
        DecodeError::Invalid {
            api_version: self.api_version().to_owned(),
            kind: self.kind().to_owned(),
            message,
        }
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.kind(), self.api_version())
    }
}

/// Decodes `K`, skipping the fields no rule reads (all of them with `EVERY_FIELD`: tests compare).
fn typed<'de, K: serde::Deserialize<'de>, D: Deserializer<'de>, const EVERY_FIELD: bool>(
    deserializer: D,
) -> Result<K, D::Error> {
    if EVERY_FIELD {
        K::deserialize(deserializer)
    } else {
        <Unread<K> as serde::Deserialize>::deserialize(deserializer).map(|w| w.0)
    }
}

impl ObjectType {
    fn read<'de, D: Deserializer<'de>, const ALL: bool>(self, d: D) -> Result<Resource, D::Error> {
        Ok(match self {
            Self::Deployment => Resource::Workload(Workload::Deployment(typed::<Deployment, _, ALL>(d)?)),
            Self::StatefulSet => Resource::Workload(Workload::StatefulSet(typed::<StatefulSet, _, ALL>(d)?)),
            Self::DaemonSet => Resource::Workload(Workload::DaemonSet(typed::<DaemonSet, _, ALL>(d)?)),
            Self::ReplicaSet => Resource::Workload(Workload::ReplicaSet(typed::<ReplicaSet, _, ALL>(d)?)),
            Self::Job => Resource::Workload(Workload::Job(typed::<Job, _, ALL>(d)?)),
            Self::CronJob => Resource::Workload(Workload::CronJob(typed::<CronJob, _, ALL>(d)?)),
            Self::ReplicationController => {
                Resource::Workload(Workload::ReplicationController(typed::<
                    ReplicationController,
                    _,
                    ALL,
                >(d)?))
            }
            Self::Pod => Resource::Workload(Workload::Pod(typed::<Pod, _, ALL>(d)?)),
            Self::PersistentVolumeClaim => Resource::Claim(typed::<PersistentVolumeClaim, _, ALL>(d)?),
            Self::HorizontalPodAutoscalerV1 => {
                Resource::Autoscaler(Autoscaler::from_v1(typed::<HpaV1, _, ALL>(d)?))
            }
            Self::HorizontalPodAutoscalerV2 => {
                Resource::Autoscaler(Autoscaler::from_v2(typed::<HpaV2, _, ALL>(d)?))
            }
            Self::Scale => Resource::Scale(ScaleRequest {
                scale: typed::<Scale, _, ALL>(d)?,
                target_kind: None,
            }),
            // Every field: a StorageClass is small and never reviewed, and the choice among several
            // default classes reads its creationTimestamp, which `Unread` leaves out of every ObjectMeta.
            Self::StorageClass => Resource::StorageClass(typed::<StorageClass, _, true>(d)?),
        })
    }

    /// Decodes every field, those no rule reads too: what tests compare the decision against.
    #[cfg(test)]
    pub(crate) fn decode_every_field(self, value: &serde_json::Value) -> Result<Resource, serde_json::Error> {
        self.read::<_, true>(value)
    }
}

impl<'de> DeserializeSeed<'de> for ObjectType {
    type Value = Resource;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Resource, D::Error> {
        self.read::<_, false>(d)
    }
}

/// Reads `apiVersion` and `kind` off a JSON value and decodes it into the matching k8s-openapi type.
pub fn decode(value: serde_json::Value) -> Result<Decoded, DecodeError> {
    let (api_version, kind) = type_of(&value)?;
    match ObjectType::of(api_version, kind) {
        Some(ty) => decode_value(ty, &value).map(|r| Decoded::Resource(Box::new(r))),
        None => Ok(Decoded::Skipped {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        }),
    }
}

/// The string `apiVersion` and `kind` of a document.
pub(crate) fn type_of(value: &serde_json::Value) -> Result<(&str, &str), DecodeError> {
    let serde_json::Value::Object(map) = value else {
        return Err(DecodeError::NotAnObject("the document is not a mapping"));
    };
    let api_version = map.get("apiVersion").and_then(|v| v.as_str());
    let kind = map.get("kind").and_then(|v| v.as_str());
    match (api_version, kind) {
        (Some(a), Some(k)) => Ok((a, k)),
        (None, _) => Err(DecodeError::NotAnObject("no string field `apiVersion`")),
        (_, None) => Err(DecodeError::NotAnObject("no string field `kind`")),
    }
}

/// Decodes a JSON value known to be of type `ty`.
pub(crate) fn decode_value(ty: ObjectType, value: &serde_json::Value) -> Result<Resource, DecodeError> {
    ty.deserialize(value).map_err(|first| {
        // `spec.replicas: invalid type: …`; the path is left out when the whole object is at fault.
        let message = match ty.deserialize_tracked(value) {
            Err(e) => e.to_string(),
            Ok(_) => first.to_string(),
        };
        ty.invalid(message)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn unknown_kind_is_skipped_not_an_error() {
        let d = decode(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}));
        assert_eq!(
            d,
            Ok(Decoded::Skipped {
                api_version: "v1".into(),
                kind: "ConfigMap".into()
            })
        );
    }

    #[test]
    fn old_api_version_of_a_known_kind_is_skipped() {
        let d = decode(json!({"apiVersion": "extensions/v1beta1", "kind": "Deployment"}));
        assert!(matches!(d, Ok(Decoded::Skipped { .. })));
    }

    #[test]
    fn wrong_field_type_names_kind_and_field() {
        let d = decode(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
            "spec": {"replicas": "three", "selector": {}, "template": {}}}),
        );
        assert_eq!(
            d,
            Err(DecodeError::Invalid {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                message: "spec.replicas: invalid type: string \"three\", expected i32".into()
            })
        );
    }

    #[test]
    fn errors_in_lists_name_the_index() {
        let d = decode(json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "spec": {"accessModes": ["ReadWriteOnce", 7]}}));
        let Err(DecodeError::Invalid { message, .. }) = d else {
            panic!("{d:?}")
        };
        assert_eq!(
            message,
            "spec.accessModes[1]: invalid type: integer `7`, expected a string"
        );
    }

    #[test]
    fn missing_kind_is_not_an_object() {
        assert_eq!(
            decode(json!({"apiVersion": "v1"})),
            Err(DecodeError::NotAnObject("no string field `kind`"))
        );
        assert_eq!(
            decode(json!([1, 2])),
            Err(DecodeError::NotAnObject("the document is not a mapping"))
        );
    }

    #[test]
    fn every_type_names_itself_and_its_list() {
        let all = [
            ObjectType::Deployment,
            ObjectType::StatefulSet,
            ObjectType::DaemonSet,
            ObjectType::ReplicaSet,
            ObjectType::Job,
            ObjectType::CronJob,
            ObjectType::ReplicationController,
            ObjectType::Pod,
            ObjectType::PersistentVolumeClaim,
            ObjectType::HorizontalPodAutoscalerV1,
            ObjectType::HorizontalPodAutoscalerV2,
            ObjectType::Scale,
        ];
        for ty in all {
            assert_eq!(ObjectType::of(ty.api_version(), ty.kind()), Some(ty));
            let list = format!("{}List", ty.kind());
            assert_eq!(ObjectType::of_list(ty.api_version(), &list), Some(ty));
        }
        assert_eq!(ObjectType::of_list("v1", "ConfigMapList"), None);
        assert_eq!(ObjectType::of_list("apps/v1", "Deployment"), None);
        assert_eq!(ObjectType::of_list("extensions/v1beta1", "DeploymentList"), None);
    }
}
