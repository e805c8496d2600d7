//! Keeping volguard's own webhook configurations pointed at it: the caBundle equal to the Secret's
//! `ca.crt` and, with `--webhooks-file`, the webhooks themselves, put in only once this replica is ready.
//!
//! Without a file, a strategic merge patch per configuration names each webhook (the list's merge key)
//! and sets only `clientConfig.caBundle`, so rules, selectors and failure policies stay whoever wrote
//! them. With one, the chart installs the configurations with no webhooks (inactive: nothing is sent
//! anywhere), and the leader, once it serves, replaces their `webhooks` with the file's, caBundle set
//! (a JSON merge patch replaces the whole list, so a webhook removed from the file goes too).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhook, MutatingWebhookConfiguration, ValidatingWebhook, ValidatingWebhookConfiguration,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde::Serialize;
use serde_json::json;
use tracing::{info, warn};

use super::{ManagedTls, ManagedTlsError, kube_err};

/// The webhooks `--webhooks-file` asks for, and whether this process has put them in yet.
#[derive(Debug, Default)]
pub struct DesiredWebhooks {
    validating: Option<Vec<ValidatingWebhook>>,
    mutating: Option<Vec<MutatingWebhook>>,
    validating_applied: AtomicBool,
    mutating_applied: AtomicBool,
}

/// Why `--webhooks-file` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WebhooksFileError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// It is not a YAML stream of webhook configurations.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl DesiredWebhooks {
    /// Reads a YAML stream holding a ValidatingWebhookConfiguration and/or a MutatingWebhookConfiguration
    /// (their names do not matter: `--validating-webhook` and `--mutating-webhook` say which to change).
    pub async fn read(path: &Path) -> Result<Self, WebhooksFileError> {
        let shown = path.display().to_string();
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|source| WebhooksFileError::Read {
                path: shown.clone(),
                source,
            })?;
        Self::parse(&text).map_err(|message| WebhooksFileError::Parse { path: shown, message })
    }

    fn parse(text: &str) -> Result<Self, String> {
        let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(text).map_err(|e| e.to_string())?;
        let mut out = Self::default();
        for doc in docs {
            match doc["kind"].as_str() {
                Some("ValidatingWebhookConfiguration") => {
                    let c: ValidatingWebhookConfiguration =
                        serde_json::from_value(doc).map_err(|e| e.to_string())?;
                    out.validating = Some(c.webhooks.unwrap_or_default());
                }
                Some("MutatingWebhookConfiguration") => {
                    let c: MutatingWebhookConfiguration =
                        serde_json::from_value(doc).map_err(|e| e.to_string())?;
                    out.mutating = Some(c.webhooks.unwrap_or_default());
                }
                Some(other) => return Err(format!("unexpected kind {other}")),
                None => {}
            }
        }
        if out.validating.is_none() && out.mutating.is_none() {
            return Err("no ValidatingWebhookConfiguration or MutatingWebhookConfiguration".to_owned());
        }
        Ok(out)
    }
}

/// What one configuration should hold.
struct Target<'a, W> {
    name: &'a str,
    desired: Option<&'a [W]>,
    applied: Option<&'a AtomicBool>,
}

/// Brings both configurations (those named) up to date. `ready`: this replica answers reviews, so the
/// desired webhooks may go in. `Ok(true)` when every named configuration exists and trusts `bundle`.
pub(super) async fn publish(
    client: &Client,
    config: &ManagedTls,
    bundle: &str,
    ready: bool,
) -> Result<bool, ManagedTlsError> {
    let desired = config.webhooks.as_deref();
    let mut all = true;
    if let Some(name) = &config.validating_webhook {
        let target = Target {
            name,
            desired: desired.and_then(|d| d.validating.as_deref()),
            applied: desired.map(|d| &d.validating_applied),
        };
        all &= sync::<ValidatingWebhookConfiguration>(client, target, bundle, ready).await?;
    }
    if let Some(name) = &config.mutating_webhook {
        let target = Target {
            name,
            desired: desired.and_then(|d| d.mutating.as_deref()),
            applied: desired.map(|d| &d.mutating_applied),
        };
        all &= sync::<MutatingWebhookConfiguration>(client, target, bundle, ready).await?;
    }
    Ok(all)
}

/// Brings one configuration up to date. `Ok(true)` when it exists and trusts `bundle`.
async fn sync<C: Configuration>(
    client: &Client,
    target: Target<'_, C::Webhook>,
    bundle: &str,
    ready: bool,
) -> Result<bool, ManagedTlsError> {
    let Target {
        name,
        desired,
        applied,
    } = target;
    let kind = C::KIND;
    let api: Api<C> = Api::all(client.clone());
    // Each live webhook's name and caBundle; None when the configuration does not exist.
    let live: Option<Vec<(String, Option<Vec<u8>>)>> = api
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading {kind} {name}")))?
        .map(|c| {
            c.into_webhooks()
                .into_iter()
                .map(|w| (w.name().to_owned(), w.ca_bundle().map(<[u8]>::to_vec)))
                .collect()
        });
    let Some(live) = live else {
        warn!(
            kind,
            name, "The webhook configuration does not exist; it is updated once it does"
        );
        return Ok(false);
    };
    let trusted = live.iter().all(|(_, b)| b.as_deref() == Some(bundle.as_bytes()));
    let body = match (desired, applied) {
        (Some(desired), Some(applied)) => {
            let names: Vec<&str> = desired.iter().map(Webhook::name).collect();
            let live_names: Vec<&str> = live.iter().map(|(n, _)| n.as_str()).collect();
            if applied.load(Ordering::SeqCst) && trusted && names == live_names {
                return Ok(true);
            }
            if !ready {
                // Not serving yet: leave the configuration as it is (inactive on a fresh install).
                return Ok(false);
            }
            let webhooks: Vec<C::Webhook> = desired
                .iter()
                .cloned()
                .map(|mut w| {
                    w.set_ca_bundle(ByteString(bundle.as_bytes().to_vec()));
                    w
                })
                .collect();
            let body = json!({ "webhooks": webhooks });
            api.patch(name, &PatchParams::default(), &Patch::Merge(body))
                .await
                .map_err(kube_err(format!("setting the webhooks of {kind} {name}")))?;
            applied.store(true, Ordering::SeqCst);
            info!(kind, name, webhooks = desired.len(), "Webhooks active");
            return Ok(true);
        }
        _ => {
            if trusted {
                return Ok(true);
            }
            let encoded = {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.encode(bundle)
            };
            json!({
                "webhooks": live
                    .iter()
                    .filter(|(_, b)| b.as_deref() != Some(bundle.as_bytes()))
                    .map(|(n, _)| json!({"name": n, "clientConfig": {"caBundle": encoded}}))
                    .collect::<Vec<_>>()
            })
        }
    };
    api.patch(name, &PatchParams::default(), &Patch::Strategic(body))
        .await
        .map_err(kube_err(format!("patching the caBundle of {kind} {name}")))?;
    info!(kind, name, "caBundle updated");
    Ok(true)
}

/// A webhook of either configuration: its name (the list's merge key) and its caBundle.
trait Webhook: Clone + Serialize {
    fn name(&self) -> &str;
    fn ca_bundle(&self) -> Option<&[u8]>;
    fn set_ca_bundle(&mut self, bundle: ByteString);
}

/// A webhook configuration, validating or mutating.
trait Configuration:
    kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug
{
    const KIND: &'static str;
    type Webhook: Webhook;
    fn into_webhooks(self) -> Vec<Self::Webhook>;
}

macro_rules! webhook_kind {
    ($configuration:ty, $webhook:ty, $kind:literal) => {
        impl Webhook for $webhook {
            fn name(&self) -> &str {
                &self.name
            }
            fn ca_bundle(&self) -> Option<&[u8]> {
                self.client_config
                    .ca_bundle
                    .as_ref()
                    .map(|b| b.0.as_slice())
            }
            fn set_ca_bundle(&mut self, bundle: ByteString) {
                self.client_config.ca_bundle = Some(bundle);
            }
        }

        impl Configuration for $configuration {
            const KIND: &'static str = $kind;
            type Webhook = $webhook;
            fn into_webhooks(self) -> Vec<$webhook> {
                self.webhooks.unwrap_or_default()
            }
        }
    };
}

webhook_kind!(
    ValidatingWebhookConfiguration,
    ValidatingWebhook,
    "ValidatingWebhookConfiguration"
);
webhook_kind!(
    MutatingWebhookConfiguration,
    MutatingWebhook,
    "MutatingWebhookConfiguration"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_webhooks_file_holds_the_configurations_by_kind() {
        let text = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\n\
                    metadata: {name: x}\nwebhooks:\n- name: validate.volguard.io\n  clientConfig: {url: \
                    'https://127.0.0.1:1/validate'}\n  admissionReviewVersions: [v1]\n  sideEffects: None\n";
        let d = DesiredWebhooks::parse(text).unwrap();
        assert_eq!(d.validating.as_ref().map(Vec::len), Some(1));
        assert!(d.mutating.is_none());
        assert!(DesiredWebhooks::parse("kind: ConfigMap\n").is_err());
        assert!(DesiredWebhooks::parse("").is_err());
    }
}
