//! What the webhook adds to a request through the real kube-apiserver (issue 13):
//!
//! ```text
//! ../shared/e2e/cluster.sh up && export KUBECONFIG=~/.cache/volguard-e2e/kubeconfig
//! cargo bench --bench apiserver
//! ```
//!
//! Starts the release `volguard serve --no-cluster` on 127.0.0.1 with a generated certificate and
//! registers it as a ValidatingWebhookConfiguration for Deployments in namespaces labelled
//! `volguard-latency=on`, exactly as in production (`clientConfig.url` and `caBundle`). Then it sends
//! dry-run creates of one allowed Deployment, rotating between a selected namespace and an unselected
//! one so drift hits both alike, and prints p50/p90/p99 of each and what the webhook adds.
//! `VOLGUARD_LATENCY_REQUESTS` (5,000) per namespace, after 100 each of warm-up: a p99 of 1,500 requests
//! is their 15th slowest, and moved by 1.5 ms from one run to the next for the same server. The webhook
//! configuration is deleted at the end, also when it fails; its namespaces (named for the run's start
//! time) are left behind, empty: dry-run creates store nothing, and a cluster without a controller manager, like the e2e
//! one, never finishes deleting a namespace.
//!
//! Built with `--features bench-baseline`, it also starts the bench's baseline server
//! (`--baseline-allow-all`: the same TLS, HTTP stack, router layers and metrics, answering from the uid
//! alone) and registers it, in the same configuration, for a third namespace: the same run then shows
//! what any webhook adds on this machine and what volguard adds over that.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hdrhistogram::Histogram;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    RuleWithOperations, ValidatingWebhook, ValidatingWebhookConfiguration, WebhookClientConfig,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;

#[path = "../tests/support/env.rs"]
mod env;
// The load bench's server process and the HTTPS client it waits for readiness with; this bench reads
// neither the server's CPU nor its memory, and sends its reviews through the API server.
#[allow(dead_code)]
#[path = "load/client.rs"]
mod client;
#[allow(dead_code)]
#[path = "load/server.rs"]
mod server;

use server::{Mode, ServerProcess};

const CONFIG: &str = "volguard-latency-bench";
const WARMUP: usize = 100;

fn deployment(name: &str, replicas: i32, disk: bool) -> anyhow::Result<Deployment> {
    let volumes = if disk {
        json!([{"name": "data", "awsElasticBlockStore": {"volumeID": "vol-0123456789abcdef0"}}])
    } else {
        json!([])
    };
    Ok(serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [{"name": "web", "image": "nginx:1.27",
                                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}],
                    "volumes": volumes
                }
            }
        }
    }))?)
}

/// Starts `volguard serve --no-cluster` in `mode` (the load bench's server), its certificates under
/// `dir`, waits until it answers `/readyz`, and reads its CA, which the webhook configuration carries.
async fn start(dir: &Path, mode: Mode) -> anyhow::Result<(ServerProcess, Vec<u8>)> {
    let mut server = ServerProcess::start(Path::new(env!("CARGO_BIN_EXE_volguard")), mode, dir, None);
    server.wait_ready().await;
    let ca = std::fs::read(&server.ca).context("reading the server's CA")?;
    Ok((server, ca))
}

/// A webhook calling the server at `addr` (trusting `ca`) for Deployment creates in namespaces labelled
/// `volguard-latency=<label>`.
fn webhook(name: &str, addr: SocketAddr, ca: &[u8], label: &str) -> ValidatingWebhook {
    ValidatingWebhook {
        name: name.into(),
        admission_review_versions: vec!["v1".into()],
        client_config: WebhookClientConfig {
            url: Some(format!("https://{addr}/validate")),
            ca_bundle: Some(ByteString(ca.to_vec())),
            service: None,
        },
        failure_policy: Some("Fail".into()),
        match_policy: Some("Equivalent".into()),
        namespace_selector: Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("volguard-latency".into(), label.into())])),
            ..LabelSelector::default()
        }),
        rules: Some(vec![RuleWithOperations {
            api_groups: Some(vec!["apps".into()]),
            api_versions: Some(vec!["v1".into()]),
            operations: Some(vec!["CREATE".into()]),
            resources: Some(vec!["deployments".into()]),
            scope: Some("Namespaced".into()),
        }]),
        side_effects: "None".into(),
        timeout_seconds: Some(10),
        ..ValidatingWebhook::default()
    }
}

fn percentile(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn run(client: kube::Client, requests: usize) -> anyhow::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let dir = tempfile::tempdir()?;
    let volguard = start(dir.path(), Mode::Volguard).await?;
    let baseline = if cfg!(feature = "bench-baseline") {
        Some(start(dir.path(), Mode::Baseline).await?)
    } else {
        None
    };
    // (namespace, its `volguard-latency` label, the row it is reported as)
    let mut sides = vec![
        (format!("vg-latency-on-{stamp}"), "on", "volguard"),
        (format!("vg-latency-off-{stamp}"), "off", "no webhook"),
    ];
    if baseline.is_some() {
        sides.push((
            format!("vg-latency-base-{stamp}"),
            "baseline",
            "allow-all baseline",
        ));
    }

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (name, label, _) in &sides {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    "volguard-latency".to_owned(),
                    (*label).to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e).context("creating a namespace"),
        }
    }
    let config = ValidatingWebhookConfiguration {
        metadata: ObjectMeta {
            name: Some(CONFIG.into()),
            ..ObjectMeta::default()
        },
        webhooks: Some(
            std::iter::once(webhook("latency.volguard.io", volguard.0.addr, &volguard.1, "on"))
                .chain(
                    baseline
                        .as_ref()
                        .map(|(b, ca)| webhook("baseline.latency.volguard.io", b.addr, ca, "baseline")),
                )
                .collect(),
        ),
    };
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = configs.delete(CONFIG, &DeleteParams::default()).await;
    configs
        .create(&PostParams::default(), &config)
        .await
        .context("registering the webhook")?;

    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let apis: Vec<Api<Deployment>> = sides
        .iter()
        .map(|(ns, _, _)| Api::namespaced(client.clone(), ns))
        .collect();
    let on = &apis[0];
    // The API server picks the configuration up within a few seconds: wait until a Deployment volguard
    // refuses (three replicas on one inline EBS disk) is refused, so every measured request is reviewed
    // (the baseline's webhook is in the same configuration, so it is picked up with volguard's).
    let violation = deployment("shared-disk", 3, true)?;
    let started = Instant::now();
    loop {
        match on.create(&dry_run, &violation).await {
            Err(kube::Error::Api(e)) if e.message.contains("shared-rwo-claim") => break,
            _ if started.elapsed() > Duration::from_secs(30) => {
                bail!("the API server did not call volguard within 30 s")
            }
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
    let allowed = deployment("web", 1, false)?;
    let mut histograms = sides
        .iter()
        .map(|_| Histogram::<u64>::new(3))
        .collect::<Result<Vec<_>, _>>()?;
    for i in 0..WARMUP + requests {
        // Rotate which side goes first, so none always follows another.
        for k in 0..sides.len() {
            let side = (i + k) % sides.len();
            let sent = Instant::now();
            apis[side]
                .create(&dry_run, &allowed)
                .await
                .with_context(|| format!("dry-run create in {}", sides[side].0))?;
            if i >= WARMUP {
                histograms[side].record(sent.elapsed().as_micros() as u64)?;
            }
        }
    }
    let mut handlers = vec![("volguard", handler_times(volguard.0.metrics_addr).await)];
    if let Some((b, _)) = &baseline {
        handlers.push(("allow-all baseline", handler_times(b.metrics_addr).await));
    }
    drop(volguard);
    drop(baseline);
    println!();
    println!(
        "dry-run creates of one allowed Deployment through kube-apiserver, {requests} per namespace after {WARMUP} \
         warm-up, in rotation; the webhooks on 127.0.0.1 (--no-cluster)"
    );
    println!();
    println!("| namespace | p50 ms | p90 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, at: &dyn Fn(f64) -> f64| {
        println!("| {name} | {:.3} | {:.3} | {:.3} |", at(0.5), at(0.9), at(0.99));
    };
    for ((_, _, name), h) in sides.iter().zip(&histograms) {
        row(name, &|q| percentile(h, q));
    }
    let added = |side: usize, over: usize, q: f64| {
        percentile(&histograms[side], q) - percentile(&histograms[over], q)
    };
    row("added by volguard", &|q| added(0, 1, q));
    if histograms.len() > 2 {
        row("added by the allow-all baseline", &|q| added(2, 1, q));
        row("volguard over the baseline", &|q| added(0, 2, q));
    }
    println!("\nhandler time (the server's admission_review_duration_seconds, every review of the run):");
    for (name, handler) in handlers {
        match handler {
            Ok(h) => println!("- {name}: {h}"),
            Err(e) => println!("- {name}: could not be read: {e:#}"),
        }
    }
    println!();
    println!(
        "target: added p99 < 1 ms: {} ({:.3} ms)",
        if added(0, 1, 0.99) < 1.0 { "met" } else { "MISSED" },
        added(0, 1, 0.99)
    );
    Ok(())
}

/// How many of the reviews a server answered took longer than 0.05, 0.1, 0.2, 0.4 and 0.8 ms in its handler
/// (from decoding to the answer; not TLS or HTTP), read from its metrics: what of the added tail is
/// volguard's own.
async fn handler_times(addr: SocketAddr) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    conn.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await?;
    let mut page = String::new();
    conn.read_to_string(&mut page).await?;
    // `..._bucket{le="0.0001",path="/validate"} N`: cumulative counts.
    let mut buckets: Vec<(f64, u64)> = page
        .lines()
        .filter(|l| l.contains("admission_review_duration_seconds_bucket") && l.contains("path=\"validate\""))
        .filter_map(|l| {
            let le = l.split("le=\"").nth(1)?.split('"').next()?;
            let n = l.rsplit(' ').next()?.parse().ok()?;
            Some((
                if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                },
                n,
            ))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets
        .last()
        .map(|b| b.1)
        .context("no histogram for path=\"validate\" on the metrics page")?;
    let over = |seconds: f64| {
        let under = buckets
            .iter()
            .filter(|(le, _)| *le <= seconds * 1.0001)
            .map(|b| b.1)
            .max()
            .unwrap_or(0);
        total - under
    };
    Ok(format!(
        "{total} reviews; over 0.05 ms: {}, over 0.1 ms: {}, over 0.2 ms: {}, over 0.4 ms: {}, over 0.8 ms: {}",
        over(0.00005),
        over(0.0001),
        over(0.0002),
        over(0.0004),
        over(0.0008)
    ))
}

async fn cleanup(client: kube::Client) {
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client);
    let _ = configs.delete(CONFIG, &DeleteParams::default()).await;
}

fn main() -> ExitCode {
    let requests = match std::env::var("VOLGUARD_LATENCY_REQUESTS") {
        Ok(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => {
                eprintln!("VOLGUARD_LATENCY_REQUESTS={v:?}: expected a whole number from 1 to 100000");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => 5_000,
    };
    if std::env::var_os("KUBECONFIG").is_none() {
        eprintln!(
            "this bench needs a kube-apiserver: ../shared/e2e/cluster.sh up, then export the KUBECONFIG it prints"
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("a tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let client = match kube::Client::try_default().await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("connecting to the API server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let result = run(client.clone(), requests).await;
        cleanup(client).await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        }
    })
}
