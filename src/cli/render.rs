//! Writing a [`Report`]: text for people, JSON and YAML for machines.
//!
//! Text is coloured through anstream, which strips the colour when the stream is not a terminal or
//! `NO_COLOR` is set (unless `--color always`). Input errors also go to standard error in every format,
//! so a CI log shows them even when standard output is captured as JSON.

use std::io::{self, Write};

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Style};

use super::check::OutputFormat;
use super::report::{Finding, ObjectReport, Report, Summary};
use crate::policy::{Action, Verdict};

const DENY: Style = AnsiColor::Red.on_default().bold();
const WARN: Style = AnsiColor::Yellow.on_default().bold();
const AUDIT: Style = AnsiColor::Cyan.on_default().bold();
const OK: Style = AnsiColor::Green.on_default();
const BOLD: Style = Style::new().bold();
const DIM: Style = Style::new().dimmed();
const ERROR: Style = AnsiColor::Red.on_default().bold();

/// Writes the report to standard output (and its input errors to standard error).
pub(super) fn write(
    report: &Report,
    format: OutputFormat,
    verbose: bool,
    color: ColorChoice,
) -> io::Result<()> {
    let mut err = AutoStream::new(io::stderr().lock(), color);
    for e in &report.errors {
        writeln!(err, "{ERROR}error:{ERROR:#} {e}")?;
    }
    err.flush()?;
    let mut out = AutoStream::new(io::stdout().lock(), color);
    match format {
        OutputFormat::Text => text(report, verbose, &mut out)?,
        OutputFormat::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        OutputFormat::Yaml => {
            let yaml = serde_saphyr::to_string(report).map_err(io::Error::other)?;
            out.write_all(yaml.as_bytes())?;
        }
    }
    out.flush()
}

/// Writes one `error: …` line to standard error.
pub(super) fn error_line(message: &str, color: ColorChoice) -> io::Result<()> {
    let mut err = AutoStream::new(io::stderr().lock(), color);
    writeln!(err, "{ERROR}error:{ERROR:#} {message}")
}

/// The text report: a block per object with findings (every object with `verbose`), then the summary.
pub(super) fn text(report: &Report, verbose: bool, out: &mut dyn Write) -> io::Result<()> {
    for object in &report.objects {
        if !object.findings.is_empty() {
            object_block(object, out)?;
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
        }
    }
    if verbose {
        for s in &report.skipped {
            writeln!(
                out,
                "{DIM}skip{DIM:#}  {} ({})  {DIM}({}){DIM:#}",
                s.kind, s.api_version, s.origin
            )?;
        }
    }
    if verbose || report.objects.iter().any(|o| !o.findings.is_empty()) {
        writeln!(out)?;
    }
    writeln!(out, "{}", summary_line(&report.summary))
}

fn object_block(object: &ObjectReport, out: &mut dyn Write) -> io::Result<()> {
    let (label, style) = match object.verdict {
        Verdict::Deny => ("DENY ", DENY),
        Verdict::Warn => ("WARN ", WARN),
        // Allowed, but with findings: audit only.
        Verdict::Allow => ("AUDIT", AUDIT),
    };
    writeln!(
        out,
        "{style}{label}{style:#} {BOLD}{}{BOLD:#}  {DIM}({}){DIM:#}",
        object.object(),
        object.origin
    )?;
    for f in &object.findings {
        finding(f, out)?;
    }
    writeln!(out)
}

fn finding(f: &Finding, out: &mut dyn Write) -> io::Result<()> {
    let (word, style) = match f.action {
        Action::Deny => ("deny", DENY),
        Action::Warn => ("warn", WARN),
        Action::Audit => ("audit", AUDIT),
        Action::Off => ("off", DIM),
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

/// `12 objects checked, 2 denied, 1 warned; skipped: 3 ConfigMap, 1 Service; 1 input error`.
pub(super) fn summary_line(s: &Summary) -> String {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let mut line = format!(
        "{} checked, {} denied, {} warned",
        plural(s.checked, "object", "objects"),
        s.denied,
        s.warned
    );
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

    fn summary(checked: usize, skipped: &[(&str, usize)], input_errors: usize) -> Summary {
        Summary {
            checked,
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
                skipped: BTreeMap::new(),
                ..summary(0, &[], 2)
            }),
            "0 objects checked, 2 denied, 1 warned; 2 input errors"
        );
    }
}
