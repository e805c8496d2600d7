//! Auditing what is already in the cluster: the workloads of the watch-fed caches in scope, each judged by
//! [`decision::evaluate`] (the webhook's decision), and the policy reports of the results. `volguard audit`
//! runs it once; `serve --audit-interval` runs it in the background ([`background`]).

pub(crate) mod background;

use std::collections::BTreeMap;
use std::sync::Arc;

use kube::core::{Selector, SelectorExt as _};

use crate::adapters::kube_lookup::ClusterLookup;
use crate::adapters::policy_report::{self, PolicyReport, ReportApi, ReportResult};
use crate::decision::{self, Evaluation};
use crate::domain::lookup::{Answer, Lookup};
use crate::domain::policy::PolicySet;
use crate::domain::workload::{Resource, Workload};

/// A workload and its evaluation (or why it could not be judged).
pub type Judgement = (Arc<Workload>, Result<Evaluation, String>);

/// The cached workloads no controller owns, in `namespace` (None: all) and matching `selector`, by
/// namespace, kind and name. An error when the caches have not synced.
pub fn in_scope(
    lookup: &ClusterLookup,
    namespace: Option<&str>,
    selector: Option<&Selector>,
) -> Result<Vec<Arc<Workload>>, String> {
    static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
    let all = match lookup.judged_workloads() {
        Answer::Found(all) => all,
        Answer::Missing => Vec::new(),
        Answer::Unknown(why) => return Err(why),
    };
    Ok(all
        .into_iter()
        .filter(|w| namespace.is_none_or(|ns| w.object_ref().namespace == ns))
        .filter(|w| selector.is_none_or(|s| s.matches(w.metadata().labels.as_ref().unwrap_or(&NO_LABELS))))
        .collect())
}

/// Each workload judged as the webhook judges its creation (spread over the cores: CPU only, no I/O).
pub fn judge(workloads: &[Arc<Workload>], lookup: &dyn Lookup, policies: &PolicySet) -> Vec<Judgement> {
    use rayon::prelude::*;
    workloads
        .par_iter()
        .map(|w| {
            let resource = Resource::Workload((**w).clone());
            let evaluation = decision::evaluate(&resource, lookup, policies).map_err(|e| e.to_string());
            (Arc::clone(w), evaluation)
        })
        .collect()
}

/// One report per namespace with a judged workload, its objects in namespace, kind and name order.
pub fn reports(
    judged: &[Judgement],
    policies: &PolicySet,
    api: ReportApi,
    max_results: usize,
) -> Vec<PolicyReport> {
    let mut by_namespace: BTreeMap<String, Vec<ReportResult>> = BTreeMap::new();
    for (workload, evaluation) in judged {
        let object = policy_report::reference(workload);
        let results = match evaluation {
            Ok(e) => policy_report::results(&object, e, policies),
            Err(message) => vec![policy_report::error_result(&object, message)],
        };
        by_namespace
            .entry(object.namespace.clone())
            .or_default()
            .extend(results);
    }
    by_namespace
        .into_iter()
        .map(|(ns, results)| policy_report::build(api, &ns, results, max_results))
        .collect()
}
