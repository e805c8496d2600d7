//! The integrations, each run the way its host runs it: the pre-commit hooks through pre-commit itself on
//! staged files, the GitHub Action's file against the action schema and its scripts with bash, the krew
//! manifest rendered from archives built as the release builds them and installed as krew installs, then
//! `kubectl volguard` through kubectl; and `--exclude` with the directory walk's rules.

use crate::cli_common;
use crate::sarif::{check_jsonschema, tool};

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

use cli_common::{root, run, volguard};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{} is not YAML: {e}", path.display()))
}

fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_volguard"))
}

/// A directory holding only `volguard` (a link to the binary under test), for PATH.
fn path_with_volguard(name: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    symlink(bin(), dir.path().join(name)).unwrap();
    let path = format!("{}:{}", dir.path().display(), std::env::var("PATH").unwrap());
    (dir, path)
}

fn output(cmd: &mut Command) -> (i32, String, String) {
    crate::env::hermetic(cmd);
    let out = cmd.output().expect("runs");
    (
        out.status.code().expect("exits"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn git(dir: &Path, args: &[&str]) {
    let (code, _, err) = output(Command::new("git").current_dir(dir).args(args));
    assert_eq!(code, 0, "git {args:?}: {err}");
}

/// A git repository with `files` (copied from the package) staged.
fn staged_repo(files: &[(&str, &str)]) -> tempfile::TempDir {
    let repo = tempfile::tempdir().unwrap();
    git(repo.path(), &["init", "-q"]);
    for (from, to) in files {
        let to = repo.path().join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(root().join(from), to).unwrap();
    }
    git(repo.path(), &["add", "-A"]);
    repo
}

#[test]
fn pre_commit_accepts_the_hooks_and_they_are_volguard_check_on_files() {
    let (code, out, err) = output(
        tool("pre-commit")
            .args(["validate-manifest", ".pre-commit-hooks.yaml"])
            .current_dir(root()),
    );
    assert_eq!(code, 0, "pre-commit's own check of the hooks file: {out}{err}");
    let hooks = yaml(&root().join(".pre-commit-hooks.yaml"));
    let hooks = hooks.as_array().unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["volguard-check", "volguard-check-system"]);
    for hook in hooks {
        assert_eq!(hook["entry"], json!("volguard check"));
        // One process for all staged files: claims in one file, workloads in another.
        assert_eq!(hook["require_serial"], json!(true));
        // The entry with a config's args and two staged files appended, as pre-commit runs it.
        let entry: Vec<&str> = hook["entry"].as_str().unwrap().split(' ').collect();
        assert_eq!(entry[0], "volguard");
        let out = run(volguard(entry[1..].iter().copied().chain([
            "--exclude",
            "vendor/**",
            "--strict",
            "examples/hpa-rwo.yaml",
            "examples/postgres-statefulset.yaml",
        ])));
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(
            out.stdout
                .ends_with("3 objects checked, 2 denied, 0 warned; 1 claim read; skipped: 1 Service\n"),
            "{}",
            out.stdout
        );
    }
    assert_eq!(hooks[0]["language"], json!("rust"));
    assert_eq!(hooks[1]["language"], json!("system"));
}

/// `pre-commit try-repo PACKAGE volguard-check-system` in `repo`, with the binary under test on PATH.
fn try_repo(repo: &Path) -> (i32, String) {
    let (_bin_dir, path) = path_with_volguard("volguard");
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = output(
        tool("pre-commit")
            .args([
                "try-repo",
                root().to_str().unwrap(),
                "volguard-check-system",
                "--color",
                "never",
            ])
            .current_dir(repo)
            .env("PATH", path)
            .env("PRE_COMMIT_HOME", home.path()),
    );
    (code, out + &err)
}

#[test]
fn pre_commit_runs_the_hook_on_the_staged_manifests_only() {
    // A workload and its claim in two files, a denied one, and YAML that is not Kubernetes (hidden paths).
    let repo = staged_repo(&[
        ("examples/web-shared-rwo.yaml", "deploy/web.yaml"),
        ("examples/postgres-statefulset.yaml", "deploy/db.yaml"),
        (".github/workflows/ci.yml", ".github/workflows/ci.yml"),
        ("Cargo.toml", "Cargo.toml"),
    ]);
    let (code, out) = try_repo(repo.path());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("volguard check (volguard on PATH)"), "{out}");
    assert!(out.contains("Failed"), "{out}");
    assert!(
        out.contains("DENY  Deployment shop/web  (deploy/web.yaml document 2, line 19)"),
        "{out}"
    );
    assert!(
        out.contains(
            "\n2 objects checked, 1 denied, 0 warned; 1 claim read; skipped: 1 ConfigMap, 2 Service\n"
        ),
        "exit 1, not 2: neither the workflow nor Cargo.toml was given to volguard: {out}"
    );
    // Without the denied file, the hook passes: the workflow YAML was never given to volguard.
    git(repo.path(), &["rm", "-q", "--cached", "deploy/web.yaml"]);
    let (code, out) = try_repo(repo.path());
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Passed"), "{out}");
}

#[test]
fn the_action_is_valid_for_github_and_its_check_step_writes_sarif_and_the_exit_code() {
    let action = root().join("action.yml");
    let (ok, text) = check_jsonschema(&["--builtin-schema", "vendor.github-actions"], &action);
    assert!(ok, "action.yml against the GitHub Action schema:\n{text}");
    let action = yaml(&action);
    assert_eq!(action["runs"]["using"], json!("composite"));
    let steps = action["runs"]["steps"].as_array().unwrap();
    let upload = steps
        .iter()
        .find(|s| {
            s["uses"]
                .as_str()
                .is_some_and(|u| u.starts_with("github/codeql-action/upload-sarif@"))
        })
        .expect("a step uploads the SARIF");
    assert_eq!(upload["with"]["sarif_file"], json!("${{ inputs.sarif-file }}"));
    let inputs: Vec<&str> = action["inputs"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for input in ["paths", "policy", "strict", "exclude", "sarif-file", "upload"] {
        assert!(inputs.contains(&input), "input {input}");
    }
    let script = |name: &str| {
        steps.iter().find(|s| s["name"] == json!(name)).unwrap()["run"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (_bin_dir, path) = path_with_volguard("volguard");
    let work = tempfile::tempdir().unwrap();
    let outputs = work.path().join("github-output");
    let run_check = |paths: &str, strict: &str, exclude: &str| {
        std::fs::write(&outputs, "").unwrap();
        let sarif = work.path().join("volguard.sarif");
        let (code, out, err) = output(
            Command::new("bash")
                .args(["-c", &script("Check")])
                .current_dir(root())
                .env("PATH", &path)
                .env("PATHS", paths)
                .env("POLICY", "")
                .env("STRICT", strict)
                .env("EXCLUDE", exclude)
                .env("SARIF", &sarif)
                .env("GITHUB_OUTPUT", &outputs),
        );
        assert_eq!(
            code, 0,
            "the step itself succeeds; the verdict is its output: {out}{err}"
        );
        let sarif: Value = serde_json::from_slice(&std::fs::read(&sarif).unwrap()).unwrap();
        (std::fs::read_to_string(&outputs).unwrap(), sarif)
    };
    // Paths on lines and after spaces, as a workflow writes them.
    let (out, sarif) = run_check(
        "examples/single-replica-rollout.yaml\nexamples/pinned-node.yaml examples/postgres-statefulset.yaml\n",
        "false",
        "",
    );
    assert_eq!(out, "exit-code=0\nwritten=true\n");
    let rules: Vec<&str> = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ruleId"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["rollout-attach-deadlock", "shared-rwo-claim"],
        "both files with findings were read"
    );
    let (out, _) = run_check("examples/single-replica-rollout.yaml", "true", "");
    assert_eq!(out, "exit-code=1\nwritten=true\n", "strict: the warning fails");
    let (out, sarif) = run_check(
        "tests/fixtures/ci",
        "false",
        "*.test.yaml\ntests/fixtures/ci/vendor/**",
    );
    assert_eq!(out, "exit-code=1\nwritten=true\n");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 5);
    // The install step keeps a volguard already on PATH.
    let (code, out, err) = output(
        Command::new("bash")
            .args(["-c", &script("Install volguard")])
            .env("PATH", &path)
            .env("VERSION", env!("CARGO_PKG_VERSION"))
            .env("INSTALL", "release"),
    );
    assert_eq!(
        (code, out.as_str()),
        (0, concat!("volguard ", env!("CARGO_PKG_VERSION"), "\n")),
        "{err}"
    );
}

/// The release target this machine runs (the tests run on Linux).
fn this_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-musl",
        _ => "x86_64-unknown-linux-musl",
    }
}

/// The archive .github/workflows/release.yml builds for `target`, with its `.sha256` file, in `dist`: the
/// binary under test for this machine's target, a stand-in for the others (only one is installed here).
fn release_archive(dist: &Path, version: &str, target: &str) -> PathBuf {
    let name = format!("volguard-{version}-{target}");
    let dir = dist.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    if target == this_target() {
        std::fs::copy(bin(), dir.join("volguard")).unwrap();
    } else {
        std::fs::write(dir.join("volguard"), format!("volguard for {target}")).unwrap();
    }
    for file in ["README.md", "LICENSE"] {
        std::fs::copy(root().join(file), dir.join(file)).unwrap();
    }
    let archive = format!("{name}.tar.gz");
    let (code, _, err) = output(
        Command::new("tar")
            .current_dir(dist)
            // gzip as the release's `tar -czf`, at the fastest level: the debug binary is 100 MB.
            .args(["--use-compress-program=gzip -1", "-cf", &archive, &name]),
    );
    assert_eq!(code, 0, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    let (code, sum, err) = output(Command::new("sha256sum").current_dir(dist).arg(&archive));
    assert_eq!(code, 0, "{err}");
    std::fs::write(dist.join(format!("{archive}.sha256")), sum).unwrap();
    dist.join(archive)
}

#[test]
fn the_krew_manifest_installs_the_release_archive_and_kubectl_runs_the_plugin() {
    let version = env!("CARGO_PKG_VERSION");
    let dist = tempfile::tempdir().unwrap();
    let targets = [
        "x86_64-unknown-linux-musl",
        "aarch64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-apple-darwin",
    ];
    let archives: Vec<PathBuf> = targets
        .iter()
        .map(|t| release_archive(dist.path(), version, t))
        .collect();
    // The release's step: the template with these archives' checksums.
    let (code, rendered, err) = output(
        Command::new("bash")
            .arg(root().join("plugins/render-krew.sh"))
            .args([version, dist.path().to_str().unwrap()]),
    );
    assert_eq!(code, 0, "{err}");
    let plugin: Value = serde_saphyr::from_str(&rendered).unwrap();
    assert_eq!(
        plugin["apiVersion"],
        json!("krew.googlecontainertools.github.com/v1alpha2")
    );
    assert_eq!(plugin["kind"], json!("Plugin"));
    assert_eq!(plugin["metadata"]["name"], json!("volguard"));
    assert_eq!(plugin["spec"]["version"], json!(format!("v{version}")));
    assert_eq!(plugin["spec"]["homepage"], json!(env!("CARGO_PKG_REPOSITORY")));
    assert!(plugin["spec"]["shortDescription"].as_str().unwrap().len() < 60);
    let platforms = plugin["spec"]["platforms"].as_array().unwrap();
    let selectors: Vec<(&str, &str)> = platforms
        .iter()
        .map(|p| {
            let labels = &p["selector"]["matchLabels"];
            (labels["os"].as_str().unwrap(), labels["arch"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        selectors,
        [
            ("linux", "amd64"),
            ("linux", "arm64"),
            ("darwin", "amd64"),
            ("darwin", "arm64")
        ]
    );
    for ((platform, target), archive) in platforms.iter().zip(targets).zip(&archives) {
        let uri = format!(
            "{}/releases/download/v{version}/volguard-{version}-{target}.tar.gz",
            env!("CARGO_PKG_REPOSITORY")
        );
        assert_eq!(platform["uri"], json!(uri));
        let sum = std::fs::read_to_string(archive.with_extension("gz.sha256")).unwrap();
        assert_eq!(platform["sha256"], json!(sum.split(' ').next().unwrap()));
        assert_eq!(platform["bin"], json!("volguard"));
    }
    // Without an archive's checksum the release step fails rather than publish a manifest krew refuses.
    std::fs::remove_file(archives[3].with_extension("gz.sha256")).unwrap();
    let (code, _, err) = output(
        Command::new("bash")
            .arg(root().join("plugins/render-krew.sh"))
            .args([version, dist.path().to_str().unwrap()]),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("no checksum") && err.contains("@SHA256:aarch64-apple-darwin@"),
        "{err}"
    );

    // Install this machine's platform as krew does: unpack, copy each `files` entry, link `bin` as
    // kubectl-volguard.
    let here = targets.iter().position(|t| *t == this_target()).unwrap();
    let linux = &platforms[here];
    let unpacked = tempfile::tempdir().unwrap();
    let (code, _, err) = output(Command::new("tar").args([
        "-xzf",
        archives[here].to_str().unwrap(),
        "-C",
        unpacked.path().to_str().unwrap(),
    ]));
    assert_eq!(code, 0, "{err}");
    let store = tempfile::tempdir().unwrap();
    for file in linux["files"].as_array().unwrap() {
        let from = unpacked.path().join(file["from"].as_str().unwrap());
        assert!(from.is_file(), "{} is in the archive", from.display());
        assert_eq!(file["to"], json!("."));
        std::fs::copy(&from, store.path().join(from.file_name().unwrap())).unwrap();
    }
    let krew_bin = tempfile::tempdir().unwrap();
    symlink(
        store.path().join(linux["bin"].as_str().unwrap()),
        krew_bin.path().join("kubectl-volguard"),
    )
    .unwrap();
    let path = format!("{}:{}", krew_bin.path().display(), std::env::var("PATH").unwrap());
    let kubectl = |args: &[&str]| {
        output(
            Command::new("kubectl")
                .args(args)
                .current_dir(root())
                .env("PATH", &path),
        )
    };

    let (code, out, err) = kubectl(&["plugin", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&krew_bin.path().join("kubectl-volguard").display().to_string()),
        "{out}"
    );
    let (code, out, _) = kubectl(&[
        "volguard",
        "check",
        "-f",
        "examples/hpa-rwo.yaml",
        "examples/pinned-node.yaml",
    ]);
    let direct = run(volguard([
        "check",
        "-f",
        "examples/hpa-rwo.yaml",
        "examples/pinned-node.yaml",
    ]));
    assert_eq!((code, out.as_str()), (direct.code, direct.stdout.as_str()));
    assert_eq!(code, 1);
    // Help and usage name the command the user typed.
    let (code, out, _) = kubectl(&["volguard", "check", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("\nUsage: kubectl volguard check [OPTIONS] [PATH]...\n"),
        "{out}"
    );
    let (code, _, err) = kubectl(&["volguard", "chek"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("Usage: kubectl volguard [OPTIONS] <COMMAND>"),
        "{err}"
    );
    // Under its own name, volguard is volguard.
    let out = run(volguard(["check", "--help"]));
    assert!(
        out.stdout
            .contains("\nUsage: volguard check [OPTIONS] [PATH]...\n"),
        "{}",
        out.stdout
    );
}

/// The files `check` read (its JSON report's origins, claims, skipped objects and errors), sorted.
fn files_read(args: &[&str]) -> (i32, Vec<String>) {
    let out = run(volguard(["check", "-o", "json"].iter().chain(args)));
    let report = out.json();
    let mut files: Vec<String> = ["objects", "claims", "skipped", "errors"]
        .iter()
        .flat_map(|k| {
            report[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| o["origin"]["file"].as_str().unwrap().to_owned())
        })
        .collect();
    files.sort();
    files.dedup();
    (out.code, files)
}

#[test]
fn a_directory_walk_reads_manifests_only_and_skips_hidden_entries() {
    let (code, files) = files_read(&["-f", "tests/fixtures/ci/"]);
    assert_eq!(code, 2, "smoke.test.yaml does not parse");
    assert_eq!(
        files,
        [
            "tests/fixtures/ci/apps/autoscale.yaml",
            "tests/fixtures/ci/apps/shop.yaml",
            "tests/fixtures/ci/apps/smoke.test.yaml",
            "tests/fixtures/ci/apps/worker.json",
            "tests/fixtures/ci/vendor/upstream.yaml",
        ],
        "not .cache/ (hidden), not notes.txt"
    );
}

#[test]
fn exclude_globs_leave_out_paths_and_names_and_given_files() {
    let (code, files) = files_read(&[
        "-f",
        "tests/fixtures/ci/",
        "--exclude",
        "*.test.yaml",
        "--exclude",
        "tests/fixtures/ci/vendor/**",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        files,
        [
            "tests/fixtures/ci/apps/autoscale.yaml",
            "tests/fixtures/ci/apps/shop.yaml",
            "tests/fixtures/ci/apps/worker.json"
        ]
    );
    // A directory's name excludes all of it; `*` does not cross a `/`, `**` does.
    let (_, files) = files_read(&["-f", "tests/fixtures/ci/", "--exclude", "apps"]);
    assert_eq!(files, ["tests/fixtures/ci/vendor/upstream.yaml"]);
    let (_, files) = files_read(&[
        "-f",
        "tests/fixtures/ci/",
        "--exclude",
        "tests/fixtures/*.yaml",
        "--exclude",
        "*.test.yaml",
    ]);
    assert_eq!(files.len(), 4, "{files:?}");
    let (_, files) = files_read(&["-f", "tests/fixtures/ci/", "--exclude", "tests/**/*.yaml"]);
    assert_eq!(files, ["tests/fixtures/ci/apps/worker.json"]);
    // A file given by name is excluded too (pre-commit passes names), and that is no error.
    let (code, files) = files_read(&[
        "-f",
        "tests/fixtures/ci/apps/smoke.test.yaml",
        "tests/fixtures/ci/apps/worker.json",
        "--exclude",
        "*.test.yaml",
    ]);
    assert_eq!(
        (code, files),
        (0, vec!["tests/fixtures/ci/apps/worker.json".to_owned()])
    );
    // A `./` prefix does not change what a glob matches.
    let out = run(volguard([
        "check",
        "-f",
        "./tests/fixtures/ci/",
        "--exclude",
        "tests/fixtures/ci/apps/**",
    ]));
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("DENY  Deployment vendor/upstream  (./tests/fixtures/ci/vendor/upstream.yaml"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_bad_exclude_glob_is_a_usage_error() {
    let out = run(volguard(["check", "-f", "examples/", "--exclude", "apps/[x"]));
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("invalid value 'apps/[x' for '--exclude <GLOB>'"),
        "{}",
        out.stderr
    );
}

#[test]
fn links_to_directories_are_not_followed_and_links_to_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("apps")).unwrap();
    symlink(
        root().join("examples/hpa-rwo.yaml"),
        dir.path().join("apps/hpa.yaml"),
    )
    .unwrap();
    // A loop: apps/again -> apps. The walk used to recurse through it without end.
    symlink(dir.path().join("apps"), dir.path().join("apps/again")).unwrap();
    symlink(root().join("examples"), dir.path().join("examples")).unwrap();
    std::fs::write(
        dir.path().join("apps/UPPER.YAML"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    let out = run(volguard([
        Path::new("check"),
        Path::new("-f"),
        dir.path(),
        Path::new("-o"),
        Path::new("json"),
    ]));
    let report = out.json();
    assert_eq!(report["summary"]["objects"], json!(2), "the HPA example, once");
    assert_eq!(
        report["summary"]["skipped"],
        json!({"ConfigMap": 1}),
        "UPPER.YAML is read"
    );
    let files: std::collections::BTreeSet<&str> = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["origin"]["file"].as_str().unwrap())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files.iter().all(|f| f.ends_with("apps/hpa.yaml")), "{files:?}");
    // A link given by name is followed.
    let out = run(volguard([
        Path::new("check"),
        Path::new("-f"),
        &dir.path().join("examples"),
        Path::new("-o"),
        Path::new("json"),
    ]));
    assert_eq!(out.json()["summary"]["objects"], json!(11), "every example");
}
