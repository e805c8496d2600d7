//! The crate as `cargo publish` would upload it: the metadata crates.io needs, a licence, and the files
//! the binary needs (its sources and what they embed), without the tests, benches, fuzz targets, chart or
//! dev certificates.

use crate::install_common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use install_common::root;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// `cargo metadata` of the package, as crates.io will read it.
fn package() -> Value {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root())
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata prints JSON");
    meta["packages"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "volguard"))
        .cloned()
        .expect("the volguard package")
}

#[test]
fn the_crate_is_publishable_with_what_crates_io_asks_for() {
    let package = package();
    assert_eq!(
        package["publish"],
        Value::Null,
        "Cargo.toml does not forbid publishing"
    );
    for field in ["description", "license", "repository", "readme", "rust_version"] {
        assert!(
            package[field].as_str().is_some_and(|v| !v.is_empty()),
            "crates.io wants {field}"
        );
    }
    for list in ["keywords", "categories"] {
        let n = package[list].as_array().map_or(0, Vec::len);
        assert!((1..=5).contains(&n), "1 to 5 {list}, not {n}");
    }
    assert_eq!(package["license"], json!("Apache-2.0"));
    let license = std::fs::read_to_string(root().join("LICENSE")).expect("a LICENSE file");
    assert!(license.contains("Apache License") && license.contains("Version 2.0, January 2004"));
}

/// Files `cargo package` would upload.
fn packaged() -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(root())
        .output()
        .expect("cargo package runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Every `.rs` file under `dir`, relative to the package root.
fn sources(dir: &Path, into: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root()).unwrap();
            into.insert(relative.to_str().unwrap().to_owned());
        }
    }
}

#[test]
fn the_crate_packages_what_the_binary_needs_and_no_more() {
    let files = packaged();
    let mut needed = BTreeSet::new();
    sources(&root().join("src"), &mut needed);
    // What the code embeds, resolved from each include_str!/include_bytes! in it.
    for source in needed.clone() {
        let text = std::fs::read_to_string(root().join(&source)).unwrap();
        for (at, _) in text.match_indices("include_") {
            let rest = &text[at..];
            let Some(open) = rest.find("!(\"") else { continue };
            if !["include_str", "include_bytes"].contains(&&rest[..open]) {
                continue;
            }
            let path = &rest[open + 3..];
            let path = &path[..path.find('"').unwrap()];
            let file = root().join(&source).parent().unwrap().join(path);
            let file = file
                .canonicalize()
                .unwrap_or_else(|e| panic!("{source} embeds {path}: {e}"));
            let relative = file.strip_prefix(root().canonicalize().unwrap()).unwrap();
            needed.insert(relative.to_str().unwrap().to_owned());
        }
    }
    assert!(
        needed.contains("policies/default.yaml"),
        "the built-in policy is embedded"
    );
    needed.extend(["README.md", "LICENSE", "Cargo.toml", "Cargo.lock"].map(str::to_owned));
    let missing: Vec<_> = needed.difference(&files).collect();
    assert!(missing.is_empty(), "the package lacks {missing:?}");
    for unwanted in [
        "tests/", "fuzz/", "benches/", "charts/", "certs/", "target/", ".github/",
    ] {
        let found: Vec<_> = files.iter().filter(|f| f.starts_with(unwanted)).collect();
        assert!(found.is_empty(), "the package holds {found:?}");
    }
}
