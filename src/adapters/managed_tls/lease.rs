//! Leader election through a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does it:
//! take the Lease when it is absent, released or not renewed for its duration (as *this* process observed
//! it, so clocks that disagree between hosts do not matter), renew it a few times per duration, write only
//! with the `resourceVersion` read (the API server refuses a stale write with 409), and release it on
//! shutdown so another replica takes over at once.
//!
//! See <https://kubernetes.io/docs/concepts/architecture/leases/>.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use tokio::sync::watch;
use tracing::{info, warn};

/// Who contends for which Lease, and how often.
#[derive(Clone, Debug)]
pub(crate) struct LeaseConfig {
    /// The Lease's namespace and name.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// This process's identity (the pod name, or host and process id).
    pub identity: String,
    /// How long a leader holds the Lease without renewing it.
    pub duration: Duration,
}

impl LeaseConfig {
    /// How often the leader renews, and a follower retries: a third of the duration, as client-go's
    /// defaults (15 s lease, 2 s retry, 10 s renew deadline) leave room for two missed renewals.
    fn period(&self) -> Duration {
        (self.duration / 3).max(Duration::from_millis(200))
    }
}

/// What this process last saw of the Lease: the record and when it changed, by this process's clock.
#[derive(Clone, Debug, PartialEq)]
struct Observed {
    holder: Option<String>,
    renew_time: Option<jiff::Timestamp>,
    duration: Duration,
    at: Instant,
}

/// Whether a Lease held by someone else may be taken at `now`: it is free, or its holder has not renewed
/// it (the record has not changed) for its whole duration.
fn takeable(observed: &Observed, identity: &str, now: Instant) -> bool {
    match observed.holder.as_deref() {
        None | Some("") => true,
        Some(h) if h == identity => true,
        Some(_) => now.duration_since(observed.at) >= observed.duration,
    }
}

fn micro_now() -> MicroTime {
    MicroTime(jiff::Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

/// Runs the election until `stop` turns true, publishing whether this process leads on `leading`; then
/// releases the Lease if held.
pub(crate) async fn run(
    api: Api<Lease>,
    config: LeaseConfig,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut observed: Option<Observed> = None;
    let mut last_renewal = Instant::now();
    loop {
        let started = Instant::now();
        // Each round within a period: a request that hangs must not keep this replica leading past the
        // renew deadline, nor keep shutdown waiting.
        let round = tokio::select! {
            r = tokio::time::timeout(config.period(), try_acquire_or_renew(&api, &config, &mut observed)) => r,
            _ = stop.wait_for(|s| *s) => break,
        };
        let was = *leading.borrow();
        let is = match round {
            Ok(Ok(held)) => {
                if held {
                    // When the round started: the renewal the others see is no older than that.
                    last_renewal = started;
                }
                held
            }
            failed => {
                match failed {
                    Ok(Err(e)) => warn!(lease = %config.name, error = %e, "Lease not renewed"),
                    _ => {
                        warn!(lease = %config.name, "Lease not renewed: no answer within {:?}", config.period())
                    }
                }
                keeps_leading(was, last_renewal.elapsed(), config.duration)
            }
        };
        if is != was {
            if is {
                info!(lease = %config.name, identity = %config.identity, "Leading");
            } else {
                warn!(lease = %config.name, identity = %config.identity, "No longer leading");
            }
            leading.send_replace(is);
        }
        tokio::select! {
            _ = tokio::time::sleep(config.period()) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
    }
    if *leading.borrow() {
        leading.send_replace(false);
        if tokio::time::timeout(config.period(), release(&api, &config))
            .await
            .is_err()
        {
            warn!(lease = %config.name, "Could not release the Lease in time; it expires by itself");
        }
    }
}

/// Whether a leader whose round failed still leads: only until the Lease may have expired for the others
/// (the renew deadline, two thirds of its duration, since the last renewal; measured after the round, so a
/// request that hung counts in full).
fn keeps_leading(was: bool, since_renewal: Duration, duration: Duration) -> bool {
    was && since_renewal < duration * 2 / 3
}

/// One round: read the Lease, then create, renew or take it when allowed. `Ok(true)` when this process
/// holds it afterwards.
async fn try_acquire_or_renew(
    api: &Api<Lease>,
    config: &LeaseConfig,
    observed: &mut Option<Observed>,
) -> Result<bool, kube::Error> {
    let now = Instant::now();
    let Some(mut lease) = api.get_opt(&config.name).await? else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(config.name.clone()),
                namespace: Some(config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(config.identity.clone()),
                lease_duration_seconds: Some(seconds(config.duration)),
                acquire_time: Some(micro_now()),
                renew_time: Some(micro_now()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            // Another replica created it first.
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let record = Observed {
        holder: spec.holder_identity.clone(),
        renew_time: spec.renew_time.as_ref().map(|t| t.0),
        duration: Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0).max(1)).unwrap_or(1),
        ),
        at: now,
    };
    // The record's age counts from when this process first saw it unchanged.
    let seen = match observed.take() {
        Some(o) if o.holder == record.holder && o.renew_time == record.renew_time => o,
        _ => record,
    };
    *observed = Some(seen.clone());
    if !takeable(&seen, &config.identity, now) {
        return Ok(false);
    }
    let mine = seen.holder.as_deref() == Some(config.identity.as_str());
    let mut spec = spec;
    if !mine {
        spec.acquire_time = Some(micro_now());
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.holder_identity = Some(config.identity.clone());
    spec.lease_duration_seconds = Some(seconds(config.duration));
    spec.renew_time = Some(micro_now());
    lease.spec = Some(spec);
    // `replace` sends the resourceVersion read above: a write in between makes it fail with 409.
    match api.replace(&config.name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the Lease up, as client-go does: no holder, and a one-second duration.
async fn release(api: &Api<Lease>, config: &LeaseConfig) {
    let result = async {
        let Some(mut lease) = api.get_opt(&config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(micro_now());
        api.replace(&config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
    }
    .await;
    match result {
        Ok(()) => info!(lease = %config.name, "Lease released"),
        Err(e) => {
            warn!(lease = %config.name, error = %e, "Could not release the Lease; it expires by itself")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(holder: Option<&str>, at: Instant) -> Observed {
        Observed {
            holder: holder.map(str::to_owned),
            renew_time: None,
            duration: Duration::from_secs(15),
            at,
        }
    }

    #[test]
    fn a_failed_round_keeps_a_leader_only_until_the_renew_deadline() {
        let d = Duration::from_secs(15);
        assert!(keeps_leading(true, Duration::from_secs(9), d));
        assert!(!keeps_leading(true, Duration::from_secs(10), d));
        // A round that hung for minutes counts in full.
        assert!(!keeps_leading(true, Duration::from_secs(300), d));
        assert!(!keeps_leading(false, Duration::ZERO, d));
    }

    #[test]
    fn a_lease_is_taken_when_free_mine_or_unrenewed_for_its_duration() {
        let t = Instant::now();
        assert!(takeable(&seen(None, t), "a", t));
        assert!(takeable(&seen(Some(""), t), "a", t));
        assert!(takeable(&seen(Some("a"), t), "a", t));
        assert!(!takeable(&seen(Some("b"), t), "a", t + Duration::from_secs(14)));
        assert!(takeable(&seen(Some("b"), t), "a", t + Duration::from_secs(15)));
    }
}
