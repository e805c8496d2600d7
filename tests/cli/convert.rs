//! `volguard convert` as users run it: golden StatefulSets and plans for real-looking Deployments (each
//! golden judged by `volguard check` with the built-in policy, which must find nothing), and its errors.
//! `VOLGUARD_BLESS=1` rewrites the goldens (then read the diff); a normal run only compares.

use std::path::Path;

use crate::cli_common;

use cli_common::{root, run, volguard};
use pretty_assertions::assert_eq;

const CASES: [&str; 5] = [
    "shared-rwo-claim",
    "several-claims",
    "read-only-config-claim",
    "empty-dir",
    "hpa",
];

fn case(name: &str, file: &str) -> String {
    format!("tests/fixtures/convert/{name}/{file}")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Compares `got` with the golden file, or rewrites it under `VOLGUARD_BLESS=1`.
fn golden(path: &str, got: &str) {
    if std::env::var("VOLGUARD_BLESS").as_deref() == Ok("1") {
        std::fs::write(root().join(path), got).unwrap();
    }
    assert_eq!(got, read(path), "{path} (VOLGUARD_BLESS=1 rewrites it)");
}

/// The claims of `input` the converted StatefulSet still mounts as volumes (they exist already, so they
/// are not in convert's output; `check` needs them to judge the sharing).
fn kept_claims(input: &str, output: &str) -> String {
    input
        .split("\n---\n")
        .filter(|doc| doc.contains("kind: PersistentVolumeClaim"))
        .filter(|doc| {
            let name = doc
                .lines()
                .find_map(|l| l.trim().strip_prefix("name: "))
                .expect("a claim has a name");
            output.contains(&format!("claimName: {name}\n"))
        })
        .map(|doc| format!("---\n{doc}\n"))
        .collect()
}

fn convert_and_check(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = run(volguard([
        "convert".as_ref(),
        "-f".as_ref(),
        case(name, "input.yaml").as_ref(),
        "--output-dir".as_ref(),
        dir.path().as_os_str(),
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stderr, "");
    let manifest = std::fs::read_to_string(dir.path().join("statefulset.yaml")).unwrap();
    let plan = std::fs::read_to_string(dir.path().join("plan.md")).unwrap();
    golden(&case(name, "statefulset.yaml"), &manifest);
    golden(&case(name, "plan.md"), &plan);

    // The golden, as committed, passes `volguard check` with the built-in policy: no finding at all.
    let kept = dir.path().join("kept-claims.yaml");
    std::fs::write(&kept, kept_claims(&read(&case(name, "input.yaml")), &manifest)).unwrap();
    let check = run(volguard([
        "check".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "-f".as_ref(),
        case(name, "statefulset.yaml").as_ref(),
        kept.as_os_str(),
    ]));
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    let report = check.json();
    let findings: Vec<&serde_json::Value> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|o| o["findings"].as_array().unwrap())
        .collect();
    assert_eq!(findings, Vec::<&serde_json::Value>::new());
    let kinds: Vec<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"StatefulSet"),
        "check judged the StatefulSet: {kinds:?}"
    );
}

#[test]
fn every_fixture_directory_is_a_case_here() {
    let mut dirs: Vec<String> = std::fs::read_dir(root().join("tests/fixtures/convert"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    let mut cases = CASES.map(str::to_owned).to_vec();
    cases.sort();
    assert_eq!(dirs, cases);
}

#[test]
fn one_shared_rwo_claim_becomes_a_template_and_its_volume_is_rebound() {
    convert_and_check("shared-rwo-claim");
    let plan = read(&case("shared-rwo-claim", "plan.md"));
    for step in [
        "## Step 2. Keep the volume when its claim is deleted",
        "## Step 3. Stop the Deployment's pods",
        "## Step 4. Release the volume: delete the old claim",
        "## Step 5. Reserve the volume for the claim ordinal 0 will mount",
        "## Step 6. Create the claims ordinal 0 will mount",
        "## Step 7. Create the StatefulSet",
    ] {
        assert!(plan.contains(step), "{step}");
    }
    assert!(!plan.contains("Copy the data"));
}

#[test]
fn several_claims_each_become_a_template_rebound_or_copied() {
    convert_and_check("several-claims");
    let plan = read(&case("several-claims", "plan.md"));
    assert!(plan.contains("kubectl patch pv pv-queue-journal"));
    assert!(plan.contains("## Step 7. Copy the data"), "{plan}");
    assert!(plan.contains("claimName: queue-index\n"));
    let manifest = read(&case("several-claims", "statefulset.yaml"));
    assert!(manifest.contains(
        "  - apiVersion: v1\n    kind: PersistentVolumeClaim\n    metadata:\n      name: journal\n"
    ));
    assert!(manifest.contains("      name: index\n"));
}

#[test]
fn a_read_only_shared_config_claim_stays_a_volume() {
    convert_and_check("read-only-config-claim");
    let manifest = read(&case("read-only-config-claim", "statefulset.yaml"));
    assert!(manifest.contains(
        "        persistentVolumeClaim:\n          claimName: search-dictionaries\n          readOnly: true\n"
    ));
    assert!(
        manifest
            .contains("# - volume dictionaries: kept as a volume, claim search-dictionaries is ReadOnlyMany")
    );
}

#[test]
fn an_empty_dir_configmap_and_secret_stay_as_they_are() {
    convert_and_check("empty-dir");
    let manifest = read(&case("empty-dir", "statefulset.yaml"));
    assert!(
        manifest.contains("      - emptyDir:\n          sizeLimit: 1Gi\n        name: scratch\n"),
        "{manifest}"
    );
    assert!(
        manifest.contains("# - volume scratch: kept as a volume, emptyDir: each pod gets its own, as before")
    );
}

#[test]
fn an_hpa_is_retargeted_and_an_existing_headless_service_reused() {
    convert_and_check("hpa");
    let manifest = read(&case("hpa", "statefulset.yaml"));
    assert!(
        manifest.contains(
            "  scaleTargetRef:\n    apiVersion: apps/v1\n    kind: StatefulSet\n    name: ledger\n"
        )
    );
    assert!(manifest.contains("  serviceName: ledger-peers\n"));
    assert!(
        !manifest.contains("kind: Service\n"),
        "no new Service: ledger-peers is reused"
    );
}

#[test]
fn without_output_dir_the_yaml_goes_to_stdout_and_the_plan_to_stderr() {
    let out = run(volguard(["convert", "-f", &case("hpa", "input.yaml")]));
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, read(&case("hpa", "statefulset.yaml")));
    assert_eq!(out.stderr, read(&case("hpa", "plan.md")));
    let plan_only = run(volguard([
        "convert",
        "-f",
        &case("hpa", "input.yaml"),
        "--plan-only",
    ]));
    assert_eq!(
        (plan_only.code, plan_only.stdout, plan_only.stderr),
        (0, read(&case("hpa", "plan.md")), String::new())
    );
}

#[test]
fn diff_shows_the_deployment_becoming_the_statefulset() {
    let out = run(volguard([
        "convert",
        "-f",
        &case("empty-dir", "input.yaml"),
        "--diff",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .starts_with("--- Deployment cache\n+++ StatefulSet cache\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\n-kind: Deployment\n+kind: StatefulSet\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\n+  serviceName: cache-headless\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\n-      - name: store\n-        persistentVolumeClaim:\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn read_write_once_pod_is_asked_for_with_a_flag() {
    let out = run(volguard([
        "convert",
        "-f",
        &case("shared-rwo-claim", "input.yaml"),
        "--access-mode",
        "ReadWriteOncePod",
        "--pod-management-policy",
        "Parallel",
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stdout.matches("      - ReadWriteOncePod\n").count(),
        1,
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("  podManagementPolicy: Parallel\n"));
    // The ordinal-0 claim asks the volume for ReadWriteOncePod, which it does not list: the reservation adds it.
    assert!(
        out.stderr.contains(",\"accessModes\":[\"ReadWriteOncePod\"]}}'"),
        "{}",
        out.stderr
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_claim_missing_from_the_input_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let input = read(&case("shared-rwo-claim", "input.yaml"));
    let deployment = input.split("\n---\n").next().unwrap();
    let file = write(dir.path(), "d.yaml", deployment);
    let out = run(volguard(["convert", "-f", &file]));
    assert_eq!(out.code, 2);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "error: Deployment wiki mounts claim wiki-data (volume data), which is not in the input: add the claim's \
         manifest to the files (kubectl get pvc wiki-data -o yaml); with --cluster, create the claim or correct \
         claimName\n"
    );
}

#[test]
fn an_input_without_a_deployment_is_a_usage_error() {
    let converted = run(volguard([
        "convert",
        "-f",
        &case("shared-rwo-claim", "input.yaml"),
    ]));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "statefulset.yaml", &converted.stdout);
    let out = run(volguard(["convert", "-f", &file]));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: the input holds no Deployment (it holds StatefulSet wiki): volguard convert converts a Deployment \
         into a StatefulSet\n"
    );
}

#[test]
fn several_deployments_need_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let both = format!(
        "{}\n---\n{}",
        read(&case("shared-rwo-claim", "input.yaml")),
        read(&case("empty-dir", "input.yaml"))
    );
    let file = write(dir.path(), "both.yaml", &both);
    let out = run(volguard(["convert", "-f", &file]));
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (
            2,
            "error: the input holds several Deployments (wiki, cache): choose one with --name\n"
        )
    );
    let picked = run(volguard([
        "convert",
        "-f",
        &file,
        "--name",
        "cache",
        "--plan-only",
    ]));
    assert_eq!(picked.code, 0, "{}", picked.stderr);
    assert!(
        picked
            .stdout
            .starts_with("# Data plan: Deployment cache to StatefulSet cache (namespace default)\n")
    );
}

#[test]
fn a_deployment_without_a_per_replica_claim_needs_no_statefulset() {
    let dir = tempfile::tempdir().unwrap();
    let input = read(&case("read-only-config-claim", "input.yaml")).replace(
        "      - name: index\n        persistentVolumeClaim:\n          claimName: search-index\n",
        "      - name: index\n        emptyDir: {}\n",
    );
    let file = write(dir.path(), "d.yaml", &input);
    let out = run(volguard(["convert", "-f", &file]));
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, "");
    assert_eq!(
        out.stderr,
        "volguard convert: Deployment search has no ReadWriteOnce or ReadWriteOncePod claim that each replica \
         needs for itself: it needs no StatefulSet (its volumes can be shared as they are); nothing written\n"
    );
}

/// README's `volguard convert` section: its commands run as written (from a directory holding the
/// examples, so `--output-dir web-sts` lands in a scratch directory), and the plan excerpt is real output.
#[test]
fn the_readme_convert_commands_run_as_written() {
    let readme = read("README.md");
    let section = &readme[readme
        .find("## `volguard convert`")
        .expect("README has the section")..];
    let commands_start = section.find("```sh\n").unwrap() + "```sh\n".len();
    let commands =
        &section[commands_start..commands_start + section[commands_start..].find("```\n").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("examples"), dir.path().join("examples")).unwrap();
    let mut ran = 0;
    let mut outputs = Vec::new();
    for line in commands.lines() {
        let line = line.split(" #").next().unwrap().trim();
        let args = line
            .strip_prefix("cargo run --release -- ")
            .expect("a volguard command");
        if args.contains("--cluster") {
            continue; // tests/e2e/convert.rs runs `convert --cluster` against a real API server
        }
        let (args, redirect) = match args.split_once(" > ") {
            Some((a, file)) => (a, Some(file.trim())),
            None => (args, None),
        };
        let mut cmd = volguard(args.split_whitespace());
        cmd.current_dir(dir.path());
        let out = run(cmd);
        assert_eq!(out.code, 0, "{line}: {}", out.stderr);
        if let Some(file) = redirect {
            std::fs::write(dir.path().join(file), &out.stdout).unwrap();
        }
        outputs.push(out);
        ran += 1;
    }
    assert_eq!(ran, 4);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("statefulset.yaml")).unwrap(),
        std::fs::read_to_string(dir.path().join("web-sts/statefulset.yaml")).unwrap()
    );
    let plan = std::fs::read_to_string(dir.path().join("web-sts/plan.md")).unwrap();
    assert_eq!(outputs[0].stderr, plan);
    assert_eq!(outputs[2].stdout, plan);
    assert!(
        outputs[3]
            .stdout
            .starts_with("--- Deployment web\n+++ StatefulSet web\n")
    );
    let excerpt_start = section.find("````markdown\n").unwrap() + "````markdown\n".len();
    let excerpt = &section[excerpt_start..excerpt_start + section[excerpt_start..].find("````\n").unwrap()];
    assert!(excerpt.starts_with("## Step 2. Stop the Deployment's pods\n"));
    assert!(
        plan.contains(excerpt),
        "README's plan excerpt is not in the plan:\n{excerpt}"
    );
}
