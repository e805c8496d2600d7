//! `volguard convert --cluster`: the Deployment, its claims, their PersistentVolumes, the namespace's
//! Services and HPAs, read with GETs and bounded LISTs, all within `--cluster-timeout`.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};

use crate::domain::convert::Input;

/// Most Services or HPAs listed in the namespace.
const MAX_LISTED: u32 = 500;

/// The Deployment and what surrounds it, read from the cluster within `timeout`, and the server's minor
/// version.
pub(super) fn read_cluster(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> anyhow::Result<(Input, serde_json::Value, Option<u32>)> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(async {
        let client = crate::adapters::kube_lookup::client(kubeconfig, context)
            .await
            .context("connecting to the cluster (--kubeconfig, --context)")?;
        let read = async {
            let version = client
                .apiserver_version()
                .await
                .context("reading the API server's version")?;
            let (input, before) = cluster_input(client, namespace, name).await?;
            anyhow::Ok((input, before, server_minor(&version.major, &version.minor)))
        };
        tokio::time::timeout(timeout, read).await.map_err(|_| {
            anyhow::anyhow!(
                "reading Deployment {namespace}/{name} and its claims took over {}s (--cluster-timeout)",
                timeout.as_secs()
            )
        })?
    })
}

/// The server's minor version when it is a 1.x (`None`: unknown, taken as current). Minor versions may
/// carry a suffix (`27+` on some managed clusters).
fn server_minor(major: &str, minor: &str) -> Option<u32> {
    if major != "1" {
        return None;
    }
    minor.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()
}

/// Both `persistentVolumeClaimRetentionPolicy` (alpha in 1.23) and `ReadWriteOncePod` (alpha in 1.22) are
/// on by default from 1.27; before, kubectl refuses the field by the server's schema and the server the mode.
pub(super) const DEFAULT_ON_FROM: u32 = 27;

async fn cluster_input(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<(Input, serde_json::Value)> {
    use kube::Api;
    use kube::api::ListParams;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let deployment = deployments
        .get_opt(name)
        .await
        .with_context(|| format!("reading Deployment {namespace}/{name}"))?
        .with_context(|| format!("Deployment {namespace}/{name} not found"))?;
    // The Deployment as its user wrote it, for --diff: what the server sets is not the user's to lose.
    let mut before = serde_json::to_value(&deployment)?;
    crate::domain::convert::strip_server_set(&mut before);
    let mut input = Input {
        deployment,
        ..Input::default()
    };
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let claim_names: Vec<String> = input
        .deployment
        .spec
        .iter()
        .flat_map(|s| s.template.spec.iter())
        .flat_map(|p| p.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref().map(|c| c.claim_name.clone()))
        .collect();
    for claim_name in claim_names {
        let Some(claim) = claims
            .get_opt(&claim_name)
            .await
            .with_context(|| format!("reading claim {namespace}/{claim_name}"))?
        else {
            continue;
        };
        let volume_name = claim.spec.as_ref().and_then(|s| s.volume_name.clone());
        if let Some(volume_name) = volume_name.filter(|v| !v.is_empty())
            && let Some(pv) = volumes
                .get_opt(&volume_name)
                .await
                .with_context(|| format!("reading PersistentVolume {volume_name}"))?
        {
            input.volumes.push(pv);
        }
        input.claims.push(claim);
    }
    let services: Api<Service> = Api::namespaced(client.clone(), namespace);
    let listed = services
        .list(&ListParams::default().limit(MAX_LISTED))
        .await
        .with_context(|| format!("listing Services in {namespace}"))?;
    warn_if_cut("Services", namespace, &listed.metadata);
    input.services = listed.items;
    input.autoscalers = autoscalers(&client, namespace).await?;
    // What the claims' classes can give; a user who may not list classes converts without that check.
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
    match classes.list(&ListParams::default().limit(MAX_LISTED)).await {
        Ok(list) => {
            warn_if_cut("StorageClasses", "the cluster", &list.metadata);
            input.classes = list.items;
        }
        Err(kube::Error::Api(e)) if e.code == 403 => {
            tracing::warn!("may not list StorageClasses: what the claims' classes can give is not checked");
        }
        Err(e) => return Err(e).context("listing StorageClasses"),
    }
    Ok((input, before))
}

/// Says so when a list stopped at [`MAX_LISTED`]: an existing headless Service or an HPA of the
/// Deployment may be among those not read.
fn warn_if_cut(what: &str, scope: &str, list: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta) {
    if list.continue_.as_deref().is_some_and(|c| !c.is_empty()) {
        tracing::warn!(
            "more than {MAX_LISTED} {what} in {scope}: only the first {MAX_LISTED} were read, so one the \
             conversion should reuse or retarget may be missed"
        );
    }
}

/// The namespace's HPAs in the newest `autoscaling` version the server serves (v2, then v2beta2, then v1),
/// so no metric is lost in a version's translation.
async fn autoscalers(client: &kube::Client, namespace: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};
    for version in ["v2", "v2beta2", "v1"] {
        let gvk = GroupVersionKind::gvk("autoscaling", version, "HorizontalPodAutoscaler");
        let resource = ApiResource::from_gvk(&gvk);
        let api: kube::Api<DynamicObject> = kube::Api::namespaced_with(client.clone(), namespace, &resource);
        match api.list(&ListParams::default().limit(MAX_LISTED)).await {
            Ok(list) => {
                warn_if_cut("HorizontalPodAutoscalers", namespace, &list.metadata);
                let mut out = Vec::new();
                for item in list.items {
                    let mut value = serde_json::to_value(&item)?;
                    value["apiVersion"] = format!("autoscaling/{version}").into();
                    value["kind"] = "HorizontalPodAutoscaler".into();
                    out.push(value);
                }
                return Ok(out);
            }
            Err(kube::Error::Api(e)) if e.code == 404 => continue,
            Err(e) => return Err(e).context("listing HorizontalPodAutoscalers"),
        }
    }
    Ok(Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_versions_are_read_with_their_suffixes() {
        assert_eq!(server_minor("1", "20"), Some(20));
        assert_eq!(server_minor("1", "27+"), Some(27));
        assert_eq!(server_minor("2", "0"), None);
        assert_eq!(server_minor("1", ""), None);
    }
}
