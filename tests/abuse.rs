//! The abuse suite of issue 12: every probe of the table against a running `volguard serve`
//! (the binary cargo built, on 127.0.0.1), asserting the bounded behaviour: the server stays up, answers
//! /healthz and a well-formed review while under attack, stays under half the chart's memory limit, and
//! the attacker gets a clear refusal. Numbers before and after: `cargo bench --bench abuse`.
//!
//! Every attack is bounded in requests or connections, and every request in time.

mod abuse_common;
#[path = "support/ports.rs"]
mod ports;

use std::path::PathBuf;
use std::time::Duration;

use abuse_common::probes::{self, Probed, Target};

/// Half the chart's memory limit (256 Mi): what one server may reach under any of these attacks.
const RSS_CEILING_MIB: f64 = 128.0;

fn volguard() -> Target {
    Target {
        bin: PathBuf::from(env!("CARGO_BIN_EXE_volguard")),
        args: Vec::new(),
    }
}

fn lifted(args: &[&str]) -> Target {
    Target {
        args: args.iter().map(|a| (*a).to_owned()).collect(),
        ..volguard()
    }
}

/// What every probe must show: alive, honest callers served, memory under the ceiling.
fn assert_withstood(what: &str, probed: &Probed) {
    assert_served(what, probed);
    let s = &probed.siege;
    assert!(
        s.peak_rss_mib < RSS_CEILING_MIB,
        "{what}: peak RSS {:.1} MiB ≥ {RSS_CEILING_MIB} MiB ({})",
        s.peak_rss_mib,
        probed.detail
    );
}

/// Alive, and honest callers served.
fn assert_served(what: &str, probed: &Probed) {
    let s = &probed.siege;
    eprintln!(
        "{what}: peak RSS {:.1} MiB, {:.2} CPU-s; {}; {}",
        s.peak_rss_mib,
        s.cpu_seconds,
        s.honest_summary(),
        probed.detail
    );
    assert!(s.alive, "{what}: the server died");
    assert!(
        s.served_honestly(),
        "{what}: the honest caller was not served: {}\n{}",
        s.honest_summary(),
        probed.detail
    );
    assert!(
        s.health.tries >= 1 && s.honest.tries >= 1,
        "{what}: the honest caller never checked"
    );
}

/// The one answer's `response.status.message`.
fn message(probed: &Probed) -> String {
    let answer = probed.siege.answers.first().expect("one answer");
    assert_eq!(answer.status(), 200, "{}", probed.detail);
    answer
        .message()
        .unwrap_or_else(|| panic!("a message: {}", probed.detail))
}

#[tokio::test]
async fn thirty_thousand_volumes_are_refused_by_the_volume_limit() {
    let probed = probes::claim_volumes(&volguard(), 30_000).await;
    assert_withstood("30,000 volumes", &probed);
    let answer = &probed.siege.answers[0];
    assert_eq!(answer.allowed(), Some(false), "{}", probed.detail);
    assert_eq!(
        message(&probed),
        "volguard could not judge the request's object: it has more than 1024 volumes, the most volguard \
         judges in one object (raise it with --max-volumes)"
    );
}

#[tokio::test]
async fn a_hundred_thousand_containers_are_refused_on_validate_and_mutate() {
    for path in ["/validate", "/mutate"] {
        let probed = probes::containers(&volguard(), path, 100_000).await;
        assert_withstood(path, &probed);
        assert_eq!(
            probed.siege.answers[0].allowed(),
            Some(false),
            "{}",
            probed.detail
        );
        assert_eq!(
            message(&probed),
            "volguard could not judge the request's object: it has more than 256 containers, the most volguard \
         judges in one object (raise it with --max-containers)",
            "{path}"
        );
    }
}

#[tokio::test]
async fn three_hundred_connections_of_three_mebibytes_are_held_to_the_bytes_in_flight() {
    let probed = probes::big_bodies(&volguard(), 300, 3 << 20).await;
    assert_withstood("300 × 3 MiB", &probed);
    let s = &probed.siege;
    // Every caller got an answer: the review judged, or a fast refusal naming the budget.
    let busy = s
        .answers
        .iter()
        .filter(|a| {
            a.status() == 503
                && matches!(a, abuse_common::client::Answer::Http { body, .. } if body.contains("--max-inflight-bytes"))
        })
        .count();
    let judged = s
        .answers
        .iter()
        .filter(|a| a.status() == 200 && a.allowed() == Some(false))
        .count();
    assert!(judged >= 1, "some reviews are judged: {}", probed.detail);
    assert!(busy >= 1, "the rest are refused as busy: {}", probed.detail);
    // A refused caller may see the connection close while it still writes its body; none may hang.
    let unanswered = s.answers.len() - busy - judged;
    assert_eq!(
        s.answers.len(),
        300,
        "one outcome per connection: {}",
        probed.detail
    );
    assert!(
        s.answers
            .iter()
            .all(|a| a.status() == 200 || a.status() == 503 || a.status() == 0),
        "{}",
        probed.detail
    );
    assert!(
        s.answers
            .iter()
            .filter(|a| a.status() == 0)
            .all(|a| !a.summary().contains("timed out")),
        "{unanswered} unanswered, none by timing out: {}",
        probed.detail
    );
}

#[tokio::test]
async fn forty_thousand_volumes_are_refused_and_probes_stay_answered() {
    let probed = probes::scratch_volumes(&volguard(), 40_000).await;
    assert_withstood("40,000 volumes", &probed);
    // The pod spec's containers (and their mounts) come before its volumes in this body.
    assert_eq!(
        message(&probed),
        "volguard could not judge the request's object: it has more than 4096 volume mounts, the most volguard \
         judges in one object (raise it with --max-volume-mounts)"
    );
}

#[tokio::test]
async fn forty_thousand_volumes_are_judged_off_the_reactor_when_the_limits_are_lifted() {
    // With the limits lifted the decision itself runs: it must be near-linear and off the async
    // runtime, so /healthz and other reviews are answered meanwhile, and the answer is the real one.
    // Memory is what the limits bound: lifted, it is not held to the ceiling.
    let target = lifted(&[
        "--max-volumes",
        "50000",
        "--max-volume-mounts",
        "50000",
        "--max-object-values",
        "10000000",
        "--request-timeout",
        "25s",
    ]);
    let probed = probes::scratch_volumes(&target, 40_000).await;
    assert_served("40,000 volumes, limits lifted", &probed);
    let message = message(&probed);
    assert!(
        message.starts_with("volguard denied Deployment shop/web:\n[shared-rwo-claim]"),
        "{message}"
    );
}

#[tokio::test]
async fn made_up_kinds_add_no_metric_series() {
    let probed = probes::made_up_kinds(&volguard(), 300).await;
    assert_withstood("made-up kinds", &probed);
    let s = &probed.siege;
    assert_eq!(s.count(200), 300, "every review answered: {}", probed.detail);
    assert!(
        s.answers.iter().all(|a| a.allowed() == Some(true)),
        "kinds volguard does not judge are allowed: {}",
        probed.detail
    );
    assert!(
        probed.detail.contains(", 0 naming a made-up kind"),
        "{}",
        probed.detail
    );
}

#[tokio::test]
async fn idle_metrics_connections_cannot_take_the_webhook_s_file_descriptors() {
    let probed = probes::idle_metrics(&volguard(), 250, 256, Duration::from_secs(2)).await;
    assert_withstood("250 idle metrics connections", &probed);
    // The metrics listener keeps 32 and closes the rest as they come.
    assert!(
        probed.detail.contains("218 closed by the server, 32 held open"),
        "{}",
        probed.detail
    );
}

#[tokio::test]
async fn a_crafted_object_gets_a_bounded_answer() {
    // 12,000 long-named volumes on one claim (and as many mounts): over a limit, a one-line answer.
    let probed = probes::crafted_denial(&volguard(), 12_000).await;
    assert_withstood("crafted object", &probed);
    assert_eq!(
        message(&probed),
        "volguard could not judge the request's object: it has more than 4096 volume mounts, the most volguard \
         judges in one object (raise it with --max-volume-mounts)"
    );
    // 1,000 claims, each a finding: twelve are spelled out and the rest counted, within 16 KiB.
    let probed = probes::many_findings(&volguard(), 1000).await;
    assert_withstood("a thousand findings", &probed);
    let message = message(&probed);
    assert!(message.len() <= 16 * 1024, "{} bytes", message.len());
    assert!(
        message.ends_with("\n... and 988 more denying findings (volguard check lists them all)"),
        "{}",
        &message[message.len().saturating_sub(300)..]
    );
    assert_eq!(message.matches("\n[shared-rwo-claim]").count(), 12, "{message}");
}
