//! Benchmarks of one decision and of `check` over a generated directory.
//!
//! `cargo bench --bench decision` runs them all. Each group carries its own baseline measured in the same
//! run (parsing alone, reading files alone), so results compare as ratios on a noisy shared machine.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use k8s_openapi::api::apps::v1::Deployment;
use volguard::adapters::admission;
use volguard::adapters::kube_lookup::ClusterLookup;
use volguard::decision::evaluate;
use volguard::domain::lookup::Bundle;
use volguard::domain::policy::PolicySet;
use volguard::domain::workload::{Decoded, Resource, Workload, decode};

// The same allocator as the `volguard` binary, so the numbers are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const REVIEW: &str = "tests/fixtures/reviews/create-deployment.json";
const CLAIM_REVIEW: &str = "tests/fixtures/reviews/create-pvc.json";

fn request_object(path: &str) -> Resource {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let review: serde_json::Value = serde_json::from_str(&text).expect("fixture is JSON");
    match decode(review["request"]["object"].clone()) {
        Ok(Decoded::Resource(r)) => *r,
        other => panic!("{path}: {other:?}"),
    }
}

fn decision(c: &mut Criterion) {
    let body = std::fs::read(REVIEW).expect("review fixture");
    let claim = request_object(CLAIM_REVIEW);
    let deployment = request_object(REVIEW);
    let lookup: Bundle = [&claim].into_iter().collect();
    let policies = PolicySet::builtin().expect("built-in policy");
    let review = admission::parse(&body).expect("fixture parses");
    assert!(
        !admission::validate(&review, &lookup, &policies).response.allowed,
        "the fixture is a violation"
    );

    let mut g = c.benchmark_group("decision");
    // Baseline: what any webhook pays to read the envelope as JSON, without typed decoding or rules.
    g.bench_function("baseline: JSON parse of the review", |b| {
        b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).expect("json")))
    });
    g.bench_function("review: JSON in, decision out", |b| {
        b.iter(|| {
            let review = admission::parse(black_box(&body)).expect("parses");
            let outcome = admission::validate(&review, &lookup, &policies);
            black_box(
                serde_json::to_vec(&admission::response::answer(&outcome.response)).expect("serializes"),
            )
        })
    });
    g.bench_function("evaluate: decoded Deployment", |b| {
        b.iter(|| black_box(evaluate(black_box(&deployment), &lookup, &policies).expect("judged")))
    });
    // The same decision over the webhook's watch-fed caches (filled here without an API server), holding
    // the claim among 5,000 others and 1,000 workloads: the added cost of a cached lookup per review.
    let cluster = filled_cluster(&claim);
    assert_eq!(
        evaluate(&deployment, &cluster, &policies).expect("judged"),
        evaluate(&deployment, &lookup, &policies).expect("judged"),
        "the cached lookup decides as the bundle does"
    );
    g.bench_function("evaluate: decoded Deployment, ClusterLookup", |b| {
        b.iter(|| black_box(evaluate(black_box(&deployment), &cluster, &policies).expect("judged")))
    });
    g.finish();
}

/// `POST /validate` through the whole router (layers, span, log line, metrics), in-process: no TLS, no
/// socket. Against the same router in the load bench's baseline mode, which reads only the uid: what the
/// handler adds to the decision, before the network and a shared machine are counted.
fn router(c: &mut Criterion) {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;
    use volguard::adapters::server::{AppState, Limits};

    // Compact, as the API server sends it.
    let review: serde_json::Value =
        serde_json::from_slice(&std::fs::read(REVIEW).expect("review fixture")).expect("fixture is JSON");
    let body = axum::body::Bytes::from(serde_json::to_vec(&review).expect("serializes"));
    let claim = request_object(CLAIM_REVIEW);
    let lookup: Bundle = [&claim].into_iter().collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    // The server's log line is formatted (at info, as served), then thrown away.
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::sink)
        .with_ansi(false)
        .finish();
    let _logging = tracing::subscriber::set_default(logs);
    let mut g = c.benchmark_group("router");
    for (name, baseline) in [("baseline: allow-all", true), ("volguard: POST /validate", false)] {
        let mut state = AppState::new(
            PolicySet::builtin().expect("built-in policy"),
            std::sync::Arc::new(lookup.clone()),
            None,
        );
        state.baseline_allow_all = baseline;
        let app = volguard::adapters::server::router(std::sync::Arc::new(state), Limits::default());
        g.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let request = Request::post("/validate")
                        .header("content-type", "application/json")
                        .body(Body::from(body.clone()))
                        .expect("a request");
                    let response = app.clone().oneshot(request).await.expect("infallible");
                    assert!(response.status().is_success());
                    black_box(
                        axum::body::to_bytes(response.into_body(), usize::MAX)
                            .await
                            .expect("body"),
                    )
                })
            })
        });
    }
    g.finish();
}

fn filled_cluster(claim: &Resource) -> ClusterLookup {
    let Resource::Claim(claim) = claim else {
        panic!("the claim fixture is a claim")
    };
    let others = (0..5_000).map(|i| {
        let mut c = claim.clone();
        c.metadata.name = Some(format!("data-{i}"));
        c.metadata.namespace = Some(format!("team-{}", i % 50));
        c
    });
    let deployments = (0..1_000).map(|i| {
        let mut d = Deployment::default();
        d.metadata.name = Some(format!("app-{i}"));
        d.metadata.namespace = Some(format!("team-{}", i % 50));
        Resource::Workload(Workload::Deployment(d))
    });
    ClusterLookup::from_objects(
        std::iter::once(claim.clone())
            .chain(others)
            .map(Resource::Claim)
            .chain(deployments),
    )
}

/// Writes `n` realistic manifests (a claim plus a workload per file, of every kind) under `dir`.
fn generate(dir: &Path, n: usize) {
    let kinds = ["Deployment", "StatefulSet", "DaemonSet", "Job"];
    for i in 0..n {
        let sub = dir.join(format!("team-{}", i % 50));
        std::fs::create_dir_all(&sub).expect("mkdir");
        let kind = kinds[i % kinds.len()];
        let (api, extra) = match kind {
            "Job" => ("batch/v1", String::from("  parallelism: 2\n")),
            "StatefulSet" => ("apps/v1", format!("  serviceName: app-{i}\n  replicas: 3\n")),
            "DaemonSet" => ("apps/v1", String::new()),
            _ => ("apps/v1", String::from("  replicas: 3\n")),
        };
        let selector = if kind == "Job" {
            String::new()
        } else {
            format!("  selector:\n    matchLabels: {{app: app-{i}}}\n")
        };
        let mode = ["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"][i % 3];
        let text = format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data-{i}\n  namespace: team-{ns}\nspec:\n  \
             accessModes: [{mode}]\n  resources:\n    requests:\n      storage: 1Gi\n---\napiVersion: {api}\nkind: {kind}\n\
             metadata:\n  name: app-{i}\n  namespace: team-{ns}\n  labels: {{app: app-{i}, tier: backend}}\nspec:\n{extra}{selector}  \
             template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      restartPolicy: {restart}\n      containers:\n      \
             - name: app\n        image: registry.example.com/app:1.{i}\n        resources:\n          requests: {{cpu: 100m, memory: 128Mi}}\n        \
             volumeMounts:\n        - name: data\n          mountPath: /var/lib/app\n      volumes:\n      - name: data\n        \
             persistentVolumeClaim:\n          claimName: data-{i}\n",
            ns = i % 50,
            restart = if kind == "Job" { "OnFailure" } else { "Always" },
        );
        std::fs::write(sub.join(format!("app-{i}.yaml")), text).expect("write manifest");
    }
}

fn check_directory(c: &mut Criterion) {
    // `VOLGUARD_CHECK_DIR=DIR` writes the manifests there and keeps them, to time `volguard check -f DIR`.
    let kept = std::env::var_os("VOLGUARD_CHECK_DIR").map(PathBuf::from);
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = kept.as_deref().unwrap_or(temporary.path());
    generate(dir, 10_000);
    let paths: Vec<PathBuf> = vec![dir.to_path_buf()];
    let policies = PolicySet::builtin().expect("built-in policy");
    let report = volguard::adapters::cli::check::check(&paths, &policies, false);
    assert_eq!(report.summary.objects, 10_000, "every workload judged");

    let mut g = c.benchmark_group("check-10k");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    // Baseline: reading the same files, nothing else.
    g.bench_function("baseline: read every file", |b| {
        b.iter(|| {
            let files = volguard::adapters::manifest::expand_paths(&paths);
            let bytes: usize = files
                .iter()
                .flatten()
                .map(|p| std::fs::read(p).map(|v| v.len()).unwrap_or(0))
                .sum();
            black_box(bytes)
        })
    });
    g.bench_function("check: 10,000 manifests", |b| {
        b.iter(|| black_box(volguard::adapters::cli::check::check(&paths, &policies, false)))
    });
    g.finish();
}

/// The mutating path on the captured `kubectl set image` review (1 replica on a ReadWriteOnce claim, with a
/// RollingUpdate): under a repairing policy it gets the Recreate patch; under the built-in policy (no
/// repairs) it is allowed unchanged. The validating answer to the same review is measured alongside.
fn mutate(c: &mut Criterion) {
    let body = std::fs::read("tests/fixtures/reviews/update-deployment-image.json").expect("review fixture");
    let claim = request_object(CLAIM_REVIEW);
    let lookup: Bundle = [&claim].into_iter().collect();
    let repairing =
        volguard::domain::policy::load_path(Path::new("tests/fixtures/mutate/webhook-policy.yaml"))
            .expect("policy");
    let builtin = PolicySet::builtin().expect("built-in policy");
    let review = admission::parse(&body).expect("fixture parses");
    assert!(admission::mutate(&review, &lookup, &repairing).patched);
    assert!(!admission::mutate(&review, &lookup, &builtin).patched);

    let mut g = c.benchmark_group("mutate");
    let answer = |response: &kube::core::admission::AdmissionResponse| {
        serde_json::to_vec(&admission::response::answer(response)).expect("serializes")
    };
    g.bench_function("validate: JSON in, decision out", |b| {
        b.iter(|| {
            let review = admission::parse(black_box(&body)).expect("parses");
            black_box(answer(&admission::validate(&review, &lookup, &builtin).response))
        })
    });
    for (name, policies) in [
        ("mutate: JSON in, Recreate patch out", &repairing),
        ("mutate: JSON in, nothing to repair", &builtin),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                let review = admission::parse(black_box(&body)).expect("parses");
                black_box(answer(&admission::mutate(&review, &lookup, policies).response))
            })
        });
    }
    g.finish();
}

/// The review without its claim: nothing to find, the common case (as the load bench's allowed review).
fn allowed_body() -> Vec<u8> {
    let mut review: serde_json::Value =
        serde_json::from_slice(&std::fs::read(REVIEW).expect("review fixture")).expect("fixture is JSON");
    let pod = &mut review["request"]["object"]["spec"]["template"]["spec"];
    pod.as_object_mut().expect("a pod spec").remove("volumes");
    for c in pod["containers"].as_array_mut().expect("containers") {
        c.as_object_mut().expect("a container").remove("volumeMounts");
    }
    serde_json::to_vec(&review).expect("serializes")
}

/// Each step of a review, in process, for an allowed and a denied review: where the server's CPU per
/// review goes beyond the baseline's (issue 13). The baseline is what any webhook pays: reading the
/// review as JSON.
fn phases(c: &mut Criterion) {
    let claim = request_object(CLAIM_REVIEW);
    let lookup: Bundle = [&claim].into_iter().collect();
    let policies = PolicySet::builtin().expect("built-in policy");
    let denied: serde_json::Value =
        serde_json::from_slice(&std::fs::read(REVIEW).expect("review fixture")).expect("fixture is JSON");
    let denied = serde_json::to_vec(&denied).expect("serializes");
    let mut g = c.benchmark_group("phases");
    for (name, body, allowed) in [("allowed", allowed_body(), true), ("denied", denied, false)] {
        let review = admission::parse(&body).expect("fixture parses");
        let outcome = admission::validate(&review, &lookup, &policies);
        assert_eq!(outcome.response.allowed, allowed, "{name}");
        g.bench_function(format!("{name}: baseline, JSON parse to a Value"), |b| {
            b.iter(|| black_box(serde_json::from_slice::<serde_json::Value>(black_box(&body)).expect("json")))
        });
        g.bench_function(format!("{name}: parse"), |b| {
            b.iter(|| black_box(admission::parse(black_box(&body)).expect("parses")))
        });
        g.bench_function(format!("{name}: validate"), |b| {
            b.iter(|| black_box(admission::validate(black_box(&review), &lookup, &policies)))
        });
        g.bench_function(format!("{name}: answer to JSON"), |b| {
            b.iter(|| {
                black_box(
                    serde_json::to_vec(&admission::response::answer(black_box(&outcome.response)))
                        .expect("serializes"),
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, decision, phases, router, mutate, check_directory);
criterion_main!(benches);
