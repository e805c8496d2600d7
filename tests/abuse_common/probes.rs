//! The probes of issue 12, each against a freshly started server so that its peak memory is its own.
//! Every probe is bounded: a fixed number of requests or connections, each with a timeout.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt as _;
use tokio::net::TcpStream;

use super::bodies;
use super::client::{Answer, get, https, plain, plain_within, post};
use super::server::{Launch, Served};
use super::siege::{Siege, siege};

/// The binary under test and the flags it is started with.
#[derive(Clone, Debug)]
pub struct Target {
    /// The `volguard` executable.
    pub bin: PathBuf,
    /// Flags after `serve`.
    pub args: Vec<String>,
}

/// A probe's result: the siege, and what else it measured, in words.
#[derive(Debug)]
pub struct Probed {
    /// What the attack did.
    pub siege: Siege,
    /// What else was measured.
    pub detail: String,
}

/// The well-formed review the honest caller sends: the captured Deployment, denied for its shared
/// ReadWriteOnce claim.
pub fn honest_review() -> Vec<u8> {
    bodies::bytes(bodies::captured(), "honest")
}

async fn start(target: &Target, dir: &Path, claims: usize, nofile: Option<u32>) -> Served {
    let mut args = vec![
        "--objects".to_owned(),
        bodies::claims_file(dir, claims).display().to_string(),
    ];
    args.extend(target.args.iter().cloned());
    Served::start(
        &target.bin,
        &Launch {
            args,
            kubeconfig: None,
            nofile,
        },
    )
    .await
}

/// Sends `body` to `path` once.
async fn one(served: &mut Served, path: &str, body: Vec<u8>) -> Siege {
    let (client, url) = (https(&served.ca_pem), served.url(path));
    siege(served, &honest_review(), || async move {
        vec![post(&client, &url, body).await]
    })
    .await
}

fn size(bytes: usize) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

fn answer_detail(siege: &Siege) -> String {
    let first = siege.answers.first().map_or_else(String::new, Answer::summary);
    format!("body answered {}: {first}", siege.statuses())
}

/// One Deployment with `n` claim volumes, to /validate.
pub async fn claim_volumes(target: &Target, n: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, None).await;
    let body = bodies::bytes(bodies::with_claim_volumes(n), "claim-volumes");
    let sent = body.len();
    let siege = one(&mut served, "/validate", body).await;
    let detail = format!("{} sent; {}", size(sent), answer_detail(&siege));
    Probed { siege, detail }
}

/// One Deployment with `n` containers, to `path`.
pub async fn containers(target: &Target, path: &str, n: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, None).await;
    let body = bodies::bytes(bodies::with_containers(n), "containers");
    let sent = body.len();
    let siege = one(&mut served, path, body).await;
    let detail = format!("{} sent; {}", size(sent), answer_detail(&siege));
    Probed { siege, detail }
}

/// One Deployment with `n` emptyDir volumes and as many mounts: CPU in checks that match names.
pub async fn scratch_volumes(target: &Target, n: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, None).await;
    let body = bodies::bytes(bodies::with_scratch_volumes(n), "scratch-volumes");
    let sent = body.len();
    let siege = one(&mut served, "/validate", body).await;
    let detail = format!(
        "{} sent; {:.2} CPU-s; {}",
        size(sent),
        siege.cpu_seconds,
        answer_detail(&siege)
    );
    Probed { siege, detail }
}

/// `connections` connections at once, each POSTing a well-formed review padded to `bytes`.
pub async fn big_bodies(target: &Target, connections: usize, bytes: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, None).await;
    let body = Bytes::from(bodies::padded(bytes));
    let (ca, url) = (served.ca_pem.clone(), served.url("/validate"));
    let siege = siege(&mut served, &honest_review(), || async move {
        let posts = (0..connections).map(|_| {
            // A client each: a connection each.
            let (client, url, body) = (https(&ca), url.clone(), body.clone());
            async move { post(&client, &url, body).await }
        });
        futures_util::future::join_all(posts).await
    })
    .await;
    let refused = siege
        .answers
        .iter()
        .find(|a| a.status() == 503)
        .map_or_else(String::new, |a| format!("; a refusal: {}", a.summary()));
    let unanswered = siege
        .answers
        .iter()
        .find(|a| a.status() == 0)
        .map_or_else(String::new, |a| {
            format!("; a connection without an answer: {}", a.summary())
        });
    let detail = format!(
        "{connections} × {} sent; answered {}{refused}{unanswered}",
        size(bytes),
        siege.statuses()
    );
    Probed { siege, detail }
}

/// `n` reviews of kinds the caller made up (8 at a time); then the metrics page is read.
pub async fn made_up_kinds(target: &Target, n: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, None).await;
    let metrics = served.metrics_url();
    let page_before = get(&plain(), &metrics).await.len();
    let (ca, url) = (served.ca_pem.clone(), served.url("/validate"));
    let siege = siege(&mut served, &honest_review(), || async move {
        let client = https(&ca);
        let mut answers = Vec::with_capacity(n);
        for batch in (0..n).collect::<Vec<_>>().chunks(8) {
            let posts = batch.iter().map(|i| {
                let body = bodies::bytes(bodies::with_kind(&format!("Made{i}Up")), &format!("kind-{i}"));
                post(&client, &url, body)
            });
            answers.extend(futures_util::future::join_all(posts).await);
        }
        answers
    })
    .await;
    let page = get(&plain(), &metrics).await;
    let text = match &page {
        Answer::Http { body, .. } => body.clone(),
        Answer::Failed(_) => String::new(),
    };
    let series = text
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("kind=\""))
        .count();
    let made_up = text.lines().filter(|l| l.contains("Made")).count();
    let detail = format!(
        "{n} reviews answered {}; metrics page {} → {} bytes, {series} series with a kind label, {made_up} naming a made-up kind",
        siege.statuses(),
        page_before,
        page.len()
    );
    Probed { siege, detail }
}

/// `connections` TCP connections to the metrics port that never send a byte, held while the honest
/// caller checks the webhook, under a file descriptor limit of `nofile`.
pub async fn idle_metrics(target: &Target, connections: usize, nofile: u32, hold: Duration) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, Some(nofile)).await;
    let metrics_addr = served.metrics_addr;
    let metrics_url = served.metrics_url();
    let scrape = Arc::new(tokio::sync::Mutex::new(None));
    let scraped = Arc::clone(&scrape);
    let siege = siege(&mut served, &honest_review(), || async move {
        let mut held = Vec::with_capacity(connections);
        let mut answers = Vec::with_capacity(connections);
        for _ in 0..connections {
            match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(metrics_addr)).await {
                Ok(Ok(stream)) => held.push(stream),
                Ok(Err(e)) => answers.push(Answer::Failed(format!("connect: {e}"))),
                Err(_) => answers.push(Answer::Failed("connect timed out".into())),
            }
        }
        tokio::time::sleep(hold).await;
        // A scraper arriving while they are held.
        let client = plain_within(Duration::from_secs(2));
        *scraped.lock().await = Some(get(&client, &metrics_url).await);
        for mut stream in held {
            let mut byte = [0u8; 1];
            let state = match tokio::time::timeout(Duration::from_millis(20), stream.read(&mut byte)).await {
                Ok(Ok(0)) | Ok(Err(_)) => "closed by the server",
                Ok(Ok(_)) => "answered",
                Err(_) => "held open",
            };
            answers.push(Answer::Failed(state.into()));
        }
        answers
    })
    .await;
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for a in &siege.answers {
        if let Answer::Failed(s) = a {
            *states.entry(s.clone()).or_default() += 1;
        }
    }
    let states: Vec<String> = states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    let scrape = scrape
        .lock()
        .await
        .take()
        .map_or_else(String::new, |a| format!("{}", a.status()));
    let detail = format!(
        "ulimit -n {nofile}; after {hold:?}: {}; a scraper meanwhile got {}; server fds {}",
        states.join(", "),
        if scrape == "0" {
            "no answer".to_owned()
        } else {
            scrape
        },
        served.open_fds()
    );
    Probed { siege, detail }
}

/// A Deployment whose `n` volumes all mount the ReadWriteOnce claim `web-data`, each named as long
/// as a volume name may be: the answer's size.
pub async fn crafted_denial(target: &Target, n: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), 0, None).await;
    let body = bodies::bytes(bodies::many_mounts_of_one_claim(n), "crafted");
    let sent = body.len();
    let siege = one(&mut served, "/validate", body).await;
    let detail = denial_detail(sent, &siege);
    Probed { siege, detail }
}

/// A Deployment mounting `n` distinct ReadWriteOnce claims (within every object limit): `n` findings.
pub async fn many_findings(target: &Target, n: usize) -> Probed {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut served = start(target, dir.path(), n, None).await;
    let body = bodies::bytes(bodies::many_claims(n), "many-findings");
    let sent = body.len();
    let siege = one(&mut served, "/validate", body).await;
    let detail = denial_detail(sent, &siege);
    Probed { siege, detail }
}

fn denial_detail(sent: usize, siege: &Siege) -> String {
    let answer = siege.answers.first();
    let message = answer.and_then(Answer::message).map_or(0, |m| m.len());
    let warnings = answer
        .and_then(Answer::review)
        .and_then(|r| {
            r.pointer("/response/warnings")
                .and_then(|w| w.as_array())
                .map(Vec::len)
        })
        .unwrap_or(0);
    format!(
        "{} sent; answer {} bytes, message {} bytes, {warnings} warnings, allowed {:?}",
        size(sent),
        answer.map_or(0, Answer::len),
        message,
        answer.and_then(Answer::allowed)
    )
}

/// `reviews` reviews (16 at a time) of a Deployment mounting a claim that does not exist, against a
/// server watching the cluster of `kubeconfig`; the GETs of claims the API server counted meanwhile.
pub async fn missing_claim(target: &Target, kubeconfig: &Path, reviews: usize) -> Probed {
    let mut served = Served::start(
        &target.bin,
        &Launch {
            args: target.args.clone(),
            kubeconfig: Some(kubeconfig.to_owned()),
            nofile: None,
        },
    )
    .await;
    // The honest review's claim is missing too: the first answer (before the attack) warms the cache
    // the way any first review would.
    let honest = bodies::bytes(bodies::missing_claim("abuse-probe", "never-there"), "honest");
    let gets_before = claim_gets(kubeconfig);
    let (ca, url) = (served.ca_pem.clone(), served.url("/validate"));
    let siege = siege(&mut served, &honest, || async move {
        let client = https(&ca);
        let mut answers = Vec::with_capacity(reviews);
        for batch in (0..reviews).collect::<Vec<_>>().chunks(16) {
            let posts = batch.iter().map(|i| {
                let body = bodies::bytes(
                    bodies::missing_claim("abuse-probe", "never-there"),
                    &format!("missing-{i}"),
                );
                post(&client, &url, body)
            });
            answers.extend(futures_util::future::join_all(posts).await);
        }
        answers
    })
    .await;
    let gets = claim_gets(kubeconfig) - gets_before;
    let detail = format!(
        "{reviews} reviews answered {}; {gets} GETs of claims reached the API server",
        siege.statuses()
    );
    Probed { siege, detail }
}

/// GETs of persistentvolumeclaims the API server has served, from its own metrics.
pub fn claim_gets(kubeconfig: &Path) -> u64 {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(["get", "--raw", "/metrics"])
        .output()
        .expect("kubectl runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            l.starts_with("apiserver_request_total{")
                && l.contains("resource=\"persistentvolumeclaims\"")
                && l.contains("verb=\"GET\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}
