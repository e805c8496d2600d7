//! HorizontalPodAutoscalers of both served versions, read as "this workload may run up to N pods".
//!
//! `kubectl autoscale` still sends autoscaling/v1; current manifests use autoscaling/v2. Both carry the same
//! two facts volguard needs: the scale target and `maxReplicas`.
//! See <https://kubernetes.io/docs/tasks/run-application/horizontal-pod-autoscale/>.

use k8s_openapi::api::autoscaling::{v1, v2};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The workload an autoscaler resizes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleTargetRef {
    /// The target's apiVersion, e.g. `apps/v1`.
    pub api_version: Option<String>,
    /// The target's kind, e.g. `Deployment`.
    pub kind: String,
    /// The target's name, in the autoscaler's namespace.
    pub name: String,
}

/// A HorizontalPodAutoscaler, whichever version it came in.
#[derive(Clone, Debug, PartialEq)]
pub struct Autoscaler {
    /// The version it was written in (`autoscaling/v1` or `autoscaling/v2`).
    pub api_version: &'static str,
    /// The autoscaler's metadata.
    pub metadata: ObjectMeta,
    /// What it scales.
    pub target: ScaleTargetRef,
    /// The lower bound (unset means 1).
    pub min_replicas: Option<i32>,
    /// The upper bound: how many pods the target may run at once.
    pub max_replicas: i32,
}

impl Autoscaler {
    /// Reads an autoscaling/v1 HorizontalPodAutoscaler.
    pub fn from_v1(hpa: v1::HorizontalPodAutoscaler) -> Self {
        let spec = hpa.spec.unwrap_or_default();
        Self {
            api_version: "autoscaling/v1",
            metadata: hpa.metadata,
            target: ScaleTargetRef {
                api_version: spec.scale_target_ref.api_version,
                kind: spec.scale_target_ref.kind,
                name: spec.scale_target_ref.name,
            },
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
        }
    }

    /// Reads an autoscaling/v2 HorizontalPodAutoscaler.
    pub fn from_v2(hpa: v2::HorizontalPodAutoscaler) -> Self {
        let spec = hpa.spec.unwrap_or_default();
        Self {
            api_version: "autoscaling/v2",
            metadata: hpa.metadata,
            target: ScaleTargetRef {
                api_version: spec.scale_target_ref.api_version,
                kind: spec.scale_target_ref.kind,
                name: spec.scale_target_ref.name,
            },
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
        }
    }
}
