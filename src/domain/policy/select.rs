//! `match` and `exclude`: kinds, namespaces and a label selector, every criterion set must hold.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::domain::labels;
use crate::domain::workload::Kind;

/// What a policy's selection is matched against.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The reviewed object's kind, and for an HPA or Scale the kind of the workload it resizes.
    pub kinds: Vec<Kind>,
    /// The object's namespace.
    pub namespace: &'a str,
    /// The labels selectors read: the object's, or for an HPA or Scale its target workload's.
    pub labels: Option<&'a BTreeMap<String, String>>,
}

/// A validated `match` or `exclude`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Criteria {
    pub(crate) kinds: Vec<Kind>,
    pub(crate) namespaces: Vec<String>,
    pub(crate) selector: Option<LabelSelector>,
}

impl Criteria {
    pub(crate) fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.namespaces.is_empty() && self.selector.is_none()
    }

    pub(crate) fn holds_for(&self, t: &Target<'_>) -> bool {
        (self.kinds.is_empty() || t.kinds.iter().any(|k| self.kinds.contains(k)))
            && (self.namespaces.is_empty() || self.namespaces.iter().any(|n| n == t.namespace))
            && self
                .selector
                .as_ref()
                .is_none_or(|s| labels::matches(s, t.labels))
    }
}
