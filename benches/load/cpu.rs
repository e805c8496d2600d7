//! The CPU a review costs the server, per path, next to the bare baseline in the same run (issue 13):
//! `cargo bench --bench load --features bench-baseline -- --cpu [--pin]`.
//!
//! For each case, volguard and the baseline (`--baseline-allow-all`: same TLS, connections, router
//! layers, body limits, span, log line and metrics, no decoding) each get a fresh server and a closed
//! loop; the server's CPU time (utime + stime from `/proc/PID/stat`) over the measured window divided by
//! the reviews answered in it is its cost per review. Three rounds, the cases and modes interleaved, so
//! a noisy neighbour hits both sides; the table gives each round and the ratio of the medians. With
//! `--pin` the server runs on CPU 0 (`taskset`) and this client on CPU 1, so neither steals the other's
//! core; without it both share the machine, and `one core` (reviews per server CPU-second) is what one
//! core of volguard serves with the client's CPU left out.
//!
//! `VOLGUARD_CPU_RATE=N` replaces the closed loop with an open loop at N reviews/s, the same for both
//! servers: neither saturates its core, and the client is as idle for one as for the other. In the
//! closed loop the faster baseline keeps the client busy, while volguard leaves it idle between answers,
//! so volguard's sends also pay for waking the client (on loopback, in the sender's system call).
//! `VOLGUARD_CPU_SPIN=1` (a diagnostic, with `--pin`) keeps the client from ever sleeping: one thread
//! whose runtime polls its sockets without blocking, so no server's answer has a sleeping client to
//! wake, and each server is charged its own work only; the client's column is then its whole core.
//!
//! The 1 MB case also reports the server's peak memory over its resident size before the load, against
//! the body's size, on one connection.

use std::ffi::OsStr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{ReviewTemplate, Target};
use crate::phases::{closed_loop, open_loop};
use crate::server::{self, Mode, ServerProcess};
use crate::{ROOT, setting};

const CREATE: &str = "tests/fixtures/reviews/create-deployment.json";
const UPDATE: &str = "tests/fixtures/reviews/update-deployment-image.json";
const REPAIRS: &str = "tests/fixtures/mutate/webhook-policy.yaml";
const ROUNDS: usize = 3;

/// Targets from the issue: volguard's CPU per review over the baseline's.
const MAX_ALLOWED_RATIO: f64 = 1.5;
const MAX_DENIED_RATIO: f64 = 2.0;
/// A patching /mutate over the same review's /validate.
const MAX_PATCH_OVER_VALIDATE: f64 = 1.5;
/// Peak memory over the body's size, for the 1 MB object.
const MAX_MEMORY_OVER_SIZE: f64 = 10.0;

/// One kind of review.
struct Case {
    name: &'static str,
    path: &'static str,
    review: Value,
    /// `--policy` for the server (None: the built-in policy).
    policy: Option<&'static str>,
    /// What volguard answers (the baseline allows everything).
    allowed: bool,
    /// Whether volguard's answer carries a patch.
    patched: bool,
    connections: Option<usize>,
}

fn read(path: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(ROOT).join(path)).expect("a captured review");
    serde_json::from_str(&text).expect("the review is JSON")
}

/// The Deployment review without its claim: nothing to find, the common case.
fn without_claim(mut review: Value) -> Value {
    let pod = &mut review["request"]["object"]["spec"]["template"]["spec"];
    pod.as_object_mut().expect("a pod spec").remove("volumes");
    for c in pod["containers"].as_array_mut().expect("containers") {
        c.as_object_mut().expect("a container").remove("volumeMounts");
    }
    review
}

/// Adds environment variables to the first container of `object` (and `oldObject`, when there is one)
/// until the review's compact JSON is at least `size` bytes: config-heavy Deployments are this shape.
fn grown(mut review: Value, size: usize) -> Value {
    let mut n = 0;
    while serde_json::to_vec(&review).expect("JSON").len() < size {
        let step = if size > 100_000 { 200 } else { 4 };
        let batch: Vec<Value> = (n..n + step)
            .map(|i| json!({"name": format!("SETTING_{i:05}"), "value": format!("value-{i:05}-{}", "x".repeat(80))}))
            .collect();
        n += step;
        for side in ["/request/object", "/request/oldObject"] {
            let first = format!("{side}/spec/template/spec/containers/0");
            if let Some(container) = review.pointer_mut(&first).and_then(Value::as_object_mut) {
                let env = container.entry("env").or_insert_with(|| json!([]));
                env.as_array_mut().expect("env").extend(batch.iter().cloned());
            }
        }
    }
    review
}

fn cases() -> Vec<Case> {
    let create = read(CREATE);
    let update = read(UPDATE);
    vec![
        Case {
            name: "/validate allowed (Deployment, no claim)",
            path: "/validate",
            review: without_claim(create.clone()),
            policy: None,
            allowed: true,
            patched: false,
            connections: None,
        },
        Case {
            name: "/validate denied (create-deployment.json)",
            path: "/validate",
            review: create.clone(),
            policy: None,
            allowed: false,
            patched: false,
            connections: None,
        },
        Case {
            name: "/mutate, nothing to repair",
            path: "/mutate",
            review: create.clone(),
            policy: None,
            allowed: true,
            patched: false,
            connections: None,
        },
        Case {
            name: "/validate UPDATE with oldObject (~12 KB)",
            path: "/validate",
            review: grown(update.clone(), 12_000),
            policy: None,
            allowed: true,
            patched: false,
            connections: None,
        },
        Case {
            name: "/validate update-deployment-image.json, repairs policy",
            path: "/validate",
            review: update.clone(),
            policy: Some(REPAIRS),
            allowed: true,
            patched: false,
            connections: None,
        },
        Case {
            name: "/mutate with the Recreate patch, same review",
            path: "/mutate",
            review: update,
            policy: Some(REPAIRS),
            allowed: true,
            patched: true,
            connections: None,
        },
        Case {
            name: "/validate 1 MB Deployment (one connection)",
            path: "/validate",
            review: grown(without_claim(create), 1 << 20),
            policy: None,
            allowed: true,
            patched: false,
            connections: Some(1),
        },
    ]
}

/// What one server did in one round.
struct Sample {
    server_us: f64,
    client_us: f64,
    reviews: u64,
    /// Peak resident size over the size before the load, in KiB.
    grown_kib: Option<u64>,
}

/// Pins this process (and the threads it starts from now on) to one CPU.
fn pin_self(cpu: usize) -> bool {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it, and
    // sched_setaffinity reads it for this thread (pid 0), which the runtime's threads inherit.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

async fn sample(case: &Case, mode: Mode, dir: &Path, claims: &Path, pin: bool, window: Duration) -> Sample {
    let bin = Path::new(env!("CARGO_BIN_EXE_volguard"));
    let policy_arg;
    let mut extra: Vec<&OsStr> = Vec::new();
    if let Some(policy) = case.policy {
        policy_arg = Path::new(ROOT).join(policy);
        extra.extend([OsStr::new("--policy"), policy_arg.as_os_str()]);
    }
    let mut server = ServerProcess::start_with(bin, mode, dir, Some(claims), &extra, pin.then_some(0));
    server.wait_ready().await;
    let allowed = mode.allows() || case.allowed;
    let mut target = Target::new(
        server.addr,
        &server.ca,
        ReviewTemplate::from_review(case.review.clone()),
        allowed,
    );
    target.path = case.path;
    let target = Arc::new(target);
    // One review checked in full before the load: the answer volguard is meant to give.
    let mut conn = target.connect().await.expect("a first connection");
    let uid = crate::client::uid(0, 0);
    let (status, body) = target
        .exchange(&mut conn, "POST", case.path, target.review.body(&uid))
        .await
        .expect("a first answer");
    target
        .check(&uid, status, &body)
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
    let answer: Value = serde_json::from_slice(&body).expect("JSON");
    let patched = answer["response"]["patch"].is_string();
    assert_eq!(
        patched,
        mode == Mode::Volguard && case.patched,
        "{}: {answer}",
        case.name
    );
    drop(conn);
    let before_kib = server.rss_kib();
    let warmup = Duration::from_secs(1);
    let pid = server.pid().to_string();
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        let before = (server::cpu_seconds(&pid), server::cpu_seconds("self"));
        tokio::time::sleep(window).await;
        let after = (server::cpu_seconds(&pid), server::cpu_seconds("self"));
        Some((after.0? - before.0?, after.1? - before.1?))
    });
    // With `VOLGUARD_CPU_SPIN` a task that only yields keeps this (current-thread) runtime polling its
    // sockets with a zero timeout, never parking, until it is aborted when the sample ends.
    let spinner = spin().then(|| {
        tokio::spawn(async {
            loop {
                tokio::task::yield_now().await;
            }
        })
    });
    let conns = case.connections.unwrap_or_else(|| connections() as usize);
    let (phase, measured) = match rate() {
        // The 1 MB case keeps its closed loop on one connection: no rate fits both servers.
        Some(rate) if case.connections.is_none() => {
            let phase = open_loop(Arc::clone(&target), conns, rate, warmup + window).await;
            let sent = (rate as f64 * (warmup + window).as_secs_f64()).round() as u64;
            // A server that fell behind answered fewer than were due in the window: not this measure.
            // (Errors are reported below, with the first one.)
            assert!(
                phase.errors > 0 || (phase.completed == sent && phase.ms(0.99) < 100.0),
                "{} {}: {} of {sent} answered at {rate}/s, p99 {:.1} ms; lower VOLGUARD_CPU_RATE",
                case.name,
                mode.name(),
                phase.completed,
                phase.ms(0.99)
            );
            (phase, (rate as f64 * window.as_secs_f64()).round() as u64)
        }
        _ => {
            let phase = closed_loop(Arc::clone(&target), conns, warmup, window).await;
            let measured = phase.completed;
            (phase, measured)
        }
    };
    let (server_cpu, client_cpu) = sampler.await.ok().flatten().expect("CPU times from /proc");
    if let Some(spinner) = spinner {
        spinner.abort();
    }
    server.assert_running();
    assert_eq!(
        phase.errors,
        0,
        "{} {}: {:?}",
        case.name,
        mode.name(),
        phase.first_error
    );
    let reviews = measured.max(1);
    Sample {
        server_us: server_cpu * 1e6 / reviews as f64,
        client_us: client_cpu * 1e6 / reviews as f64,
        reviews: measured,
        grown_kib: before_kib
            .zip(server.peak_rss_kib())
            .map(|(b, p)| p.saturating_sub(b)),
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

/// Runs the suite and prints its table; returns how many targets were missed.
pub fn run(runtime: &tokio::runtime::Runtime, dir: &Path, claims: &Path, pin: bool) -> usize {
    let window = Duration::from_secs(setting("VOLGUARD_CPU_SECONDS", 4, 120));
    // `VOLGUARD_CPU_CASES=0,3`: only those cases (by their row, from 0), e.g. to profile one.
    let only: Option<Vec<usize>> = std::env::var("VOLGUARD_CPU_CASES")
        .ok()
        .map(|v| v.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let cases: Vec<Case> = cases()
        .into_iter()
        .enumerate()
        .filter(|(i, _)| only.as_ref().is_none_or(|o| o.contains(i)))
        .map(|(_, c)| c)
        .collect();
    let mut results: Vec<[Vec<Sample>; 2]> = cases.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for round in 0..ROUNDS {
        for (i, case) in cases.iter().enumerate() {
            for (m, mode) in [Mode::Volguard, Mode::Baseline].into_iter().enumerate() {
                eprintln!("round {}/{ROUNDS}: {} ({})", round + 1, case.name, mode.name());
                let s = runtime.block_on(sample(case, mode, dir, claims, pin, window));
                results[i][m].push(s);
            }
        }
    }
    println!();
    let load = match rate() {
        Some(rate) => format!("an open loop at {rate} reviews/s (the 1 MB case: a closed loop)"),
        None => "a closed loop".to_owned(),
    };
    println!(
        "server CPU µs per review ({ROUNDS} rounds, {window:?} each after 1 s warm-up, {load}, {} keep-alive \
         HTTPS/1.1 connections unless said); {}",
        connections(),
        match (pin, spin()) {
            (true, false) => "server pinned to CPU 0, client to CPU 1",
            (true, true) => "server pinned to CPU 0, client to CPU 1, spinning (VOLGUARD_CPU_SPIN)",
            (false, false) => "unpinned: client and server share the CPUs",
            (false, true) =>
                "unpinned and spinning: the client takes a core from the server (diagnostic only)",
        }
    );
    println!();
    println!(
        "| review | body | volguard µs | baseline µs | ratio | client µs (v / b) | one core, reviews/s (v / b) |"
    );
    println!("|---|---:|---|---|---:|---|---|");
    let mut medians = Vec::new();
    for (case, [v, b]) in cases.iter().zip(&results) {
        let mv = median(v.iter().map(|s| s.server_us).collect());
        let mb = median(b.iter().map(|s| s.server_us).collect());
        let cv = median(v.iter().map(|s| s.client_us).collect());
        let cb = median(b.iter().map(|s| s.client_us).collect());
        let rounds = |samples: &Vec<Sample>| {
            samples
                .iter()
                .map(|s| format!("{:.1}", s.server_us))
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let body = serde_json::to_vec(&case.review).expect("JSON").len();
        println!(
            "| {} | {} | {} | {} | {:.2}× | {cv:.1} / {cb:.1} | {:.0} / {:.0} |",
            case.name,
            if body >= 1 << 20 {
                format!("{:.2} MB", body as f64 / 1e6)
            } else {
                format!("{:.1} KB", body as f64 / 1e3)
            },
            rounds(v),
            rounds(b),
            mv / mb,
            1e6 / mv,
            1e6 / mb
        );
        let reviews: u64 = v.iter().map(|s| s.reviews).sum();
        medians.push((mv, mb, reviews, body, v.iter().filter_map(|s| s.grown_kib).max()));
    }
    println!();
    if medians.len() < 7 {
        return 0;
    }
    let ratio = |i: usize| medians[i].0 / medians[i].1;
    let patch_over_validate = medians[5].0 / medians[4].0;
    let (_, _, _, big_body, big_grown) = medians[6];
    let memory = big_grown.map_or(f64::INFINITY, |k| (k * 1024) as f64 / big_body as f64);
    let checks = [
        (
            "allowed review <= 1.5x baseline",
            ratio(0) <= MAX_ALLOWED_RATIO,
            format!("{:.2}x", ratio(0)),
        ),
        (
            "denied review <= 2x baseline",
            ratio(1) <= MAX_DENIED_RATIO,
            format!("{:.2}x", ratio(1)),
        ),
        (
            "mutate with a patch <= 1.5x its validate",
            patch_over_validate <= MAX_PATCH_OVER_VALIDATE,
            format!("{patch_over_validate:.2}x"),
        ),
        (
            "1 MB object: peak memory growth <= 10x its size",
            memory <= MAX_MEMORY_OVER_SIZE,
            format!(
                "{memory:.1}x ({} KiB over {:.2} MB)",
                big_grown.unwrap_or(0),
                big_body as f64 / 1e6
            ),
        ),
    ];
    let mut missed = 0;
    for (what, met, value) in checks {
        println!("target {what}: {} ({value})", verdict(met));
        missed += usize::from(!met);
    }
    missed
}

/// Pins the client before the runtime starts, when asked; says whether it could.
pub fn pin_client() -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cpus >= 2 && pin_self(1) && std::process::Command::new("taskset").arg("-V").output().is_ok();
    if !pinned {
        eprintln!("--pin: needs 2 CPUs and taskset; running unpinned");
    }
    pinned
}

/// `VOLGUARD_CPU_RATE=N`: an open loop at N reviews/s instead of the closed loop, so both servers get
/// the same load and neither saturates its core (the 1 MB case keeps its closed loop).
fn rate() -> Option<u64> {
    std::env::var("VOLGUARD_CPU_RATE")
        .ok()
        .map(|_| setting("VOLGUARD_CPU_RATE", 5_000, 100_000))
}

/// `VOLGUARD_CPU_SPIN=1`: a client that never sleeps (see the module's documentation).
pub fn spin() -> bool {
    std::env::var("VOLGUARD_CPU_SPIN").is_ok_and(|v| v == "1")
}

/// Keep-alive connections per case (`VOLGUARD_CPU_CONNECTIONS`, default 32), but for the cases that set
/// their own.
fn connections() -> u64 {
    setting("VOLGUARD_CPU_CONNECTIONS", 32, 1024)
}
