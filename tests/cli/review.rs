//! `volguard review` replays a captured request through the server's admission code, offline; the README's
//! command is run here as written.

use std::process::Command;

fn root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `volguard ARGS…` from the package root, checked to exit with `code`; its standard output as JSON.
fn review(args: &[&str], code: i32) -> serde_json::Value {
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args(args)
        .current_dir(root())
        .output()
        .expect("volguard runs");
    assert_eq!(
        out.status.code(),
        Some(code),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("an AdmissionReview")
}

const README_COMMAND: &str =
    "review tests/fixtures/reviews/create-deployment.json -f tests/fixtures/reviews/web-data-claim.yaml";

#[test]
fn the_readme_review_command_denies_the_captured_deployment() {
    let readme = std::fs::read_to_string(root().join("README.md")).expect("README.md");
    assert!(
        readme.contains(&format!("cargo run --release -- {README_COMMAND}")),
        "README no longer shows it"
    );
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args(README_COMMAND.split(' '))
        .current_dir(root())
        .output()
        .expect("volguard runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let review: serde_json::Value = serde_json::from_slice(&out.stdout).expect("an AdmissionReview");
    assert_eq!(review["kind"], "AdmissionReview");
    let request: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/fixtures/reviews/create-deployment.json"))
            .expect("fixture"),
    )
    .expect("json");
    assert_eq!(review["response"]["uid"], request["request"]["uid"]);
    assert_eq!(review["response"]["allowed"], false);
    assert_eq!(review["response"]["status"]["code"], 403);
    let message = review["response"]["status"]["message"]
        .as_str()
        .expect("a message");
    assert!(
        message.starts_with("volguard denied Deployment shop/web:\n[shared-rwo-claim]"),
        "{message}"
    );
}

#[test]
fn without_the_claim_the_review_is_allowed_with_a_missing_claim_warning() {
    let review = review(&["review", "tests/fixtures/reviews/create-deployment.json"], 0);
    assert_eq!(review["response"]["allowed"], true);
    let warning = review["response"]["warnings"][0].as_str().expect("a warning");
    assert!(
        warning.starts_with("[missing-claim] Deployment shop/web mounts claim \"web-data\""),
        "{warning}"
    );
}

#[test]
fn a_body_that_is_not_a_review_exits_2() {
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args(["review", "README.md"])
        .current_dir(root())
        .output()
        .expect("volguard runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("the body is not an AdmissionReview"));
}

#[test]
fn review_mutate_prints_the_webhooks_patch_as_the_server_answers() {
    let review = review(
        &[
            "review",
            "--mutate",
            "--policy",
            "tests/fixtures/mutate/webhook-policy.yaml",
            "-f",
            "tests/fixtures/reviews/web-data-claim.yaml",
            "tests/fixtures/reviews/update-deployment-image.json",
        ],
        0,
    );
    // Exactly what the server sends for the same request and policy (tests/server/mutate.rs).
    let golden: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root().join("tests/fixtures/reviews/update-deployment-image.mutate.response.json"))
            .expect("golden"),
    )
    .expect("json");
    assert_eq!(review, golden);
    assert_eq!(review["response"]["patchType"], "JSONPatch");
}
