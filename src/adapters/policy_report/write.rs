//! Writing the reports: the listing of volguard's reports (which also tells whether the API server serves
//! the report kind), a server-side apply per namespace (field manager `volguard`), then the deletion of
//! volguard's reports in namespaces that have nothing left to report. Every request is bounded by a
//! timeout, and the listing by a page size and a page count. One namespace that cannot be written (gone,
//! terminating, forbidden) is recorded in [`Written::failed`] and the others are still written.

use std::collections::BTreeSet;
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};

use super::{MANAGED_BY, PolicyReport, REPORT_NAME, ReportApi};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "volguard";
/// Reports listed per page when looking for stale ones.
const PAGE_SIZE: u32 = 500;
/// Pages listed at most (so at most 50,000 namespaces' reports are looked at).
const MAX_PAGES: usize = 100;

/// How long each request may take.
#[derive(Clone, Copy, Debug)]
pub struct WriteLimits {
    /// One apply, list page or delete.
    pub request_timeout: Duration,
    /// The pause after each request: the background audit's rate limit (zero for `volguard audit`).
    pub pause: Duration,
}

/// What a write did.
#[derive(Debug, Default)]
pub struct Written {
    /// `namespace/name` of every report applied.
    pub applied: Vec<String>,
    /// `namespace/name` of every stale report deleted.
    pub deleted: Vec<String>,
    /// Every apply or delete that failed, and why.
    pub failed: Vec<WriteError>,
}

/// Why reports could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The API server does not serve the report kind.
    #[error(
        "the API server does not serve {kind} ({api_version}): install its CRD (the chart's \
         reports.installCRDs, or charts/volguard/files/crds/)"
    )]
    NotInstalled {
        /// The kind.
        kind: &'static str,
        /// Its apiVersion.
        api_version: String,
    },
    /// A request failed.
    #[error("{what}: {source}")]
    Request {
        /// What was being done.
        what: String,
        /// The API server's answer.
        #[source]
        source: kube::Error,
    },
    /// A request took longer than allowed.
    #[error("{what}: no answer within {}s", .timeout.as_secs_f64())]
    Timeout {
        /// What was being done.
        what: String,
        /// The limit.
        timeout: Duration,
    },
}

async fn bounded<T>(
    what: impl Fn() -> String,
    limits: WriteLimits,
    request: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, WriteError> {
    let answer = tokio::time::timeout(limits.request_timeout, request).await;
    if !limits.pause.is_zero() {
        tokio::time::sleep(limits.pause).await;
    }
    match answer {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(source)) => Err(WriteError::Request { what: what(), source }),
        Err(_) => Err(WriteError::Timeout {
            what: what(),
            timeout: limits.request_timeout,
        }),
    }
}

fn not_served(e: &WriteError) -> bool {
    matches!(e, WriteError::Request { source: kube::Error::Api(s), .. } if s.code == 404)
}

/// Lists volguard's reports in `scope` (None: all namespaces), applies `reports`, then deletes volguard's
/// reports (by the [`MANAGED_BY`] label and name) in the namespaces no report was written for. An error
/// only when the report kind is not served or the listing fails; a failed apply or delete is in
/// [`Written::failed`].
pub async fn write(
    client: &Client,
    api: ReportApi,
    reports: &[PolicyReport],
    scope: Option<&str>,
    limits: WriteLimits,
) -> Result<Written, WriteError> {
    let (group, version, kind, plural) = api.gvk();
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
    // A 404 on the collection, and only there, means the kind is not served: on one report it may mean
    // its namespace is gone.
    let existing = match list_reports(client, &resource, scope, limits, kind).await {
        Err(e) if not_served(&e) => {
            return Err(WriteError::NotInstalled {
                kind,
                api_version: format!("{group}/{version}"),
            });
        }
        listed => listed?,
    };
    let mut written = Written::default();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mut kept = BTreeSet::new();
    for report in reports {
        let namespace = report.metadata.namespace.as_deref().unwrap_or_default();
        kept.insert(namespace.to_owned());
        let reports: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let what = || format!("applying {kind} {namespace}/{REPORT_NAME}");
        match bounded(
            what,
            limits,
            reports.patch(REPORT_NAME, &params, &Patch::Apply(report)),
        )
        .await
        {
            Ok(_) => written.applied.push(format!("{namespace}/{REPORT_NAME}")),
            Err(e) => written.failed.push(e),
        }
    }
    for namespace in existing.iter().filter(|ns| !kept.contains(*ns)) {
        let reports: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &resource);
        let what = || format!("deleting the stale {kind} {namespace}/{REPORT_NAME}");
        match bounded(
            what,
            limits,
            reports.delete(REPORT_NAME, &DeleteParams::default()),
        )
        .await
        {
            Ok(_) => written.deleted.push(format!("{namespace}/{REPORT_NAME}")),
            // Gone already: what was wanted.
            Err(e) if not_served(&e) => {}
            Err(e) => written.failed.push(e),
        }
    }
    Ok(written)
}

/// The namespaces in `scope` that hold volguard's report, page by page (at most [`MAX_PAGES`]).
async fn list_reports(
    client: &Client,
    resource: &ApiResource,
    scope: Option<&str>,
    limits: WriteLimits,
    kind: &str,
) -> Result<BTreeSet<String>, WriteError> {
    let listed: Api<DynamicObject> = match scope {
        Some(ns) => Api::namespaced_with(client.clone(), ns, resource),
        None => Api::all_with(client.clone(), resource),
    };
    let mut list = ListParams::default()
        .labels(&format!("{}={}", MANAGED_BY.0, MANAGED_BY.1))
        .limit(PAGE_SIZE);
    let mut namespaces = BTreeSet::new();
    for _ in 0..MAX_PAGES {
        let page = bounded(
            || format!("listing volguard's {kind}s"),
            limits,
            listed.list(&list),
        )
        .await?;
        for item in &page.items {
            if item.metadata.name.as_deref() == Some(REPORT_NAME) {
                namespaces.insert(item.metadata.namespace.clone().unwrap_or_default());
            }
        }
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => list = list.continue_token(&token),
            None => break,
        }
    }
    Ok(namespaces)
}
