//! Keeping the caBundle of volguard's own webhook configurations equal to the Secret's `ca.crt`: a
//! strategic merge patch per configuration that names each webhook (the list's merge key) and sets only
//! `clientConfig.caBundle`, so rules, selectors and failure policies stay whoever wrote them.

use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tracing::{info, warn};

use super::{ManagedTlsError, kube_err};

/// Patches both configurations (those named) where their caBundle differs from `bundle`. `Ok(true)`
/// when every named configuration exists and holds it; one that does not exist yet is warned about and
/// `Ok(false)`.
pub(super) async fn publish(
    client: &Client,
    validating: &Option<String>,
    mutating: &Option<String>,
    bundle: &str,
) -> Result<bool, ManagedTlsError> {
    let mut all = true;
    if let Some(name) = validating {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        let current = api
            .get_opt(name)
            .await
            .map_err(kube_err(format!("reading ValidatingWebhookConfiguration {name}")))?;
        let names = current.map(|c| {
            c.webhooks
                .unwrap_or_default()
                .into_iter()
                .map(|w| (w.name, w.client_config.ca_bundle.map(|b| b.0)))
                .collect::<Vec<_>>()
        });
        all &= patch(&api, "ValidatingWebhookConfiguration", name, names, bundle).await?;
    }
    if let Some(name) = mutating {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
        let current = api
            .get_opt(name)
            .await
            .map_err(kube_err(format!("reading MutatingWebhookConfiguration {name}")))?;
        let names = current.map(|c| {
            c.webhooks
                .unwrap_or_default()
                .into_iter()
                .map(|w| (w.name, w.client_config.ca_bundle.map(|b| b.0)))
                .collect::<Vec<_>>()
        });
        all &= patch(&api, "MutatingWebhookConfiguration", name, names, bundle).await?;
    }
    Ok(all)
}

async fn patch<K>(
    api: &Api<K>,
    kind: &str,
    name: &str,
    webhooks: Option<Vec<(String, Option<Vec<u8>>)>>,
    bundle: &str,
) -> Result<bool, ManagedTlsError>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(webhooks) = webhooks else {
        warn!(
            kind,
            name, "The webhook configuration does not exist (yet); its caBundle is set once it does"
        );
        return Ok(false);
    };
    let stale: Vec<&String> = webhooks
        .iter()
        .filter(|(_, b)| b.as_deref() != Some(bundle.as_bytes()))
        .map(|(n, _)| n)
        .collect();
    if stale.is_empty() {
        return Ok(true);
    }
    let encoded = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(bundle)
    };
    let body = json!({
        "webhooks": stale.iter().map(|n| json!({"name": n, "clientConfig": {"caBundle": encoded}})).collect::<Vec<_>>()
    });
    api.patch(name, &PatchParams::default(), &Patch::Strategic(body))
        .await
        .map_err(kube_err(format!("patching the caBundle of {kind} {name}")))?;
    info!(kind, name, webhooks = stale.len(), "caBundle updated");
    Ok(true)
}
