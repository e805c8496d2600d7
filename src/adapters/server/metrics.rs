//! Prometheus metrics, served in the text format on a separate plain-HTTP port.
//!
//! Reviews by path, operation, kind and decision; findings by rule and action; a latency histogram;
//! policy and certificate reloads by result; and, when reviews read the cluster, each watch cache's size,
//! the time since its watch last delivered, and its restarts and errors, read at scrape time.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::expiry::ExpiryCollector;
use crate::adapters::kube_lookup::CacheStats;

// Every label value comes from a closed set (the table of kinds, the operations, the rule ids): a caller
// cannot grow the number of series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReviewLabels {
    path: &'static str,
    operation: &'static str,
    kind: &'static str,
    decision: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The background audit's findings: rule ids are a closed set; namespaces are bounded by
/// [`AUDIT_NAMESPACE_LABELS`], the rest counted under [`OTHER_NAMESPACES`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AuditLabels {
    rule: &'static str,
    namespace: String,
    result: &'static str,
}

/// Namespaces that get a label value of their own in `volguard_audit_findings` (those with the most
/// findings).
pub const AUDIT_NAMESPACE_LABELS: usize = 100;
/// The label value the other namespaces' findings are counted under.
pub const OTHER_NAMESPACES: &str = "_other";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ListenerLabels {
    listener: &'static str,
}

/// Why a review (or a connection) was turned away without a decision of the policy's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The body was larger than `--max-body-bytes` (413).
    BodyTooLarge,
    /// Taking it would have gone over `--max-inflight-bytes` (503).
    Busy,
    /// An object went over a limit (`--max-volumes`, ...): the failure mode answered.
    ObjectLimit,
    /// Not decided within the request deadline: the failure mode answered.
    Deadline,
    /// A connection over `--max-connections`, closed at once.
    Connections,
    /// A review from a client without a certificate `--client-ca` trusts (403).
    ClientCertificate,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::BodyTooLarge => "body_too_large",
            Refusal::Busy => "inflight_bytes",
            Refusal::ObjectLimit => "object_limit",
            Refusal::Deadline => "deadline",
            Refusal::Connections => "connections",
            Refusal::ClientCertificate => "client_certificate",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PathLabels {
    path: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    kind: &'static str,
}

/// Where the cache metrics come from: called at every scrape.
pub(crate) type CacheStatsSource = Arc<dyn Fn() -> Vec<CacheStats> + Send + Sync>;

/// The cache metrics, computed at scrape time so an idle or stopped watch shows its real age.
#[derive(Clone, Default)]
struct CacheCollector {
    source: Arc<OnceLock<CacheStatsSource>>,
}

impl std::fmt::Debug for CacheCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheCollector").finish_non_exhaustive()
    }
}

impl Collector for CacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let Some(source) = self.source.get() else {
            return Ok(());
        };
        let objects = Family::<CacheLabels, Gauge>::default();
        let age = Family::<CacheLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        let restarts = Family::<CacheLabels, Counter>::default();
        let errors = Family::<CacheLabels, Counter>::default();
        for s in source() {
            let labels = CacheLabels { kind: s.kind };
            objects
                .get_or_create(&labels)
                .set(i64::try_from(s.objects).unwrap_or(i64::MAX));
            if let Some(since) = s.since_last_event {
                age.get_or_create(&labels).set(since.as_secs_f64());
            }
            restarts.get_or_create(&labels).inc_by(s.watch_restarts);
            errors.get_or_create(&labels).inc_by(s.watch_errors);
        }
        let metrics: [(&str, &str, &dyn EncodeMetric); 4] = [
            ("cache_objects", "Objects in each cluster cache", &objects),
            (
                "cache_seconds_since_last_event",
                "Seconds since each cache's watch last delivered an event (absent: none yet)",
                &age,
            ),
            (
                "cache_watch_restarts",
                "Full relists of each cache after the first (410 Gone, reconnects)",
                &restarts,
            ),
            (
                "cache_watch_errors",
                "Watch errors of each cache, each backed off and resumed",
                &errors,
            ),
        ];
        for (name, help, metric) in metrics {
            metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)?;
        }
        Ok(())
    }
}

/// Every metric volguard exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reviews: Family<ReviewLabels, Counter>,
    findings: Family<FindingLabels, Counter>,
    duration: Family<PathLabels, Histogram>,
    policy_reloads: Family<ResultLabels, Counter>,
    cert_reloads: Family<ResultLabels, Counter>,
    policies_loaded: Gauge,
    refusals: Family<ReasonLabels, Counter>,
    connections: Family<ListenerLabels, Gauge>,
    certificate_expiry: Gauge<f64, std::sync::atomic::AtomicU64>,
    caches: CacheCollector,
    expiry: ExpiryCollector,
    audit_findings: Family<AuditLabels, Gauge>,
    audit_runs: Family<ResultLabels, Counter>,
    audit_last_success: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `volguard` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("volguard");
        let reviews = Family::<ReviewLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "Admission reviews answered, by decision",
            reviews.clone(),
        );
        let findings = Family::<FindingLabels, Counter>::default();
        registry.register(
            "admission_findings",
            "Findings in answered reviews, by rule",
            findings.clone(),
        );
        let duration = Family::<PathLabels, Histogram>::new_with_constructor(|| {
            // 50 µs .. ~0.8 s: reviews take microseconds; the tail shows lookups and overload.
            Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
                0.00005, 2.0, 15,
            ))
        });
        registry.register(
            "admission_review_duration_seconds",
            "Time to answer a review",
            duration.clone(),
        );
        let policy_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads, by result",
            policy_reloads.clone(),
        );
        let cert_reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "certificate_reloads",
            "Serving certificate reloads, by result",
            cert_reloads.clone(),
        );
        let policies_loaded = Gauge::default();
        registry.register(
            "policies_loaded",
            "Policies in the policy set now serving",
            policies_loaded.clone(),
        );
        let refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "refused",
            "Reviews and connections turned away without the policy's decision, by reason",
            refusals.clone(),
        );
        let connections = Family::<ListenerLabels, Gauge>::default();
        registry.register(
            "open_connections",
            "Connections open now, by listener",
            connections.clone(),
        );
        let certificate_expiry = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "serving_certificate_expiry_timestamp_seconds",
            "When the serving certificate now in use expires (Unix time)",
            certificate_expiry.clone(),
        );
        let audit_findings = Family::<AuditLabels, Gauge>::default();
        registry.register(
            "audit_findings",
            "Findings of the last background audit pass, by rule, namespace and report result (fail or warn)",
            audit_findings.clone(),
        );
        let audit_runs = Family::<ResultLabels, Counter>::default();
        registry.register(
            "audit_runs",
            "Background audit passes, by result",
            audit_runs.clone(),
        );
        let audit_last_success = Gauge::default();
        registry.register(
            "audit_last_success_timestamp_seconds",
            "When the last background audit pass wrote its reports (Unix time)",
            audit_last_success.clone(),
        );
        let caches = CacheCollector::default();
        registry.register_collector(Box::new(caches.clone()));
        let expiry = ExpiryCollector::default();
        registry.register_collector(Box::new(expiry.clone()));
        Self {
            registry,
            reviews,
            findings,
            duration,
            policy_reloads,
            cert_reloads,
            policies_loaded,
            refusals,
            connections,
            certificate_expiry,
            caches,
            expiry,
            audit_findings,
            audit_runs,
            audit_last_success,
        }
    }

    /// Records a background audit pass: on success, its findings replace the last pass's, counted by
    /// (rule, namespace, result); only the [`AUDIT_NAMESPACE_LABELS`] namespaces with the most findings keep
    /// their name, the others are summed under [`OTHER_NAMESPACES`].
    pub(crate) fn audit_pass(
        &self,
        findings: Option<&[(&'static str, String, &'static str)]>,
        unix_now: i64,
    ) {
        let Some(findings) = findings else {
            self.audit_runs
                .get_or_create(&ResultLabels { result: "failure" })
                .inc();
            return;
        };
        let mut per_namespace: std::collections::BTreeMap<&str, usize> = Default::default();
        for (_, ns, _) in findings {
            *per_namespace.entry(ns.as_str()).or_default() += 1;
        }
        let mut ranked: Vec<(&str, usize)> = per_namespace.into_iter().collect();
        ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let named: std::collections::BTreeSet<&str> = ranked
            .iter()
            .take(AUDIT_NAMESPACE_LABELS)
            .map(|(ns, _)| *ns)
            .collect();
        self.audit_findings.clear();
        for (rule, ns, result) in findings {
            let namespace = if named.contains(ns.as_str()) {
                ns.clone()
            } else {
                OTHER_NAMESPACES.to_owned()
            };
            self.audit_findings
                .get_or_create(&AuditLabels {
                    rule,
                    namespace,
                    result,
                })
                .inc();
        }
        self.audit_runs
            .get_or_create(&ResultLabels { result: "success" })
            .inc();
        self.audit_last_success.set(unix_now);
    }

    /// Exports the cluster caches' state from now on (once; later calls are ignored).
    pub(crate) fn watch_caches(&self, source: CacheStatsSource) {
        let _ = self.caches.source.set(source);
    }

    /// Counts one answered review.
    pub fn review(
        &self,
        path: &'static str,
        operation: &'static str,
        kind: &'static str,
        decision: &'static str,
    ) {
        self.reviews
            .get_or_create(&ReviewLabels {
                path,
                operation,
                kind,
                decision,
            })
            .inc();
    }

    /// Counts a review or connection turned away.
    pub fn refused(&self, why: Refusal) {
        self.refusals
            .get_or_create(&ReasonLabels { reason: why.as_str() })
            .inc();
    }

    /// How many refusals of one kind so far (tests).
    pub fn refusals(&self, why: Refusal) -> u64 {
        self.refusals
            .get_or_create(&ReasonLabels { reason: why.as_str() })
            .get()
    }

    /// A connection opened (`+1`) or closed (`-1`) on `listener` (`webhook`, `metrics`).
    pub fn connection(&self, listener: &'static str, delta: i64) {
        self.connections
            .get_or_create(&ListenerLabels { listener })
            .inc_by(delta);
    }

    /// Records when the serving certificate in use expires.
    pub(crate) fn certificate_expires(&self, unix_seconds: f64) {
        self.certificate_expiry.set(unix_seconds);
        #[allow(clippy::cast_possible_truncation)]
        self.expiry.serving_expires(unix_seconds as i64);
    }

    /// Records when the CA of the self-managed certificate expires (Unix seconds).
    pub(crate) fn ca_expires(&self, unix_seconds: i64) {
        self.expiry.ca_expires(unix_seconds);
    }

    /// Self-managed TLS: whether this replica leads (None: not in that mode, not exported).
    pub(crate) fn set_leader(&self, leading: Option<bool>) {
        self.expiry.set_leader(leading);
    }

    /// Counts one finding.
    pub fn finding(&self, rule: &'static str) {
        self.findings.get_or_create(&FindingLabels { rule }).inc();
    }

    /// Records how long a review took.
    pub(crate) fn observe(&self, path: &'static str, seconds: f64) {
        self.duration.get_or_create(&PathLabels { path }).observe(seconds);
    }

    /// Counts a policy reload.
    pub(crate) fn policy_reload(&self, ok: bool, policies: usize) {
        self.policy_reloads
            .get_or_create(&ResultLabels {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
        if ok {
            self.policies_loaded
                .set(i64::try_from(policies).unwrap_or(i64::MAX));
        }
    }

    /// Counts a certificate reload.
    pub(crate) fn cert_reload(&self, ok: bool) {
        self.cert_reloads
            .get_or_create(&ResultLabels {
                result: if ok { "success" } else { "failure" },
            })
            .inc();
    }

    /// Sets how many policies serve.
    pub(crate) fn set_policies(&self, n: usize) {
        self.policies_loaded.set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    /// The text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The plain-HTTP router serving `GET /metrics`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(metrics)
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    match metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Serves the metrics router on `listener` until `shutdown` resolves, with the same connection cap and
/// timeouts as the webhook (a scraper that leaves connections open cannot use up the process's files).
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    limits: super::ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let app = router(Arc::clone(&metrics));
    super::connections::serve(
        listener,
        None,
        app,
        limits,
        metrics,
        "metrics",
        std::time::Duration::from_secs(1),
        shutdown,
    )
    .await;
}

/// Binds the metrics port.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(m: &Metrics, prefix: &str) -> Vec<String> {
        m.encode()
            .unwrap()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn audit_findings_keep_at_most_the_busiest_namespaces_by_name() {
        let m = Metrics::new();
        let mut findings = Vec::new();
        // Namespace ns-000 has 120 findings, ns-001 119, ... ns-119 one.
        for i in 0..120usize {
            for _ in 0..(120 - i) {
                findings.push(("shared-rwo-claim", format!("ns-{i:03}"), "fail"));
            }
        }
        m.audit_pass(Some(&findings), 1_700_000_000);
        let series = lines(&m, "volguard_audit_findings{");
        assert_eq!(series.len(), AUDIT_NAMESPACE_LABELS + 1);
        assert!(series.contains(
            &"volguard_audit_findings{rule=\"shared-rwo-claim\",namespace=\"ns-000\",result=\"fail\"} 120".to_owned()
        ));
        // ns-100 .. ns-119: 20 + 19 + ... + 1.
        assert!(series.contains(
            &"volguard_audit_findings{rule=\"shared-rwo-claim\",namespace=\"_other\",result=\"fail\"} 210".to_owned()
        ));
        assert_eq!(
            lines(&m, "volguard_audit_last_success_timestamp_seconds "),
            ["volguard_audit_last_success_timestamp_seconds 1700000000"]
        );

        // The next pass replaces the last one's series; a failed pass changes none.
        m.audit_pass(
            Some(&[("missing-claim", "shop".to_owned(), "warn")]),
            1_700_000_600,
        );
        m.audit_pass(None, 1_700_001_200);
        assert_eq!(
            lines(&m, "volguard_audit_findings{"),
            ["volguard_audit_findings{rule=\"missing-claim\",namespace=\"shop\",result=\"warn\"} 1"]
        );
        let mut runs = lines(&m, "volguard_audit_runs_total{");
        runs.sort();
        assert_eq!(
            runs,
            [
                "volguard_audit_runs_total{result=\"failure\"} 1",
                "volguard_audit_runs_total{result=\"success\"} 2"
            ]
        );
    }
}
