//! `volguard unregister`: deletes volguard's webhook configurations, so the API server stops sending
//! reviews before volguard's pods go away. The chart runs it as a pre-delete hook: Helm 3 before 3.17
//! deletes Deployments before webhook configurations, and a webhook configuration (cluster-scoped)
//! cannot be owned by anything in volguard's namespace, so owner references cannot order it either.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::Api;
use kube::api::DeleteParams;
use tracing::info;

use super::Exit;
use crate::adapters::kube_lookup;

/// `volguard unregister` flags.
#[derive(Clone, Debug, Args)]
pub struct UnregisterArgs {
    /// The ValidatingWebhookConfiguration to delete.
    #[arg(long, value_name = "NAME", env = "VOLGUARD_VALIDATING_WEBHOOK")]
    pub validating_webhook: Option<String>,
    /// The MutatingWebhookConfiguration to delete.
    #[arg(long, value_name = "NAME", env = "VOLGUARD_MUTATING_WEBHOOK")]
    pub mutating_webhook: Option<String>,
    /// Kubeconfig (default: in-cluster config, then KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "VOLGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "VOLGUARD_CONTEXT")]
    pub context: Option<String>,
}

/// Deletes the named configurations; one already gone is fine.
pub fn run(args: UnregisterArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(unregister(args))
}

async fn unregister(args: UnregisterArgs) -> anyhow::Result<Exit> {
    let UnregisterArgs {
        validating_webhook,
        mutating_webhook,
        kubeconfig,
        context,
    } = args;
    anyhow::ensure!(
        validating_webhook.is_some() || mutating_webhook.is_some(),
        "name a --validating-webhook or a --mutating-webhook to delete"
    );
    let client = kube_lookup::client(kubeconfig.as_deref(), context.as_deref())
        .await
        .context("connecting to the cluster")?;
    if let Some(name) = validating_webhook {
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        delete(&api, "ValidatingWebhookConfiguration", &name).await?;
    }
    if let Some(name) = mutating_webhook {
        let api: Api<MutatingWebhookConfiguration> = Api::all(client);
        delete(&api, "MutatingWebhookConfiguration", &name).await?;
    }
    Ok(Exit::Clean)
}

async fn delete<K>(api: &Api<K>, kind: &str, name: &str) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => info!(kind, name, "Deleted"),
        Err(kube::Error::Api(e)) if e.code == 404 => info!(kind, name, "Already gone"),
        Err(e) => return Err(e).with_context(|| format!("deleting {kind} {name}")),
    }
    Ok(())
}
