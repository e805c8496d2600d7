//! Self-managed TLS (`serve --tls-secret NAMESPACE/NAME`): volguard keeps its own serving certificate.
//!
//! One replica, elected through a Lease ([`lease`]), creates a CA and a serving certificate in the Secret
//! when they are missing or unusable, renews the serving certificate two thirds through its life and the
//! CA likewise (a new CA first joins the caBundle beside the old one), and keeps the caBundle of
//! volguard's webhook configurations equal to the Secret's `ca.crt` ([`webhooks`]). Every replica watches
//! the Secret and swaps a new pair into rustls through the server's reload path, without a restart.
//! When to do what is decided by the pure [`schedule`]; what the Secret holds is [`material`].
//!
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#contacting-the-webhook>.

pub(crate) mod lease;
pub(crate) mod material;
pub(crate) mod schedule;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;
use kube::runtime::watcher;
use kube::{Api, Client};
use rustls::sign::CertifiedKey;
use tokio::sync::{Notify, watch};
use tracing::{error, info, warn};

use self::material::{Material, cas_of};
use self::schedule::{Step, Validity, compose_bundle, next_step};
use crate::adapters::certs::{Ca, CertError};
use crate::adapters::server::AppState;
use crate::adapters::server::reload::swap_pair;

/// Why self-managed TLS could not start or act.
#[derive(Debug, thiserror::Error)]
pub enum ManagedTlsError {
    /// The API server refused or could not be reached.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done.
        action: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A certificate could not be made.
    #[error("issuing a certificate: {0}")]
    Cert(#[from] CertError),
    /// Key generation did not finish.
    #[error("certificate task failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> ManagedTlsError {
    let action = action.into();
    move |source| ManagedTlsError::Kube { action, source }
}

/// How volguard manages its certificate.
#[derive(Clone, Debug)]
pub struct ManagedTls {
    /// The Secret's namespace (the Lease's too).
    pub namespace: String,
    /// The Secret's name.
    pub secret: String,
    /// The Lease's name.
    pub lease: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// How long a leader holds the Lease without renewing it.
    pub lease_duration: Duration,
    /// The serving certificate's life.
    pub cert_lifetime: Duration,
    /// The CA's life.
    pub ca_lifetime: Duration,
    /// The names the serving certificate is for (DNS names, IP addresses).
    pub sans: Vec<String>,
    /// The ValidatingWebhookConfiguration whose caBundle to keep.
    pub validating_webhook: Option<String>,
    /// The MutatingWebhookConfiguration whose caBundle to keep.
    pub mutating_webhook: Option<String>,
}

impl ManagedTls {
    /// The Kubernetes Service names for `service` in `namespace`, as the API server may address it.
    pub fn service_names(service: &str, namespace: &str) -> Vec<String> {
        vec![
            service.to_owned(),
            format!("{service}.{namespace}"),
            format!("{service}.{namespace}.svc"),
            format!("{service}.{namespace}.svc.cluster.local"),
        ]
    }

    fn common_name(&self) -> String {
        self.sans.first().cloned().unwrap_or_else(|| self.secret.clone())
    }

    /// How long after its `notBefore` a new CA may sign: its clock slack (a minute) and a minute for the
    /// API server to see the new caBundle (shorter for short test lifetimes).
    fn settle(&self) -> i64 {
        let ca = self.ca_lifetime.as_secs();
        i64::try_from((ca / 10).min(60) + (ca / 20).min(60)).unwrap_or(120)
    }
}

/// What [`start`] leaves running.
pub struct Managed {
    /// The serving pair the Secret held at start.
    pub pair: Arc<CertifiedKey>,
    /// Whether this replica leads.
    pub leading: watch::Receiver<bool>,
    client: Client,
    config: ManagedTls,
    nudge: Arc<Notify>,
    lease_task: tokio::task::JoinHandle<()>,
}

fn unix_now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Joins the election and waits until the Secret holds a usable serving pair (the leader makes it when
/// missing). Polls once a second, logging every 15 s, until `stop`.
pub async fn start(
    client: Client,
    config: ManagedTls,
    stop: watch::Receiver<bool>,
) -> Result<Option<Managed>, ManagedTlsError> {
    let (leading_tx, leading) = watch::channel(false);
    let lease_api = Api::namespaced(client.clone(), &config.namespace);
    let lease_task = tokio::spawn(lease::run(
        lease_api,
        lease::LeaseConfig {
            namespace: config.namespace.clone(),
            name: config.lease.clone(),
            identity: config.identity.clone(),
            duration: config.lease_duration,
        },
        leading_tx,
        stop.clone(),
    ));
    let nudge = Arc::new(Notify::new());
    tokio::spawn(lead(
        client.clone(),
        config.clone(),
        leading.clone(),
        Arc::clone(&nudge),
        stop.clone(),
    ));
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    let mut waited = 0u32;
    loop {
        match secrets.get_opt(&config.secret).await {
            Ok(Some(secret)) => {
                let material = Material::from_data(&secret.data.unwrap_or_default());
                if let Ok(pair) = material.pair() {
                    return Ok(Some(Managed {
                        pair,
                        leading,
                        client,
                        config,
                        nudge,
                        lease_task,
                    }));
                }
            }
            Ok(None) => {}
            Err(e) => warn!(secret = %config.secret, error = %e, "Cannot read the TLS Secret"),
        }
        if waited.is_multiple_of(15) {
            info!(secret = %config.secret, namespace = %config.namespace, "Waiting for the leader to issue the serving certificate");
        }
        waited += 1;
        let mut stop = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.wait_for(|s| *s) => return Ok(None),
        }
    }
}

impl std::fmt::Debug for Managed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Managed {
    /// Watches the Secret for the server in `state`: swaps every new pair in, exports the CA's and the
    /// serving certificate's expiry, and warns when either has less than a sixth of its life left.
    pub fn watch(&self, state: Arc<AppState>, mut stop: watch::Receiver<bool>) {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.config.namespace);
        let name = self.config.secret.clone();
        let nudge = Arc::clone(&self.nudge);
        let mut leading = self.leading.clone();
        let metrics = Arc::clone(&state.metrics);
        metrics.set_leader(Some(*leading.borrow()));
        let mut stop2 = stop.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = leading.changed() => {
                        if changed.is_err() { return; }
                        metrics.set_leader(Some(*leading.borrow()));
                    }
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        });
        tokio::spawn(async move {
            let selector = format!("metadata.name={name}");
            let stream = watcher(secrets, watcher::Config::default().fields(&selector));
            let mut stream = std::pin::pin!(stream);
            let mut warn_tick = tokio::time::interval(Duration::from_secs(60));
            let mut last: Option<Material> = None;
            loop {
                tokio::select! {
                    event = stream.next() => {
                        let Some(event) = event else { return };
                        match event {
                            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                                nudge.notify_one();
                                let material = Material::from_data(&s.data.unwrap_or_default());
                                take(&state, &material, last.as_ref());
                                last = Some(material);
                            }
                            Ok(watcher::Event::Delete(_)) => {
                                nudge.notify_one();
                                warn!(secret = %name, "The TLS Secret was deleted; serving the last pair until the leader issues a new one");
                            }
                            Ok(_) => {}
                            Err(e) => warn!(secret = %name, error = %e, "Watching the TLS Secret"),
                        }
                    }
                    _ = warn_tick.tick() => {
                        if let Some(m) = &last { warn_expiring(&state, m); }
                    }
                    _ = stop2.wait_for(|s| *s) => return,
                }
            }
        });
    }

    /// Waits until the election has ended (the Lease released, when held): call after `stop` turned true.
    pub async fn finish(self) {
        let _ = self.lease_task.await;
    }
}

/// Swaps the Secret's pair in when it changed; exports the expiries.
fn take(state: &Arc<AppState>, material: &Material, last: Option<&Material>) {
    if let Some(ca) = material.cas.first() {
        state.metrics.ca_expires(ca.validity.not_after);
    }
    let changed = last.is_none_or(|l| l.cert_pem != material.cert_pem || l.key_pem != material.key_pem);
    let serving = state.certs.as_ref().map(|c| c.current());
    let same_as_served = match (serving, material.cert_pem.as_deref()) {
        (Some(current), Some(pem)) => material
            .pair()
            .is_ok_and(|p| p.cert.first() == current.cert.first() && !pem.is_empty()),
        _ => false,
    };
    if changed && !same_as_served {
        swap_pair(state, material.pair(), "Secret");
    }
    warn_expiring(state, material);
}

fn warn_expiring(state: &Arc<AppState>, material: &Material) {
    let now = unix_now();
    if let Some(ca) = material.cas.first()
        && ca.validity.is_expiring(now)
    {
        warn!(
            seconds_left = ca.validity.left(now),
            "The CA expires soon and was not rotated; is a leader running?"
        );
    }
    if let Some((not_before, not_after)) = state.certs.as_ref().and_then(|c| c.validity()) {
        let v = Validity {
            not_before,
            not_after,
        };
        if v.is_expiring(now) {
            warn!(
                seconds_left = v.left(now),
                "The serving certificate expires soon and was not renewed; is a leader running?"
            );
        }
    }
}

/// While this replica leads: keep the Secret and the caBundles as the schedule wants them.
async fn lead(
    client: Client,
    config: ManagedTls,
    mut leading: watch::Receiver<bool>,
    nudge: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &config.namespace);
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        let wake = match tend(&client, &secrets, &config).await {
            Ok(wake) => wake,
            Err(e) => {
                error!(error = %e, "Managing the TLS Secret failed; retrying");
                unix_now() + 5
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

/// One pass: publish the caBundle, take the step due, publish again; returns when to look next.
async fn tend(client: &Client, secrets: &Api<Secret>, config: &ManagedTls) -> Result<i64, ManagedTlsError> {
    for _ in 0..4 {
        let secret = secrets
            .get_opt(&config.secret)
            .await
            .map_err(kube_err(format!("reading Secret {}", config.secret)))?;
        let material = secret
            .as_ref()
            .map(|s| Material::from_data(&s.data.clone().unwrap_or_default()))
            .unwrap_or_default();
        let published = if material.cas.is_empty() {
            false
        } else {
            webhooks::publish(
                client,
                &config.validating_webhook,
                &config.mutating_webhook,
                &material.bundle(),
            )
            .await?
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
        webhooks::publish(
            client,
            &config.validating_webhook,
            &config.mutating_webhook,
            &next.bundle(),
        )
        .await?;
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
