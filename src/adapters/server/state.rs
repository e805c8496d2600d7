//! What every request handler shares: the policy now serving, the lookup, metrics and reload counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwap;

use super::metrics::Metrics;
use super::tls::CertStore;
use crate::domain::lookup::{Lookup, Prefetch};
use crate::domain::policy::PolicySet;

/// Shared server state. The policy sits behind an `ArcSwap`: lock-free reads, and a reload is one swap.
pub struct AppState {
    policies: ArcSwap<PolicySet>,
    /// Where claims and scale targets are looked up.
    pub lookup: Arc<dyn Lookup>,
    /// Fetches, before a review, what the lookup's cache has not seen yet (None: nothing to fetch).
    pub prefetch: Option<Arc<dyn Prefetch>>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The serving certificate, when this process serves TLS.
    pub certs: Option<Arc<CertStore>>,
    /// The load benchmark's baseline: answer every review `allowed: true` from its uid alone, without
    /// decoding the object or evaluating a policy (see [`baseline`](super::baseline)). Never in production.
    pub baseline_allow_all: bool,
    policy_generation: AtomicU64,
    cert_generation: AtomicU64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("policy_generation", &self.policy_generation)
            .field("cert_generation", &self.cert_generation)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State serving `policies`, looking up through `lookup`.
    pub fn new(policies: PolicySet, lookup: Arc<dyn Lookup>, certs: Option<Arc<CertStore>>) -> Self {
        let metrics = Arc::new(Metrics::new());
        metrics.set_policies(policies.policies().len());
        let state = Self {
            policies: ArcSwap::from_pointee(policies),
            lookup,
            prefetch: None,
            metrics,
            certs,
            baseline_allow_all: false,
            policy_generation: AtomicU64::new(0),
            cert_generation: AtomicU64::new(0),
        };
        state.record_certificate_expiry();
        state
    }

    /// The policy set now serving.
    pub fn policies(&self) -> Arc<PolicySet> {
        self.policies.load_full()
    }

    /// Serves `policies` from the next review on.
    pub(crate) fn swap_policies(&self, policies: PolicySet) {
        self.metrics.policy_reload(true, policies.policies().len());
        self.policies.store(Arc::new(policies));
        self.policy_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// How many policy reloads succeeded.
    pub fn policy_generation(&self) -> u64 {
        self.policy_generation.load(Ordering::SeqCst)
    }

    /// Counts a certificate swap.
    pub(crate) fn certs_swapped(&self) {
        self.metrics.cert_reload(true);
        self.record_certificate_expiry();
        self.cert_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Exports when the serving certificate now in use expires.
    pub(crate) fn record_certificate_expiry(&self) {
        if let Some((_, not_after)) = self.certs.as_ref().and_then(|c| c.validity()) {
            #[allow(clippy::cast_precision_loss)]
            self.metrics.certificate_expires(not_after as f64);
        }
    }

    /// How many certificate reloads succeeded.
    pub fn cert_generation(&self) -> u64 {
        self.cert_generation.load(Ordering::SeqCst)
    }

    /// Ready once a policy and (when serving TLS) a certificate are loaded, and the lookup can answer.
    pub fn readiness(&self) -> Result<(), String> {
        if self.policies.load().policies().is_empty() {
            return Err("no policy loaded".into());
        }
        self.lookup.readiness()
    }
}
