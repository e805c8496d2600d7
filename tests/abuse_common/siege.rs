//! Running an attack against a served volguard while an honest caller watches: /healthz and a
//! well-formed review, each on a fresh connection (as a new API server replica or kubelet would come),
//! every `WATCH_EVERY` until the attack ends. The well-formed review must get the answer it got before
//! the attack.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::client::{Answer, get, post};
use super::server::Served;

/// How often the honest caller checks.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// What an honest caller saw of one route during the attack.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    /// Requests sent.
    pub tries: usize,
    /// Requests without the right answer.
    pub failures: usize,
    /// The slowest answer.
    pub worst: Duration,
    /// What the first failure was.
    pub first_failure: Option<String>,
}

impl Watched {
    fn note(&mut self, took: Duration, failure: Option<String>) {
        self.tries += 1;
        self.worst = self.worst.max(took);
        if let Some(f) = failure {
            self.failures += 1;
            self.first_failure.get_or_insert(f);
        }
    }

    /// `n/m ok, worst X ms`.
    pub fn summary(&self) -> String {
        format!(
            "{}/{} ok, slowest {} ms",
            self.tries - self.failures,
            self.tries,
            self.worst.as_millis()
        )
    }
}

/// What an attack did to the server.
#[derive(Debug)]
pub struct Siege {
    /// What the attacker got, one per request (or connection) the attack made.
    pub answers: Vec<Answer>,
    /// Whether the process survived.
    pub alive: bool,
    /// Peak resident memory since start, in MiB.
    pub peak_rss_mib: f64,
    /// Resident memory after the attack, in MiB.
    pub rss_after_mib: f64,
    /// CPU seconds the server spent during the attack.
    pub cpu_seconds: f64,
    /// How long the attack ran.
    pub took: Duration,
    /// /healthz, as the kubelet would probe it.
    pub health: Watched,
    /// The well-formed review.
    pub honest: Watched,
}

impl Siege {
    /// How many answers had `status` (0: no response).
    pub fn count(&self, status: u16) -> usize {
        self.answers.iter().filter(|a| a.status() == status).count()
    }

    /// The attacker's answers by status, as `413×1, 503×290`.
    pub fn statuses(&self) -> String {
        let mut counts = std::collections::BTreeMap::<u16, usize>::new();
        for a in &self.answers {
            *counts.entry(a.status()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(s, n)| {
                if *s == 0 {
                    format!("no response×{n}")
                } else {
                    format!("{s}×{n}")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the honest caller always got through, and the server lived.
    pub fn served_honestly(&self) -> bool {
        self.alive && self.health.failures == 0 && self.honest.failures == 0
    }

    /// What the honest caller saw, for a report or an assertion message.
    pub fn honest_summary(&self) -> String {
        let mut text = format!(
            "/healthz {}; well-formed review {}",
            self.health.summary(),
            self.honest.summary()
        );
        for f in [&self.health.first_failure, &self.honest.first_failure]
            .into_iter()
            .flatten()
        {
            text.push_str(&format!(" (first failure: {f})"));
        }
        text
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs `attack` against `served` while watching it, and measures the process.
pub async fn siege<F, Fut>(served: &mut Served, honest_review: &[u8], attack: F) -> Siege
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Vec<Answer>>,
{
    let validate = served.url("/validate");
    let healthz = served.url("/healthz");
    let before = post(
        &super::client::https(&served.ca_pem),
        &validate,
        honest_review.to_vec(),
    )
    .await;
    let expected = (before.status(), before.allowed(), before.message());
    assert_eq!(
        expected.0, 200,
        "the well-formed review is answered before the attack: {before:?}"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let ca = Arc::new(served.ca_pem.clone());
    let honest = honest_review.to_vec();
    let watcher = tokio::spawn(async move {
        let (mut health, mut reviews) = (Watched::default(), Watched::default());
        let mut stop = stop_rx;
        // A client per request: each check comes on a new connection.
        loop {
            let client = super::client::https(&ca);
            let started = Instant::now();
            let answer = get(&client, &healthz).await;
            let failure = (answer.status() != 200).then(|| answer.summary());
            health.note(started.elapsed(), failure);

            let client = super::client::https(&ca);
            let started = Instant::now();
            let answer = post(&client, &validate, honest.clone()).await;
            let got = (answer.status(), answer.allowed(), answer.message());
            let failure = (got != expected).then(|| answer.summary());
            reviews.note(started.elapsed(), failure);

            if *stop.borrow() {
                return (health, reviews);
            }
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(WATCH_EVERY) => {}
            }
        }
    });

    let cpu_before = served.cpu_seconds();
    let started = Instant::now();
    let answers = attack().await;
    let took = started.elapsed();
    let cpu_seconds = served.cpu_seconds() - cpu_before;
    let _ = stop_tx.send(true);
    let (health, honest) = watcher.await.expect("the watcher does not panic");
    Siege {
        answers,
        alive: served.alive(),
        peak_rss_mib: mib(served.peak_rss_kib()),
        rss_after_mib: mib(served.rss_kib()),
        cpu_seconds,
        took,
        health,
        honest,
    }
}
