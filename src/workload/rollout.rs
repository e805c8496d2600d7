//! How many extra pods a Deployment's rolling update starts, rounded as the Deployment controller rounds.
//!
//! Kubernetes resolves `maxSurge` against the desired replicas rounding *up* and `maxUnavailable` rounding
//! *down*; both default to 25%. See `ResolveFenceposts` in the deployment controller and
//! <https://kubernetes.io/docs/concepts/workloads/controllers/deployment/#rolling-update-deployment>.

use k8s_openapi::api::apps::v1::DeploymentStrategy;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::FootprintError;

/// How a Deployment replaces its pods on an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rollout {
    /// `strategy: Recreate`: every old pod stops before a new one starts.
    Recreate,
    /// `strategy: RollingUpdate` (the default): up to `surge` pods beyond the desired count run at once.
    RollingUpdate {
        /// The resolved `maxSurge`, in pods.
        surge: u32,
    },
}

/// The default for both `maxSurge` and `maxUnavailable`.
const DEFAULT_FENCEPOST: &str = "25%";

/// Resolves `maxSurge` against `replicas`: an integer is taken as is, a percentage rounds up.
pub fn resolve_surge(value: Option<&IntOrString>, replicas: u32) -> Result<u32, FootprintError> {
    scaled(value, replicas, true)
}

fn scaled(value: Option<&IntOrString>, replicas: u32, round_up: bool) -> Result<u32, FootprintError> {
    match value {
        None => scaled_percent(DEFAULT_FENCEPOST, replicas, round_up),
        Some(IntOrString::Int(i)) => u32::try_from(*i).map_err(|_| FootprintError::InvalidIntOrPercent {
            field: "maxSurge",
            value: i.to_string(),
        }),
        Some(IntOrString::String(s)) => scaled_percent(s, replicas, round_up),
    }
}

fn scaled_percent(s: &str, replicas: u32, round_up: bool) -> Result<u32, FootprintError> {
    let invalid = || FootprintError::InvalidIntOrPercent {
        field: "maxSurge",
        value: s.to_owned(),
    };
    let percent: u64 = s
        .strip_suffix('%')
        .ok_or_else(invalid)?
        .parse()
        .map_err(|_| invalid())?;
    let product = percent * u64::from(replicas);
    let pods = if round_up {
        product.div_ceil(100)
    } else {
        product / 100
    };
    u32::try_from(pods).map_err(|_| invalid())
}

impl Rollout {
    /// Reads a Deployment's strategy at the given replica count.
    pub fn of(strategy: Option<&DeploymentStrategy>, replicas: u32) -> Result<Self, FootprintError> {
        match strategy.and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => Ok(Rollout::Recreate),
            None | Some("RollingUpdate") => {
                let surge = strategy
                    .and_then(|s| s.rolling_update.as_ref())
                    .and_then(|r| r.max_surge.as_ref());
                Ok(Rollout::RollingUpdate {
                    surge: resolve_surge(surge, replicas)?,
                })
            }
            Some(other) => Err(FootprintError::UnknownStrategy(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> IntOrString {
        IntOrString::String(v.to_owned())
    }

    #[test]
    fn percent_surge_rounds_up() {
        assert_eq!(resolve_surge(Some(&s("25%")), 1), Ok(1));
        assert_eq!(resolve_surge(Some(&s("25%")), 4), Ok(1));
        assert_eq!(resolve_surge(Some(&s("25%")), 5), Ok(2));
        assert_eq!(resolve_surge(Some(&s("10%")), 3), Ok(1));
        assert_eq!(resolve_surge(Some(&s("0%")), 10), Ok(0));
        assert_eq!(resolve_surge(Some(&s("100%")), 3), Ok(3));
    }

    #[test]
    fn unset_surge_defaults_to_a_quarter_rounded_up() {
        assert_eq!(resolve_surge(None, 1), Ok(1));
        assert_eq!(resolve_surge(None, 8), Ok(2));
        assert_eq!(resolve_surge(None, 0), Ok(0));
    }

    #[test]
    fn integer_surge_is_taken_as_is() {
        assert_eq!(resolve_surge(Some(&IntOrString::Int(0)), 1), Ok(0));
        assert_eq!(resolve_surge(Some(&IntOrString::Int(3)), 1), Ok(3));
    }

    #[test]
    fn malformed_surge_is_an_error() {
        assert_eq!(
            resolve_surge(Some(&s("lots")), 1),
            Err(FootprintError::InvalidIntOrPercent {
                field: "maxSurge",
                value: "lots".into()
            })
        );
        assert!(resolve_surge(Some(&IntOrString::Int(-1)), 1).is_err());
    }

    #[test]
    fn recreate_and_default_strategies() {
        let recreate = DeploymentStrategy {
            type_: Some("Recreate".into()),
            rolling_update: None,
        };
        assert_eq!(Rollout::of(Some(&recreate), 1), Ok(Rollout::Recreate));
        assert_eq!(Rollout::of(None, 1), Ok(Rollout::RollingUpdate { surge: 1 }));
        let bogus = DeploymentStrategy {
            type_: Some("BlueGreen".into()),
            rolling_update: None,
        };
        assert_eq!(
            Rollout::of(Some(&bogus), 1),
            Err(FootprintError::UnknownStrategy("BlueGreen".into()))
        );
    }
}
