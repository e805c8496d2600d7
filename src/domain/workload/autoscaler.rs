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
    /// `behavior.scaleUp.selectPolicy: Disabled`: the autoscaler never adds pods beyond the target's current
    /// replicas (it still raises them to `minReplicas`).
    pub scale_up_disabled: bool,
}

/// Where autoscaling/v1 keeps a v2 `spec.behavior` (as JSON, with Go's field names).
pub(crate) const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";

/// Whether a behavior, as JSON, disables scaling up. The v1 annotation is written with Go's field names
/// (`ScaleUp`, `SelectPolicy`), which Go reads case-insensitively; so does this.
fn disables_scale_up(behavior: &serde_json::Value) -> bool {
    let get = |v: &serde_json::Value, name: &str| -> Option<serde_json::Value> {
        v.as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    get(behavior, "scaleUp")
        .and_then(|up| get(&up, "selectPolicy"))
        .is_some_and(|p| p.as_str() == Some("Disabled"))
}

impl Autoscaler {
    /// Reads an autoscaling/v1 HorizontalPodAutoscaler.
    pub(crate) fn from_v1(hpa: v1::HorizontalPodAutoscaler) -> Self {
        let spec = hpa.spec.unwrap_or_default();
        Self {
            api_version: "autoscaling/v1",
            target: ScaleTargetRef {
                api_version: spec.scale_target_ref.api_version,
                kind: spec.scale_target_ref.kind,
                name: spec.scale_target_ref.name,
            },
            min_replicas: spec.min_replicas,
            max_replicas: spec.max_replicas,
            scale_up_disabled: hpa
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(BEHAVIOR_ANNOTATION))
                .and_then(|b| serde_json::from_str(b).ok())
                .is_some_and(|b| disables_scale_up(&b)),
            metadata: hpa.metadata,
        }
    }

    /// Reads an autoscaling/v2 HorizontalPodAutoscaler.
    pub(crate) fn from_v2(hpa: v2::HorizontalPodAutoscaler) -> Self {
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
            scale_up_disabled: spec
                .behavior
                .as_ref()
                .and_then(|b| b.scale_up.as_ref())
                .and_then(|u| u.select_policy.as_deref())
                == Some("Disabled"),
        }
    }

    /// The most pods the autoscaler lets its target run, given the target's `current` replicas, as the
    /// HPA controller decides: a target scaled to zero is left alone (unless minReplicas is 0); otherwise
    /// up to maxReplicas, or, when scaling up is disabled, the current count raised to minReplicas (which
    /// the controller enforces whatever the behavior) and capped at maxReplicas.
    pub(crate) fn max_pods(&self, current: u32) -> u32 {
        let max = u32::try_from(self.max_replicas).unwrap_or(0);
        let min = self.min_replicas.map_or(1, |m| u32::try_from(m).unwrap_or(0));
        if current == 0 && min != 0 {
            return 0;
        }
        if !self.scale_up_disabled {
            return max;
        }
        current.max(min).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v2(behavior: serde_json::Value) -> Autoscaler {
        Autoscaler::from_v2(
            serde_json::from_value(
                json!({"metadata": {"name": "h"}, "spec": {"minReplicas": 2, "maxReplicas": 6,
                "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "behavior": behavior}}),
            )
            .unwrap(),
        )
    }

    #[test]
    fn a_disabled_scale_up_keeps_the_current_count_within_min_and_max() {
        let up = v2(json!({"scaleUp": {"selectPolicy": "Disabled"}}));
        assert!(up.scale_up_disabled);
        assert_eq!([0, 1, 3, 9].map(|c| up.max_pods(c)), [0, 2, 3, 6]);
        let normal =
            v2(json!({"scaleUp": {"selectPolicy": "Max"}, "scaleDown": {"selectPolicy": "Disabled"}}));
        assert!(!normal.scale_up_disabled);
        assert_eq!(
            (normal.max_pods(1), normal.max_pods(0)),
            (6, 0),
            "a target at zero is left alone"
        );
    }

    #[test]
    fn the_v1_behavior_annotation_is_read_with_go_field_names() {
        let hpa = |annotation: &str| {
            Autoscaler::from_v1(
                serde_json::from_value(
                    json!({"metadata": {"name": "h", "annotations": {BEHAVIOR_ANNOTATION: annotation}},
                    "spec": {"maxReplicas": 4, "scaleTargetRef": {"kind": "Deployment", "name": "web"}}}),
                )
                .unwrap(),
            )
        };
        assert!(hpa(r#"{"ScaleUp":{"SelectPolicy":"Disabled","Policies":[]}}"#).scale_up_disabled);
        assert!(hpa(r#"{"scaleUp":{"selectPolicy":"Disabled"}}"#).scale_up_disabled);
        assert!(!hpa(r#"{"ScaleUp":{"SelectPolicy":"Max"}}"#).scale_up_disabled);
        assert!(!hpa("not json").scale_up_disabled);
    }
}
