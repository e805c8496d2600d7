//! Writing a [`Report`]: text for people, JSON and YAML for machines, SARIF ([`super::sarif`]) for code
//! scanning and JUnit XML ([`super::junit`]) for CI test reports.
//!
//! Text is coloured through anstream, which strips the colour when the stream is not a terminal or
//! `NO_COLOR` is set (unless `--color always`). Input errors also go to standard error in every format,
//! so a CI log shows them even when standard output is captured as JSON.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::Arc;

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Style};

use super::check::{OutputDocument, OutputFormat};
use super::report::{Finding, ObjectReport, Report, Summary};
use super::{junit, sarif};
use crate::decision::Verdict;
use crate::domain::policy::Action;

const DENY: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const AUDIT: Style = AnsiColor::Cyan.on_default().bold();
const OK: Style = AnsiColor::Green.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const ERROR: Style = AnsiColor::Red.on_default().bold();

/// Writes the report to standard output, and its input errors to standard error.
pub(super) fn write(
    report: &Report,
    format: OutputFormat,
    verbose: bool,
    color: ColorChoice,
) -> io::Result<()> {
    let mut err = AutoStream::new(io::stderr().lock(), color);
    // Reports go out in large blocks: standard output is line-buffered, and the report of thousands of
    // objects has hundreds of thousands of lines. Machine formats are never coloured.
    let machine = || io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match format {
        OutputFormat::Text => {
            // Buffered too; whether to colour is decided by standard output itself.
            let color = match color {
                ColorChoice::Auto => AutoStream::choice(&io::stdout()),
                chosen => chosen,
            };
            let mut out = AutoStream::new(Box::new(machine()) as Box<dyn Write>, color);
            // On a terminal the errors land between the findings and the summary, where they are seen.
            text_body(report, verbose, &mut out)?;
            out.flush()?;
            errors(report, &mut err)?;
            if !report.errors.is_empty() {
                writeln!(out)?;
            }
            writeln!(out, "{}", summary_line(&report.summary))?;
            out.flush()
        }
        OutputFormat::Json => {
            errors(report, &mut err)?;
            let mut out = machine();
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
            out.flush()
        }
        OutputFormat::Yaml => {
            errors(report, &mut err)?;
            let yaml = serde_saphyr::to_string(report).map_err(io::Error::other)?;
            let mut out = machine();
            out.write_all(yaml.as_bytes())?;
            out.flush()
        }
        OutputFormat::Sarif => {
            errors(report, &mut err)?;
            let texts = file_texts(report);
            let sources = |file: &str| texts.get(file).cloned();
            let mut out = machine();
            serde_json::to_writer_pretty(&mut out, &sarif::sarif(report, &sources))?;
            writeln!(out)?;
            out.flush()
        }
        OutputFormat::Junit => {
            errors(report, &mut err)?;
            let xml = junit::junit(report, &run_info())?;
            let mut out = machine();
            out.write_all(&xml)?;
            out.flush()
        }
    }
}

/// The text of every file with findings, read again to find the lines of the fields they are about
/// (standard input cannot be read twice: its findings keep their documents' lines). A file that cannot
/// be read again is left out the same way.
fn file_texts(report: &Report) -> HashMap<String, Arc<str>> {
    let mut texts = HashMap::new();
    for o in report.objects.iter().filter(|o| !o.findings.is_empty()) {
        let file = &o.origin.file;
        if file == "-" || o.origin.in_cluster || texts.contains_key(file) {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(file) {
            texts.insert(file.clone(), Arc::from(text));
        }
    }
    texts
}

/// Now, and this machine's name, for JUnit.
fn run_info() -> junit::RunInfo {
    let hostname = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    junit::RunInfo {
        timestamp: jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S").to_string(),
        hostname,
    }
}

/// `check --mutate -o yaml`: every input document, repaired where a policy repairs it, as one YAML stream
/// on standard output (ready for `kubectl apply -f -`); the text report goes to standard error, so a
/// pipeline still shows what was changed and what is still wrong.
pub(super) fn manifests(
    report: &Report,
    documents: &[OutputDocument],
    verbose: bool,
    color: ColorChoice,
) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for doc in documents {
        let value = doc.after.as_ref().unwrap_or(&doc.before);
        let yaml = serde_saphyr::to_string(value).map_err(io::Error::other)?;
        writeln!(out, "---")?;
        out.write_all(yaml.as_bytes())?;
    }
    out.flush()?;
    let mut err = AutoStream::new(io::stderr().lock(), color);
    text_body(report, verbose, &mut err)?;
    errors(report, &mut err)?;
    writeln!(err, "{}", summary_line(&report.summary))?;
    err.flush()
}

/// `check --diff`: per repaired object, its changes, the JSON patch (one operation per line) and a unified
/// diff of its YAML; then the summary.
pub(super) fn diff(report: &Report, documents: &[OutputDocument], color: ColorChoice) -> io::Result<()> {
    let mut out = AutoStream::new(io::stdout().lock(), color);
    let mut err = AutoStream::new(io::stderr().lock(), color);
    for object in report.objects.iter().filter(|o| !o.changes.is_empty()) {
        writeln!(
            out,
            "{BOLD}{}{BOLD:#}  {DIM}({}){DIM:#}",
            object.object(),
            object.origin
        )?;
        changes(object, &mut out)?;
        writeln!(out, "  {DIM}patch:{DIM:#}")?;
        for op in object.patch.iter().flat_map(|p| p.0.iter()) {
            writeln!(out, "    {}", serde_json::to_string(op)?)?;
        }
        let doc = documents.iter().find(|d| {
            d.after.is_some()
                && d.origin.source == object.origin.file
                && Some(d.origin.document) == object.origin.document
                && d.origin.item == object.origin.item
        });
        if let Some(doc) = doc {
            let before = serde_saphyr::to_string(&doc.before).map_err(io::Error::other)?;
            let after = serde_saphyr::to_string(doc.after.as_ref().unwrap_or(&doc.before))
                .map_err(io::Error::other)?;
            let name = format!("{} ({})", object.object(), object.origin);
            let text = similar::TextDiff::from_lines(&before, &after);
            let mut unified = text.unified_diff();
            unified
                .context_radius(3)
                .header(&name, &format!("{name}, repaired"));
            for line in unified.to_string().lines() {
                let style = match line.as_bytes().first() {
                    Some(b'+') if !line.starts_with("+++") => OK,
                    Some(b'-') if !line.starts_with("---") => DENY,
                    Some(b'@') => AUDIT,
                    _ => Style::new(),
                };
                writeln!(out, "{style}{line}{style:#}")?;
            }
        }
        writeln!(out)?;
    }
    out.flush()?;
    errors(report, &mut err)?;
    writeln!(out, "{}", summary_line(&report.summary))?;
    out.flush()
}

/// The `repaired:` lines of an object.
fn changes(object: &ObjectReport, out: &mut dyn Write) -> io::Result<()> {
    for c in &object.changes {
        writeln!(
            out,
            "  {OK}repaired{OK:#}: {}  {DIM}(policy {}){DIM:#}",
            c.message, c.policy
        )?;
    }
    Ok(())
}

fn errors(report: &Report, err: &mut dyn Write) -> io::Result<()> {
    for e in &report.errors {
        writeln!(err, "{ERROR}error:{ERROR:#} {e}")?;
    }
    err.flush()
}

/// Writes one `error: …` line to standard error.
pub(super) fn error_line(message: &str, color: ColorChoice) -> io::Result<()> {
    let mut err = AutoStream::new(io::stderr().lock(), color);
    writeln!(err, "{ERROR}error:{ERROR:#} {message}")
}

/// The text report but its summary: a block per object with findings (and, with `verbose`, an `ok` line
/// per other object and a `skip` line per skipped one), in input order, ending with a blank line when
/// anything was written.
fn text_body(report: &Report, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    // Blocks end with a blank line; lines written since the last block need one.
    let mut pending_blank = false;
    for object in &report.objects {
        if !object.findings.is_empty() || !object.changes.is_empty() || !object.exceptions.is_empty() {
            object_block(object, out)?;
            pending_blank = false;
        } else if verbose {
            let why = if object.policies.is_empty() {
                "  (no policy selects it)"
            } else {
                ""
            };
            writeln!(
                out,
                "{OK}ok{OK:#}    {}  {DIM}({}){DIM:#}{why}",
                object.object(),
                object.origin
            )?;
            pending_blank = true;
        }
    }
    if verbose {
        for c in &report.claims {
            writeln!(
                out,
                "{DIM}claim{DIM:#} PersistentVolumeClaim {}/{} ({})  {DIM}({}){DIM:#}",
                c.namespace,
                c.name,
                c.access_modes.join(", "),
                c.origin
            )?;
            pending_blank = true;
        }
        for s in &report.skipped {
            writeln!(
                out,
                "{DIM}skip{DIM:#}  {} ({})  {DIM}({}){DIM:#}",
                s.object, s.api_version, s.origin
            )?;
            pending_blank = true;
        }
    }
    if pending_blank {
        writeln!(out)?;
    }
    Ok(())
}

fn object_block(object: &ObjectReport, out: &mut dyn Write) -> io::Result<()> {
    let (label, style) = match object.verdict {
        Verdict::Deny => ("DENY ", DENY),
        Verdict::Warn => ("WARN ", WARN),
        // Allowed, and repaired (`--mutate`) with nothing left to say.
        Verdict::Allow if object.findings.is_empty() && !object.changes.is_empty() => ("FIXED", OK),
        // Allowed because it skips, with a reason, what would have been found.
        Verdict::Allow if object.findings.is_empty() => ("SKIP ", DIM),
        // Allowed, but with findings: audit only.
        Verdict::Allow => ("AUDIT", AUDIT),
    };
    writeln!(
        out,
        "{style}{label}{style:#} {BOLD}{}{BOLD:#}  {DIM}({}){DIM:#}",
        object.object(),
        object.origin
    )?;
    changes(object, out)?;
    for f in &object.findings {
        finding(f, out)?;
    }
    exceptions(object, out)?;
    writeln!(out)
}

/// The `skip` lines of an object: each rule it skips, and why.
fn exceptions(object: &ObjectReport, out: &mut dyn Write) -> io::Result<()> {
    for e in &object.exceptions {
        writeln!(out, "  [{BOLD}{}{BOLD:#}] {DIM}skip{DIM:#}: {}", e.rule, e.reason)?;
    }
    Ok(())
}

fn finding(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    let word = f.action.word();
    let style = match f.action {
        Action::Deny => DENY,
        Action::Warn => WARN,
        Action::Audit => AUDIT,
        Action::Off => DIM,
    };
    writeln!(
        out,
        "  [{BOLD}{}{BOLD:#}] {style}{word}{style:#}: {}",
        f.rule, f.message
    )?;
    if let Some(fix) = &f.fix {
        writeln!(out, "    {DIM}fix:{DIM:#}")?;
        // The fix is often YAML: keep every line's own indentation under the block's.
        for line in fix.lines() {
            if line.trim().is_empty() {
                writeln!(out)?;
            } else {
                writeln!(out, "      {line}")?;
            }
        }
    }
    Ok(())
}

/// `12 objects checked, 2 denied, 1 warned; 4 claims read; skipped: 3 ConfigMap, 1 Service; 1 input error`.
pub(super) fn summary_line(s: &Summary) -> String {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!(
        "{} checked, {} denied, {} warned",
        plural(s.objects, "object", "objects"),
        s.denied,
        s.warned
    );
    if s.claims > 0 {
        line.push_str(&format!("; {} read", plural(s.claims, "claim", "claims")));
    }
    if !s.skipped.is_empty() {
        let kinds: Vec<String> = s.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        line.push_str(&format!("; skipped: {}", kinds.join(", ")));
    }
    if s.input_errors > 0 {
        line.push_str(&format!(
            "; {}",
            plural(s.input_errors, "input error", "input errors")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn summary(objects: usize, skipped: &[(&str, usize)], input_errors: usize) -> Summary {
        Summary {
            objects,
            claims: 0,
            denied: 2,
            warned: 1,
            skipped: skipped.iter().map(|(k, n)| ((*k).to_owned(), *n)).collect(),
            input_errors,
            strict: false,
            exit_code: 1,
        }
    }

    #[test]
    fn summary_line_counts_skipped_kinds_and_errors() {
        assert_eq!(
            summary_line(&summary(12, &[("Service", 1), ("ConfigMap", 3)], 0)),
            "12 objects checked, 2 denied, 1 warned; skipped: 3 ConfigMap, 1 Service"
        );
        assert_eq!(
            summary_line(&summary(1, &[], 1)),
            "1 object checked, 2 denied, 1 warned; 1 input error"
        );
        assert_eq!(
            summary_line(&Summary {
                claims: 1,
                ..summary(3, &[("Service", 1)], 0)
            }),
            "3 objects checked, 2 denied, 1 warned; 1 claim read; skipped: 1 Service"
        );
        assert_eq!(
            summary_line(&Summary {
                skipped: BTreeMap::new(),
                ..summary(0, &[], 2)
            }),
            "0 objects checked, 2 denied, 1 warned; 2 input errors"
        );
    }
}
