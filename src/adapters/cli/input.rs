//! Reading what `check` was given: files, directories and `-`, into documents and input errors.
//!
//! A syntax error spoils one document, not the file: the documents before and after the broken one (split
//! at `---` lines) are still read, and the error names the broken document's number
//! (see [`manifest::parse`]).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::report::{InputError, Location, Position, Stage};
use crate::adapters::manifest::walk::{self, Exclude};
use crate::adapters::manifest::{self, Document, Manifest, ManifestError};

/// The documents read, in input order, and the errors met on the way.
#[derive(Debug, Default)]
pub(super) struct Input {
    /// Every file (as documents and errors name it), in the order read.
    pub(super) files: Vec<String>,
    pub(super) documents: Vec<Document>,
    pub(super) errors: Vec<InputError>,
}

/// Reads every path: a directory recursively (`.yaml`, `.yml`, `.json`; see [`manifest::walk`]), `-` from
/// standard input; what `exclude` matches is left out.
pub(super) fn read(paths: &[PathBuf], exclude: &Exclude) -> Input {
    let mut input = Input::default();
    for given in paths {
        let expanded = walk::expand(std::slice::from_ref(given), exclude);
        // Left out on purpose (a path given and excluded, a directory whose manifests all are): no error.
        let expanded = match expanded.files {
            files if files.is_empty() && expanded.excluded > 0 => continue,
            files => files,
        };
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
        Ok(text) => parse_into(text.into(), &source, input),
        Err(e) => input.errors.push(whole_file(source, Stage::Read, e.to_string())),
    }
}

/// Parses a file's text into documents, and its unparsable documents into errors.
fn parse_into(text: std::sync::Arc<str>, source: &str, input: &mut Input) {
    let Manifest { documents, unparsed } = manifest::parse(text, source);
    input.documents.extend(documents);
    input.errors.extend(unparsed.into_iter().map(|u| {
        // The parser's message may repeat its position; the error carries it.
        let prefix = format!("line {} column {}: ", u.line, u.column);
        let message = u.message.strip_prefix(&prefix).unwrap_or(&u.message).to_owned();
        InputError {
            origin: Location {
                file: u.origin.source.clone(),
                document: Some(u.origin.document),
                line: (u.origin.line > 0).then_some(u.origin.line),
                item: None,
                in_cluster: false,
            },
            stage: Stage::Parse,
            at: (u.line > 0).then_some(Position {
                line: u.line,
                column: u.column,
            }),
            object: None,
            message,
        }
    }));
}

fn whole_file(file: String, stage: Stage, message: String) -> InputError {
    InputError {
        origin: Location {
            file,
            document: None,
            line: None,
            item: None,
            in_cluster: false,
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
        parse_into(text.into(), "t.yaml", &mut input);
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
}
