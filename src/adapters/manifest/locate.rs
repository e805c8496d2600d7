//! Finding the line of one field in a manifest document's text, so a finding can point at the
//! `claimName:` or `replicas:` it is about rather than at the top of the document.
//!
//! The parsers give no spans for arbitrary keys, so this reads the text: a key is a word at the start of
//! a YAML line (after indentation and `- `), or inside a flow mapping or a JSON object (after `{`, `,` or
//! a quote), followed by `:`. A value is compared without its quotes. Anything it cannot find (an
//! anchor, a key written over two lines, a merge key) gives `None`, and the caller keeps the document's
//! line: never a wrong line, at worst a less precise one.

/// A field to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field<'a> {
    /// `key:` with any value.
    Key(&'a str),
    /// `key: value`.
    Value(&'a str, &'a str),
    /// `name: value` inside the block of `section:` (e.g. a volume named `data` under `volumes:`).
    Named {
        /// The key whose block holds the entry.
        section: &'a str,
        /// The entry's `name`.
        name: &'a str,
    },
}

/// The 1-based line, in `text`, of the first of `fields` (in the order given) found in the document whose
/// first content is on line `start` (1-based). The document ends before the next `---` or `...` line (for
/// a JSON document, before the next line opening an object at column 0).
pub fn field_line(text: &str, start: u64, fields: &[Field<'_>]) -> Option<u64> {
    let skip = usize::try_from(start.checked_sub(1)?).ok()?;
    let lines = document_lines(text, skip);
    fields.iter().find_map(|f| {
        let index = match *f {
            Field::Key(key) => lines.iter().position(|l| value_of(l, key).is_some()),
            Field::Value(key, want) => lines.iter().position(|l| value_of(l, key) == Some(want)),
            Field::Named { section, name } => named(&lines, section, name),
        }?;
        Some(start + index as u64)
    })
}

/// The document's lines, comments removed, from its first content line to its end.
fn document_lines(text: &str, skip: usize) -> Vec<&str> {
    let mut lines = text.lines().skip(skip);
    let Some(first) = lines.next() else {
        return Vec::new();
    };
    let json = first.starts_with('{') || first.starts_with('[');
    let mut out = vec![uncommented(first)];
    for line in lines {
        let ends = line.starts_with("---") || line.starts_with("...") || (json && line.starts_with('{'));
        if ends {
            break;
        }
        out.push(uncommented(line));
    }
    out
}

/// The line without a trailing `# comment` (a `#` at the start or after blank space, outside quotes).
fn uncommented(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '#') if previous.is_whitespace() => return &line[..i],
            _ => {}
        }
        previous = c;
    }
    line
}

/// The value of `key` on this line, without quotes (`""` when the value is on the next lines), if the
/// line has the key.
fn value_of<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let mut from = 0;
    while let Some(found) = line[from..].find(key) {
        let at = from + found;
        from = at + key.len();
        let before = line[..at].chars().next_back();
        let quoted = matches!(before, Some('"' | '\''));
        let opens = before.is_none_or(|c| c.is_whitespace() || matches!(c, '-' | '{' | ',' | '"' | '\''));
        if !opens {
            continue;
        }
        let mut rest = &line[from..];
        if quoted {
            match rest.strip_prefix(['"', '\'']) {
                Some(r) => rest = r,
                None => continue,
            }
        }
        let Some(value) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let value = value.split([',', '}']).next().unwrap_or_default().trim();
        return Some(value.trim_matches(|c| c == '"' || c == '\''));
    }
    None
}

/// The index of the `name: <name>` line of an entry of `section:`'s block: the entry's own `name` (or its
/// `metadata`'s, as in a `volumeClaimTemplates` entry), not one nested in something else (`configMap:
/// {name: ...}` or a `configMap:` block's `name:`).
fn named(lines: &[&str], section: &str, name: &str) -> Option<usize> {
    let open = lines.iter().position(|l| value_of(l, section).is_some())?;
    // JSON, or a flow sequence: the section and its entries on one line.
    if let Some((_, after)) = lines[open].split_once(section)
        && value_of(after, "name") == Some(name)
    {
        return Some(open);
    }
    let indent = indentation(lines[open]);
    // The column of the entries' dashes, of the current entry's keys, and, inside its `metadata:` block,
    // of that block's keys (0 until its first key is seen).
    let (mut dash, mut keys, mut metadata) = (None, None, None);
    for (i, line) in lines.iter().enumerate().skip(open + 1) {
        let text = line.trim_start();
        if text.is_empty() {
            continue;
        }
        let column = indentation(line);
        let deeper = column > indent || (column == indent && text.starts_with('-'));
        if !deeper {
            return None;
        }
        let entry = text
            .strip_prefix('-')
            .filter(|_| dash.is_none_or(|d| d == column));
        let (key_column, key) = match entry {
            // `- name: x` or `- {name: x, ...}`: an entry starts; its keys are where its first one is.
            Some(rest) => {
                dash = Some(column);
                let first = rest.trim_start();
                let at = column + (text.len() - first.len());
                keys = Some(at);
                (at, first)
            }
            None => (column, text),
        };
        if Some(key_column) == keys {
            metadata = None;
            let own = key.starts_with("name") || key.starts_with('{');
            if own && value_of(key, "name") == Some(name) {
                return Some(i);
            }
            if let Some(meta) = key.strip_prefix("metadata") {
                if value_of(meta, "name") == Some(name) {
                    return Some(i);
                }
                metadata = Some(0);
            }
        } else if let Some(meta_column) = metadata {
            let meta_column = if meta_column == 0 { column } else { meta_column };
            metadata = Some(meta_column);
            if column == meta_column && key.starts_with("name") && value_of(key, "name") == Some(name) {
                return Some(i);
            }
        }
    }
    None
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_DOCUMENTS: &str = "\
# storage
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3 # three
  template:
    spec:
      containers:
      - name: app
        volumeMounts:
        - name: uploads
          mountPath: /u
      volumes:
      - name: cache
        emptyDir: {}
      - name: uploads
        persistentVolumeClaim:
          claimName: \"web-uploads\"
---
kind: Other
spec:
  replicas: 9
";

    #[test]
    fn a_claim_name_is_found_in_its_own_document() {
        let claim = Field::Value("claimName", "web-uploads");
        assert_eq!(field_line(TWO_DOCUMENTS, 6, &[claim]), Some(24));
        assert_eq!(field_line(TWO_DOCUMENTS, 2, &[claim]), None);
    }

    #[test]
    fn a_key_is_found_only_up_to_the_end_of_its_document() {
        assert_eq!(field_line(TWO_DOCUMENTS, 6, &[Field::Key("replicas")]), Some(11));
        assert_eq!(field_line(TWO_DOCUMENTS, 26, &[Field::Key("replicas")]), Some(28));
        assert_eq!(field_line(TWO_DOCUMENTS, 2, &[Field::Key("replicas")]), None);
    }

    #[test]
    fn a_volume_is_found_under_volumes_not_among_the_mounts() {
        let volume = Field::Named {
            section: "volumes",
            name: "uploads",
        };
        assert_eq!(field_line(TWO_DOCUMENTS, 6, &[volume]), Some(22));
        let absent = Field::Named {
            section: "volumes",
            name: "app",
        };
        assert_eq!(field_line(TWO_DOCUMENTS, 6, &[absent]), None);
    }

    #[test]
    fn a_volume_is_its_own_name_not_a_name_nested_in_another_volume() {
        let text = "\
kind: Deployment
spec:
  template:
    spec:
      volumes:
      - name: cfg
        configMap:
          name: scratch
      - configMap: {name: logs}
        name: other
      - {name: flow, configMap: {name: scratch}}
      - name: scratch
        emptyDir: {}
      - name: logs
        emptyDir: {}
";
        let volume = |name| Field::Named {
            section: "volumes",
            name,
        };
        assert_eq!(field_line(text, 1, &[volume("scratch")]), Some(12));
        assert_eq!(field_line(text, 1, &[volume("logs")]), Some(14));
        assert_eq!(field_line(text, 1, &[volume("other")]), Some(10));
        assert_eq!(field_line(text, 1, &[volume("flow")]), Some(11));
        assert_eq!(field_line(text, 1, &[volume("cfg")]), Some(6));
        let templates = "\
kind: StatefulSet
spec:
  volumeClaimTemplates:
    - metadata:
        labels: {name: logs}
        name: data
      spec:
        selector:
          matchLabels: {name: data}
    - metadata: {name: logs}
";
        let template = |name| Field::Named {
            section: "volumeClaimTemplates",
            name,
        };
        assert_eq!(field_line(templates, 1, &[template("data")]), Some(6));
        assert_eq!(field_line(templates, 1, &[template("logs")]), Some(10));
    }

    #[test]
    fn fields_are_tried_in_order() {
        let fields = [Field::Key("strategy"), Field::Key("replicas")];
        assert_eq!(field_line(TWO_DOCUMENTS, 6, &fields), Some(11));
    }

    #[test]
    fn a_key_must_be_a_whole_key_and_a_comment_is_not_one() {
        let text = "kind: X\nspec:\n  # replicas: 4\n  maxReplicas: 5\n  replicas_x: 1\n  replicas: 2\n";
        assert_eq!(field_line(text, 1, &[Field::Key("replicas")]), Some(6));
        assert_eq!(field_line(text, 1, &[Field::Key("maxReplicas")]), Some(4));
    }

    #[test]
    fn json_and_flow_style_are_read() {
        let json = "{\"kind\": \"Deployment\",\n \"spec\": {\"volumes\": [{\"name\": \"d\", \
                    \"persistentVolumeClaim\": {\"claimName\": \"shared\"}}]}}\n{\"kind\": \"Other\", \"claimName\": \"x\"}\n";
        assert_eq!(
            field_line(json, 1, &[Field::Value("claimName", "shared")]),
            Some(2)
        );
        assert_eq!(field_line(json, 1, &[Field::Value("claimName", "x")]), None);
        let named = Field::Named {
            section: "volumes",
            name: "d",
        };
        assert_eq!(field_line(json, 1, &[named]), Some(2));
        let flow = "kind: Pod\nvolumes: [{name: v, persistentVolumeClaim: {claimName: c}}]\n";
        assert_eq!(field_line(flow, 1, &[Field::Value("claimName", "c")]), Some(2));
    }

    #[test]
    fn a_line_outside_the_text_finds_nothing() {
        assert_eq!(field_line(TWO_DOCUMENTS, 0, &[Field::Key("kind")]), None);
        assert_eq!(field_line(TWO_DOCUMENTS, 500, &[Field::Key("kind")]), None);
    }
}
