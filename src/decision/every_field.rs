//! The decision does not depend on the fields decoding leaves out (`domain::workload::unread`): every
//! object in `tests/fixtures`, decoded with every field and decoded as volguard decodes it, gets the same
//! evaluation, the same update ratchet and the same repair patch, under the built-in policy and every
//! policy file among the fixtures.

use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::evaluate::{evaluate, evaluate_update};
use super::mutate::{self, Stage};
use crate::domain::lookup::Bundle;
use crate::domain::policy::{PolicySet, load_path};
use crate::domain::workload::{ObjectType, Resource};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
}

/// The documents of a file (none when it does not parse: some fixtures are broken on purpose).
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    if path.extension().is_some_and(|e| e == "json") {
        serde_json::from_str(&text).into_iter().collect()
    } else {
        serde_saphyr::from_multiple(&text).unwrap_or_default()
    }
}

/// Every object of a kind volguard reads, at any depth (an AdmissionReview's object and oldObject, a
/// List's items, a scenario's `manifests` text), in order. Pairs an UPDATE review's object with its old.
fn objects(value: &Value, found: &mut Vec<Value>, updates: &mut Vec<(Value, Value)>) {
    match value {
        Value::Object(map) => {
            if let (Some(Value::String(a)), Some(Value::String(k))) = (map.get("apiVersion"), map.get("kind"))
                && ObjectType::of(a, k).is_some()
            {
                found.push(value.clone());
            }
            if let (Some(new), Some(old)) = (map.get("object"), map.get("oldObject"))
                && new.is_object()
                && old.is_object()
            {
                updates.push((new.clone(), old.clone()));
            }
            map.values().for_each(|v| objects(v, found, updates));
        }
        Value::Array(items) => items.iter().for_each(|v| objects(v, found, updates)),
        Value::String(text) if text.contains("apiVersion:") => {
            for doc in serde_saphyr::from_multiple::<Value>(text).unwrap_or_default() {
                objects(&doc, found, updates);
            }
        }
        _ => {}
    }
}

/// The object decoded with every field, and as volguard decodes it; None when it does not decode at all.
fn both(value: &Value) -> Option<(Resource, Resource)> {
    let ty = ObjectType::of(value["apiVersion"].as_str()?, value["kind"].as_str()?)?;
    let full = ty.decode_every_field(value).ok()?;
    let read = ty
        .deserialize(value)
        .unwrap_or_else(|e| panic!("decodes in full but not as volguard reads it: {e}\n{value}"));
    Some((full, read))
}

#[test]
fn every_fixture_is_decided_the_same_without_the_unread_fields() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths = Vec::new();
    files(&root, &mut paths);
    let mut policy_sets = vec![("built-in".to_owned(), PolicySet::builtin().unwrap())];
    for path in &paths {
        if path.to_string_lossy().contains("polic")
            && let Ok(set) = load_path(path)
        {
            policy_sets.push((path.display().to_string(), set));
        }
    }
    assert!(policy_sets.len() >= 10, "{} policy files", policy_sets.len());
    let (mut compared, mut trimmed, mut found_any, mut patched, mut updates_compared) = (0, 0, 0, 0, 0);
    for path in &paths {
        let (mut values, mut updates) = (Vec::new(), Vec::new());
        for doc in documents(path) {
            objects(&doc, &mut values, &mut updates);
        }
        let pairs: Vec<(Value, Resource, Resource)> = values
            .into_iter()
            .filter_map(|v| both(&v).map(|(full, read)| (v, full, read)))
            .collect();
        let full_bundle: Bundle = pairs.iter().map(|(_, f, _)| f).collect();
        let read_bundle: Bundle = pairs.iter().map(|(_, _, r)| r).collect();
        for (value, full, read) in &pairs {
            trimmed += usize::from(full != read);
            for (name, policies) in &policy_sets {
                let want = evaluate(full, &full_bundle, policies);
                let got = evaluate(read, &read_bundle, policies);
                assert_eq!(
                    got,
                    want,
                    "{} under {name}: {}",
                    path.display(),
                    full.object_ref()
                );
                found_any += usize::from(want.is_ok_and(|e| !e.findings.is_empty()));
                let want = mutate::mutate(value, full, Stage::Create, &full_bundle, policies);
                let got = mutate::mutate(value, read, Stage::Create, &read_bundle, policies);
                match (want, got) {
                    (Ok(want), Ok(got)) => {
                        assert_eq!(
                            (&got.patch, &got.object, &got.changes),
                            (&want.patch, &want.object, &want.changes),
                            "{} under {name}: {}",
                            path.display(),
                            full.object_ref()
                        );
                        patched += usize::from(!want.is_empty());
                    }
                    (want, got) => assert_eq!(format!("{got:?}"), format!("{want:?}")),
                }
                compared += 1;
            }
        }
        for (new, old) in &updates {
            let (Some((new_full, new_read)), Some((old_full, old_read))) = (both(new), both(old)) else {
                continue;
            };
            for (name, policies) in &policy_sets {
                let want = evaluate_update(&new_full, &old_full, &full_bundle, policies);
                let got = evaluate_update(&new_read, &old_read, &read_bundle, policies);
                assert_eq!(got, want, "{} under {name}", path.display());
                let want = mutate::mutate(new, &new_full, Stage::Update, &full_bundle, policies);
                let got = mutate::mutate(new, &new_read, Stage::Update, &read_bundle, policies);
                assert_eq!(
                    got.map(|m| (m.patch, m.object, m.changes))
                        .map_err(|e| e.to_string()),
                    want.map(|m| (m.patch, m.object, m.changes))
                        .map_err(|e| e.to_string()),
                    "{} under {name}",
                    path.display()
                );
                updates_compared += 1;
            }
        }
    }
    // Not vacuous (4,784 decisions, 160 objects with fields left out, 1,856 with findings, 23 repairs and
    // 48 updates when written): many objects, findings and patches among them.
    assert!(compared >= 4_000, "{compared} decisions compared");
    assert!(trimmed >= 150, "{trimmed} objects had fields left out");
    assert!(found_any >= 1_500, "{found_any} decisions with findings");
    assert!(patched >= 20, "{patched} repairs");
    assert!(updates_compared >= 40, "{updates_compared} updates");
}
