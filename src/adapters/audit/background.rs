//! `serve --audit-interval`: the replica holding the audit Lease judges every workload of its watch-fed
//! caches with the policies it serves, and keeps the policy reports: every interval, and soon after the
//! caches change.
//!
//! One replica at a time (the Lease election of `managed_tls::lease`, released on shutdown), one pass
//! at a time, and each pass's writes paced (`pause` after each request, each request within its
//! timeout). A pass starts `--audit-interval` after the last one started, or sooner when a watch event
//! changed what the caches hold ([`ClusterLookup::changes`]): [`SETTLE`] after that event, so that
//! the objects of one `kubectl apply` are judged in one pass, and never sooner than [`MIN_INTERVAL`]
//! after the last pass started, so a busy cluster gets at most one pass per [`MIN_INTERVAL`]
//! ([`next_start`]). An event that changes only what the caches leave out (a status update) starts
//! nothing. The judging runs in the blocking pool, so reviews keep their threads.

use std::sync::Arc;
use std::time::Duration;

use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::{Judgement, in_scope, judge, reports};
use crate::adapters::kube_lookup::ClusterLookup;
use crate::adapters::managed_tls::lease::{self, LeaseConfig};
use crate::adapters::policy_report::{self, Outcome, ReportApi, WriteLimits};
use crate::adapters::server::AppState;
use crate::domain::rules::RuleId;

/// The shortest interval between the starts of two passes, whatever starts them.
pub(crate) const MIN_INTERVAL: Duration = Duration::from_secs(10);

/// After a change to the caches, how long more changes may land before the pass they start.
pub(crate) const SETTLE: Duration = Duration::from_secs(2);

/// When the next pass starts, the last having started at `started`: `interval` later, or, when the
/// caches changed at `changed_at`, [`SETTLE`] after that but no sooner than [`MIN_INTERVAL`] after
/// `started`.
fn next_start(started: Instant, interval: Duration, changed_at: Option<Instant>) -> Instant {
    let periodic = started + interval;
    changed_at.map_or(periodic, |at| {
        periodic.min((at + SETTLE).max(started + MIN_INTERVAL))
    })
}

/// How the background audit runs.
#[derive(Clone, Debug)]
pub(crate) struct BackgroundAudit {
    /// Time between the starts of two passes (at least [`MIN_INTERVAL`]).
    pub(crate) interval: Duration,
    /// Only this namespace (None: all).
    pub(crate) namespace: Option<String>,
    /// The report API written.
    pub(crate) api: ReportApi,
    /// Workloads judged at most; a cluster with more fails the pass, saying so.
    pub(crate) max_objects: usize,
    /// Results kept in one namespace's report.
    pub(crate) max_results: usize,
    /// Each request's timeout, and the pause after it.
    pub(crate) limits: WriteLimits,
    /// The Lease that elects the replica that audits.
    pub(crate) lease: LeaseConfig,
}

/// The running background audit.
#[derive(Debug)]
pub(crate) struct Running {
    lease_task: tokio::task::JoinHandle<()>,
    audit_task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Waits until the audit has stopped and the Lease is released: call after `stop` turned true.
    pub(crate) async fn finish(self) {
        let _ = self.audit_task.await;
        let _ = self.lease_task.await;
    }
}

/// Starts the election and the audit loop; both end when `stop` turns true.
pub(crate) fn start(
    client: Client,
    cluster: Arc<ClusterLookup>,
    state: Arc<AppState>,
    config: BackgroundAudit,
    stop: watch::Receiver<bool>,
) -> Running {
    let (leading_tx, leading) = watch::channel(false);
    let leases = Api::namespaced(client.clone(), &config.lease.namespace);
    let lease_task = tokio::spawn(lease::run(leases, config.lease.clone(), leading_tx, stop.clone()));
    let audit_task = tokio::spawn(run(client, cluster, state, config, leading, stop));
    Running {
        lease_task,
        audit_task,
    }
}

async fn run(
    client: Client,
    cluster: Arc<ClusterLookup>,
    state: Arc<AppState>,
    config: BackgroundAudit,
    mut leading: watch::Receiver<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let interval = config.interval.max(MIN_INTERVAL);
    let mut changes = cluster.changes();
    let mut watching = true;
    loop {
        tokio::select! {
            r = leading.wait_for(|l| *l) => if r.is_err() { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        tokio::select! {
            synced = cluster.wait_synced() => if !synced { return },
            _ = stop.wait_for(|s| *s) => return,
        }
        // What changes from here on is not in this pass's snapshot: it starts the next one.
        changes.borrow_and_update();
        let started = Instant::now();
        // A replica that loses the Lease mid-pass stops writing: the new leader writes the reports.
        let outcome = tokio::select! {
            o = pass(&client, &cluster, &state, &config) => o,
            _ = leading.wait_for(|l| !*l) => continue,
            _ = stop.wait_for(|s| *s) => return,
        };
        let now = crate::adapters::server::start::unix_now();
        match outcome {
            Ok(findings) => state.metrics.audit_pass(Some(&findings), now),
            Err(e) => {
                warn!(error = %e, "Background audit failed; trying again at the next interval");
                state.metrics.audit_pass(None, now);
            }
        }
        let mut changed_at = None;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_start(started, interval, changed_at)) => break,
                r = changes.changed(), if watching && changed_at.is_none() => match r {
                    Ok(()) => {
                        debug!("The caches changed; auditing again soon");
                        changed_at = Some(Instant::now());
                    }
                    Err(_) => watching = false,
                },
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

/// (rule, namespace, result) of every failed, warned or errored result of a pass.
type Findings = Vec<(&'static str, String, &'static str)>;

/// One pass: judge, write the reports, and return the findings for the metrics.
async fn pass(
    client: &Client,
    cluster: &Arc<ClusterLookup>,
    state: &Arc<AppState>,
    config: &BackgroundAudit,
) -> Result<Findings, String> {
    let workloads = in_scope(cluster, config.namespace.as_deref(), None)?;
    if workloads.len() > config.max_objects {
        return Err(format!(
            "{} workloads to audit, over --audit-max-objects {}",
            workloads.len(),
            config.max_objects
        ));
    }
    let policies = state.policies();
    let lookup = Arc::clone(cluster);
    let judged = tokio::task::spawn_blocking(move || judge(&workloads, lookup.as_ref(), &policies))
        .await
        .map_err(|e| format!("the audit's judging task failed: {e}"))?;
    let reports = reports(&judged, &state.policies(), config.api, config.max_results);
    let findings = findings(&judged);
    let scope = config.namespace.as_deref();
    let written = policy_report::write(client, config.api, &reports, scope, config.limits)
        .await
        .map_err(|e| e.to_string())?;
    info!(
        workloads = judged.len(),
        findings = findings.len(),
        applied = written.applied.len(),
        deleted = written.deleted.len(),
        failed = written.failed.len(),
        "Background audit pass"
    );
    // The other namespaces' reports are written; the pass counts as failed, saying which were not.
    if !written.failed.is_empty() {
        let errors: Vec<String> = written.failed.iter().map(ToString::to_string).collect();
        return Err(errors.join("; "));
    }
    Ok(findings)
}

/// The failed, warned and errored results of a pass, counted from the judgements, not the reports: a
/// report keeps at most `--audit-max-report-results`.
fn findings(judged: &[Judgement]) -> Findings {
    let mut out = Findings::new();
    for (workload, evaluation) in judged {
        let namespace = crate::domain::workload::namespace_of(workload.metadata());
        match evaluation {
            Ok(e) => out.extend(e.findings.iter().filter_map(|j| {
                let result = match policy_report::outcome(j) {
                    Outcome::Fail => "fail",
                    Outcome::Warn => "warn",
                    Outcome::Error => "error",
                    Outcome::Pass | Outcome::Skip => return None,
                };
                Some((j.finding.rule.as_str(), namespace.to_owned(), result))
            })),
            Err(_) => out.push((RuleId::LookupFailed.as_str(), namespace.to_owned(), "error")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_brings_the_next_pass_forward_but_never_under_the_minimum_gap() {
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        let s = Duration::from_secs;
        // Nothing changed: the interval.
        assert_eq!(next_start(t0, hour, None), t0 + hour);
        // A change late after the last start: SETTLE after it.
        assert_eq!(next_start(t0, hour, Some(t0 + s(60))), t0 + s(60) + SETTLE);
        // A change right after the last start: no sooner than MIN_INTERVAL after it.
        assert_eq!(next_start(t0, hour, Some(t0 + s(1))), t0 + MIN_INTERVAL);
        // A change just before the periodic pass: the periodic pass, not later.
        let interval = s(30);
        assert_eq!(next_start(t0, interval, Some(t0 + s(29))), t0 + interval);
    }

    #[test]
    fn the_findings_metric_counts_every_finding_however_few_results_a_report_keeps() {
        use crate::domain::workload::{Decoded, decode};
        let resource = |v: serde_json::Value| match decode(v) {
            Ok(Decoded::Resource(r)) => *r,
            other => panic!("{other:?}"),
        };
        let mut objects = vec![resource(
            serde_json::json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        )];
        for name in ["a", "b", "c"] {
            objects.push(resource(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": "shop"},
                "spec": {"replicas": 3, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}}, "spec": {
                        "containers": [{"name": "web", "image": "nginx",
                            "volumeMounts": [{"name": "data", "mountPath": "/d"}]}],
                        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]}}}})));
        }
        let lookup = ClusterLookup::from_objects(objects);
        let workloads = in_scope(&lookup, None, None).unwrap();
        let policies = crate::domain::policy::PolicySet::builtin().unwrap();
        let judged = judge(&workloads, &lookup, &policies);
        let reports = reports(&judged, &policies, ReportApi::Wgpolicyk8s, 1);
        let failed_in_report = reports[0]
            .results
            .iter()
            .filter(|r| r.result == Outcome::Fail)
            .count();
        assert_eq!(failed_in_report, 1, "the report keeps one result");
        let counted = findings(&judged);
        assert_eq!(
            counted,
            vec![("shared-rwo-claim", "shop".to_owned(), "fail"); 3],
            "each Deployment's finding is counted"
        );
    }
}
