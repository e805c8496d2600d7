//! The chart's values are documented once: in charts/volguard/values.schema.json, where every value (every
//! leaf of the schema) has a `description` and its `default`. values.yaml holds exactly those defaults, and
//! README.md's "Chart values" table has one row per value with the same default and description, and no
//! other row. `VOLGUARD_BLESS=1` rewrites the table from the schema (then read the diff); a normal run only
//! compares.

use crate::install_common;

use std::collections::BTreeMap;

use install_common::root;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

const TABLE_START: &str = "<!-- chart-values: made from charts/volguard/values.schema.json; VOLGUARD_BLESS=1 cargo nextest run -E 'binary(install)' rewrites it -->\n";
const TABLE_END: &str = "<!-- /chart-values -->\n";
const HEADER: &str = "| Value | Default | Description |\n|---|---|---|\n";

fn read(path: &str) -> String {
    let path = root().join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn schema() -> Value {
    serde_json::from_str(&read("charts/volguard/values.schema.json")).expect("the schema is JSON")
}

fn values() -> Value {
    serde_saphyr::from_str(&read("charts/volguard/values.yaml")).expect("values.yaml is YAML")
}

/// Every value the schema declares, by dotted path, sorted by name at each level (serde_json's map order):
/// a property with `properties` of its own is a group of values, any other property is one value.
fn leaves(schema: &Value) -> Vec<(String, Value)> {
    fn walk(node: &Value, at: &str, into: &mut Vec<(String, Value)>) {
        for (name, child) in node["properties"].as_object().into_iter().flatten() {
            let path = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            if child.get("properties").is_some() {
                walk(child, &path, into);
            } else {
                into.push((path, child.clone()));
            }
        }
    }
    let mut all = Vec::new();
    walk(schema, "", &mut all);
    all
}

/// A README cell holding `text` in backticks (JSON is YAML, so a default reads as values.yaml spells it).
fn code(text: &str) -> String {
    format!("`{text}`")
}

/// The table as the schema makes it.
fn table(schema: &Value) -> String {
    let mut out = String::from(HEADER);
    for (path, leaf) in leaves(schema) {
        let default = serde_json::to_string(&leaf["default"]).expect("serializes");
        let description = leaf["description"].as_str().unwrap_or_default();
        out.push_str(&format!(
            "| {} | {} | {description} |\n",
            code(&path),
            code(&default)
        ));
    }
    out
}

/// The README's table: its text and its rows, `(value, default, description)` by line.
fn readme_table(readme: &str) -> Result<(std::ops::Range<usize>, Vec<[String; 3]>), String> {
    let start = readme
        .find(TABLE_START)
        .ok_or("README.md has no chart-values table start marker")?
        + TABLE_START.len();
    let end = start
        + readme[start..]
            .find(TABLE_END)
            .ok_or("README.md's chart-values table has no end marker")?;
    let body = readme[start..end]
        .strip_prefix(HEADER)
        .ok_or("the chart-values table starts with its header")?;
    let mut rows = Vec::new();
    for line in body.lines() {
        let cells: Vec<&str> = line
            .strip_prefix("| ")
            .and_then(|l| l.strip_suffix(" |"))
            .ok_or_else(|| format!("not a table row: {line}"))?
            .split(" | ")
            .collect();
        let [value, default, description] = cells[..] else {
            return Err(format!("a row has three cells: {line}"));
        };
        rows.push([value, default, description].map(str::to_owned));
    }
    Ok((start..end, rows))
}

/// What is at `path` in `values`.
fn at<'a>(values: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(values, |v, key| v.get(key))
}

/// Every way the schema, values.yaml and the README disagree.
fn disagreements(schema: &Value, values: &Value, readme: &str) -> Vec<String> {
    let mut found = Vec::new();
    let leaves = leaves(schema);
    for (path, leaf) in &leaves {
        match leaf["description"].as_str() {
            Some(d) if !d.trim().is_empty() && !d.contains('|') && !d.contains('\n') => {}
            _ => found.push(format!("{path}: no description, or one a table cell cannot hold")),
        }
        match (leaf.get("default"), at(values, path)) {
            (None, _) => found.push(format!("{path}: no default in the schema")),
            (Some(_), None) => found.push(format!("{path}: not in values.yaml")),
            (Some(d), Some(v)) if d != v => found.push(format!(
                "{path}: values.yaml has {v}, the schema's default is {d}"
            )),
            _ => {}
        }
    }
    let rows = match readme_table(readme) {
        Ok((_, rows)) => rows,
        Err(e) => {
            found.push(e);
            return found;
        }
    };
    let mut by_value: BTreeMap<String, Vec<&[String; 3]>> = BTreeMap::new();
    for row in &rows {
        by_value
            .entry(row[0].trim_matches('`').to_owned())
            .or_default()
            .push(row);
    }
    for (path, leaf) in &leaves {
        let [row] = by_value.remove(path).unwrap_or_default()[..] else {
            found.push(format!("{path}: not exactly one README row"));
            continue;
        };
        let default: Result<Value, _> = serde_json::from_str(row[1].trim_matches('`'));
        match default {
            Ok(d) if leaf.get("default") == Some(&d) => {}
            _ => found.push(format!(
                "{path}: the README says the default is {}, the schema {}",
                row[1],
                leaf.get("default").unwrap_or(&Value::Null)
            )),
        }
        if leaf["description"].as_str() != Some(row[2].as_str()) {
            found.push(format!("{path}: the README's description is not the schema's"));
        }
    }
    for path in by_value.keys() {
        found.push(format!(
            "{path}: a README row for a value the schema does not have"
        ));
    }
    found
}

#[test]
fn every_chart_value_is_documented_once_in_the_schema_and_listed_in_the_readme() {
    let schema = schema();
    let mut readme = read("README.md");
    if std::env::var("VOLGUARD_BLESS").as_deref() == Ok("1") {
        let (range, _) = readme_table(&readme).unwrap_or_else(|e| panic!("{e}"));
        readme.replace_range(range, &table(&schema));
        // Whole or not at all: the other tests read README.md meanwhile.
        let staged = root().join("README.md.blessing");
        std::fs::write(&staged, &readme).unwrap();
        std::fs::rename(&staged, root().join("README.md")).unwrap();
    }
    assert_eq!(disagreements(&schema, &values(), &readme), Vec::<String>::new());
    let (range, _) = readme_table(&readme).unwrap();
    assert_eq!(
        readme[range].to_owned(),
        table(&schema),
        "the table is the schema's, in its order"
    );
    // The leaves are the values a user sets: groups are not rows, and every group's values are.
    let paths: Vec<String> = leaves(&schema).into_iter().map(|(p, _)| p).collect();
    for path in [
        "image.repository",
        "webhook.pods.failurePolicy",
        "tls.certManager.issuerRef.kind",
    ] {
        assert!(paths.iter().any(|p| p == path), "{path} is a value");
    }
    assert!(!paths.iter().any(|p| p == "image" || p == "webhook.pods"));
    assert!(paths.len() > 30, "{paths:?}");
}

#[test]
fn the_documentation_check_finds_each_kind_of_disagreement() {
    let (schema, values, readme) = (schema(), values(), read("README.md"));
    let row = |path: &str| {
        readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{path}` |")))
            .unwrap_or_else(|| panic!("a row for {path}"))
            .to_owned()
    };

    // A row removed, a row added, a row's default changed.
    let replica_row = row("replicaCount");
    let tampered = readme
        .replace(&format!("{}\n", row("logFormat")), "")
        .replace(&replica_row, &replica_row.replace("`2`", "`3`"))
        .replace(
            &format!("{}\n", row("logLevel")),
            &format!("{}\n| `logColour` | `true` | Colours. |\n", row("logLevel")),
        );
    assert_eq!(
        disagreements(&schema, &values, &tampered),
        [
            "logFormat: not exactly one README row",
            "replicaCount: the README says the default is `3`, the schema 2",
            "logColour: a README row for a value the schema does not have",
        ]
    );

    // values.yaml out of step with the schema; a value with no default or description.
    let mut other_values = values.clone();
    other_values["webhook"]["timeoutSeconds"] = json!(20);
    let mut other_schema = schema.clone();
    let pods = &mut other_schema["properties"]["webhook"]["properties"]["pods"]["properties"];
    pods["enabled"].as_object_mut().unwrap().remove("default");
    pods["failurePolicy"]["description"] = json!("Fail | Ignore");
    let found = disagreements(&other_schema, &other_values, &readme);
    assert_eq!(
        found,
        [
            "webhook.pods.enabled: no default in the schema",
            "webhook.pods.failurePolicy: no description, or one a table cell cannot hold",
            "webhook.timeoutSeconds: values.yaml has 20, the schema's default is 10",
            "webhook.pods.enabled: the README says the default is `true`, the schema null",
            "webhook.pods.failurePolicy: the README's description is not the schema's",
        ]
    );
}
