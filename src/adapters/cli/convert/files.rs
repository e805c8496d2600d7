//! `volguard convert -f`: the Deployment and what surrounds it from manifest files, each file bounded.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Service};

use crate::adapters::manifest;
use crate::domain::convert::Input;

/// Largest input file read.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// The Deployment, its claims, volumes, HPAs and Services from files; the Deployment as written.
pub(super) fn read_files(
    files: &[PathBuf],
    namespace: &str,
    name: Option<&str>,
) -> anyhow::Result<(Input, serde_json::Value)> {
    let mut input = Input::default();
    let mut deployments: Vec<(Deployment, serde_json::Value)> = Vec::new();
    let mut others: Vec<String> = Vec::new();
    for path in manifest::expand_paths(files) {
        let path = path?;
        check_size(&path)?;
        for doc in manifest::read_path(&path)? {
            let mut value = doc.value()?;
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            if value["metadata"]["namespace"].as_str().is_none_or(str::is_empty)
                && kind != "PersistentVolume"
                && let Some(meta) = value["metadata"].as_object_mut()
            {
                meta.insert("namespace".into(), namespace.into());
            }
            let at = || format!("{}: {kind}", doc.origin);
            match kind.as_str() {
                "Deployment" => {
                    let d: Deployment = serde_json::from_value(value.clone()).with_context(at)?;
                    deployments.push((d, value));
                }
                "PersistentVolumeClaim" => input
                    .claims
                    .push(serde_json::from_value::<PersistentVolumeClaim>(value).with_context(at)?),
                "PersistentVolume" => input
                    .volumes
                    .push(serde_json::from_value::<PersistentVolume>(value).with_context(at)?),
                "Service" => input
                    .services
                    .push(serde_json::from_value::<Service>(value).with_context(at)?),
                "HorizontalPodAutoscaler" => input.autoscalers.push(value),
                other => others.push(format!(
                    "{other} {}",
                    value["metadata"]["name"].as_str().unwrap_or("?")
                )),
            }
        }
    }
    let candidates: Vec<usize> = deployments
        .iter()
        .enumerate()
        .filter(|(_, (d, _))| name.is_none_or(|n| d.metadata.name.as_deref() == Some(n)))
        .map(|(i, _)| i)
        .collect();
    let names = || {
        deployments
            .iter()
            .filter_map(|(d, _)| d.metadata.name.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let index = match (candidates.as_slice(), name) {
        ([i], _) => *i,
        ([], Some(n)) if !deployments.is_empty() => {
            bail!("no Deployment named {n} in the input (it holds {})", names())
        }
        ([], _) => bail!(
            "the input holds no Deployment{}: volguard convert converts a Deployment into a StatefulSet",
            if others.is_empty() {
                String::new()
            } else {
                format!(" (it holds {})", others.join(", "))
            }
        ),
        (_, _) => bail!(
            "the input holds several Deployments ({}): choose one with --name",
            names()
        ),
    };
    let (deployment, before) = deployments.swap_remove(index);
    input.deployment = deployment;
    Ok((input, before))
}

fn check_size(path: &Path) -> anyhow::Result<()> {
    if path.as_os_str() == "-" {
        return Ok(());
    }
    let len = std::fs::metadata(path)
        .with_context(|| format!("reading {}", path.display()))?
        .len();
    if len > MAX_FILE_BYTES {
        bail!(
            "{}: {len} bytes, over the {MAX_FILE_BYTES}-byte limit of one input file",
            path.display()
        );
    }
    Ok(())
}
