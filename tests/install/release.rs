//! The release, as .github/workflows/release.yml publishes it on a tag, agrees with what installs volguard
//! by default: the image it pushes is the chart's default image (tag = the chart's appVersion = the crate's
//! version, which the workflow's own version step enforces, run here), on the platforms the Dockerfile
//! builds; the binaries are the four static targets; the crate is published with the registry token; the
//! chart goes to the OCI registry. And CI runs `.ci/run`. tests/install/package.rs checks the crate.

use crate::install_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};

use install_common::root;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// How the workflow names the repository's owner; the chart's defaults spell it out.
const OWNER: &str = "${{ github.repository_owner }}";
/// The version the `version` job derives from the tag, as later jobs read it.
const VERSION: &str = "${{ needs.version.outputs.version }}";

fn yaml(path: &str) -> Value {
    let path = root().join(path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn workflow(name: &str) -> Value {
    yaml(&format!(".github/workflows/{name}"))
}

fn job<'a>(workflow: &'a Value, name: &str) -> &'a Value {
    let job = &workflow["jobs"][name];
    assert!(job.is_object(), "the workflow has a job {name}");
    job
}

fn steps(job: &Value) -> &[Value] {
    job["steps"].as_array().map(Vec::as_slice).unwrap_or_default()
}

/// The one step of `job` that uses the action `action` (any version).
fn uses<'a>(job: &'a Value, action: &str) -> &'a Value {
    let found: Vec<&Value> = steps(job)
        .iter()
        .filter(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.split('@').next() == Some(action))
        })
        .collect();
    assert_eq!(found.len(), 1, "one step uses {action}");
    found[0]
}

/// The `run` scripts of `job`, joined.
fn scripts(job: &Value) -> String {
    steps(job)
        .iter()
        .filter_map(|s| s["run"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The jobs `job` waits for.
fn needs(job: &Value) -> BTreeSet<String> {
    match &job["needs"] {
        Value::String(one) => BTreeSet::from([one.clone()]),
        Value::Array(all) => all.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
        _ => BTreeSet::new(),
    }
}

/// The repository's owner on GitHub, from Cargo.toml's `repository`.
fn owner() -> &'static str {
    let repository = env!("CARGO_PKG_REPOSITORY");
    let path = repository
        .strip_prefix("https://github.com/")
        .unwrap_or_else(|| panic!("Cargo.toml's repository is on GitHub: {repository}"));
    path.split('/').next().unwrap_or_default()
}

fn chart_meta() -> Value {
    yaml("charts/volguard/Chart.yaml")
}

fn chart_values() -> Value {
    yaml("charts/volguard/values.yaml")
}

#[test]
fn the_release_pushes_the_image_the_chart_installs_by_default() {
    let release = workflow("release.yml");
    assert_eq!(release["on"], json!({"push": {"tags": ["v*"]}}));
    let image = release["env"]["IMAGE"]
        .as_str()
        .expect("the workflow names its IMAGE");
    assert!(
        image.contains(OWNER),
        "{image} is pushed under the repository's owner"
    );
    assert_eq!(
        json!(image.replace(OWNER, owner())),
        chart_values()["image"]["repository"],
        "the image the release pushes (for owner {}) is the chart's default",
        owner()
    );
    assert_eq!(
        chart_meta()["home"],
        json!(env!("CARGO_PKG_REPOSITORY")),
        "the chart's home is the crate's repository"
    );

    let image_job = job(&release, "image");
    assert!(needs(image_job).contains("version"));
    let build = &uses(image_job, "docker/build-push-action")["with"];
    assert_eq!(build["push"], json!(true));
    assert_eq!(
        build["tags"],
        json!(format!("${{{{ env.IMAGE }}}}:{VERSION}")),
        "the image is tagged with the version the tag names, the chart's appVersion"
    );
    let dockerfile = build["file"].as_str().expect("the Dockerfile is named");
    let dockerfile = std::fs::read_to_string(root().join(dockerfile)).expect("the Dockerfile exists");
    let platforms: BTreeSet<&str> = build["platforms"]
        .as_str()
        .expect("platforms")
        .split(',')
        .map(str::trim)
        .collect();
    assert_eq!(platforms, BTreeSet::from(["linux/amd64", "linux/arm64"]));
    for platform in platforms {
        let arch = platform.trim_start_matches("linux/");
        assert!(
            dockerfile.contains(&format!("      {arch}) target=")),
            "the Dockerfile builds for TARGETARCH {arch}"
        );
    }
    // The image ships the binary the dist profile (LTO) builds, as the release binaries do.
    assert!(
        dockerfile.contains("cargo build --profile dist --locked --bin volguard --target \"$target\"")
            && dockerfile.contains("cp \"target/$target/dist/volguard\" /volguard"),
        "the Dockerfile builds and copies the dist profile's binary"
    );
    // buildx emulates the platform it does not run on.
    uses(image_job, "docker/setup-qemu-action");
    uses(image_job, "docker/setup-buildx-action");
    assert_eq!(
        uses(image_job, "docker/login-action")["with"]["registry"],
        json!("ghcr.io")
    );
    assert_eq!(image_job["permissions"]["packages"], json!("write"));
}

/// Runs the `version` job's script in `dir` for the tag `tag`: its output and what it wrote to
/// `$GITHUB_OUTPUT`.
fn version_step(dir: &Path, tag: &str) -> (Output, String) {
    let release = workflow("release.yml");
    let job = job(&release, "version");
    assert_eq!(
        job["outputs"]["version"],
        json!("${{ steps.version.outputs.version }}")
    );
    let step = steps(job)
        .iter()
        .find(|s| s["id"] == "version")
        .expect("a step with id version");
    assert_eq!(step["shell"], json!("bash"));
    let script = step["run"].as_str().expect("the step runs a script");
    let outputs = tempfile::NamedTempFile::new().unwrap();
    let out = Command::new("bash")
        .args(["-c", script])
        .current_dir(dir)
        .env("GITHUB_REF_NAME", tag)
        .env("GITHUB_OUTPUT", outputs.path())
        .output()
        .expect("bash runs");
    (out, std::fs::read_to_string(outputs.path()).unwrap())
}

/// A scratch package with these versions: `volguard` at `crate_version`, its chart at `chart`/`app`.
fn scratch(crate_version: &str, chart: &str, app: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!("[package]\nname = \"volguard\"\nversion = \"{crate_version}\"\nedition = \"2024\"\n"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::create_dir_all(dir.path().join("charts/volguard")).unwrap();
    let real = std::fs::read_to_string(root().join("charts/volguard/Chart.yaml")).unwrap();
    let mut meta = chart_meta();
    let (old_chart, old_app) = (
        meta["version"].as_str().unwrap().to_owned(),
        meta["appVersion"].as_str().unwrap().to_owned(),
    );
    // The real file with only the two versions changed, so the script reads it as it is written.
    let edited = real
        .replace(&format!("version: {old_chart}\n"), &format!("version: {chart}\n"))
        .replace(
            &format!("appVersion: \"{old_app}\"\n"),
            &format!("appVersion: \"{app}\"\n"),
        );
    let reread: Value = serde_saphyr::from_str(&edited).unwrap();
    meta["version"] = json!(chart);
    meta["appVersion"] = json!(app);
    assert_eq!(reread, meta, "the scratch Chart.yaml has the versions asked for");
    std::fs::write(dir.path().join("charts/volguard/Chart.yaml"), edited).unwrap();
    dir
}

#[test]
fn the_tag_must_name_the_crate_version_and_the_charts_versions() {
    let version = env!("CARGO_PKG_VERSION");
    let meta = chart_meta();
    assert_eq!(
        meta["appVersion"],
        json!(version),
        "Chart.yaml appVersion is the crate version"
    );
    assert_eq!(
        meta["version"],
        json!(version),
        "Chart.yaml version is the crate version"
    );
    assert_eq!(
        chart_values()["image"]["tag"],
        json!(""),
        "the image tag defaults to appVersion"
    );

    let (out, outputs) = version_step(root(), &format!("v{version}"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(outputs, format!("version={version}\n"));

    let (out, outputs) = version_step(root(), &format!("v{version}.1"));
    assert!(
        !out.status.success(),
        "a tag for another version fails the release"
    );
    assert!(outputs.is_empty());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Cargo.toml version is"));

    // Each of the three files is read, not assumed: any one out of step fails the release.
    for (crate_version, chart, app, blamed) in [
        ("2.3.4", "2.3.4", "2.3.4", None),
        ("2.3.5", "2.3.4", "2.3.4", Some("Cargo.toml version is 2.3.5")),
        ("2.3.4", "2.3.5", "2.3.4", Some("Chart.yaml version is 2.3.5")),
        ("2.3.4", "2.3.4", "2.3.5", Some("Chart.yaml appVersion is 2.3.5")),
    ] {
        let dir = scratch(crate_version, chart, app);
        let (out, outputs) = version_step(dir.path(), "v2.3.4");
        let stdout = String::from_utf8_lossy(&out.stdout);
        match blamed {
            None => {
                assert!(
                    out.status.success(),
                    "{stdout}{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                assert_eq!(outputs, "version=2.3.4\n");
            }
            Some(message) => {
                assert!(!out.status.success(), "{crate_version} {chart} {app} must fail");
                assert!(stdout.contains(message), "{message:?} in {stdout}");
                assert!(outputs.is_empty());
            }
        }
    }

    // Everything published carries that version.
    let release = workflow("release.yml");
    for name in ["image", "binaries", "github-release", "crate", "chart"] {
        assert!(
            needs(job(&release, name)).contains("version"),
            "{name} waits for the version check"
        );
    }
}

#[test]
fn the_release_attaches_static_binaries_for_linux_and_macos() {
    let release = workflow("release.yml");
    let binaries = job(&release, "binaries");
    let matrix = binaries["strategy"]["matrix"]["include"]
        .as_array()
        .expect("a matrix");
    let targets: BTreeSet<&str> = matrix.iter().filter_map(|m| m["target"].as_str()).collect();
    assert_eq!(
        targets,
        BTreeSet::from([
            "aarch64-apple-darwin",
            "aarch64-unknown-linux-musl",
            "x86_64-apple-darwin",
            "x86_64-unknown-linux-musl",
        ])
    );
    for entry in matrix {
        let (target, os) = (entry["target"].as_str().unwrap(), entry["os"].as_str().unwrap());
        let runner = if target.contains("apple") {
            "macos"
        } else if target.starts_with("aarch64") {
            "ubuntu-24.04-arm"
        } else {
            "ubuntu-"
        };
        assert!(
            os.starts_with(runner),
            "{target} builds natively on {runner}, not {os}"
        );
    }
    assert_eq!(binaries["runs-on"], json!("${{ matrix.os }}"));
    let build = steps(binaries)
        .iter()
        .find(|s| {
            s["run"] == "cargo build --profile dist --locked --bin volguard --target ${{ matrix.target }}"
        })
        .expect("a step builds the shipped (dist profile) binary for the target");
    assert_eq!(
        build["env"]["CARGO_PROFILE_DIST_STRIP"],
        json!("symbols"),
        "stripped, like the image's binary"
    );
    let script = scripts(binaries);
    assert!(script.contains(&format!("volguard-{VERSION}-${{{{ matrix.target }}}}")));
    assert!(
        script.contains("cp \"target/${{ matrix.target }}/dist/volguard\""),
        "the archive holds the binary the dist build made:\n{script}"
    );
    let publish = job(&release, "github-release");
    assert!(needs(publish).is_superset(&BTreeSet::from(["binaries".to_owned(), "image".to_owned()])));
    assert_eq!(publish["permissions"]["contents"], json!("write"));
    assert!(scripts(publish).contains("gh release create \"$GITHUB_REF_NAME\" dist/*"));
}

#[test]
fn the_release_publishes_the_crate_and_the_chart() {
    let release = workflow("release.yml");
    let crate_job = job(&release, "crate");
    let publish = steps(crate_job)
        .iter()
        .find(|s| s["run"] == "cargo publish --locked")
        .expect("a step runs cargo publish");
    assert_eq!(
        publish["env"]["CARGO_REGISTRY_TOKEN"],
        json!("${{ secrets.CARGO_REGISTRY_TOKEN }}")
    );
    let chart = job(&release, "chart");
    assert!(
        needs(chart).contains("image"),
        "the chart waits for its default image"
    );
    assert_eq!(
        release["env"]["CHARTS"],
        json!(format!("oci://ghcr.io/{OWNER}/charts"))
    );
    let script = scripts(chart);
    assert!(script.contains("helm package charts/volguard --destination dist"));
    let pushed = format!("helm push \"dist/volguard-{VERSION}.tgz\" \"$CHARTS\"");
    assert!(script.contains(&pushed), "{pushed} in {script}");
    assert_eq!(
        chart_meta()["name"],
        json!("volguard"),
        "helm package names the file after the chart"
    );
}

#[test]
fn ci_runs_the_ci_script_on_every_push_and_pull_request() {
    let ci = workflow("ci.yml");
    let on = ci["on"].as_object().expect("ci.yml says when it runs");
    assert!(
        on.contains_key("push") && on.contains_key("pull_request"),
        "{on:?}"
    );
    assert_eq!(ci["on"]["push"], Value::Null, "every branch");
    let runs: Vec<&str> = ci["jobs"]
        .as_object()
        .expect("jobs")
        .values()
        .flat_map(|j| steps(j).iter().filter_map(|s| s["run"].as_str()))
        .collect();
    assert_eq!(runs, ["bash .ci/run"]);
    assert!(root().join(".ci/run").is_file());
}
