//! Reading what `check` was given: files, directories and `-`, into documents and input errors.
//!
//! A syntax error spoils one document, not the file: the documents before and after the broken one (split
//! at `---` lines) are still read, and the error names the broken document's number. The splitting is by
//! lines, as YAML defines document markers: `---` at the start of a line.
//! See <https://yaml.org/spec/1.2.2/#92-streams>.

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::report::{InputError, Location, Position, Stage};
use crate::manifest::{self, Document, ManifestError};

/// The documents read, in input order, and the errors met on the way.
#[derive(Debug, Default)]
pub(super) struct Input {
    /// Every file (as documents and errors name it), in the order read.
    pub(super) files: Vec<String>,
    pub(super) documents: Vec<Document>,
    pub(super) errors: Vec<InputError>,
}

/// Reads every path: a directory recursively (`.yaml`, `.yml`, `.json`), `-` from standard input.
pub(super) fn read(paths: &[PathBuf]) -> Input {
    let mut input = Input::default();
    for given in paths {
        let expanded = manifest::expand_paths(std::slice::from_ref(given));
        if expanded.is_empty() {
            // A directory without manifests is almost always a wrong path in a CI script.
            input.files.push(given.display().to_string());
            input.errors.push(whole_file(
                given.display().to_string(),
                Stage::Read,
                "no .yaml, .yml or .json files found in this directory".to_owned(),
            ));
        }
        // Files parse independently: read them on every core, keep the results in order.
        let parts: Vec<Input> = expanded
            .into_par_iter()
            .map(|path| {
                let mut part = Input::default();
                match path {
                    Ok(path) => read_file(&path, &mut part),
                    Err(e) => {
                        let e = manifest_error(e);
                        part.files.push(e.origin.file.clone());
                        part.errors.push(e);
                    }
                }
                part
            })
            .collect();
        for part in parts {
            input.files.extend(part.files);
            input.documents.extend(part.documents);
            input.errors.extend(part.errors);
        }
    }
    input
}

fn read_file(path: &Path, input: &mut Input) {
    tracing::debug!(path = %path.display(), "Reading manifest");
    let (source, text) = if path.as_os_str() == "-" {
        let mut text = String::new();
        let read = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text);
        ("-".to_owned(), read.map(|_| text))
    } else {
        (path.display().to_string(), std::fs::read_to_string(path))
    };
    input.files.push(source.clone());
    match text {
        Ok(text) => parse_into(&text, &source, Offset::default(), input),
        Err(e) => input.errors.push(whole_file(source, Stage::Read, e.to_string())),
    }
}

/// Where a piece of a file starts: lines and documents before it.
#[derive(Clone, Copy, Debug, Default)]
struct Offset {
    lines: u64,
    documents: usize,
}

/// Parses `text` (a piece of `source` starting at `at`); on a syntax error, reports the broken document
/// and parses the pieces before and after it.
fn parse_into(text: &str, source: &str, at: Offset, input: &mut Input) {
    let (line, column, message) = match manifest::parse_str(text, source) {
        Ok(docs) => {
            input.documents.extend(docs.into_iter().map(|mut d| {
                d.origin.document += at.documents;
                if d.origin.line > 0 {
                    d.origin.line += at.lines;
                }
                d
            }));
            return;
        }
        Err(ManifestError::Syntax {
            line,
            column,
            message,
            ..
        }) => (line, column, message),
        Err(e) => return input.errors.push(manifest_error(e)),
    };
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(err) = usize::try_from(line)
        .ok()
        .and_then(|l| l.checked_sub(1))
        .filter(|l| *l < lines.len())
    else {
        // No usable position: the whole piece is lost.
        return input.errors.push(InputError {
            origin: Location {
                file: source.to_owned(),
                document: None,
                line: None,
                item: None,
            },
            stage: Stage::Parse,
            at: None,
            object: None,
            message,
        });
    };
    let start = (0..=err).rev().find(|&i| is_marker(lines[i])).unwrap_or(0);
    let end = (err + 1..lines.len())
        .find(|&i| is_marker(lines[i]))
        .unwrap_or(lines.len());
    parse_into(&lines[..start].concat(), source, at, input);
    let document = at.documents + count_documents(&lines[..start]) + 1;
    let first = (start..end).find(|&i| has_content(lines[i])).unwrap_or(err);
    let to_line = |i: usize| at.lines + i as u64 + 1;
    // The parser's message repeats its (piece-relative) position; the error carries the file's.
    let prefix = format!("line {line} column {column}: ");
    let message = message.strip_prefix(&prefix).unwrap_or(&message).to_owned();
    input.errors.push(InputError {
        origin: Location {
            file: source.to_owned(),
            document: Some(document),
            line: Some(to_line(first)),
            item: None,
        },
        stage: Stage::Parse,
        at: Some(Position {
            line: to_line(err),
            column,
        }),
        object: None,
        message,
    });
    if end < lines.len() {
        let after = Offset {
            lines: at.lines + end as u64,
            documents: document,
        };
        parse_into(&lines[end..].concat(), source, after, input);
    }
}

/// A document marker: `---` at the start of a line, alone or followed by blank space and content.
fn is_marker(line: &str) -> bool {
    line.strip_prefix("---")
        .is_some_and(|rest| rest.chars().next().is_none_or(char::is_whitespace))
}

/// A line that is neither blank nor a comment (nor a bare marker).
fn has_content(line: &str) -> bool {
    let t = line.trim();
    let t = t.strip_prefix("---").map(str::trim_start).unwrap_or(t);
    !t.is_empty() && !t.starts_with('#')
}

/// The documents in whole lines, counted as the manifest reader counts them: comment-only ones do not count.
fn count_documents(lines: &[&str]) -> usize {
    let mut count = 0;
    let mut current_has_content = false;
    for line in lines {
        if is_marker(line) {
            count += usize::from(current_has_content);
            current_has_content = false;
        }
        current_has_content |= has_content(line);
    }
    count + usize::from(current_has_content)
}

fn whole_file(file: String, stage: Stage, message: String) -> InputError {
    InputError {
        origin: Location {
            file,
            document: None,
            line: None,
            item: None,
        },
        stage,
        at: None,
        object: None,
        message,
    }
}

fn manifest_error(e: ManifestError) -> InputError {
    match e {
        ManifestError::Io { path, message } => whole_file(path, Stage::Read, message),
        ManifestError::Syntax {
            file,
            line,
            column,
            message,
        } => InputError {
            at: (line > 0).then_some(Position { line, column }),
            ..whole_file(file, Stage::Parse, message)
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Input {
        let mut input = Input::default();
        parse_into(text, "t.yaml", Offset::default(), &mut input);
        input
    }

    fn origins(input: &Input) -> Vec<String> {
        input.documents.iter().map(|d| d.origin.to_string()).collect()
    }

    #[test]
    fn a_syntax_error_spoils_one_document_and_keeps_the_others() {
        let text =
            "# header\n---\nkind: A\n---\nkind: B\n  bad: indent\n---\n# note\n---\nkind: C\n---\nkind: D\n";
        let input = parse(text);
        assert_eq!(
            origins(&input),
            [
                "t.yaml document 1 (line 3)",
                "t.yaml document 3 (line 10)",
                "t.yaml document 4 (line 12)"
            ]
        );
        assert_eq!(input.errors.len(), 1);
        let e = &input.errors[0];
        assert_eq!(e.origin.document, Some(2));
        assert_eq!(e.origin.line, Some(5));
        assert_eq!(e.at, Some(Position { line: 6, column: 6 }));
        assert_eq!(e.message, "mapping values are not allowed in this context");
        assert_eq!(
            e.to_string(),
            "t.yaml document 2, line 5: syntax error at line 6 column 6: mapping values are not allowed in \
             this context"
        );
    }

    #[test]
    fn two_broken_documents_are_two_errors_with_file_positions() {
        let text = "kind: A\n---\nkind: [B\n---\nkind: C\n---\nkind: \"D\n---\nkind: E\n";
        let input = parse(text);
        assert_eq!(
            origins(&input),
            [
                "t.yaml document 1 (line 1)",
                "t.yaml document 3 (line 5)",
                "t.yaml document 5 (line 9)"
            ]
        );
        let at: Vec<_> = input
            .errors
            .iter()
            .map(|e| (e.origin.document, e.at.map(|p| p.line)))
            .collect();
        assert_eq!(at, [(Some(2), Some(3)), (Some(4), Some(7))]);
    }

    #[test]
    fn a_broken_single_document_is_document_one() {
        let input = parse("kind: [A\n");
        assert!(input.documents.is_empty());
        assert_eq!(input.errors[0].origin.document, Some(1));
        assert_eq!(input.errors[0].origin.line, Some(1));
    }

    #[test]
    fn markers_and_document_counting() {
        assert!(is_marker("---\n") && is_marker("--- !tag\n") && is_marker("---"));
        assert!(!is_marker("----\n") && !is_marker(" ---\n"));
        assert_eq!(count_documents(&["---\n", "# c\n", "---\n", "a: 1\n"]), 1);
        assert_eq!(count_documents(&["a: 1\n", "---\n", "b: 2\n"]), 2);
        assert_eq!(count_documents(&["--- {a: 1}\n"]), 1);
    }
}
