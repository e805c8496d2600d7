//! A [`Report`] as JUnit XML, in the shape of Apache Ant's JUnit task (the XSD in
//! tests/fixtures/junit/), which Jenkins, GitLab, Azure Pipelines and the GitHub test-report actions read.
//!
//! One `<testsuite>` per input file, one `<testcase>` per judged object (`classname` = `Kind/namespace`,
//! `name` = the object's name): a `<failure>` when it is denied (or warned, under `--strict`), with every
//! finding; `<skipped/>` for an object of a kind volguard does not judge; an `<error>` per input error.
//! Warnings and audit findings of objects that pass go to the suite's `<system-out>`, so they are still
//! read. PersistentVolumeClaims are looked up, not judged: they are no test cases.

use std::fmt::Write as _;
use std::io;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use quick_xml::writer::ElementWriter;

use super::report::{InputError, ObjectReport, Report, SkippedObject};
use crate::decision::Verdict;

/// What a JUnit report says that the [`Report`] does not: when and where it ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RunInfo {
    /// The start of the run, UTC, as `2026-01-31T12:00:00` (Ant's schema allows no time zone).
    pub(super) timestamp: String,
    /// The machine it ran on (`localhost` when unknown).
    pub(super) hostname: String,
}

/// The test cases of one input file.
#[derive(Default)]
struct Suite<'a> {
    file: &'a str,
    objects: Vec<&'a ObjectReport>,
    skipped: Vec<&'a SkippedObject>,
    errors: Vec<&'a InputError>,
}

/// The report as a JUnit XML document.
pub(super) fn junit(report: &Report, run: &RunInfo) -> io::Result<Vec<u8>> {
    let suites = suites(report);
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites").write_inner_content(|w| {
        for (id, suite) in suites.iter().enumerate() {
            write_suite(w, id, suite, report.summary.strict, run)?;
        }
        Ok(())
    })?;
    let mut xml = w.into_inner();
    xml.push(b'\n');
    Ok(xml)
}

/// The files in the order they first appear in the report, with their objects, skipped objects and
/// errors (a file holding only claims gets an empty suite: it was read).
fn suites(report: &Report) -> Vec<Suite<'_>> {
    let mut suites: Vec<Suite<'_>> = Vec::new();
    fn of<'a, 's>(suites: &'s mut Vec<Suite<'a>>, file: &'a str) -> &'s mut Suite<'a> {
        let at = match suites.iter().position(|s| s.file == file) {
            Some(at) => at,
            None => {
                suites.push(Suite {
                    file,
                    ..Suite::default()
                });
                suites.len() - 1
            }
        };
        &mut suites[at]
    }
    for o in &report.objects {
        of(&mut suites, &o.origin.file).objects.push(o);
    }
    for c in &report.claims {
        of(&mut suites, &c.origin.file);
    }
    for s in &report.skipped {
        of(&mut suites, &s.origin.file).skipped.push(s);
    }
    for e in &report.errors {
        of(&mut suites, &e.origin.file).errors.push(e);
    }
    suites
}

fn write_suite(
    w: &mut Writer<Vec<u8>>,
    id: usize,
    suite: &Suite<'_>,
    strict: bool,
    run: &RunInfo,
) -> io::Result<()> {
    let tests = suite.objects.len() + suite.skipped.len() + suite.errors.len();
    let failures = suite.objects.iter().filter(|o| o.fails(strict)).count();
    let counts = [tests, failures, suite.errors.len(), suite.skipped.len()].map(|n| n.to_string());
    let id = id.to_string();
    let name = xml_text(suite.file);
    w.create_element("testsuite")
        .with_attributes([
            ("name", name.as_str()),
            ("package", "volguard"),
            ("id", id.as_str()),
            ("timestamp", run.timestamp.as_str()),
            ("hostname", run.hostname.as_str()),
            ("tests", counts[0].as_str()),
            ("failures", counts[1].as_str()),
            ("errors", counts[2].as_str()),
            ("skipped", counts[3].as_str()),
            // volguard does not time objects: judging one takes microseconds.
            ("time", "0"),
        ])
        .write_inner_content(|w| {
            w.create_element("properties").write_inner_content(|w| {
                w.create_element("property")
                    .with_attributes([
                        ("name", "strict"),
                        ("value", if strict { "true" } else { "false" }),
                    ])
                    .write_empty()?;
                Ok(())
            })?;
            let mut out = String::new();
            for o in &suite.objects {
                object_case(w, o, strict, &mut out)?;
            }
            for s in &suite.skipped {
                skipped_case(w, s)?;
            }
            for e in &suite.errors {
                error_case(w, e)?;
            }
            w.create_element("system-out")
                .write_text_content(BytesText::new(&xml_text(&out)))?;
            w.create_element("system-err").write_empty()?;
            Ok(())
        })?;
    Ok(())
}

/// A `<testcase>` element: volguard times nothing per object.
fn testcase<'w>(w: &'w mut Writer<Vec<u8>>, name: &str, classname: &str) -> ElementWriter<'w, Vec<u8>> {
    w.create_element("testcase")
        .with_attributes([("name", name), ("classname", classname), ("time", "0")])
}

/// A judged object; a passing one with findings adds them to `out` (the suite's system-out).
fn object_case(w: &mut Writer<Vec<u8>>, o: &ObjectReport, strict: bool, out: &mut String) -> io::Result<()> {
    let classname = xml_text(&format!("{}/{}", o.kind, o.namespace));
    let name = xml_text(&o.name);
    let case = testcase(w, &name, &classname);
    let findings = findings_text(o);
    if !o.fails(strict) {
        out.push_str(&findings);
        case.write_empty()?;
        return Ok(());
    }
    let rules: Vec<String> = o
        .findings
        .iter()
        .map(|f| format!("{} ({})", f.rule, f.action.word()))
        .collect();
    let verdict = match o.verdict {
        Verdict::Deny => "denied",
        _ => "warned",
    };
    let message = xml_text(&format!("{} {verdict}: {}", o.object(), rules.join(", ")));
    let kind = if o.verdict == Verdict::Deny {
        "deny"
    } else {
        "warn"
    };
    case.write_inner_content(|w| {
        w.create_element("failure")
            .with_attributes([("message", message.as_str()), ("type", kind)])
            .write_text_content(BytesText::new(&xml_text(&findings)))?;
        Ok(())
    })?;
    Ok(())
}

/// Every finding of an object, as the text report writes them, after its place.
fn findings_text(o: &ObjectReport) -> String {
    let mut text = String::new();
    for f in &o.findings {
        let _ = writeln!(
            text,
            "{} ({}): [{}] {}: {}",
            o.object(),
            o.origin,
            f.rule,
            f.action.word(),
            f.message
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(text, "  fix:");
            for line in fix.lines() {
                let _ = writeln!(text, "    {line}");
            }
        }
    }
    text
}

fn skipped_case(w: &mut Writer<Vec<u8>>, s: &SkippedObject) -> io::Result<()> {
    let classname = xml_text(&match &s.namespace {
        Some(ns) => format!("{}/{ns}", s.kind),
        None => s.kind.clone(),
    });
    let name = xml_text(s.name.as_deref().unwrap_or("(unnamed)"));
    let message = xml_text(&format!("{} {} is not judged by volguard", s.api_version, s.kind));
    testcase(w, &name, &classname).write_inner_content(|w| {
        w.create_element("skipped")
            .with_attribute(("message", message.as_str()))
            .write_empty()?;
        Ok(())
    })?;
    Ok(())
}

fn error_case(w: &mut Writer<Vec<u8>>, e: &InputError) -> io::Result<()> {
    // `Deployment shop/typo` names a test case like a judged object's; otherwise the place does.
    let (classname, name) = match e.object.as_deref().and_then(|o| o.split_once(' ')) {
        Some((kind, object)) => match object.split_once('/') {
            Some((ns, name)) => (format!("{kind}/{ns}"), name.to_owned()),
            None => (kind.to_owned(), object.to_owned()),
        },
        None => ("input".to_owned(), e.origin.to_string()),
    };
    let (classname, name) = (xml_text(&classname), xml_text(&name));
    let stage = e.stage.as_str();
    let message = xml_text(&e.message);
    let text = xml_text(&e.to_string());
    testcase(w, &name, &classname).write_inner_content(|w| {
        w.create_element("error")
            .with_attributes([("message", message.as_str()), ("type", stage)])
            .write_text_content(BytesText::new(&text))?;
        Ok(())
    })?;
    Ok(())
}

/// The text with the characters XML 1.0 cannot carry at all, even escaped (controls but tab, line feed
/// and carriage return), replaced by U+FFFD. The writer escapes the rest.
fn xml_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if c.is_control() && (c as u32) < 0x20 => '\u{FFFD}',
            '\u{FFFE}' | '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn characters_xml_cannot_carry_are_replaced_and_the_rest_kept() {
        assert_eq!(
            xml_text("a\u{1}b\tc\n<&>\u{FFFF}é"),
            "a\u{FFFD}b\tc\n<&>\u{FFFD}é"
        );
    }
}
