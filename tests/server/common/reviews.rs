//! The AdmissionReviews a real kube-apiserver v1.20 sent (`tests/fixtures/reviews`), and a lookup holding
//! what that cluster held.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use volguard::domain::lookup::{Bundle, Lookup};
use volguard::domain::workload::Resource;

/// `tests/fixtures/reviews`: the AdmissionReviews a real kube-apiserver v1.20 sent, and their goldens.
pub fn reviews_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reviews")
}

/// The captured request `<name>.json`, byte for byte.
pub fn review_bytes(name: &str) -> Vec<u8> {
    let path = reviews_dir().join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The captured request `<name>.json`, as JSON to derive variants from.
pub fn review_json(name: &str) -> Value {
    serde_json::from_slice(&review_bytes(name)).expect("captured reviews are JSON")
}

/// The names of every captured request (`create-deployment`, ...), sorted.
pub fn captured_review_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(reviews_dir())
        .expect("tests/fixtures/reviews exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|n| n.ends_with(".json") && !n.contains(".response."))
        .map(|n| n.trim_end_matches(".json").to_owned())
        .collect();
    names.sort();
    names
}

/// The object a captured request carries, decoded the way the server decodes it.
pub fn object_of(name: &str) -> Resource {
    object_in(&review_bytes(name))
}

/// The object a review body carries, decoded the way the server decodes it.
pub fn object_in(review: &[u8]) -> Resource {
    *volguard::adapters::admission::parse(review)
        .expect("the review parses")
        .object
        .expect("the review carries an object volguard reads")
}

/// What the captured cluster held when the reviews were recorded: claim `shop/web-data`
/// (ReadWriteOnce), Deployment `shop/web` (3 replicas on it) and StatefulSet `db/pg`.
///
/// Claims `batch/scratch` (the Job's) and `ops/logs` (the DaemonSet's) were never created in the
/// capture, so they are deliberately absent: those workloads get `missing-claim` warnings.
pub fn captured_objects() -> Vec<Resource> {
    ["create-pvc", "create-deployment", "create-statefulset"]
        .into_iter()
        .map(object_of)
        .collect()
}

/// [`captured_objects`] as a lookup.
pub fn captured_bundle() -> Arc<dyn Lookup> {
    Arc::new(captured_objects().iter().collect::<Bundle>())
}

/// A PersistentVolumeClaim like the captured `web-data`, renamed and with other access modes.
pub fn claim(namespace: &str, name: &str, modes: &[&str]) -> Resource {
    let mut review = review_json("create-pvc");
    let object = &mut review["request"]["object"];
    object["metadata"]["name"] = name.into();
    object["metadata"]["namespace"] = namespace.into();
    object["spec"]["accessModes"] = modes.iter().map(|m| Value::from(*m)).collect();
    review["request"]["namespace"] = namespace.into();
    review["request"]["name"] = name.into();
    object_in(&serde_json::to_vec(&review).expect("JSON serializes"))
}

/// A review as a request body.
pub fn to_vec(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).expect("JSON serializes")
}

/// Compares a server answer with its golden `tests/fixtures/reviews/<file>`, or rewrites the golden when
/// `VOLGUARD_BLESS=1` (then read every changed golden by hand).
pub fn compare_golden(file: &str, actual: &Value) {
    let path = reviews_dir().join(file);
    if std::env::var("VOLGUARD_BLESS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(actual).expect("JSON serializes") + "\n";
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let golden = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e}; run with VOLGUARD_BLESS=1 to create it, then review it by hand",
            path.display()
        )
    });
    let golden: Value = serde_json::from_slice(&golden).expect("goldens are JSON");
    assert_json_diff::assert_json_eq!(actual.clone(), golden);
}

/// The `Lookup` methods a test's wrapper around another lookup (`self.0`) does not change: each asks the
/// wrapped one.
#[macro_export]
macro_rules! delegate_lookup {
    () => {
        fn storage_class(
            &self,
            name: Option<&str>,
        ) -> volguard::domain::lookup::Answer<std::sync::Arc<k8s_openapi::api::storage::v1::StorageClass>> {
            self.0.storage_class(name)
        }
        fn users(
            &self,
            volume: &volguard::domain::lookup::VolumeKey,
        ) -> volguard::domain::lookup::Answer<Vec<std::sync::Arc<volguard::domain::workload::Workload>>> {
            self.0.users(volume)
        }
        fn workloads_in(
            &self,
            namespace: &str,
        ) -> volguard::domain::lookup::Answer<Vec<std::sync::Arc<volguard::domain::workload::Workload>>> {
            self.0.workloads_in(namespace)
        }
        fn mounted_claims(
            &self,
            namespace: &str,
            prefix: &str,
        ) -> volguard::domain::lookup::Answer<Vec<String>> {
            self.0.mounted_claims(namespace, prefix)
        }
        fn autoscalers(
            &self,
            kind: volguard::domain::workload::WorkloadKind,
            namespace: &str,
            name: &str,
        ) -> volguard::domain::lookup::Answer<Vec<std::sync::Arc<volguard::domain::workload::Autoscaler>>> {
            self.0.autoscalers(kind, namespace, name)
        }
        fn is_controlled(
            &self,
            workload: &volguard::domain::workload::Workload,
        ) -> volguard::domain::lookup::Answer<bool> {
            self.0.is_controlled(workload)
        }
    };
}
