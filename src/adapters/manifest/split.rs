//! Cutting a YAML stream into its documents, by lines, before parsing any of them.
//!
//! Each document is then parsed on its own, so a syntax error spoils its document only: the documents
//! before and after it are still read. YAML defines the markers by lines: `---` at the start of a line
//! opens a document, `...` at the start of a line closes one, and directives (`%YAML`, `%TAG`) come before
//! the `---` they belong to. Neither marker can occur inside a scalar at the start of a line.
//! See <https://yaml.org/spec/1.2.2/#92-streams>.

use std::ops::Range;

/// One document's text in its stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Piece {
    /// Its bytes in the stream.
    pub(super) bytes: Range<usize>,
    /// How many lines of the stream come before it.
    pub(super) lines_before: u64,
    /// The 1-based line of its first content (neither blank, nor a comment, nor a bare marker), if any.
    pub(super) first_content: Option<u64>,
}

impl Piece {
    /// Whether the piece holds anything but comments, blank lines and markers (those do not count as
    /// documents).
    pub(super) fn has_content(&self) -> bool {
        self.first_content.is_some()
    }
}

/// The stream's documents, in order.
pub(super) fn pieces(text: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut current = Piece {
        bytes: 0..0,
        lines_before: 0,
        first_content: None,
    };
    // Whether the current piece has its `---` yet: directives before it belong with it.
    let mut opened = false;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let number = i as u64 + 1;
        let starts_document = is_start(line) && (opened || current.has_content());
        if starts_document {
            current.bytes.end = offset;
            out.push(current);
            current = Piece {
                bytes: offset..offset,
                lines_before: i as u64,
                first_content: None,
            };
        }
        opened |= is_start(line);
        if current.first_content.is_none() && has_content(line) && !is_directive(line) {
            current.first_content = Some(number);
        }
        offset += line.len();
        if is_end(line) {
            current.bytes.end = offset;
            out.push(current);
            current = Piece {
                bytes: offset..offset,
                lines_before: number,
                first_content: None,
            };
            opened = false;
        }
    }
    current.bytes.end = offset;
    out.push(current);
    out
}

/// `---` at the start of a line, alone or followed by blank space (and content: `--- {a: 1}`).
pub(super) fn is_start(line: &str) -> bool {
    is_marker(line, "---")
}

/// `...` at the start of a line: the end of a document.
fn is_end(line: &str) -> bool {
    is_marker(line, "...")
}

fn is_marker(line: &str, marker: &str) -> bool {
    line.strip_prefix(marker)
        .is_some_and(|rest| rest.chars().next().is_none_or(char::is_whitespace))
}

fn is_directive(line: &str) -> bool {
    line.starts_with('%')
}

/// A line that is neither blank nor a comment (nor a bare marker).
fn has_content(line: &str) -> bool {
    let t = line.trim();
    let t = t.strip_prefix("---").map(str::trim_start).unwrap_or(t);
    !t.is_empty() && !t.starts_with('#') && !is_end(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(text: &str) -> Vec<(&str, Option<u64>)> {
        pieces(text)
            .into_iter()
            .map(|p| (&text[p.bytes.clone()], p.first_content))
            .collect()
    }

    #[test]
    fn markers_split_documents_and_comments_stay_with_the_next() {
        let text = "# header\n---\nkind: A\n---\nkind: B\n---\n# note\n---\n--- {kind: C}\n";
        assert_eq!(
            texts(text),
            [
                ("# header\n---\nkind: A\n", Some(3)),
                ("---\nkind: B\n", Some(5)),
                ("---\n# note\n", None),
                ("---\n", None),
                ("--- {kind: C}\n", Some(9)),
            ]
        );
    }

    #[test]
    fn end_markers_and_directives() {
        let text = "a: 1\n...\n%YAML 1.2\n---\nb: 2\n...\n";
        assert_eq!(
            texts(text),
            [
                ("a: 1\n...\n", Some(1)),
                ("%YAML 1.2\n---\nb: 2\n...\n", Some(5)),
                ("", None)
            ]
        );
    }

    #[test]
    fn only_line_starts_are_markers() {
        assert!(is_start("---\n") && is_start("--- !tag\n") && is_start("---"));
        assert!(!is_start("----\n") && !is_start(" ---\n"));
        let text = "a: |\n  ---\n  text\nb: '--- x'\n";
        assert_eq!(texts(text), [(text, Some(1))]);
    }

    #[test]
    fn lines_before_each_piece() {
        let before: Vec<u64> = pieces("a: 1\n---\nb: 2\n\n---\nc: 3")
            .iter()
            .map(|p| p.lines_before)
            .collect();
        assert_eq!(before, [0, 1, 4]);
    }
}
