//! What the attacker sends: AdmissionReviews built from the review the API server sent for
//! `kubectl apply` of a Deployment (tests/fixtures/reviews/create-deployment.json), grown where the
//! probe needs it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

/// The captured review: Deployment shop/web, 3 replicas, mounting claim `web-data`.
pub fn captured() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reviews/create-deployment.json");
    let text = std::fs::read_to_string(&path).expect("the captured Deployment review");
    serde_json::from_str(&text).expect("the captured review is JSON")
}

/// The claim the captured Deployment mounts (shop/web-data, ReadWriteOnce), as a manifest file for
/// `serve --objects`, with `extra` more ReadWriteOnce claims `claim-0`, `claim-1`, ... in shop.
pub fn claims_file(dir: &Path, extra: usize) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reviews/create-pvc.json");
    let text = std::fs::read_to_string(&path).expect("the captured claim review");
    let review: Value = serde_json::from_str(&text).expect("the captured claim review is JSON");
    let claim = &review["request"]["object"];
    let mut items = vec![claim.clone()];
    for i in 0..extra {
        let mut other = claim.clone();
        other["metadata"]["name"] = format!("claim-{i}").into();
        items.push(other);
    }
    // A `kind: List`, as `kubectl get -o json` writes several objects.
    let list = json!({"apiVersion": "v1", "kind": "List", "metadata": {}, "items": items});
    let file = dir.join("claims.json");
    std::fs::write(&file, list.to_string()).expect("writing the claims");
    file
}

/// The review as bytes, with its own uid.
pub fn bytes(mut review: Value, uid: &str) -> Vec<u8> {
    review["request"]["uid"] = uid.into();
    serde_json::to_vec(&review).expect("a review serializes")
}

fn pod_spec(review: &mut Value) -> &mut Value {
    &mut review["request"]["object"]["spec"]["template"]["spec"]
}

/// The Deployment with `n` more volumes, each a claim `c<i>` (none of them mounted).
pub fn with_claim_volumes(n: usize) -> Value {
    let mut review = captured();
    let spec = pod_spec(&mut review);
    let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    volumes.extend(
        (0..n).map(
            |i| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": format!("c{i}")}}),
        ),
    );
    spec["volumes"] = volumes.into();
    review
}

/// The Deployment with `n` emptyDir volumes besides its claim, all mounted by its first container: cheap
/// bytes, many names for checks that match mounts to volumes, and still the claim to judge.
pub fn with_scratch_volumes(n: usize) -> Value {
    let mut review = captured();
    let spec = pod_spec(&mut review);
    let mut volumes = spec["volumes"].as_array().cloned().unwrap_or_default();
    volumes.extend((0..n).map(|i| json!({"name": format!("v{i}"), "emptyDir": {}})));
    let mut mounts = spec["containers"][0]["volumeMounts"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    mounts.extend((0..n).map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/{i}")})));
    spec["volumes"] = volumes.into();
    spec["containers"][0]["volumeMounts"] = mounts.into();
    review
}

/// The Deployment with `n` containers (after its own), each as small as a container can be.
pub fn with_containers(n: usize) -> Value {
    let mut review = captured();
    let spec = pod_spec(&mut review);
    let mut containers = vec![spec["containers"][0].clone()];
    containers.extend((0..n).map(|i| json!({"name": format!("c{i}"), "image": "x"})));
    spec["containers"] = containers.into();
    review
}

/// The Deployment padded with an annotation to about `size` bytes: a well-formed review of that size.
pub fn padded(size: usize) -> Vec<u8> {
    let base = bytes(captured(), "padded").len();
    let mut review = captured();
    let mut pad = String::with_capacity(size);
    while pad.len() + base + 16 < size {
        pad.push_str("0123456789abcdef");
    }
    review["request"]["object"]["metadata"]["annotations"] = json!({ "pad": pad });
    bytes(review, "padded")
}

/// The review with its kind replaced by one the caller made up.
pub fn with_kind(kind: &str) -> Value {
    let mut review = captured();
    for field in ["kind", "requestKind"] {
        review["request"][field]["kind"] = kind.into();
    }
    review["request"]["object"]["kind"] = kind.into();
    review
}

/// The Deployment mounting the ReadWriteOnce claim `web-data` through `n` volumes with long names:
/// each volume can be its own finding.
pub fn many_mounts_of_one_claim(n: usize) -> Value {
    let mut review = captured();
    let spec = pod_spec(&mut review);
    let mut volumes = Vec::with_capacity(n);
    let mut mounts = Vec::with_capacity(n);
    for i in 0..n {
        let mut name = format!("v{i}-");
        while name.len() < 63 {
            name.push('x');
        }
        volumes.push(json!({"name": name, "persistentVolumeClaim": {"claimName": "web-data"}}));
        let mut path = String::from("/");
        let _ = write!(path, "{i}");
        mounts.push(json!({"name": name, "mountPath": path}));
    }
    spec["volumes"] = volumes.into();
    spec["containers"][0]["volumeMounts"] = mounts.into();
    review
}

/// The Deployment mounting the ReadWriteOnce claims `claim-0` .. `claim-<n-1>`, one volume each (all
/// within the object limits): `n` findings.
pub fn many_claims(n: usize) -> Value {
    let mut review = captured();
    let spec = pod_spec(&mut review);
    let volumes: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": format!("claim-{i}")}}))
        .collect();
    let mounts: Vec<Value> = (0..n)
        .map(|i| json!({"name": format!("v{i}"), "mountPath": format!("/{i}")}))
        .collect();
    spec["volumes"] = volumes.into();
    spec["containers"][0]["volumeMounts"] = mounts.into();
    review
}

/// A Deployment in namespace `namespace` mounting claim `claim`, which does not exist.
pub fn missing_claim(namespace: &str, claim: &str) -> Value {
    let mut review = captured();
    review["request"]["namespace"] = namespace.into();
    review["request"]["object"]["metadata"]["namespace"] = namespace.into();
    pod_spec(&mut review)["volumes"][0]["persistentVolumeClaim"]["claimName"] = claim.into();
    review
}
