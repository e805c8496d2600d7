//! The `volumeClaimTemplates` entry a finding suggests, filled from the shared claim when it is known.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use crate::domain::access::RWO;

/// YAML for a StatefulSet `volumeClaimTemplates` entry named after the pod volume, so the existing
/// volumeMounts keep working once the `persistentVolumeClaim` volume is removed.
pub(crate) fn claim_template_yaml(volume: &str, claim: Option<&PersistentVolumeClaim>) -> String {
    let spec = claim.and_then(|c| c.spec.as_ref());
    let storage_class = spec.and_then(|s| s.storage_class_name.as_deref());
    let size = spec
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone());
    let mut yaml = format!(
        "volumeClaimTemplates:\n- metadata:\n    name: {volume}\n  spec:\n    accessModes: [\"{RWO}\"]\n"
    );
    if let Some(class) = storage_class {
        yaml.push_str(&format!("    storageClassName: {class}\n"));
    }
    match size {
        Some(size) => yaml.push_str(&format!(
            "    resources:\n      requests:\n        storage: {size}\n"
        )),
        None => yaml.push_str(
            "    resources:\n      requests:\n        storage: 1Gi   # the size each replica needs\n",
        ),
    }
    yaml
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn template_copies_class_and_size_from_the_claim() {
        let claim: PersistentVolumeClaim = serde_json::from_value(json!({"metadata": {"name": "web-data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
                     "resources": {"requests": {"storage": "20Gi"}}}}))
        .unwrap();
        assert_eq!(
            claim_template_yaml("data", Some(&claim)),
            "volumeClaimTemplates:\n- metadata:\n    name: data\n  spec:\n    accessModes: [\"ReadWriteOnce\"]\n    \
             storageClassName: fast\n    resources:\n      requests:\n        storage: 20Gi\n"
        );
    }

    #[test]
    fn template_without_a_claim_asks_for_a_size() {
        let yaml = claim_template_yaml("data", None);
        assert!(
            yaml.ends_with("storage: 1Gi   # the size each replica needs\n"),
            "{yaml}"
        );
        assert!(!yaml.contains("storageClassName"));
    }
}
