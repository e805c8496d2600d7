//! Whether every pod of a workload must land on one node.
//!
//! ReadWriteOnce is a per-*node* limit: pods that share a node can share an RWO volume. A workload is
//! pinned when the scheduler can only put all its pods on a single node: `nodeName`, a `nodeSelector` or
//! required node affinity on `kubernetes.io/hostname` with one value, or a required pod affinity to its own
//! labels on the hostname topology. See
//! <https://kubernetes.io/docs/concepts/scheduling-eviction/assign-pod-node/>.

use std::fmt;

use k8s_openapi::api::core::v1::{NodeSelectorTerm, PodTemplateSpec};

use crate::labels;

/// The well-known node label holding the node's name.
pub const HOSTNAME_LABEL: &str = "kubernetes.io/hostname";

/// How a workload's pods are held on one node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// `spec.nodeName`, a hostname `nodeSelector`, or required node affinity naming one node.
    Node(String),
    /// A required pod affinity to the workload's own labels with `topologyKey: kubernetes.io/hostname`.
    CoLocated,
}

impl fmt::Display for Pinning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pinning::Node(n) => write!(f, "pinned to node {n}"),
            Pinning::CoLocated => {
                f.write_str("co-located on one node by a required pod affinity to its own labels")
            }
        }
    }
}

impl Pinning {
    /// Reads a pod template's scheduling constraints.
    pub fn of(template: &PodTemplateSpec) -> Option<Self> {
        let spec = template.spec.as_ref()?;
        if let Some(node) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
            return Some(Pinning::Node(node.clone()));
        }
        if let Some(host) = spec.node_selector.as_ref().and_then(|s| s.get(HOSTNAME_LABEL)) {
            return Some(Pinning::Node(host.clone()));
        }
        let affinity = spec.affinity.as_ref();
        let required_terms = affinity
            .and_then(|a| a.node_affinity.as_ref())
            .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref())
            .map(|r| r.node_selector_terms.as_slice());
        if let Some(node) = required_terms.and_then(single_node) {
            return Some(Pinning::Node(node));
        }
        let own_labels = template.metadata.as_ref().and_then(|m| m.labels.as_ref());
        let co_located = affinity
            .and_then(|a| a.pod_affinity.as_ref())
            .and_then(|p| p.required_during_scheduling_ignored_during_execution.as_ref())
            .into_iter()
            .flatten()
            .any(|term| {
                // A term limited to other namespaces does not select the workload's own pods.
                term.topology_key == HOSTNAME_LABEL
                    && term.namespaces.as_ref().is_none_or(|n| n.is_empty())
                    && term.namespace_selector.is_none()
                    && term
                        .label_selector
                        .as_ref()
                        .is_some_and(|s| !is_empty(s) && labels::matches(s, own_labels))
            });
        co_located.then_some(Pinning::CoLocated)
    }
}

/// An empty selector matches every pod in the namespace: each replica then only needs *some* pod beside
/// it, on any node, which pins nothing.
fn is_empty(s: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector) -> bool {
    s.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && s.match_expressions.as_ref().is_none_or(|e| e.is_empty())
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

    fn template(spec: serde_json::Value) -> PodTemplateSpec {
        serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}}, "spec": spec})).unwrap()
    }

    fn containers() -> serde_json::Value {
        json!([{"name": "app", "image": "nginx"}])
    }

    #[test]
    fn node_name_and_hostname_selector_pin() {
        let t = template(json!({"containers": containers(), "nodeName": "n1"}));
        assert_eq!(Pinning::of(&t), Some(Pinning::Node("n1".into())));
        let t =
            template(json!({"containers": containers(), "nodeSelector": {"kubernetes.io/hostname": "n2"}}));
        assert_eq!(Pinning::of(&t), Some(Pinning::Node("n2".into())));
        let t = template(json!({"containers": containers(), "nodeSelector": {"disktype": "ssd"}}));
        assert_eq!(Pinning::of(&t), None);
    }

    fn node_affinity(terms: serde_json::Value) -> PodTemplateSpec {
        template(json!({"containers": containers(), "affinity": {"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}}}))
    }

    #[test]
    fn required_node_affinity_pins_only_to_one_value() {
        let one = json!([{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]}]);
        assert_eq!(Pinning::of(&node_affinity(one)), Some(Pinning::Node("n1".into())));
        let two = json!([{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1", "n2"]}]}]);
        assert_eq!(Pinning::of(&node_affinity(two)), None);
        let ored = json!([
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]}]},
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["n2"]}]}]);
        assert_eq!(Pinning::of(&node_affinity(ored)), None);
        let fields = json!([{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n3"]}]}]);
        assert_eq!(
            Pinning::of(&node_affinity(fields)),
            Some(Pinning::Node("n3".into()))
        );
    }

    #[test]
    fn pod_affinity_to_own_labels_on_hostname_co_locates() {
        let own = template(json!({"containers": containers(), "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname",
              "labelSelector": {"matchLabels": {"app": "web"}}}]}}}));
        assert_eq!(Pinning::of(&own), Some(Pinning::CoLocated));
        let other = template(json!({"containers": containers(), "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname",
              "labelSelector": {"matchLabels": {"app": "cache"}}}]}}}));
        assert_eq!(Pinning::of(&other), None);
        let zone = template(json!({"containers": containers(), "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "topology.kubernetes.io/zone",
              "labelSelector": {"matchLabels": {"app": "web"}}}]}}}));
        assert_eq!(Pinning::of(&zone), None);
        let anyone = template(json!({"containers": containers(), "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "kubernetes.io/hostname",
              "labelSelector": {}}]}}}));
        assert_eq!(
            Pinning::of(&anyone),
            None,
            "an empty selector matches any pod, on any node"
        );
    }
}
