//! The abuse probes of issue 12, measured: each probe against a fresh `volguard serve` on 127.0.0.1 (this
//! build's, and optionally an older binary's for a before/after table), printed as a Markdown table.
//!
//! ```text
//! cargo bench --bench abuse                                  # this build only
//! cargo bench --bench abuse -- --old /path/to/old/volguard   # before and after
//! cargo bench --bench abuse -- --only metrics --serve-arg --metrics-max-connections --serve-arg 8
//! ```
//!
//! With `KUBECONFIG` pointing at a cluster (../shared/e2e/cluster.sh up), the missing-claim probe also
//! runs and counts the claim GETs the API server served. The tests in tests/abuse.rs assert the bounds;
//! this only reports.

#[path = "../tests/abuse_common/mod.rs"]
mod abuse_common;
#[path = "../tests/support/ports.rs"]
mod ports;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use abuse_common::probes::{self, Probed, Target};

type Run<'a> = Pin<Box<dyn Future<Output = Probed> + 'a>>;

/// One row of the table: what is probed, and how on a target (`None`: not applicable to that binary).
struct Row {
    what: &'static str,
    new_only: bool,
    run: Box<dyn for<'a> Fn(&'a Target) -> Run<'a>>,
}

fn row(what: &'static str, new_only: bool, run: impl for<'a> Fn(&'a Target) -> Run<'a> + 'static) -> Row {
    Row {
        what,
        new_only,
        run: Box::new(run),
    }
}

fn cell(p: &Probed) -> String {
    let s = &p.siege;
    format!(
        "{}; peak RSS {:.0} MiB; {}; {}",
        p.detail,
        s.peak_rss_mib,
        s.honest_summary(),
        if s.alive { "server up" } else { "server DIED" }
    )
    .replace('|', "\\|")
}

fn rows(kubeconfig: Option<PathBuf>) -> Vec<Row> {
    let lifted = [
        "--max-volumes",
        "50000",
        "--max-volume-mounts",
        "50000",
        "--max-object-values",
        "10000000",
        "--request-timeout",
        "25s",
    ];
    let mut rows = vec![
        row("one Deployment with 30,000 volumes", false, |t| {
            Box::pin(probes::claim_volumes(t, 30_000))
        }),
        row("100,000 containers to /validate", false, |t| {
            Box::pin(probes::containers(t, "/validate", 100_000))
        }),
        row("100,000 containers to /mutate", false, |t| {
            Box::pin(probes::containers(t, "/mutate", 100_000))
        }),
        row("300 connections sending 3 MiB bodies", false, |t| {
            // Just under the old 3 MiB body limit, so both binaries read them.
            Box::pin(probes::big_bodies(t, 300, (3 << 20) - 1024))
        }),
        row("40,000 volumes (and mounts)", false, |t| {
            Box::pin(probes::scratch_volumes(t, 40_000))
        }),
        row("40,000 volumes, object limits lifted", true, move |t| {
            Box::pin(async move {
                let mut lifted_target = t.clone();
                lifted_target.args.extend(lifted.iter().map(|a| (*a).to_owned()));
                probes::scratch_volumes(&lifted_target, 40_000).await
            })
        }),
        row("20,000 reviews of made-up kinds", false, |t| {
            Box::pin(probes::made_up_kinds(t, 20_000))
        }),
        row("250 idle connections to the metrics port", false, |t| {
            Box::pin(probes::idle_metrics(t, 250, 256, Duration::from_secs(3)))
        }),
        row(
            "a crafted object (12,000 long-named volumes on one claim)",
            false,
            |t| Box::pin(probes::crafted_denial(t, 12_000)),
        ),
        row("a Deployment with 1,000 ReadWriteOnce claims", false, |t| {
            Box::pin(probes::many_findings(t, 1000))
        }),
    ];
    if let Some(k) = kubeconfig {
        rows.push(row("one claim missing, 400 reviews", false, move |t| {
            let k = k.clone();
            Box::pin(async move { probes::missing_claim(t, &k, 400).await })
        }));
    }
    rows
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut old = None;
    let mut only = None;
    let mut serve_args = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--old" => old = args.next().map(PathBuf::from),
            "--only" => only = args.next(),
            // A flag for this build's `serve` (repeat for several), to see how a limit moves a number.
            "--serve-arg" => serve_args.extend(args.next()),
            // `cargo bench` passes `--bench`; filters and other harness flags do not apply.
            _ => {}
        }
    }
    let new = Target {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_volguard")),
        args: serve_args,
    };
    let old = old.map(|bin| Target {
        bin,
        args: Vec::new(),
    });
    let kubeconfig = std::env::var_os("KUBECONFIG")
        .map(PathBuf::from)
        .filter(|k| k.exists());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut header = String::from("| probe |");
    if old.is_some() {
        header.push_str(" before |");
    }
    header.push_str(" after |");
    println!("{header}");
    println!("|---|{}---|", if old.is_some() { "---|" } else { "" });
    for row in rows(kubeconfig) {
        if only.as_deref().is_some_and(|o| !row.what.contains(o)) {
            continue;
        }
        let mut line = format!("| {} |", row.what);
        if let Some(old) = &old {
            if row.new_only {
                line.push_str(" (no such flags) |");
            } else {
                let p = runtime.block_on((row.run)(old));
                line.push_str(&format!(" {} |", cell(&p)));
            }
        }
        let p = runtime.block_on((row.run)(&new));
        line.push_str(&format!(" {} |", cell(&p)));
        println!("{line}");
    }
}
