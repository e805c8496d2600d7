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
//! dry-run creates of one allowed Deployment, alternating between a selected namespace and an unselected
//! one so drift hits both alike, and prints p50/p90/p99 of each and what the webhook adds.
//! `VOLGUARD_LATENCY_REQUESTS` (1,500) per namespace, after 100 each of warm-up. The webhook
//! configuration is deleted at the end, also when it fails; its two namespaces (named for the run's start time) are left
//! behind, empty: dry-run creates store nothing, and a cluster without a controller manager, like the e2e
//! one, never finishes deleting a namespace.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, ExitCode, Stdio};
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

const CONFIG: &str = "volguard-latency-bench";
const WARMUP: usize = 100;

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The server, killed when dropped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

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

fn percentile(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

async fn run(client: kube::Client, requests: usize) -> anyhow::Result<()> {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (selected, unselected) = (
        format!("vg-latency-on-{stamp}"),
        format!("vg-latency-off-{stamp}"),
    );
    let (selected, unselected) = (selected.as_str(), unselected.as_str());
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let metrics = free_port()?;
    let certs = dir.path().join("certs");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_volguard"));
    env::hermetic(&mut cmd);
    let server = Served(
        cmd.args(["serve", "--no-cluster", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics}")])
            .arg("--dev-cert-dir")
            .arg(&certs)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting volguard serve")?,
    );
    let ca = certs.join("ca.crt");
    let started = Instant::now();
    while !ca.exists() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("volguard wrote no certificate within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    for (name, on) in [(selected, true), (unselected, false)] {
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.into()),
                labels: Some(BTreeMap::from([(
                    "volguard-latency".to_owned(),
                    if on { "on" } else { "off" }.to_owned(),
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
        webhooks: Some(vec![ValidatingWebhook {
            name: "latency.volguard.io".into(),
            admission_review_versions: vec!["v1".into()],
            client_config: WebhookClientConfig {
                url: Some(format!("https://127.0.0.1:{port}/validate")),
                ca_bundle: Some(ByteString(std::fs::read(&ca)?)),
                service: None,
            },
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("volguard-latency".into(), "on".into())])),
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
        }]),
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
    let on: Api<Deployment> = Api::namespaced(client.clone(), selected);
    let off: Api<Deployment> = Api::namespaced(client.clone(), unselected);
    // The API server picks the configuration up within a few seconds: wait until a Deployment volguard
    // refuses (three replicas on one inline EBS disk) is refused, so every measured request is reviewed.
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
    let mut histograms = [Histogram::<u64>::new(3)?, Histogram::<u64>::new(3)?];
    for i in 0..WARMUP + requests {
        // Alternate which side goes first, so neither always follows the other.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for side in order {
            let api = if side == 0 { &on } else { &off };
            let sent = Instant::now();
            api.create(&dry_run, &allowed)
                .await
                .with_context(|| format!("dry-run create in {}", [selected, unselected][side]))?;
            if i >= WARMUP {
                histograms[side].record(sent.elapsed().as_micros() as u64)?;
            }
        }
    }
    let handler = handler_times(metrics).await;
    drop(server);
    println!();
    println!(
        "dry-run creates of one allowed Deployment through kube-apiserver, {requests} per namespace after {WARMUP} \
         warm-up, alternating; volguard on 127.0.0.1 (--no-cluster)"
    );
    println!();
    println!("| namespace | p50 ms | p90 ms | p99 ms |");
    println!("|---|---:|---:|---:|");
    for (name, h) in [
        ("webhook registered", &histograms[0]),
        ("no webhook", &histograms[1]),
    ] {
        println!(
            "| {name} | {:.3} | {:.3} | {:.3} |",
            percentile(h, 0.5),
            percentile(h, 0.9),
            percentile(h, 0.99)
        );
    }
    let added = |q: f64| percentile(&histograms[0], q) - percentile(&histograms[1], q);
    println!(
        "| added by the webhook | {:.3} | {:.3} | {:.3} |",
        added(0.5),
        added(0.9),
        added(0.99)
    );
    match handler {
        Ok(h) => println!(
            "\nvolguard's own handler time (its admission_review_duration_seconds, every review of the run): {h}"
        ),
        Err(e) => println!("\nvolguard's handler times could not be read: {e:#}"),
    }
    println!();
    println!(
        "target: added p99 < 1 ms: {} ({:.3} ms)",
        if added(0.99) < 1.0 { "met" } else { "MISSED" },
        added(0.99)
    );
    Ok(())
}

/// How many of the reviews volguard answered took longer than 0.1, 0.2, 0.4 and 0.8 ms in its handler
/// (from decoding to the answer; not TLS or HTTP), read from its metrics: what of the added tail is
/// volguard's own.
async fn handler_times(port: u16) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
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
        "{total} reviews; over 0.1 ms: {}, over 0.2 ms: {}, over 0.4 ms: {}, over 0.8 ms: {}",
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
        Err(_) => 1_500,
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
