//! The architecture holds: the rooms of `src/` (domain, decision, adapters) import only from the rooms
//! they may, no two modules import each other (directly or around a loop), and ARCHITECTURE.md names
//! only paths and modules that exist.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::cli_common::root;

const ROOMS: [&str; 3] = ["domain", "decision", "adapters"];

/// The rooms a room may import from (itself included).
fn may_use(room: &str) -> &'static [&'static str] {
    match room {
        "domain" => &["domain"],
        "decision" => &["domain", "decision"],
        _ => &["domain", "decision", "adapters"],
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules of a room: `src/ROOM/NAME.rs` and `src/ROOM/NAME/`.
fn modules_of(room: &str) -> BTreeSet<String> {
    std::fs::read_dir(root().join("src").join(room))
        .expect("room directory")
        .map(|e| e.expect("directory entry").path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_owned();
            (name != "mod").then_some(name)
        })
        .collect()
}

/// Source without comments, so a doc link is not an import.
fn code_of(text: &str) -> String {
    text.lines()
        .map(|line| match line.find("//") {
            Some(i) => &line[..i],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::ROOM::NAME` a source text uses, as (room, name).
fn imports(code: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        let mut parts = rest.splitn(3, "::");
        let (Some(room), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        let name: String = name
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if ROOMS.contains(&room) && !name.is_empty() {
            out.insert((room.to_owned(), name));
        }
    }
    out
}

/// The module graph of `src/`: `room::module` to the `room::module`s it imports, and every import that
/// climbs a room (a domain module using the decision or an adapter, the decision using an adapter).
fn graph() -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let modules: BTreeMap<&str, BTreeSet<String>> = ROOMS.iter().map(|r| (*r, modules_of(r))).collect();
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut climbing = Vec::new();
    for file in files {
        let rel = file.strip_prefix(root().join("src")).expect("under src");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        let [room, module, ..] = parts.as_slice() else {
            continue; // lib.rs, main.rs
        };
        if module == "mod" {
            continue; // the room's own mod.rs: declarations and re-exports
        }
        let node = format!("{room}::{module}");
        let code = code_of(&std::fs::read_to_string(&file).expect("source is readable"));
        for (to_room, name) in imports(&code) {
            if !may_use(room).contains(&to_room.as_str()) {
                climbing.push(format!("{} uses crate::{to_room}::{name}", rel.display()));
            }
            // A name that is not a module of its room is an item the room re-exports from one.
            if modules[to_room.as_str()].contains(&name) {
                let target = format!("{to_room}::{name}");
                if target != node {
                    edges.entry(node.clone()).or_default().insert(target);
                }
            }
        }
        edges.entry(node).or_default();
    }
    (edges, climbing)
}

/// Every cycle's modules, as one sorted list per strongly connected component of more than one module.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let reaches = |from: &str, to: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from.to_owned()];
        while let Some(n) = stack.pop() {
            for next in edges.get(&n).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    stack.push(next.clone());
                }
            }
        }
        false
    };
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for a in edges.keys() {
        let component: Vec<String> = edges
            .keys()
            .filter(|b| *b == a || (reaches(a, b) && reaches(b, a)))
            .cloned()
            .collect();
        if component.len() > 1 {
            found.insert(component);
        }
    }
    found.into_iter().collect()
}

#[test]
fn no_module_imports_from_a_room_below_it_or_around_a_loop() {
    let (edges, climbing) = graph();
    assert!(edges.contains_key("domain::rules") && edges.contains_key("adapters::server"));
    assert!(
        edges["decision::evaluate"].contains("domain::footprint"),
        "the graph sees real imports: {edges:#?}"
    );
    assert_eq!(climbing, Vec::<String>::new(), "imports that climb a room");
    assert_eq!(cycles(&edges), Vec::<Vec<String>>::new(), "import cycles");
}

#[test]
fn the_cycle_finder_finds_a_loop_through_three_modules() {
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a", "d"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycles(&edges),
        vec![vec!["a".to_owned(), "b".to_owned(), "c".to_owned()]]
    );
}

#[test]
fn imports_are_read_from_code_not_comments() {
    let code = code_of(
        "use crate::domain::rules::{RuleId};\n// see crate::adapters::server\nlet x = crate::decision::evaluate(a);",
    );
    assert_eq!(
        imports(&code),
        BTreeSet::from([
            ("domain".to_owned(), "rules".to_owned()),
            ("decision".to_owned(), "evaluate".to_owned()),
        ])
    );
}

/// Every `code span` of the text outside fenced blocks.
fn code_spans(text: &str) -> Vec<String> {
    let mut prose = String::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    prose
        .split('`')
        .skip(1)
        .step_by(2)
        .map(|s| s.replace('\n', " "))
        .collect()
}

#[test]
fn architecture_md_names_only_paths_and_modules_that_exist() {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut checked = 0;
    for span in code_spans(&text) {
        let span = span.as_str();
        if span.starts_with("src/") || span.starts_with("tests/") {
            assert!(
                root().join(span).exists(),
                "ARCHITECTURE.md names {span}, which does not exist"
            );
            checked += 1;
        } else if let Some((module, item)) = span.split_once("::")
            && !span.contains(' ')
        {
            // `room::module` is a module of the room (or an item its mod.rs re-exports);
            // `module::item` is an item defined in that module.
            let found = if ROOMS.contains(&module) {
                modules_of(module).contains(item)
                    || std::fs::read_to_string(root().join("src").join(module).join("mod.rs"))
                        .expect("room mod.rs")
                        .contains(item)
            } else {
                let mut files = Vec::new();
                for room in ROOMS {
                    let dir = root().join("src").join(room).join(module);
                    if dir.is_dir() {
                        rust_files(&dir, &mut files);
                    }
                    let file = root().join("src").join(room).join(format!("{module}.rs"));
                    if file.is_file() {
                        files.push(file);
                    }
                }
                files.iter().any(|f| {
                    let code = std::fs::read_to_string(f).expect("source");
                    ["fn", "struct", "enum", "trait", "const", "mod"]
                        .iter()
                        .any(|k| code.contains(&format!("{k} {item}")))
                })
            };
            assert!(found, "ARCHITECTURE.md names {span}, which does not exist");
            checked += 1;
        }
    }
    assert!(
        checked > 30,
        "only {checked} names checked: the spans were not read"
    );
}
