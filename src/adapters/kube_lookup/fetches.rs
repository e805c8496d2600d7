//! Direct GETs for what the caches have not seen yet, kept polite towards the API server: one GET at a
//! time per object however many reviews ask for it (single flight), a short memory of 404s (a missing
//! claim asked about by a thousand reviews costs one GET every few seconds), and a bound on GETs in
//! flight altogether.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use tokio::sync::Semaphore;

use crate::domain::lookup::Answer;
use crate::domain::workload::Workload;

/// What a GET brought.
#[derive(Clone, Debug)]
pub(super) enum Fetched {
    /// A claim.
    Claim(Arc<PersistentVolumeClaim>),
    /// A workload.
    Workload(Arc<Workload>),
}

/// Which object: kind, namespace, name.
pub(super) type Key = (&'static str, String, String);

/// How long a 404 is remembered.
const NEGATIVE_TTL: Duration = Duration::from_secs(5);
/// At most this many 404s are remembered (the oldest are forgotten first when it is full).
const NEGATIVE_MAX: usize = 4096;

type InFlight = Shared<BoxFuture<'static, Answer<Fetched>>>;

/// The GETs in flight and the 404s remembered.
pub(super) struct Fetches {
    in_flight: Mutex<HashMap<Key, InFlight>>,
    missing: Mutex<HashMap<Key, Instant>>,
    permits: Arc<Semaphore>,
    /// How many GETs were sent (tests, metrics).
    sent: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Fetches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetches").finish_non_exhaustive()
    }
}

impl Fetches {
    /// At most `concurrent` GETs in flight at once.
    pub(super) fn new(concurrent: usize) -> Self {
        Self {
            in_flight: Mutex::new(HashMap::new()),
            missing: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            sent: std::sync::atomic::AtomicU64::new(0),
        }
    }

    #[cfg(test)]
    /// GETs sent so far.
    pub(super) fn sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The answer for `key`: remembered as missing, joined to a GET already in flight, or from a new GET
    /// made by `get` (waiting at most `timeout` for a turn, and then for the answer).
    pub(super) async fn get<F>(&self, key: Key, timeout: Duration, get: impl FnOnce() -> F) -> Answer<Fetched>
    where
        F: Future<Output = Answer<Fetched>> + Send + 'static,
    {
        if let Ok(mut missing) = self.missing.lock() {
            match missing.get(&key) {
                Some(at) if at.elapsed() < NEGATIVE_TTL => return Answer::Missing,
                Some(_) => {
                    missing.remove(&key);
                }
                None => {}
            }
        }
        let shared = {
            let Ok(mut in_flight) = self.in_flight.lock() else {
                return Answer::Unknown("the lookup's state is unusable (a task panicked)".to_owned());
            };
            match in_flight.get(&key) {
                Some(running) => running.clone(),
                None => {
                    let permits = Arc::clone(&self.permits);
                    let fetch = get();
                    self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (kind, ns, name) = key.clone();
                    let running = async move {
                        match tokio::time::timeout(timeout, permits.acquire_owned()).await {
                            Ok(Ok(_permit)) => fetch.await,
                            _ => Answer::Unknown(format!(
                                "GET {kind} {ns}/{name}: too many lookups of the API server in flight"
                            )),
                        }
                    }
                    .boxed()
                    .shared();
                    in_flight.insert(key.clone(), running.clone());
                    running
                }
            }
        };
        let answer = shared.await;
        if let Ok(mut in_flight) = self.in_flight.lock() {
            in_flight.remove(&key);
        }
        if matches!(answer, Answer::Missing)
            && let Ok(mut missing) = self.missing.lock()
        {
            if missing.len() >= NEGATIVE_MAX {
                missing.retain(|_, at| at.elapsed() < NEGATIVE_TTL);
                if missing.len() >= NEGATIVE_MAX {
                    missing.clear();
                }
            }
            missing.insert(key, Instant::now());
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn concurrent_asks_share_one_get_and_a_404_is_remembered() {
        let fetches = Arc::new(Fetches::new(4));
        let calls = Arc::new(AtomicU32::new(0));
        let key = || ("PersistentVolumeClaim", "shop".to_owned(), "data".to_owned());
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (fetches, calls) = (Arc::clone(&fetches), Arc::clone(&calls));
            tasks.push(tokio::spawn(async move {
                fetches
                    .get(key(), Duration::from_secs(5), move || async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Answer::Missing
                    })
                    .await
            }));
        }
        for t in tasks {
            assert!(matches!(t.await.unwrap(), Answer::Missing));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one GET for twenty asks");
        let again = fetches
            .get(key(), Duration::from_secs(5), || async {
                panic!("not asked again")
            })
            .await;
        assert!(matches!(again, Answer::Missing), "the 404 is remembered");
        assert_eq!(fetches.sent(), 1);
    }

    #[tokio::test]
    async fn gets_past_the_bound_wait_then_give_up_as_unknown() {
        let fetches = Arc::new(Fetches::new(1));
        let slow = {
            let fetches = Arc::clone(&fetches);
            tokio::spawn(async move {
                fetches
                    .get(
                        ("Deployment", "a".into(), "x".into()),
                        Duration::from_secs(5),
                        || async {
                            tokio::time::sleep(Duration::from_millis(300)).await;
                            Answer::Missing
                        },
                    )
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let other = fetches
            .get(
                ("Deployment", "a".into(), "y".into()),
                Duration::from_millis(50),
                || async { Answer::Missing },
            )
            .await;
        let Answer::Unknown(why) = other else {
            panic!("{other:?}")
        };
        assert!(why.contains("too many lookups"), "{why}");
        assert!(matches!(slow.await.unwrap(), Answer::Missing));
    }
}
