//! The leader's half of self-managed TLS: read the Secret, ask the [`schedule`](super::schedule) what is
//! due, make it (keys in `spawn_blocking`), write the Secret with the resourceVersion read, and keep the
//! webhooks' caBundle equal to its `ca.crt`.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::{Notify, watch};
use tracing::{error, info};

use super::material::{Material, cas_of};
use super::schedule::{Step, Validity, compose_bundle, next_step};
use super::{ManagedTls, ManagedTlsError, kube_err, webhooks};
use crate::adapters::certs::Ca;
use crate::adapters::server::start::unix_now;

/// While this replica leads: keep the Secret and the caBundles as the schedule wants them.
pub(super) async fn lead(
    client: Client,
    config: ManagedTls,
    mut leading: watch::Receiver<bool>,
    nudge: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let mut failures = 0;
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        // A pass ends when it is done, when it takes too long (a request that hangs), or as soon as this
        // replica stops leading: a deposed leader must not publish a caBundle over the new leader's.
        let pass = tokio::select! {
            r = tokio::time::timeout(PASS_TIMEOUT, tend(&client, &secrets, &config)) => Some(r),
            _ = leading.wait_for(|l| !*l) => None,
            _ = stop.wait_for(|s| *s) => return,
        };
        let wake = match pass {
            None => {
                info!("No longer leading: the TLS pass under way is dropped");
                continue;
            }
            Some(Ok(Ok(wake))) => {
                failures = 0;
                wake
            }
            Some(failed) => {
                failures += 1;
                let delay = retry_delay(failures);
                match failed {
                    Ok(Err(e)) => error!(error = %e, retry_in_s = delay, "Managing the TLS Secret failed"),
                    _ => error!(
                        retry_in_s = delay,
                        "Managing the TLS Secret took over {}s; abandoned",
                        PASS_TIMEOUT.as_secs()
                    ),
                }
                unix_now() + delay
            }
        };
        // Look again when due, at least every 30 s (someone may have edited the webhooks), or when the
        // Secret changes.
        let sleep = u64::try_from((wake - unix_now()).clamp(0, 30)).unwrap_or(30);
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(sleep)) => {}
            _ = nudge.notified() => {}
            _ = leading.changed() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// The longest one pass over the Secret and the webhooks may take (its requests, key generation).
const PASS_TIMEOUT: Duration = Duration::from_secs(60);

/// Seconds before retrying after `failures` failed passes in a row: 5, 10, 20, then 30.
fn retry_delay(failures: u32) -> i64 {
    (5_i64 << failures.saturating_sub(1).min(3)).min(30)
}

/// Whether this replica's server answers reviews (its policy loaded and caches synced).
fn ready(config: &ManagedTls) -> bool {
    config.ready.get().is_some_and(|state| state.readiness().is_ok())
}

/// One pass: publish the caBundle, take the step due, publish again; returns when to look next.
async fn tend(client: &Client, secrets: &Api<Secret>, config: &ManagedTls) -> Result<i64, ManagedTlsError> {
    for _ in 0..4 {
        let secret = secrets
            .get_opt(&config.secret)
            .await
            .map_err(kube_err(format!("reading Secret {}", config.secret)))?;
        let material = secret
            .as_ref()
            .and_then(|s| s.data.as_ref())
            .map(Material::from_data)
            .unwrap_or_default();
        let published = if material.cas.is_empty() {
            false
        } else {
            webhooks::publish(client, config, &material.bundle(), ready(config)).await?
        };
        let observed = secret.as_ref().map(|_| material.observe(&config.sans, published));
        let now = unix_now();
        let (step, wake) = next_step(observed.as_ref(), config.settle(), now);
        if step == Step::Wait {
            // A webhook configuration not there yet (installed after volguard): look again soon.
            return Ok(if published { wake } else { wake.min(now + 5) });
        }
        info!(step = ?step, secret = %config.secret, "Managing the serving certificate");
        let next = {
            let (config, material) = (config.clone(), material.clone());
            tokio::task::spawn_blocking(move || apply(step, &config, material, now)).await??
        };
        write(secrets, config, secret, &next).await?;
        webhooks::publish(client, config, &next.bundle(), ready(config)).await?;
    }
    Ok(unix_now() + 1)
}

/// The Secret's contents after `step`. Blocking: key generation.
fn apply(step: Step, config: &ManagedTls, mut m: Material, now: i64) -> Result<Material, ManagedTlsError> {
    let held: Vec<(String, Validity)> = m.cas.iter().map(|c| (c.pem.clone(), c.validity)).collect();
    let new_ca = |m: &mut Material| -> Result<Ca, ManagedTlsError> {
        let ca = Ca::generate_for(&format!("{} CA {now}", config.common_name()), config.ca_lifetime)?;
        let fresh = cas_of(&ca.pem);
        let new = fresh.first().map(|c| (c.pem.clone(), c.validity));
        m.cas = cas_of(&compose_bundle(new, &held, now).concat());
        m.ca_key = Some(ca.key_pem());
        Ok(ca)
    };
    let issue = |m: &mut Material, ca: &Ca| -> Result<(), ManagedTlsError> {
        // Never past the CA's own expiry.
        let ca_left = m.cas.first().map_or(0, |c| c.validity.left(now)).max(1);
        let life = config
            .cert_lifetime
            .min(Duration::from_secs(u64::try_from(ca_left).unwrap_or(1)));
        let issued = ca.issue_for(&config.common_name(), &config.sans, life)?;
        m.cert_pem = Some(issued.cert_pem);
        m.key_pem = Some(issued.key_pem);
        Ok(())
    };
    match step {
        Step::CreateAll => {
            let ca = new_ca(&mut m)?;
            issue(&mut m, &ca)?;
        }
        Step::RotateCa => {
            new_ca(&mut m)?;
        }
        Step::IssueLeaf => {
            let (Some(first), Some(key)) = (m.cas.first(), m.ca_key.clone()) else {
                return apply(Step::CreateAll, config, m, now);
            };
            let ca = Ca::from_pem(&first.pem, &key)?;
            issue(&mut m, &ca)?;
        }
        Step::PruneBundle => {
            m.cas = cas_of(&compose_bundle(None, &held, now).concat());
        }
        Step::Wait => {}
    }
    Ok(m)
}

/// Creates the Secret, or replaces it as read (its resourceVersion: a concurrent write fails with 409 and
/// the next pass reads again).
async fn write(
    secrets: &Api<Secret>,
    config: &ManagedTls,
    read: Option<Secret>,
    material: &Material,
) -> Result<(), ManagedTlsError> {
    let action = format!("writing Secret {}", config.secret);
    match read {
        Some(mut secret) => {
            secret.data = Some(material.to_data());
            secret.string_data = None;
            secrets
                .replace(&config.secret, &PostParams::default(), &secret)
                .await
                .map_err(kube_err(action))?;
        }
        None => {
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(config.secret.clone()),
                    namespace: Some(config.namespace.clone()),
                    labels: Some(
                        [("app.kubernetes.io/managed-by".to_owned(), "volguard".to_owned())]
                            .into_iter()
                            .collect(),
                    ),
                    ..ObjectMeta::default()
                },
                type_: Some("kubernetes.io/tls".to_owned()),
                data: Some(material.to_data()),
                ..Secret::default()
            };
            secrets
                .create(&PostParams::default(), &secret)
                .await
                .map_err(kube_err(action))?;
        }
    }
    info!(secret = %config.secret, "TLS Secret written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::retry_delay;

    #[test]
    fn failed_passes_back_off_to_half_a_minute() {
        let delays: Vec<i64> = (1..=6).map(retry_delay).collect();
        assert_eq!(delays, [5, 10, 20, 30, 30, 30]);
        assert_eq!(retry_delay(u32::MAX), 30);
    }
}
