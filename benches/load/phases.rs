//! The two ways the load is driven:
//!
//! - **closed loop**: N connections, each sending its next review as soon as the last is answered, for the
//!   highest throughput the server (and this client, on the same machine) reach;
//! - **open loop**: reviews scheduled at a fixed rate whatever the server does, each latency measured from
//!   its *scheduled* send time, so a stall shows in the percentiles instead of silently slowing the
//!   sender down ("coordinated omission", as wrk2 measures it).
//!
//! Every loop is bounded in time and in count, and every answer is checked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::{Mutex, mpsc};

use crate::client::{REQUEST_TIMEOUT, Target, uid};

/// Latencies in microseconds, from 1 µs to 60 s, to 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// What one phase measured.
pub struct Phase {
    /// Latencies (µs) of the reviews in the measured window.
    pub latency: Histogram<u64>,
    /// Reviews answered correctly within the measured window.
    pub completed: u64,
    /// The measured window.
    pub elapsed: Duration,
    /// Failed exchanges and wrong answers (warm-up included).
    pub errors: u64,
    /// The first error, to say what went wrong.
    pub first_error: Option<String>,
}

impl Phase {
    fn new() -> Self {
        Self {
            latency: histogram(),
            completed: 0,
            elapsed: Duration::ZERO,
            errors: 0,
            first_error: None,
        }
    }

    fn error(&mut self, e: String) {
        self.errors += 1;
        self.first_error.get_or_insert(e);
    }

    fn merge(&mut self, other: Phase) {
        self.latency.add(&other.latency).expect("same histogram bounds");
        self.completed += other.completed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }

    /// Answered reviews per second.
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// A percentile in milliseconds.
    pub fn ms(&self, quantile: f64) -> f64 {
        self.latency.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// No connection sends more than this many reviews in one phase, whatever the clock says.
const MAX_PER_CONNECTION: u64 = 5_000_000;

/// `connections` connections in a closed loop: `warmup` unmeasured, then `window` measured.
pub async fn closed_loop(
    target: Arc<Target>,
    connections: usize,
    warmup: Duration,
    window: Duration,
) -> Phase {
    let start = Instant::now();
    let measured = start + warmup;
    let end = measured + window;
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..connections as u64 {
        let target = Arc::clone(&target);
        workers.spawn(async move {
            let mut phase = Phase::new();
            let mut conn = None;
            for sequence in 0..MAX_PER_CONNECTION {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let Some(c) = conn.as_mut() else {
                    match target.connect().await {
                        Ok(c) => conn = Some(c),
                        Err(e) => {
                            phase.error(e);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    continue;
                };
                let uid = uid(worker, sequence);
                let (done, checked) = target.review(c, &uid).await;
                if let Err(e) = checked {
                    phase.error(e);
                    // The connection may be broken: start a new one.
                    conn = None;
                    continue;
                }
                if sent >= measured {
                    phase.latency.saturating_record(micros(done - sent));
                }
                if done >= measured && done < end {
                    phase.completed += 1;
                }
            }
            phase
        });
    }
    let mut total = Phase::new();
    while let Some(worker) = workers.join_next().await {
        total.merge(worker.expect("a load worker panicked"));
    }
    total.elapsed = window;
    total
}

/// `rate` reviews per second for `window`, spread over `connections` connections. A review finds every
/// connection busy only if the server falls behind; it then waits, and the wait counts in its latency.
pub async fn open_loop(target: Arc<Target>, connections: usize, rate: u64, window: Duration) -> Phase {
    let count = (rate as f64 * window.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    // Past this, reviews not yet sent are counted as errors instead of being sent.
    let give_up = Instant::now() + window + REQUEST_TIMEOUT + Duration::from_secs(10);
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(target.connect().await.expect("a connection for the open loop"));
    }
    let (tx, rx) = mpsc::unbounded_channel::<(u64, Instant)>();
    let rx = Arc::new(Mutex::new(rx));
    let mut workers = tokio::task::JoinSet::new();
    for mut conn in conns {
        let (target, rx) = (Arc::clone(&target), Arc::clone(&rx));
        workers.spawn(async move {
            let mut phase = Phase::new();
            let mut last = None;
            loop {
                let job = rx.lock().await.recv().await;
                let Some((sequence, scheduled)) = job else { break };
                if Instant::now() > give_up {
                    phase.error("not sent: the phase ran out of time".into());
                    continue;
                }
                let uid = uid(u64::from(u32::MAX), sequence);
                let (done, checked) = target.review(&mut conn, &uid).await;
                match checked {
                    Ok(()) => {
                        phase
                            .latency
                            .saturating_record(micros(done.saturating_duration_since(scheduled)));
                        phase.completed += 1;
                        last = Some(done);
                    }
                    Err(e) => {
                        phase.error(e);
                        match target.connect().await {
                            Ok(c) => conn = c,
                            Err(e) => phase.error(e),
                        }
                    }
                }
            }
            (phase, last)
        });
    }
    // A thread, not a tokio timer: tokio's timers tick in whole milliseconds, which at 1,000/s would
    // bunch the schedule and add up to a millisecond of the generator's own delay to every latency.
    let start = Instant::now() + Duration::from_millis(50);
    let pacer = std::thread::spawn(move || {
        for sequence in 0..count {
            let at = start + interval * u32::try_from(sequence).unwrap_or(u32::MAX);
            if let Some(wait) = at.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            if tx.send((sequence, at)).is_err() {
                break;
            }
        }
    });
    let mut total = Phase::new();
    let mut last_done = start;
    while let Some(worker) = workers.join_next().await {
        let (phase, last) = worker.expect("a load worker panicked");
        total.merge(phase);
        last_done = last_done.max(last.unwrap_or(start));
    }
    pacer.join().expect("the pacer thread panicked");
    total.elapsed = last_done.saturating_duration_since(start);
    total
}
