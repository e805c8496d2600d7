//! Label selectors, matched as the API server matches them.
//!
//! `matchLabels` and every `matchExpressions` entry are ANDed; an empty selector matches everything.
//! See <https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors>.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::{Selector, SelectorExt as _};

/// Whether `labels` satisfy `selector`, by kube's [`Selector`]. A selector kube cannot read (an unknown
/// operator, `In` without values) matches nothing: the API server would have refused the object, and
/// failing closed here keeps a typo from selecting every pod.
pub fn matches(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();
    Selector::try_from(selector.clone()).is_ok_and(|s| s.matches(labels.unwrap_or(&NO_LABELS)))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).to_owned()).collect()),
        }
    }

    #[test]
    fn empty_selector_matches_everything() {
        assert!(matches(&LabelSelector::default(), None));
        assert!(matches(&LabelSelector::default(), Some(&labels(&[("a", "b")]))));
    }

    #[test]
    fn match_labels_and_expressions_are_anded() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["front", "edge"]),
                req("canary", "DoesNotExist", &[]),
            ]),
        };
        assert!(matches(&sel, Some(&labels(&[("app", "web"), ("tier", "edge")]))));
        assert!(!matches(&sel, Some(&labels(&[("app", "web"), ("tier", "back")]))));
        assert!(!matches(
            &sel,
            Some(&labels(&[("app", "web"), ("tier", "edge"), ("canary", "1")]))
        ));
        assert!(!matches(&sel, Some(&labels(&[("tier", "edge")]))));
    }

    #[test]
    fn not_in_matches_absent_keys_and_unknown_operators_match_nothing() {
        let not_in = LabelSelector {
            match_expressions: Some(vec![req("env", "NotIn", &["prod"])]),
            ..Default::default()
        };
        assert!(matches(&not_in, None));
        assert!(!matches(&not_in, Some(&labels(&[("env", "prod")]))));
        let bogus = LabelSelector {
            match_expressions: Some(vec![req("env", "Like", &["p"])]),
            ..Default::default()
        };
        assert!(!matches(&bogus, Some(&labels(&[("env", "p")]))));
    }
}
