//! Where a workload's pods may land, as far as its pod spec says: held on one named node, or placed by
//! required pod affinities on the hostname topology (which pods they must join is resolved later, against
//! the other workloads, in [`crate::domain::footprint`]).
//!
//! ReadWriteOnce is a per-*node* limit: pods that share a node can share an RWO volume. A node pin is
//! `nodeName`, a `nodeSelector` or required node affinity on `kubernetes.io/hostname` with one value.
//! See <https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/>.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PodAffinityTerm, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The well-known node label holding the node's name.
pub(crate) const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";
/// The label the API server gives every namespace, with the namespace's name.
pub(crate) const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";
/// The label the Deployment controller puts on each ReplicaSet's pods: one value per revision.
pub(crate) const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// Where a workload's pods may be scheduled.
#[derive(Clone, Debug, PartialEq)]
pub enum Placement {
    /// `spec.nodeName`, a hostname `nodeSelector`, or required node affinity naming one node.
    Node(String),
    /// Anywhere the scheduler likes, subject to these required pod affinities on the hostname topology
    /// (none: anywhere at all).
    Affinity(Vec<HostAffinity>),
}

/// A required pod-affinity term with `topologyKey: kubernetes.io/hostname`: each pod must land on a node
/// that already runs a pod the term selects (the first one, if it selects itself, anywhere).
#[derive(Clone, Debug, PartialEq)]
pub struct HostAffinity {
    /// The term's `labelSelector` with its `matchLabelKeys`/`mismatchLabelKeys` merged in for the keys the
    /// pod's own labels have (as the API server merges them at pod creation). None selects no pod.
    pub selector: Option<LabelSelector>,
    /// Which namespaces' pods the term looks at.
    pub namespaces: TermNamespaces,
    /// `matchLabelKeys: [pod-template-hash]`: the term selects only pods of the same ReplicaSet revision,
    /// so during a rolling update the new revision's first pod may land anywhere.
    pub per_revision: bool,
    /// The term cannot be resolved against known pods (`mismatchLabelKeys` on a value only the controller
    /// knows): it never counts as holding pods together.
    pub opaque: bool,
}

/// The namespaces a pod-affinity term reads pods from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TermNamespaces {
    /// The pod's own (no `namespaces`, no `namespaceSelector`).
    Own,
    /// These, by name (from `namespaces`, and a `namespaceSelector` on `kubernetes.io/metadata.name`).
    Named(Vec<String>),
    /// Namespaces chosen by labels volguard cannot see (any other `namespaceSelector`, `{}` included).
    Any,
}

impl TermNamespaces {}

impl Placement {
    /// Reads a pod spec's scheduling constraints; `labels` are the pod's (for `matchLabelKeys`).
    pub fn of(spec: &PodSpec, labels: &BTreeMap<String, String>) -> Self {
        if let Some(node) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
            return Placement::Node(node.clone());
        }
        if let Some(host) = spec.node_selector.as_ref().and_then(|s| s.get(HOSTNAME_LABEL)) {
            return Placement::Node(host.clone());
        }
        let affinity = spec.affinity.as_ref();
        let required_terms = affinity
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|r| r.node_selector_terms.as_slice());
        if let Some(node) = required_terms.and_then(single_node) {
            return Placement::Node(node);
        }
        let terms = affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|p| p.required_during_scheduling_ignored_during_execution.as_ref())
            .into_iter()
            .flatten()
            .filter(|t| t.topology_key == HOSTNAME_LABEL)
            .map(|t| HostAffinity::of(t, labels))
            .collect();
        Placement::Affinity(terms)
    }

    /// The node every pod is pinned to, if any.
    pub fn node(&self) -> Option<&str> {
        match self {
            Placement::Node(n) => Some(n),
            Placement::Affinity(_) => None,
        }
    }
}

impl HostAffinity {
    fn of(term: &PodAffinityTerm, labels: &BTreeMap<String, String>) -> Self {
        let mut selector = term.label_selector.clone();
        let mut per_revision = false;
        let mut opaque = false;
        let mut merge = |key: &str, operator: &str| {
            if key == POD_TEMPLATE_HASH && !labels.contains_key(key) {
                // Only the Deployment controller knows the value (set on the ReplicaSet's pods).
                match operator {
                    "In" => per_revision = true,
                    _ => opaque = true,
                }
                return;
            }
            // Keys the pod does not have are ignored, as the API server ignores them.
            if let (Some(value), Some(s)) = (labels.get(key), selector.as_mut()) {
                s.match_expressions
                    .get_or_insert_with(Vec::new)
                    .push(LabelSelectorRequirement {
                        key: key.to_owned(),
                        operator: operator.to_owned(),
                        values: Some(vec![value.clone()]),
                    });
            }
        };
        for key in term.match_label_keys.iter().flatten() {
            merge(key, "In");
        }
        for key in term.mismatch_label_keys.iter().flatten() {
            merge(key, "NotIn");
        }
        Self {
            selector,
            namespaces: term_namespaces(term),
            per_revision,
            opaque,
        }
    }
}

fn term_namespaces(term: &PodAffinityTerm) -> TermNamespaces {
    let mut names: Vec<String> = term.namespaces.clone().unwrap_or_default();
    match &term.namespace_selector {
        None if names.is_empty() => return TermNamespaces::Own,
        None => {}
        Some(selector) => match names_selected(selector) {
            Some(more) => names.extend(more),
            None => return TermNamespaces::Any,
        },
    }
    names.sort();
    names.dedup();
    TermNamespaces::Named(names)
}

/// The namespaces a namespace selector picks by name alone (`kubernetes.io/metadata.name`), or None when it
/// reads other labels (or none: `{}` selects every namespace).
fn names_selected(selector: &LabelSelector) -> Option<Vec<String>> {
    let mut sets: Vec<Vec<String>> = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        if k != NAMESPACE_NAME_LABEL {
            return None;
        }
        sets.push(vec![v.clone()]);
    }
    for r in selector.match_expressions.iter().flatten() {
        if r.key != NAMESPACE_NAME_LABEL || r.operator != "In" {
            return None;
        }
        sets.push(r.values.clone().unwrap_or_default());
    }
    // Requirements are ANDed: the names in every set.
    let mut sets = sets.into_iter();
    let first = sets.next()?;
    Some(
        first
            .into_iter()
            .filter(|n| sets.clone().all(|s| s.contains(n)))
            .collect(),
    )
}

/// Node selector terms are ORed: the pods are pinned only when every term names the same single node.
fn single_node(terms: &[NodeSelectorTerm]) -> Option<String> {
    let mut node: Option<String> = None;
    for term in terms {
        let this = term_node(term)?;
        match &node {
            Some(n) if *n != this => return None,
            _ => node = Some(this),
        }
    }
    node
}

/// Requirements inside one term are ANDed: one that fixes the hostname (or `metadata.name`) to a single
/// value pins the term.
fn term_node(term: &NodeSelectorTerm) -> Option<String> {
    let single = |op: &str, values: Option<&Vec<String>>| match (op, values.map(Vec::as_slice)) {
        ("In", Some([v])) => Some(v.clone()),
        _ => None,
    };
    let by_label = term
        .match_expressions
        .iter()
        .flatten()
        .filter(|r| r.key == HOSTNAME_LABEL)
        .find_map(|r| single(&r.operator, r.values.as_ref()));
    by_label.or_else(|| {
        term.match_fields
            .iter()
            .flatten()
            .filter(|r| r.key == "metadata.name")
            .find_map(|r| single(&r.operator, r.values.as_ref()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_owned(), "web".to_owned())])
    }

    fn placement(spec: serde_json::Value) -> Placement {
        let mut spec = spec;
        spec["containers"] = json!([{"name": "app", "image": "nginx"}]);
        Placement::of(&serde_json::from_value(spec).unwrap(), &labels())
    }

    fn affinity(term: serde_json::Value) -> Placement {
        placement(
            json!({"affinity": {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}}),
        )
    }

    #[test]
    fn node_name_and_hostname_selector_pin() {
        assert_eq!(placement(json!({"nodeName": "n1"})), Placement::Node("n1".into()));
        assert_eq!(
            placement(json!({"nodeSelector": {"kubernetes.io/hostname": "n2"}})),
            Placement::Node("n2".into())
        );
        assert_eq!(
            placement(json!({"nodeSelector": {"disktype": "ssd"}})),
            Placement::Affinity(vec![])
        );
        assert_eq!(placement(json!({"nodeName": ""})), Placement::Affinity(vec![]));
    }

    fn node_affinity(terms: serde_json::Value) -> Placement {
        placement(json!({"affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}))
    }

    #[test]
    fn required_node_affinity_pins_only_to_one_value() {
        let one = json!([{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]);
        assert_eq!(node_affinity(one), Placement::Node("n1".into()));
        let two = json!([{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}]}]);
        assert_eq!(node_affinity(two), Placement::Affinity(vec![]));
        let ored = json!([
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]},
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]);
        assert_eq!(node_affinity(ored), Placement::Affinity(vec![]));
        let fields = json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]}]);
        assert_eq!(node_affinity(fields), Placement::Node("n3".into()));
    }

    fn only_term(p: Placement) -> HostAffinity {
        match p {
            Placement::Affinity(mut terms) if terms.len() == 1 => terms.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostname_terms_are_kept_with_their_namespaces_and_zone_terms_dropped() {
        let t = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app": "web"}}})));
        assert_eq!(t.namespaces, TermNamespaces::Own);
        assert!(!t.per_revision && !t.opaque);
        let zone = affinity(json!({"topologyKey": "topology.kubernetes.io/zone",
            "labelSelector": {"matchLabels": {"app": "web"}}}));
        assert_eq!(zone, Placement::Affinity(vec![]));
        let named = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "namespaces": ["shop"], "labelSelector": {"matchLabels": {"app": "web"}}})));
        assert_eq!(named.namespaces, TermNamespaces::Named(vec!["shop".into()]));
        let by_name = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                "values": ["shop", "ops"]}]},
            "labelSelector": {"matchLabels": {"app": "web"}}})));
        assert_eq!(
            by_name.namespaces,
            TermNamespaces::Named(vec!["ops".into(), "shop".into()])
        );
        let all = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "namespaceSelector": {}, "labelSelector": {"matchLabels": {"app": "web"}}})));
        assert_eq!(all.namespaces, TermNamespaces::Any);
        let by_team = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "namespaceSelector": {"matchLabels": {"team": "a"}}, "labelSelector": {}})));
        assert_eq!(by_team.namespaces, TermNamespaces::Any);
    }

    #[test]
    fn label_keys_merge_like_the_api_server() {
        let t = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"tier": "x"}},
            "matchLabelKeys": ["app", "absent", "pod-template-hash"]})));
        assert!(t.per_revision);
        let selector = t.selector.unwrap();
        let exprs = selector.match_expressions.unwrap();
        assert_eq!(exprs.len(), 1, "a key the pod lacks is ignored: {exprs:?}");
        assert_eq!((exprs[0].key.as_str(), exprs[0].operator.as_str()), ("app", "In"));
        let t = only_term(affinity(json!({"topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": {"app": "web"}}, "mismatchLabelKeys": ["pod-template-hash"]})));
        assert!(t.opaque);
    }
}
