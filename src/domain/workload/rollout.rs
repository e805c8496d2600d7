//! How a Deployment's rolling update overlaps old and new pods, rounded as the Deployment controller rounds.
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
    /// `strategy: RollingUpdate` (the default), with its fenceposts as written: they are resolved against
    /// whichever replica count is being judged (a Deployment's own, or the one an HPA or Scale sets).
    RollingUpdate {
        /// `maxSurge`: how many pods beyond the desired count may run.
        max_surge: Fencepost,
        /// `maxUnavailable`: how many of the desired pods may be missing.
        max_unavailable: Fencepost,
    },
}

/// A `maxSurge` or `maxUnavailable` value: a number of pods or a percentage of the desired replicas.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fencepost {
    /// An integer.
    Pods(u32),
    /// A percentage such as `"25%"`.
    Percent(u32),
}

/// The default for both `maxSurge` and `maxUnavailable`.
const DEFAULT_FENCEPOST: Fencepost = Fencepost::Percent(25);

impl Fencepost {
    fn parse(value: Option<&IntOrString>, field: &'static str) -> Result<Self, FootprintError> {
        let invalid = |value: String| FootprintError::InvalidIntOrPercent { field, value };
        match value {
            None => Ok(DEFAULT_FENCEPOST),
            Some(IntOrString::Int(i)) => u32::try_from(*i)
                .map(Fencepost::Pods)
                .map_err(|_| invalid(i.to_string())),
            Some(IntOrString::String(s)) => s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .map(Fencepost::Percent)
                .ok_or_else(|| invalid(s.clone())),
        }
    }

    /// The number of pods at `replicas`: a percentage rounds up or down as asked.
    fn resolve(self, replicas: u32, round_up: bool) -> u32 {
        match self {
            Fencepost::Pods(n) => n,
            Fencepost::Percent(p) => {
                let product = u64::from(p) * u64::from(replicas);
                let pods = if round_up {
                    product.div_ceil(100)
                } else {
                    product / 100
                };
                u32::try_from(pods).unwrap_or(u32::MAX)
            }
        }
    }
}

#[cfg(test)]
/// Resolves `maxSurge` against `replicas`: an integer is taken as is, a percentage rounds up.
pub(crate) fn resolve_surge(value: Option<&IntOrString>, replicas: u32) -> Result<u32, FootprintError> {
    Ok(Fencepost::parse(value, "maxSurge")?.resolve(replicas, true))
}

impl Rollout {
    /// Reads a Deployment's strategy.
    pub fn of(strategy: Option<&DeploymentStrategy>) -> Result<Self, FootprintError> {
        match strategy.and_then(|s| s.type_.as_deref()) {
            Some("Recreate") => Ok(Rollout::Recreate),
            // The API server defaults an empty type, as an absent one, to RollingUpdate.
            None | Some("" | "RollingUpdate") => {
                let rolling = strategy.and_then(|s| s.rolling_update.as_ref());
                Ok(Rollout::RollingUpdate {
                    max_surge: Fencepost::parse(rolling.and_then(|r| r.max_surge.as_ref()), "maxSurge")?,
                    max_unavailable: Fencepost::parse(
                        rolling.and_then(|r| r.max_unavailable.as_ref()),
                        "maxUnavailable",
                    )?,
                })
            }
            Some(other) => Err(FootprintError::UnknownStrategy(other.to_owned())),
        }
    }

    /// A rolling update's `(surge, unavailable)` in pods at `replicas`, as the Deployment controller's
    /// ResolveFenceposts computes them: surge rounds up, unavailable down, and when both come to 0,
    /// unavailable is 1 so the rollout can progress. None for Recreate.
    pub(crate) fn fenceposts(self, replicas: u32) -> Option<(u32, u32)> {
        match self {
            Rollout::Recreate => None,
            Rollout::RollingUpdate {
                max_surge,
                max_unavailable,
            } => {
                let surge = max_surge.resolve(replicas, true);
                let unavailable = max_unavailable.resolve(replicas, false);
                Some((
                    surge,
                    if surge == 0 && unavailable == 0 {
                        1
                    } else {
                        unavailable
                    },
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::RollingUpdateDeployment;

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
        assert_eq!(Rollout::of(Some(&recreate)), Ok(Rollout::Recreate));
        assert_eq!(Rollout::Recreate.fenceposts(1), None);
        let default = Rollout::RollingUpdate {
            max_surge: Fencepost::Percent(25),
            max_unavailable: Fencepost::Percent(25),
        };
        assert_eq!(Rollout::of(None), Ok(default));
        let bogus = DeploymentStrategy {
            type_: Some("BlueGreen".into()),
            rolling_update: None,
        };
        assert_eq!(
            Rollout::of(Some(&bogus)),
            Err(FootprintError::UnknownStrategy("BlueGreen".into()))
        );
    }

    fn rolling(surge: Option<IntOrString>, unavailable: Option<IntOrString>) -> Rollout {
        let strategy = DeploymentStrategy {
            type_: None,
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: surge,
                max_unavailable: unavailable,
            }),
        };
        Rollout::of(Some(&strategy)).unwrap()
    }

    #[test]
    fn fenceposts_resolve_as_the_deployment_controller_does() {
        // 25%/25%: one extra pod, and none may be missing, at one replica; one of each at four.
        assert_eq!(rolling(None, None).fenceposts(1), Some((1, 0)));
        assert_eq!(rolling(None, None).fenceposts(4), Some((1, 1)));
        assert_eq!(
            rolling(None, Some(IntOrString::Int(1))).fenceposts(1),
            Some((1, 1))
        );
        assert_eq!(
            rolling(Some(s("0%")), Some(s("100%"))).fenceposts(1),
            Some((0, 1))
        );
        assert_eq!(
            rolling(Some(IntOrString::Int(1)), Some(s("50%"))).fenceposts(1),
            Some((1, 0))
        );
        // Both zero: the controller lets one pod be unavailable so the rollout can move.
        assert_eq!(
            rolling(Some(IntOrString::Int(0)), Some(s("10%"))).fenceposts(1),
            Some((0, 1))
        );
    }

    #[test]
    fn malformed_max_unavailable_is_an_error_naming_it() {
        let strategy = DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_surge: None,
                max_unavailable: Some(s("half")),
            }),
        };
        assert_eq!(
            Rollout::of(Some(&strategy)),
            Err(FootprintError::InvalidIntOrPercent {
                field: "maxUnavailable",
                value: "half".into()
            })
        );
    }
}
