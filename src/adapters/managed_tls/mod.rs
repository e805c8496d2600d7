//! Self-managed TLS (`serve --tls-secret NAMESPACE/NAME`): volguard keeps its own serving certificate.
//!
//! One replica, elected through a Lease ([`lease`]), creates a CA and a serving certificate in the Secret
//! when they are missing or unusable, renews the serving certificate two thirds through its life and the
//! CA likewise (a new CA first joins the caBundle beside the old one), and keeps the caBundle of
//! volguard's webhook configurations equal to the Secret's `ca.crt` ([`webhooks`]). Every replica watches
//! the Secret and swaps a new pair into rustls through the server's reload path, without a restart.
//! When to do what is decided by the pure [`schedule`]; what the Secret holds is [`material`]; the
//! leader's work is [`leader`].
//!
//! See <https://kubernetes.io/docs/reference/access-authn-authz/extensible-admission-controllers/#contacting-the-webhook>.

mod leader;
pub(crate) mod lease;
pub(crate) mod material;
pub(crate) mod schedule;
mod webhooks;

pub use webhooks::{DesiredWebhooks, WebhooksFileError};

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client};
use rustls::sign::CertifiedKey;
use tokio::sync::{Notify, watch};
use tracing::{info, warn};

use self::material::Material;
use self::schedule::Validity;
use crate::adapters::certs::CertError;
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
    /// The webhooks those configurations should hold, put in once this replica is ready
    /// (`--webhooks-file`); None: only their caBundle is kept.
    pub webhooks: Option<Arc<DesiredWebhooks>>,
    /// Whether this replica answers reviews: set once its server runs.
    pub ready: Arc<std::sync::OnceLock<Arc<AppState>>>,
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
    tokio::spawn(leader::lead(
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
        let _ = self.config.ready.set(Arc::clone(&state));
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
            let stream = watcher(secrets, watcher::Config::default().fields(&selector)).default_backoff();
            let mut stream = std::pin::pin!(stream);
            // An expiring certificate is said at every change of the Secret and then hourly, as for files.
            let mut warn_tick = tokio::time::interval(Duration::from_secs(3600));
            let mut last: Option<Material> = None;
            loop {
                tokio::select! {
                    event = stream.next() => {
                        let Some(event) = event else { return };
                        match event {
                            Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s)) => {
                                nudge.notify_one();
                                let material = Material::from_data(&s.data.unwrap_or_default());
                                take(&state, &material);
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

/// Swaps the Secret's pair in when its certificate is not the one served; exports the expiries.
fn take(state: &Arc<AppState>, material: &Material) {
    if let Some(ca) = material.cas.first() {
        state.metrics.ca_expires(ca.validity.not_after);
    }
    let served = state.certs.as_ref().map(|c| c.current());
    let loaded = material.pair();
    let same = match (&served, &loaded) {
        (Some(served), Ok(loaded)) => served.cert == loaded.cert,
        _ => false,
    };
    if !same {
        swap_pair(state, loaded, "Secret");
    }
    warn_expiring(state, material);
}

fn warn_expiring(state: &Arc<AppState>, material: &Material) {
    let now = crate::adapters::server::start::unix_now();
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
