//! What the CLI tests share (tests/server/common is the server tests'): running the `volguard` binary the way a
//! user does, hermetically: from the package root, with no `VOLGUARD_*`, colour or log variables leaking
//! in from the environment running the tests (`env.rs`, which every binary using this declares as
//! `crate::env`).

#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The package root: paths in expectations are relative to it, as a user in a checkout types them.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `tests/fixtures/check/<name>`, relative to the package root.
pub fn fixture(name: &str) -> String {
    format!("tests/fixtures/check/{name}")
}

/// `volguard <args>`, run from the package root.
pub fn volguard<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_volguard"));
    cmd.current_dir(root());
    for name in crate::env::inherited_settings() {
        cmd.env_remove(name);
    }
    cmd.args(args);
    cmd
}

/// The finished run: exit code, standard output and standard error.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Standard output as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs the command to completion.
pub fn run(mut cmd: Command) -> Run {
    let out = cmd.output().expect("the volguard binary runs");
    Run {
        code: out.status.code().expect("volguard exits, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `(object, verdict, rule ids)` for every judged object of a JSON report, in report order.
pub fn decisions(report: &serde_json::Value) -> Vec<(String, String, Vec<String>)> {
    report["objects"]
        .as_array()
        .expect("objects is an array")
        .iter()
        .map(|o| {
            let object = format!(
                "{} {}/{}",
                o["kind"].as_str().unwrap(),
                o["namespace"].as_str().unwrap(),
                o["name"].as_str().unwrap()
            );
            let rules = o["findings"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap().to_owned())
                .collect();
            (object, o["verdict"].as_str().unwrap().to_owned(), rules)
        })
        .collect()
}

/// Shorthand for an expected decision.
pub fn d(object: &str, verdict: &str, rules: &[&str]) -> (String, String, Vec<String>) {
    (
        object.to_owned(),
        verdict.to_owned(),
        rules.iter().map(|r| (*r).to_owned()).collect(),
    )
}
