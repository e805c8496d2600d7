//! README.md's "SARIF and JUnit output" and "Integrations" sections: every command they show is run here,
//! every excerpt compared with real output, and every configuration checked by the tool that reads it.

use crate::cli_common;
use crate::sarif::{check_jsonschema, tool};

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use cli_common::{root, run, volguard};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn readme() -> String {
    std::fs::read_to_string(root().join("README.md")).expect("README.md is readable")
}

/// The README from `heading` to the next heading of the same level.
fn section(heading: &str) -> String {
    let text = readme();
    let start = text
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("README.md has {heading}"));
    let level = heading.split(' ').next().unwrap();
    let rest = &text[start + heading.len() + 2..];
    let end = rest.find(&format!("\n{level} ")).unwrap_or(rest.len());
    rest[..end].to_owned()
}

/// The fenced blocks (` ```lang `) of `text`, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}\n");
    text.split(&fence)
        .skip(1)
        .map(|b| b[..b.find("```\n").expect("the block ends")].to_owned())
        .collect()
}

/// Runs a README shell block with bash: in `dir` (holding links to the package's examples and tests), with
/// the binary under test as `volguard` on PATH, and HOME in a scratch directory.
fn shell(block: &str, dir: &Path) -> (i32, String, String) {
    let bin = tempfile::tempdir().unwrap();
    symlink(env!("CARGO_BIN_EXE_volguard"), bin.path().join("volguard")).unwrap();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let path = format!(
        "{}:{}:{}",
        home.join(".local/bin").display(),
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", block])
        .current_dir(dir)
        .env("PATH", path)
        .env("HOME", &home);
    crate::env::hermetic(&mut cmd);
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A scratch directory where the package's `examples/` and `tests/` are, as in a checkout.
fn checkout() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["examples", "tests"] {
        symlink(root().join(d), dir.path().join(d)).unwrap();
    }
    dir
}

#[test]
fn the_sarif_and_junit_commands_and_excerpts_are_real() {
    let text = section("### SARIF and JUnit output");
    let commands = &blocks(&text, "sh")[0];
    let dir = checkout();
    let (code, out, err) = shell(commands, dir.path());
    // `set -e` stops at the first command, which exits 1 (denials).
    assert_eq!((code, out.as_str(), err.as_str()), (1, "", ""));
    let each: Vec<&str> = commands.lines().collect();
    assert_eq!(each.len(), 2);
    for (line, file) in each.iter().zip(["volguard.sarif", "volguard-junit.xml"]) {
        let (code, _, err) = shell(line, dir.path());
        assert_eq!(code, 1, "{line}: {err}");
        assert!(dir.path().join(file).metadata().unwrap().len() > 0);
    }
    let sarif: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("volguard.sarif")).unwrap()).unwrap();
    let shown: Value = serde_json::from_str(&blocks(&text, "json")[0]).expect("the excerpt is JSON");
    let mut web = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["locations"][0]["logicalLocations"][0]["name"] == json!("web"))
        .unwrap()
        .clone();
    for left_out in ["message", "properties", "partialFingerprints"] {
        web.as_object_mut().unwrap().remove(left_out);
    }
    assert_eq!(web, shown);
    let shop = std::fs::read_to_string(root().join("tests/fixtures/ci/apps/shop.yaml")).unwrap();
    assert_eq!(shop.lines().nth(37).unwrap().trim(), "claimName: web-uploads");
    assert!(text.contains("Line 38 of `shop.yaml` is `claimName: web-uploads`"));
    let junit = std::fs::read_to_string(dir.path().join("volguard-junit.xml")).unwrap();
    let lines: Vec<&str> = junit.lines().collect();
    for shown in blocks(&text, "xml")[0].lines() {
        assert!(
            lines.contains(&shown),
            "not a line of the JUnit output: {shown}\n{junit}"
        );
    }
}

#[test]
fn the_exclude_example_is_real_output() {
    let text = section("### Excluding paths: `--exclude`");
    let cmd = "volguard check -f tests/fixtures/ci/ --exclude '*.test.yaml' --exclude 'tests/fixtures/ci/vendor/**'";
    assert!(
        text.contains(&format!("`{cmd}`,\nsummary line:")),
        "README shows {cmd}"
    );
    let dir = checkout();
    let (code, out, err) = shell(cmd, dir.path());
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        out.lines().last().unwrap().to_owned() + "\n",
        blocks(&text, "text")[0]
    );
    let (code, out, _) = shell("volguard check -f tests/fixtures/ci/ || true", dir.path());
    assert_eq!(code, 0);
    assert_eq!(
        out.lines().last().unwrap(),
        "7 objects checked, 5 denied, 1 warned; 3 claims read; skipped: 1 ConfigMap; 1 input error",
        "without the globs: one more denial and the input error the README names"
    );
}

#[test]
fn the_pre_commit_config_is_valid_and_its_hook_runs_as_the_readme_says() {
    let text = section("### pre-commit");
    let config = &blocks(&text, "yaml")[0];
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".pre-commit-config.yaml"), config).unwrap();
    let out = tool("pre-commit")
        .args(["validate-config", ".pre-commit-config.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let config: Value = serde_saphyr::from_str(config).unwrap();
    let repo = &config["repos"][0];
    assert_eq!(repo["repo"], json!(env!("CARGO_PKG_REPOSITORY")));
    assert_eq!(repo["rev"], json!(concat!("v", env!("CARGO_PKG_VERSION"))));
    let hooks: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join(".pre-commit-hooks.yaml")).unwrap())
            .unwrap();
    let hook = &repo["hooks"][0];
    let declared = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["id"] == hook["id"])
        .expect("the hook is declared");
    // The command the README says pre-commit runs: the entry, the args, the staged files.
    let args: Vec<&str> = hook["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let said = "volguard check --exclude 'deploy/vendor/**' --strict deploy/web.yaml deploy/db.yaml";
    assert!(text.contains(&format!("`{said}`")));
    assert_eq!(
        format!(
            "{} {} deploy/web.yaml deploy/db.yaml",
            declared["entry"].as_str().unwrap(),
            args.join(" ")
        ),
        said.replace('\'', "")
    );
    std::fs::create_dir_all(dir.path().join("deploy/vendor")).unwrap();
    std::fs::copy(
        root().join("examples/hpa-rwo.yaml"),
        dir.path().join("deploy/web.yaml"),
    )
    .unwrap();
    std::fs::copy(
        root().join("examples/postgres-statefulset.yaml"),
        dir.path().join("deploy/db.yaml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("deploy/vendor/broken.yaml"), "kind: [\n").unwrap();
    let (code, out, err) = shell(&format!("{said} deploy/vendor/broken.yaml"), dir.path());
    assert_eq!(
        code, 1,
        "denied; the vendored file is excluded, not an input error: {err}"
    );
    assert!(
        out.ends_with("\n3 objects checked, 2 denied, 0 warned; 1 claim read; skipped: 1 Service\n"),
        "{out}"
    );
}

#[test]
fn the_github_action_workflow_is_valid_and_uses_the_actions_inputs() {
    let text = section("### GitHub Action");
    let workflow = &blocks(&text, "yaml")[0];
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("volguard.yml");
    std::fs::write(&file, workflow).unwrap();
    let (ok, out) = check_jsonschema(&["--builtin-schema", "vendor.github-workflows"], &file);
    assert!(ok, "{out}");
    let workflow: Value = serde_saphyr::from_str(workflow).unwrap();
    assert_eq!(
        workflow["permissions"]["security-events"],
        json!("write"),
        "upload-sarif needs it"
    );
    let step = &workflow["jobs"]["check"]["steps"][1];
    let repository = env!("CARGO_PKG_REPOSITORY").trim_start_matches("https://github.com/");
    assert_eq!(
        step["uses"],
        json!(format!("{repository}@v{}", env!("CARGO_PKG_VERSION")))
    );
    let action: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(root().join("action.yml")).unwrap()).unwrap();
    for (input, _) in step["with"].as_object().unwrap() {
        assert!(
            action["inputs"][input].is_object(),
            "action.yml has input {input}"
        );
        assert!(
            text.contains(&format!("`{input}`")),
            "the README lists input {input}"
        );
    }
    for (input, _) in action["inputs"].as_object().unwrap() {
        assert!(
            text.contains(&format!("`{input}`")),
            "the README lists input {input}"
        );
    }
}

#[test]
fn the_kubectl_plugin_commands_run_as_shown() {
    let text = section("### kubectl plugin");
    let commands = &blocks(&text, "sh")[0];
    let dir = checkout();
    let (code, out, err) = shell(commands, dir.path());
    let direct = run(volguard(["check", "-f", "examples/hpa-rwo.yaml"]));
    assert_eq!(
        (code, out.as_str()),
        (direct.code, direct.stdout.as_str()),
        "{err}"
    );
    assert_eq!(code, 1);
    assert!(dir.path().join("home/.local/bin/kubectl-volguard").is_symlink());
    assert!(text.contains("`plugins/render-krew.sh`"));
}
