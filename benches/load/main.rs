//! Load benchmark of `volguard serve`, with its baseline measured in the same run.
//!
//! `cargo bench --bench load --features bench-baseline` builds the release binary (cargo builds a
//! package's binaries for its benches), then, for each mode, starts `volguard serve --no-cluster --objects <claim web-data>` on
//! 127.0.0.1 with a generated certificate and drives `POST /validate` over HTTPS/1.1 keep-alive with the
//! captured 3-replica Deployment review (a new uid each time):
//!
//! - `volguard`: the server as shipped; every answer must be a denial (shared ReadWriteOnce claim);
//! - `baseline`: the same server with `--baseline-allow-all`: TLS, hyper-util, the router's layers, the
//!   body limits, the span, the log line and the metrics, but no decoding and no policy; every
//!   answer must be `allowed: true`.
//!
//! Each gets a closed-loop phase (throughput, p50/p99, and the CPU server and client spent per review in
//! the measured window) and an open-loop phase at a fixed rate (p50/p99 from the scheduled send time),
//! then its peak RSS is read. Client and server share the machine.
//!
//! `-- --cpu [--pin]` runs the CPU-per-review suite instead (cpu.rs): six kinds of review and a 1 MB
//! object, each against volguard and the baseline, three interleaved rounds.
//!
//! Settings (environment): `VOLGUARD_LOAD_CONNECTIONS` (32), `VOLGUARD_LOAD_WARMUP` (2 s),
//! `VOLGUARD_LOAD_SECONDS` (10 s per phase), `VOLGUARD_LOAD_RATE` (1000 reviews/s). The process exits 1
//! if any answer was missing or wrong.

#[path = "../../tests/support/env.rs"]
mod env;

mod client;
mod cpu;
mod phases;
mod server;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use client::{ReviewTemplate, Target};
use phases::{Phase, closed_loop, open_loop};
use server::{Mode, ServerProcess};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const REVIEW: &str = "tests/fixtures/reviews/create-deployment.json";
const CLAIM_REVIEW: &str = "tests/fixtures/reviews/create-pvc.json";

/// Targets from the issue.
const MIN_RATIO: f64 = 0.90;
const MAX_P99_MS: f64 = 2.0;
const MAX_RSS_MIB: f64 = 50.0;

struct Settings {
    connections: usize,
    warmup: Duration,
    window: Duration,
    rate: u64,
}

fn setting(name: &str, default: u64, max: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => match v.parse::<u64>() {
            Ok(n) if (1..=max).contains(&n) => n,
            _ => panic!("{name}={v:?}: expected a whole number from 1 to {max}"),
        },
        Err(_) => default,
    }
}

impl Settings {
    fn from_env() -> Self {
        Self {
            connections: setting("VOLGUARD_LOAD_CONNECTIONS", 32, 1024) as usize,
            warmup: Duration::from_secs(setting("VOLGUARD_LOAD_WARMUP", 2, 60)),
            window: Duration::from_secs(setting("VOLGUARD_LOAD_SECONDS", 10, 300)),
            rate: setting("VOLGUARD_LOAD_RATE", 1000, 100_000),
        }
    }
}

struct Measured {
    mode: Mode,
    closed: Phase,
    /// CPU seconds the server and this client (the bench process) used in the closed loop's window.
    closed_cpu: Option<(f64, f64)>,
    open: Phase,
    peak_rss_kib: Option<u64>,
}

/// The claim the review mounts (`shop/web-data`, ReadWriteOnce), as a manifest for `--objects`.
fn write_claim(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(Path::new(ROOT).join(CLAIM_REVIEW)).expect("the claim review");
    let review: serde_json::Value = serde_json::from_str(&text).expect("the claim review is JSON");
    let path = dir.join("claims.json");
    std::fs::write(&path, review["request"]["object"].to_string()).expect("writing the claim manifest");
    path
}

/// One review, checked in full: the volguard answer must be the shared-rwo-claim denial (so the claim
/// from `--objects` was found), the baseline's a bare allow.
async fn check_one(target: &Target, mode: Mode) {
    let mut conn = target.connect().await.expect("a first connection");
    let uid = client::uid(0, 0);
    let (status, body) = target
        .exchange(&mut conn, "POST", "/validate", target.review.body(&uid))
        .await
        .expect("a first answer");
    target
        .check(&uid, status, &body)
        .expect("the first answer is right");
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let message = answer["response"]["status"]["message"].as_str().unwrap_or("");
    match mode {
        Mode::Volguard => assert!(message.contains("[shared-rwo-claim]"), "{answer}"),
        Mode::Baseline => assert!(answer["response"]["status"].is_null(), "{answer}"),
    }
}

async fn run_mode(mode: Mode, settings: &Settings, dir: &Path, claims: &Path) -> Measured {
    let bin = Path::new(env!("CARGO_BIN_EXE_volguard"));
    let mut server = ServerProcess::start(bin, mode, dir, Some(claims));
    server.wait_ready().await;
    let review = ReviewTemplate::from_file(&Path::new(ROOT).join(REVIEW));
    let target = Arc::new(Target::new(server.addr, &server.ca, review, mode.allows()));
    check_one(&target, mode).await;
    eprintln!(
        "{}: closed loop, {} connections, {:?} warm-up + {:?}",
        mode.name(),
        settings.connections,
        settings.warmup,
        settings.window
    );
    // The CPU both sides use in the measured window: with client and server on the same CPUs, the
    // throughput ratio is the ratio of what a review costs them together.
    let (warmup, window) = (settings.warmup, settings.window);
    let server_cpu = {
        let pid = server.pid().to_string();
        move || server::cpu_seconds(&pid)
    };
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let before = (server_cpu(), server::cpu_seconds("self"));
        tokio::time::sleep(window).await;
        let after = (server_cpu(), server::cpu_seconds("self"));
        Some((after.0? - before.0?, after.1? - before.1?))
    });
    let closed = closed_loop(
        Arc::clone(&target),
        settings.connections,
        settings.warmup,
        settings.window,
    )
    .await;
    let closed_cpu = sampler.await.ok().flatten();
    server.assert_running();
    eprintln!(
        "{}: open loop, {}/s for {:?}",
        mode.name(),
        settings.rate,
        settings.window
    );
    let open = open_loop(
        Arc::clone(&target),
        settings.connections,
        settings.rate,
        settings.window,
    )
    .await;
    server.assert_running();
    let peak_rss_kib = server.peak_rss_kib();
    drop(server);
    Measured {
        mode,
        closed,
        closed_cpu,
        open,
        peak_rss_kib,
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn report(settings: &Settings, results: &[Measured], body_len: usize) -> u64 {
    println!();
    println!(
        "POST /validate, {body_len}-byte Deployment review, HTTPS/1.1 keep-alive on 127.0.0.1; {} CPUs shared \
         by client and server",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "closed loop: {} connections, {:?} after {:?} warm-up (server, client: CPU per review); open loop: \
         {}/s for {:?}, latency from the scheduled send",
        settings.connections, settings.window, settings.warmup, settings.rate, settings.window
    );
    println!();
    println!(
        "{:<9} | {:>9} {:>8} {:>8} {:>9} {:>9} | {:>8} {:>8} {:>8} | {:>9} | {:>6}",
        "mode",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server",
        "client",
        "rate/s",
        "p50 ms",
        "p99 ms",
        "peak RSS",
        "errors"
    );
    println!("{:-<9}-+-{:-<47}-+-{:-<26}-+-{:-<9}-+-{:-<6}", "", "", "", "", "");
    let mut errors = 0;
    for r in results {
        let rss = r
            .peak_rss_kib
            .map_or("?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0));
        let e = r.closed.errors + r.open.errors;
        errors += e;
        // CPU microseconds per review answered in the window.
        let per_review = |seconds: f64| format!("{:.1} µs", seconds * 1e6 / r.closed.completed.max(1) as f64);
        let (server_cpu, client_cpu) = r
            .closed_cpu
            .map_or(("?".into(), "?".into()), |(s, c)| (per_review(s), per_review(c)));
        println!(
            "{:<9} | {:>9.0} {:>8.3} {:>8.3} {:>9} {:>9} | {:>8.0} {:>8.3} {:>8.3} | {:>9} | {:>6}",
            r.mode.name(),
            r.closed.throughput(),
            r.closed.ms(0.5),
            r.closed.ms(0.99),
            server_cpu,
            client_cpu,
            r.open.throughput(),
            r.open.ms(0.5),
            r.open.ms(0.99),
            rss,
            e
        );
        for error in [&r.closed.first_error, &r.open.first_error].into_iter().flatten() {
            println!("  {} error: {error}", r.mode.name());
        }
    }
    println!();
    if let [volguard, baseline] = results {
        let ratio = volguard.closed.throughput() / baseline.closed.throughput().max(f64::EPSILON);
        let p99 = volguard.open.ms(0.99);
        let rss = volguard.peak_rss_kib.map_or(f64::INFINITY, |k| k as f64 / 1024.0);
        println!("throughput volguard/baseline: {ratio:.3}");
        println!(
            "targets: throughput >= {:.0}% of baseline: {}; p99 < {MAX_P99_MS} ms at {}/s: {} ({p99:.3} ms); \
             RSS < {MAX_RSS_MIB} MiB: {} ({rss:.1} MiB)",
            MIN_RATIO * 100.0,
            verdict(ratio >= MIN_RATIO),
            settings.rate,
            verdict(p99 < MAX_P99_MS),
            verdict(rss < MAX_RSS_MIB),
        );
    }
    println!("load average (1, 5, 15 min) at the end: {}", load_average());
    errors
}

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` (and any filter); this bench takes its settings from the environment,
    // and `--cpu [--pin]` for the CPU-per-review suite (cpu.rs).
    let args: Vec<String> = std::env::args().collect();
    let settings = Settings::from_env();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let claims = write_claim(dir.path());
    if args.iter().any(|a| a == "--cpu") {
        let pin = args.iter().any(|a| a == "--pin") && cpu::pin_client();
        // A spinning client is one thread that never parks (cpu.rs); otherwise the usual runtime.
        let runtime = if cpu::spin() {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        }
        .enable_all()
        .build()
        .expect("a tokio runtime");
        eprintln!("load average at the start: {}", load_average());
        cpu::run(&runtime, dir.path(), &claims, pin);
        println!("load average (1, 5, 15 min) at the end: {}", load_average());
        return ExitCode::SUCCESS;
    }
    let body_len = ReviewTemplate::from_file(&Path::new(ROOT).join(REVIEW)).len();
    eprintln!("load average at the start: {}", load_average());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let results: Vec<Measured> = [Mode::Volguard, Mode::Baseline]
        .into_iter()
        .map(|mode| runtime.block_on(run_mode(mode, &settings, dir.path(), &claims)))
        .collect();
    let errors = report(&settings, &results, body_len);
    if errors > 0 {
        eprintln!("{errors} reviews failed or were answered wrongly");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
