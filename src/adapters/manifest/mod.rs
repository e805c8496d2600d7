//! Reading manifests: files, directories and standard input, multi-document YAML, JSON and `kind: List`.
//!
//! Each document keeps where it came from (file, document number, line, and the item of a List), so every
//! error and finding can point back at it. A YAML stream is cut into documents first (by lines) and each
//! is parsed on its own, so a syntax error costs only its own document.

mod document;
pub mod locate;
mod split;
pub mod walk;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_saphyr::Spanned;

pub(crate) use document::{Document, WrittenName};

use crate::domain::lookup::Bundle;
use crate::domain::workload::Decoded;
use document::{Source, yaml_message, yaml_position};

/// Where a document came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Origin {
    /// The file (`-` for standard input).
    pub source: String,
    /// 1-based position of the document in the file (empty documents are not counted).
    pub document: usize,
    /// The line the document starts on (0 when unknown).
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

/// A document that could not be parsed: the others in its file are read all the same.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unparsed {
    /// The document: its number (it counts), and the line of its first content.
    pub origin: Origin,
    /// The line of the file where the parser stopped (0 when unknown).
    pub line: u64,
    /// The column where the parser stopped (0 when unknown).
    pub column: u64,
    /// What the parser said.
    pub message: String,
}

/// A file's documents, and the ones that could not be parsed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    /// Every document read, in order, `kind: List`s expanded into their items.
    pub documents: Vec<Document>,
    /// The documents that could not be parsed.
    pub unparsed: Vec<Unparsed>,
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
/// below it (recursively, sorted, hidden entries skipped, links to directories not followed: see
/// [`walk`]); a file or `-` stays as given.
pub fn expand_paths(paths: &[PathBuf]) -> Vec<Result<PathBuf, ManifestError>> {
    walk::expand(paths, &walk::Exclude::default()).files
}

fn io_error(path: &Path, e: &std::io::Error) -> ManifestError {
    ManifestError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// The objects in manifest files, for `volguard check` and `volguard review -f`: they stand for the
/// cluster in every lookup (a directory is read recursively for `.yaml`, `.yml` and `.json` files; `-` is
/// standard input). Documents that are not objects volguard reads are skipped; a file that cannot be read
/// or parsed is an error. Objects that name no namespace are in `namespace`.
pub fn read_bundle(paths: &[PathBuf], namespace: &str) -> Result<Bundle, ManifestError> {
    let mut bundle = Bundle::default();
    for path in expand_paths(paths) {
        for doc in read_path(&path?)? {
            if let Ok(Decoded::Resource(mut r)) = doc.decoded {
                r.default_namespace(namespace);
                bundle.insert(&r);
            }
        }
    }
    Ok(bundle)
}

/// Reads one file (or standard input for `-`) into its documents; a document that cannot be parsed is an
/// error.
pub(crate) fn read_path(path: &Path) -> Result<Vec<Document>, ManifestError> {
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

/// Splits a YAML or JSON text into decoded documents, expanding `kind: List`; the first document that
/// cannot be parsed is an error.
pub fn parse_str(text: &str, source: &str) -> Result<Vec<Document>, ManifestError> {
    let manifest = parse(text.into(), source);
    match manifest.unparsed.into_iter().next() {
        None => Ok(manifest.documents),
        Some(u) => Err(ManifestError::Syntax {
            file: u.origin.source,
            line: u.line,
            column: u.column,
            message: u.message,
        }),
    }
}

/// Splits a YAML or JSON text into decoded documents, expanding `kind: List`. A YAML document that cannot
/// be parsed is reported on its own, and the documents before and after it are still read.
pub fn parse(text: Arc<str>, source: &str) -> Manifest {
    let mut manifest = Manifest::default();
    let origin = |document: usize, line: u64| Origin {
        source: source.to_owned(),
        document,
        line,
        item: None,
    };
    let trimmed = text.trim_start();
    // A `---` line cannot occur in JSON: with one, the file is a YAML stream whose documents may be JSON.
    let json = (trimmed.starts_with('{') || trimmed.starts_with('[')) && !text.lines().any(split::is_start);
    if json {
        // JSON: serde_json is faster and its errors are JSON errors. kubectl reads several objects written
        // one after the other (`{...}{...}`, or one per line) as several documents.
        let mut stream = serde_json::Deserializer::from_str(&text).into_iter::<serde_json::Value>();
        let mut documents = 0;
        loop {
            let start = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(value)) => {
                    documents += 1;
                    let end = stream.byte_offset();
                    let line = line_of(&text, start);
                    manifest.add(
                        origin(documents, line),
                        value,
                        Source::Json(Arc::clone(&text), start..end),
                    );
                }
                Some(Err(e)) => {
                    documents += 1;
                    manifest.unparsed.push(Unparsed {
                        origin: origin(documents, line_of(&text, start)),
                        line: e.line() as u64,
                        column: e.column() as u64,
                        message: e.to_string(),
                    });
                    // The stream cannot resynchronise after a syntax error: the rest is lost with it.
                    break;
                }
            }
        }
        return manifest;
    }
    let mut documents = 0;
    for piece in split::pieces(&text) {
        let Some(first_content) = piece.first_content else {
            continue;
        };
        match serde_saphyr::from_str_with_options::<Spanned<serde_json::Value>>(
            &text[piece.bytes.clone()],
            document::yaml_options(),
        ) {
            // Empty and null documents are not documents (as serde-saphyr's multi-document reader has it).
            Ok(Spanned {
                value: serde_json::Value::Null,
                ..
            }) => {}
            Ok(spanned) => {
                documents += 1;
                let line = piece.lines_before + spanned.referenced.line();
                let source = Source::Yaml(Arc::clone(&text), piece.bytes);
                manifest.add(origin(documents, line), spanned.value, source);
            }
            Err(e) => {
                documents += 1;
                let (line, column) = yaml_position(&e);
                manifest.unparsed.push(Unparsed {
                    origin: origin(documents, first_content),
                    line: if line > 0 { piece.lines_before + line } else { 0 },
                    column,
                    message: yaml_message(&e),
                });
            }
        }
    }
    manifest
}

/// The 1-based line of the first non-blank character at or after byte `at`.
fn line_of(text: &str, at: usize) -> u64 {
    let skipped = text[at..].len() - text[at..].trim_start().len();
    text[..at + skipped].matches('\n').count() as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::Decoded;

    #[test]
    fn json_documents_between_yaml_markers_are_a_yaml_stream() {
        let text =
            "{\"apiVersion\": \"v1\", \"kind\": \"A\"}\n---\n{\"apiVersion\": \"v1\", \"kind\": \"B\"}\n";
        let docs = parse_str(text, "s.yaml").unwrap();
        let origins: Vec<String> = docs.iter().map(|d| d.origin.to_string()).collect();
        assert_eq!(
            origins,
            ["s.yaml document 1 (line 1)", "s.yaml document 2 (line 3)"]
        );
        assert_eq!(docs[1].value().unwrap()["kind"], "B");
    }

    #[test]
    fn several_json_objects_in_one_file_are_several_documents() {
        let text = "{\"apiVersion\": \"v1\", \"kind\": \"A\"}\n{\"apiVersion\": \"v1\",\n \"kind\": \"B\"}{\"apiVersion\": \"v1\", \"kind\": \"C\"}";
        let docs = parse_str(text, "s.json").unwrap();
        let origins: Vec<String> = docs.iter().map(|d| d.origin.to_string()).collect();
        assert_eq!(
            origins,
            [
                "s.json document 1 (line 1)",
                "s.json document 2 (line 2)",
                "s.json document 3 (line 3)"
            ]
        );
        assert_eq!(docs[2].value().unwrap()["kind"], "C");
        let err = parse_str("{\"kind\": \"A\"} {\"kind\": ", "t.json").unwrap_err();
        assert!(matches!(err, ManifestError::Syntax { line: 1, .. }), "{err:?}");
    }

    #[test]
    fn numbers_are_read_as_kubectl_reads_and_sends_them() {
        let text = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 017\n  \
                    revisionHistoryLimit: 0x0a\n  minReadySeconds: 1_0\n  progressDeadlineSeconds: 6.0e2\n  selector: {}\n  \
                    template: {}\n---\n{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\", \"metadata\": {\"name\": \"j\"}, \
                    \"spec\": {\"replicas\": 3.0, \"selector\": {}, \"template\": {}}}\n";
        let docs = parse_str(text, "n.yaml").unwrap();
        let spec = |i: usize| match &docs[i].decoded {
            Ok(Decoded::Resource(r)) => match r.as_ref() {
                crate::domain::workload::Resource::Workload(
                    crate::domain::workload::Workload::Deployment(d),
                ) => d.spec.clone().unwrap(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let s = spec(0);
        assert_eq!(
            (
                s.replicas,
                s.revision_history_limit,
                s.min_ready_seconds,
                s.progress_deadline_seconds
            ),
            (Some(15), Some(10), Some(10), Some(600))
        );
        assert_eq!(spec(1).replicas, Some(3));
        let half = parse_str("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: h}\nspec: {replicas: 2.5, selector: {}, template: {}}\n", "h.yaml").unwrap();
        assert!(half[0].decoded.is_err(), "2.5 replicas is no integer");
    }

    #[test]
    fn multi_document_yaml_keeps_document_numbers_and_lines() {
        let text = "---\napiVersion: v1\nkind: A\n---\n# comment only\n---\napiVersion: v1\nkind: B\n";
        let docs = parse_str(text, "m.yaml").unwrap();
        let origins: Vec<String> = docs.iter().map(|d| d.origin.to_string()).collect();
        assert_eq!(
            origins,
            ["m.yaml document 1 (line 2)", "m.yaml document 2 (line 7)"]
        );
        assert_eq!(docs[1].value().unwrap()["kind"], "B");
    }

    #[test]
    fn lists_are_expanded_with_item_positions() {
        let text = r#"{"apiVersion": "v1", "kind": "List", "items": [{"kind": "A"}, {"kind": "B"}]}"#;
        let docs = parse_str(text, "l.json").unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].origin.to_string(), "l.json document 1 (line 1) items[1]");
        assert_eq!(docs[1].value().unwrap(), serde_json::json!({"kind": "B"}));
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

    fn kinds(docs: &[Document]) -> Vec<String> {
        docs.iter()
            .map(|d| match &d.decoded {
                Ok(Decoded::Resource(r)) => {
                    format!("{} {}", r.kind(), r.metadata().name.as_deref().unwrap_or(""))
                }
                Ok(Decoded::Skipped { api_version, kind }) => format!("skipped {api_version} {kind}"),
                Err(e) => format!("error {e}"),
            })
            .collect()
    }

    #[test]
    fn only_v1_list_and_typed_lists_of_read_kinds_are_expanded() {
        let text = "apiVersion: apps/v1\nkind: DeploymentList\nitems:\n- metadata: {name: a}\n  spec: {selector: {}, template: {}}\n\
                    ---\napiVersion: v1\nkind: ConfigMapList\nitems:\n- metadata: {name: c}\n\
                    ---\napiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: d}}\n\
                    ---\napiVersion: v1\nkind: List\nitems: none\n";
        let docs = parse_str(text, "l.yaml").unwrap();
        assert_eq!(
            kinds(&docs),
            [
                "Deployment a",
                "skipped v1 ConfigMapList",
                "PersistentVolumeClaim d",
                "skipped v1 List"
            ]
        );
        let origins: Vec<String> = docs.iter().map(|d| d.origin.to_string()).collect();
        assert_eq!(
            origins,
            [
                "l.yaml document 1 (line 1) items[0]",
                "l.yaml document 2 (line 7)",
                "l.yaml document 3 (line 12) items[0]",
                "l.yaml document 4 (line 17)"
            ]
        );
        // The item as written, without the type its list gave it.
        assert_eq!(docs[0].value().unwrap()["metadata"]["name"], "a");
        assert!(docs[0].value().unwrap().get("kind").is_none());
    }

    #[test]
    fn a_broken_document_is_reported_and_its_neighbours_read() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n# two\nkind: [B\n---\napiVersion: v1\nkind: Service\n";
        let manifest = parse(text.into(), "b.yaml");
        assert_eq!(
            kinds(&manifest.documents),
            ["skipped v1 ConfigMap", "skipped v1 Service"]
        );
        assert_eq!(manifest.documents[1].origin.document, 3);
        assert_eq!(manifest.documents[0].written.name.as_deref(), Some("a"));
        let [broken] = &manifest.unparsed[..] else {
            panic!("{:?}", manifest.unparsed)
        };
        assert_eq!((broken.origin.document, broken.origin.line), (2, 6));
        assert_eq!((broken.line, broken.column), (6, 7));
        assert_eq!(broken.message, "unclosed bracket '['");
    }

    #[test]
    fn a_decoded_object_keeps_its_text_for_value() {
        let text = "# lead\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  managedFields: [{manager: m}]\nspec:\n  replicas: 2\n  selector: {}\n  template: {}\n";
        let docs = parse_str(text, "d.yaml").unwrap();
        assert_eq!(kinds(&docs), ["Deployment web"]);
        let Ok(Decoded::Resource(r)) = &docs[0].decoded else {
            unreachable!()
        };
        assert_eq!(r.metadata().managed_fields, None, "not read");
        let value = docs[0].value().unwrap();
        assert_eq!(
            value["metadata"]["managedFields"][0]["manager"], "m",
            "as written"
        );
        assert_eq!(value["spec"]["replicas"], 2);
    }

    #[test]
    fn null_and_comment_only_documents_do_not_count() {
        let text = "~\n---\n# nothing\n---\napiVersion: v1\nkind: ConfigMap\n";
        let docs = parse_str(text, "n.yaml").unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].origin.document, 1);
        assert_eq!(docs[0].origin.line, 5);
    }
}
