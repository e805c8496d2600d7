//! `volguard audit`: every workload already in the cluster, judged by [`decision::evaluate`] (the
//! webhook's decision, with the same watch-fed lookups: every user of a claim together), reported like
//! `check`, and with `--write-reports` kept in one policy report per namespace.
//!
//! Bounded: the caches list in pages of 500 (kube's watcher) within `--cluster-timeout`; more than
//! `--max-objects` workloads in scope is a usage error rather than an unbounded report; each report
//! holds at most `--max-report-results` results; every write waits at most `--request-timeout`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use kube::core::{Expression, Selector};

use super::check::ReportArgs;
use super::report::{InputError, Location, ObjectReport, Report, Stage};
use super::{Exit, render};
use crate::adapters::audit::{in_scope, judge, reports};
use crate::adapters::policy_report::{self, ReportApi, WriteLimits};

/// `volguard audit` flags.
#[derive(Clone, Debug, Args)]
pub struct AuditArgs {
    /// The policy and the report, as `check` takes them.
    #[command(flatten)]
    pub report: ReportArgs,
    /// Only this namespace's workloads (default: every namespace). Claims and workloads elsewhere are
    /// still looked up, as the webhook looks them up.
    #[arg(short = 'n', long, value_name = "NAME", env = "VOLGUARD_AUDIT_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only workloads whose labels match this selector, as kubectl's `-l`: `app=web,tier!=cache`,
    /// `env in (prod,staging)`, `!legacy`.
    #[arg(short = 'l', long, value_name = "SELECTOR", env = "VOLGUARD_AUDIT_SELECTOR",
        value_parser = parse_selector, conflicts_with = "write_reports")]
    pub selector: Option<Selector>,
    /// The kubeconfig (default: KUBECONFIG, then ~/.kube/config, or in-cluster).
    #[arg(long, value_name = "PATH", env = "VOLGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context.
    #[arg(long, value_name = "NAME", env = "VOLGUARD_CONTEXT")]
    pub context: Option<String>,
    /// How long to wait for the cluster's claims and workloads to be listed.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_CLUSTER_TIMEOUT", default_value = "30s",
        value_parser = super::serve::parse_duration)]
    pub cluster_timeout: Duration,
    /// Workloads judged at most; more in scope is a usage error (narrow it with -n or -l).
    #[arg(
        long,
        value_name = "N",
        env = "VOLGUARD_AUDIT_MAX_OBJECTS",
        default_value_t = 10_000
    )]
    pub max_objects: usize,
    /// Write one policy report per namespace with the results (and delete volguard's reports of
    /// namespaces with no workload left). Needs get, list, patch and delete on the report kind.
    #[arg(long, env = "VOLGUARD_WRITE_REPORTS")]
    pub write_reports: bool,
    /// With --write-reports: the report API.
    #[arg(long, value_enum, env = "VOLGUARD_REPORT_API", default_value_t = ReportApi::Wgpolicyk8s,
        requires = "write_reports")]
    pub report_api: ReportApi,
    /// With --write-reports: results kept in one namespace's report (failures first); the summary
    /// still counts them all.
    #[arg(
        long,
        value_name = "N",
        env = "VOLGUARD_MAX_REPORT_RESULTS",
        default_value_t = 1000,
        requires = "write_reports"
    )]
    pub max_report_results: usize,
    /// With --write-reports: how long each apply, list page or delete may take.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_REQUEST_TIMEOUT", default_value = "10s",
        value_parser = super::serve::parse_duration, requires = "write_reports")]
    pub request_timeout: Duration,
}

/// Runs `volguard audit`.
pub fn run(args: AuditArgs) -> anyhow::Result<Exit> {
    let AuditArgs {
        report:
            ReportArgs {
                policy,
                output,
                strict,
                verbose,
                color,
            },
        namespace,
        selector,
        kubeconfig,
        context,
        cluster_timeout,
        max_objects,
        write_reports,
        report_api,
        max_report_results,
        request_timeout,
    } = args;
    let fail = |message: &str| -> anyhow::Result<Exit> {
        render::error_line(message, color.into()).context("writing to standard error")?;
        Ok(Exit::Usage)
    };
    let policies = match super::check::load_policies(policy.as_deref()) {
        Ok(p) => p,
        Err(e) => return fail(&e.to_string()),
    };
    let (runtime, lookup, client) =
        match super::check::connect(kubeconfig.as_deref(), context.as_deref(), cluster_timeout) {
            Ok(connected) => connected,
            Err(e) => return fail(&format!("{e:#}")),
        };
    let workloads = match in_scope(&lookup, namespace.as_deref(), selector.as_ref()) {
        Ok(w) => w,
        Err(why) => return fail(&why),
    };
    if workloads.len() > max_objects {
        return fail(&format!(
            "{} workloads to audit, over --max-objects {max_objects}: narrow it with --namespace or --selector, \
             or raise the limit",
            workloads.len()
        ));
    }
    let judged = judge(&workloads, &lookup, &policies);
    let mut objects = Vec::with_capacity(judged.len());
    let mut errors = Vec::new();
    for (workload, j) in &judged {
        match j {
            Ok(evaluation) => objects.push(ObjectReport::at(Location::cluster(), evaluation)),
            Err(message) => errors.push(InputError {
                origin: Location::cluster(),
                stage: Stage::Evaluate,
                at: None,
                object: Some(workload.object_ref().to_string()),
                message: message.clone(),
            }),
        }
    }
    let report = Report::new(objects, Vec::new(), Vec::new(), errors, strict);
    tracing::info!(
        objects = report.summary.objects,
        denied = report.summary.denied,
        warned = report.summary.warned,
        errors = report.summary.input_errors,
        "Audit finished"
    );
    let mut exit = report.exit();
    match render::write(&report, output, verbose, color.into()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        written => written.context("writing the report")?,
    }
    if write_reports {
        let reports = reports(&judged, &policies, report_api, max_report_results);
        let limits = WriteLimits {
            request_timeout,
            pause: Duration::ZERO,
        };
        let written = runtime.block_on(policy_report::write(
            &client,
            report_api,
            &reports,
            namespace.as_deref(),
            limits,
        ));
        match written {
            Ok(w) => {
                tracing::info!(
                    applied = w.applied.len(),
                    deleted = w.deleted.len(),
                    failed = w.failed.len(),
                    "Reports written"
                );
                for e in &w.failed {
                    fail(&format!("writing the policy reports: {e}"))?;
                    exit = Exit::Usage;
                }
            }
            Err(e) => {
                fail(&format!("writing the policy reports: {e}"))?;
                exit = Exit::Usage;
            }
        }
    }
    Ok(exit)
}

/// Parses a label selector as kubectl writes one: comma-separated `k=v`, `k==v`, `k!=v`, `k`, `!k`,
/// `k in (a,b)`, `k notin (a,b)`.
pub(crate) fn parse_selector(text: &str) -> Result<Selector, String> {
    let mut selector = Selector::default();
    let mut rest = text.trim();
    while !rest.is_empty() {
        // A term ends at a comma outside parentheses.
        let mut depth = 0usize;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                *c == ',' && depth == 0
            })
            .map_or(rest.len(), |(i, _)| i);
        let term = rest[..end].trim();
        rest = rest.get(end + 1..).unwrap_or("").trim_start();
        selector.extend([expression(term)?]);
    }
    Ok(selector)
}

fn expression(term: &str) -> Result<Expression, String> {
    let bad =
        || format!("`{term}` is not a label selector term (k=v, k!=v, k, !k, k in (a,b), k notin (a,b))");
    let key_ok = |k: &str| {
        !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
    };
    let value_ok = |v: &str| {
        v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    let set = |values: &str| -> Result<std::collections::BTreeSet<String>, String> {
        let inner = values
            .trim()
            .strip_prefix('(')
            .and_then(|v| v.strip_suffix(')'))
            .ok_or_else(bad)?;
        let set: std::collections::BTreeSet<String> = inner.split(',').map(|v| v.trim().to_owned()).collect();
        if set.iter().any(|v| !value_ok(v)) || set.iter().all(String::is_empty) {
            return Err(bad());
        }
        Ok(set)
    };
    if let Some((k, v)) = term.split_once("!=") {
        let (k, v) = (k.trim(), v.trim());
        return if key_ok(k) && value_ok(v) {
            Ok(Expression::NotEqual(k.to_owned(), v.to_owned()))
        } else {
            Err(bad())
        };
    }
    if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
        let (k, v) = (k.trim(), v.trim());
        return if key_ok(k) && value_ok(v) {
            Ok(Expression::Equal(k.to_owned(), v.to_owned()))
        } else {
            Err(bad())
        };
    }
    if let Some(k) = term.strip_prefix('!') {
        let k = k.trim();
        return if key_ok(k) {
            Ok(Expression::DoesNotExist(k.to_owned()))
        } else {
            Err(bad())
        };
    }
    let mut words = term.splitn(2, char::is_whitespace);
    let key = words.next().unwrap_or_default();
    let rest = words.next().unwrap_or_default().trim_start();
    if !key_ok(key) {
        return Err(bad());
    }
    if rest.is_empty() {
        return Ok(Expression::Exists(key.to_owned()));
    }
    if let Some(values) = rest.strip_prefix("notin") {
        return Ok(Expression::NotIn(key.to_owned(), set(values)?));
    }
    if let Some(values) = rest.strip_prefix("in") {
        return Ok(Expression::In(key.to_owned(), set(values)?));
    }
    Err(bad())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::core::SelectorExt as _;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn selectors_are_parsed_as_kubectl_writes_them() {
        let s = parse_selector("app=web, tier!=cache,env in (prod, staging),!legacy,team").unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,tier!=cache,env in (prod,staging),!legacy,team"
        );
        let good = labels(&[("app", "web"), ("env", "prod"), ("team", "a")]);
        assert!(s.matches(&good));
        let legacy = labels(&[("app", "web"), ("env", "prod"), ("team", "a"), ("legacy", "")]);
        assert!(!s.matches(&legacy));
        let elsewhere = labels(&[("app", "web"), ("env", "dev"), ("team", "a")]);
        assert!(!s.matches(&elsewhere));
        assert_eq!(
            parse_selector("app.kubernetes.io/name==db,x notin (a)")
                .unwrap()
                .to_string(),
            "app.kubernetes.io/name=db,x notin (a)"
        );
        assert!(parse_selector("").unwrap().selects_all());
    }

    #[test]
    fn a_malformed_selector_says_which_term() {
        for (text, term) in [
            ("app=web,=x", "=x"),
            ("env in prod", "env in prod"),
            ("env in ()", "env in ()"),
            ("a b c", "a b c"),
            ("app=we b", "app=we b"),
        ] {
            assert_eq!(
                parse_selector(text).unwrap_err(),
                format!(
                    "`{term}` is not a label selector term (k=v, k!=v, k, !k, k in (a,b), k notin (a,b))"
                ),
                "{text}"
            );
        }
    }
}
