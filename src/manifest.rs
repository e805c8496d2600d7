//! Reading manifests: files, directories and standard input, multi-document YAML, JSON and `kind: List`.
//!
//! Each document keeps where it came from (file, document number, line, and the item of a List), so every
//! error and finding can point back at it.

use std::fmt;
use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

/// Where a document came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Origin {
    /// The file (`-` for standard input).
    pub source: String,
    /// 1-based position of the document in the file (empty documents are not counted).
    pub document: usize,
    /// The line the document starts on (0 when unknown, e.g. JSON).
    #[serde(skip_serializing_if = "is_zero")]
    pub line: u64,
    /// The position in a `kind: List`'s `items`, when the document is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item: Option<usize>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} document {}", self.source, self.document)?;
        if self.line > 0 {
            write!(f, " (line {})", self.line)?;
        }
        if let Some(i) = self.item {
            write!(f, " items[{i}]")?;
        }
        Ok(())
    }
}

/// One document of a manifest, not yet decoded.
#[derive(Clone, Debug, PartialEq)]
pub struct Document {
    /// Where it came from.
    pub origin: Origin,
    /// Its content.
    pub value: serde_json::Value,
}

/// Why a manifest could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The file or directory could not be read.
    #[error("{path}: {message}")]
    Io {
        /// The path.
        path: String,
        /// What the OS said.
        message: String,
    },
    /// The text is not YAML or JSON.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line (0 when unknown).
        line: u64,
        /// 1-based column (0 when unknown).
        column: u64,
        /// What the parser said.
        message: String,
    },
}

/// The extensions `check` reads in directories.
const EXTENSIONS: [&str; 3] = ["yaml", "yml", "json"];

/// Expands the paths given on the command line: a directory becomes every `.yaml`, `.yml` and `.json` file
/// below it (recursively, sorted, hidden entries skipped); a file or `-` stays as given.
pub fn expand_paths(paths: &[PathBuf]) -> Vec<Result<PathBuf, ManifestError>> {
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" || !p.is_dir() {
            out.push(Ok(p.clone()));
        } else {
            walk(p, &mut out);
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<Result<PathBuf, ManifestError>>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return out.push(Err(io_error(dir, &e))),
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for p in paths {
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if p
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.contains(&e))
        {
            out.push(Ok(p));
        }
    }
}

fn io_error(path: &Path, e: &std::io::Error) -> ManifestError {
    ManifestError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Reads one file (or standard input for `-`) into its documents.
pub fn read_path(path: &Path) -> Result<Vec<Document>, ManifestError> {
    let (text, source) = if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| ManifestError::Io {
            path: "-".into(),
            message: e.to_string(),
        })?;
        (text, "-".to_owned())
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| io_error(path, &e))?;
        (text, path.display().to_string())
    };
    parse_str(&text, &source)
}

/// Splits a YAML or JSON text into documents, expanding `kind: List`.
pub fn parse_str(text: &str, source: &str) -> Result<Vec<Document>, ManifestError> {
    let trimmed = text.trim_start();
    let docs: Vec<(u64, serde_json::Value)> = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        // JSON: serde_json is faster and its errors are JSON errors.
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| ManifestError::Syntax {
            file: source.to_owned(),
            line: e.line() as u64,
            column: e.column() as u64,
            message: e.to_string(),
        })?;
        vec![(0, value)]
    } else {
        let docs: Vec<Spanned<serde_json::Value>> = serde_saphyr::from_multiple(text).map_err(|e| {
            let (line, column) = e.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
            let full = e.to_string();
            let message = full
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned();
            ManifestError::Syntax {
                file: source.to_owned(),
                line,
                column,
                message,
            }
        })?;
        docs.into_iter().map(|d| (d.referenced.line(), d.value)).collect()
    };
    let mut out = Vec::with_capacity(docs.len());
    for (i, (line, value)) in docs.into_iter().enumerate() {
        let origin = Origin {
            source: source.to_owned(),
            document: i + 1,
            line,
            item: None,
        };
        match value {
            serde_json::Value::Object(mut map) if is_list(&map) => {
                let items = match map.remove("items") {
                    Some(serde_json::Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                for (j, item) in items.into_iter().enumerate() {
                    out.push(Document {
                        origin: Origin {
                            item: Some(j),
                            ..origin.clone()
                        },
                        value: item,
                    });
                }
            }
            value => out.push(Document { origin, value }),
        }
    }
    Ok(out)
}

/// `kind: List` (and the typed lists kubectl prints, such as `DeploymentList`) with `items`.
fn is_list(map: &serde_json::Map<String, serde_json::Value>) -> bool {
    map.get("kind")
        .and_then(|k| k.as_str())
        .is_some_and(|k| k == "List" || k.ends_with("List"))
        && map.get("items").is_some_and(|i| i.is_array())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_yaml_keeps_document_numbers_and_lines() {
        let text = "---\napiVersion: v1\nkind: A\n---\n# comment only\n---\napiVersion: v1\nkind: B\n";
        let docs = parse_str(text, "m.yaml").unwrap();
        let origins: Vec<String> = docs.iter().map(|d| d.origin.to_string()).collect();
        assert_eq!(
            origins,
            ["m.yaml document 1 (line 2)", "m.yaml document 2 (line 7)"]
        );
        assert_eq!(docs[1].value["kind"], "B");
    }

    #[test]
    fn lists_are_expanded_with_item_positions() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "A"}, {"kind": "B"}]}"#;
        let docs = parse_str(text, "l.json").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].origin.to_string(), "l.json document 1 items[1]");
    }

    #[test]
    fn syntax_errors_name_line_and_column() {
        let err = parse_str("apiVersion: v1\nkind: [A\n", "bad.yaml").unwrap_err();
        match err {
            ManifestError::Syntax { file, line, .. } => {
                assert_eq!(file, "bad.yaml");
                assert!(line >= 2, "line {line}");
            }
            other => panic!("{other:?}"),
        }
        let err = parse_str("{\"kind\": }", "bad.json").unwrap_err();
        assert!(
            matches!(
                err,
                ManifestError::Syntax {
                    line: 1,
                    column: 10,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
