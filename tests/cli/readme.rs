//! The output shown in README.md is what `volguard check` really prints: each excerpt is run again here.

use crate::cli_common;

use cli_common::{run, volguard};
use pretty_assertions::assert_eq;

/// The fenced block (` ```lang `) that follows the first line containing `marker`.
fn block_after(text: &str, marker: &str, lang: &str) -> String {
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("README.md no longer says {marker:?}"));
    let fence = format!("```{lang}\n");
    let body = start + text[start..].find(&fence).expect("a fenced block follows") + fence.len();
    let end = body + text[body..].find("```\n").expect("the block ends");
    text[body..end].to_owned()
}

fn readme() -> String {
    std::fs::read_to_string(cli_common::root().join("README.md")).expect("README.md is readable")
}

#[test]
fn the_text_excerpt_is_real_output() {
    let cmd = "check -f examples/web-shared-rwo.yaml examples/single-replica-rollout.yaml";
    let shown = block_after(&readme(), &format!("`cargo run --release -- {cmd}`:"), "text");
    let out = run(volguard(cmd.split(' ')));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, shown);
}

#[test]
fn the_json_excerpt_is_real_output() {
    let cmd = "check -f examples/single-replica-rollout.yaml -o json";
    let shown = block_after(&readme(), &format!("`cargo run --release -- {cmd}`,"), "json");
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("the excerpt is JSON");
    let out = run(volguard(cmd.split(' ')));
    assert_eq!(out.code, 0);
    assert_eq!(out.json(), shown);
}

#[test]
fn the_policy_example_loads_and_gives_the_summary_shown() {
    let text = readme();
    let policy = block_after(&text, "used together with the built-in one:", "yaml");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        cli_common::root().join("policies/default.yaml"),
        dir.path().join("default.yaml"),
    )
    .unwrap();
    std::fs::write(dir.path().join("payments.yaml"), policy).unwrap();
    let out = run(volguard([
        "check".as_ref(),
        "-f".as_ref(),
        "examples/".as_ref(),
        "--policy".as_ref(),
        dir.path().as_os_str(),
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let summary = "11 objects checked, 6 denied, 2 warned; 7 claims read; skipped: 1 ConfigMap, 2 Service";
    assert!(text.contains(&format!("`{summary}`")));
    assert!(out.stdout.ends_with(&format!("\n{summary}\n")), "{}", out.stdout);
    assert!(out.stdout.contains(
        "\n  [stateless-deployment] deny: Deployment payments/api mounts PersistentVolumeClaim \"api-state\""
    ));
}

#[test]
fn the_examples_readme_summary_is_real_output() {
    let examples = std::fs::read_to_string(cli_common::root().join("examples/README.md")).unwrap();
    let out = run(volguard(["check", "-f", "examples/"]));
    let summary = out.stdout.lines().last().unwrap().to_owned();
    assert!(
        examples.contains(&format!("Summary line: `{summary}`.")),
        "examples/README.md does not show the summary {summary:?}"
    );
}

#[test]
fn the_repairs_diff_excerpt_is_real_output() {
    let cmd = "check -f examples/single-replica-rollout.yaml --policy policies/ --diff";
    let shown = block_after(&readme(), &format!("`cargo run --release -- {cmd}`:"), "text");
    let out = run(volguard(cmd.split(' ')));
    assert_eq!(out.code, 0);
    assert_eq!(out.stdout, shown);
}

#[test]
fn the_counting_excerpts_are_real_output() {
    let cmd = "check -f tests/fixtures/counting/wiki-and-backup.yaml";
    let shown = block_after(&readme(), &format!("`cargo run --release -- {cmd}`:"), "text");
    let out = run(volguard(cmd.split(' ')));
    assert_eq!(out.code, 1);
    assert_eq!(out.stdout, shown);
    let out = run(volguard([
        "check",
        "-f",
        "tests/fixtures/counting/wiki-and-backup-colocated.yaml",
    ]));
    assert_eq!(out.code, 0);
    let summary = out.stdout.lines().last().unwrap();
    assert!(
        readme().contains(&format!("advisory warning:\n`{summary}`.")),
        "README.md does not show {summary:?}"
    );
}

/// The rows of the README's table of kinds: kind, apiVersions, whether it is scaled.
fn readme_kinds() -> Vec<(String, Vec<String>, bool)> {
    let text = readme();
    let start = text
        .find("| Kind | apiVersion | Judged when | Pods at once |")
        .expect("the table of kinds");
    text[start..]
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let versions = cells[2].split(", ").map(str::to_owned).collect();
            (cells[1].to_owned(), versions, cells[3].contains("scaled"))
        })
        .collect()
}

#[test]
fn the_readme_table_of_kinds_is_the_codes() {
    use volguard::domain::workload::{KINDS, Kind, api_version};
    let table: Vec<(String, Vec<String>, bool)> = KINDS
        .iter()
        .filter(|k| k.kind != Kind::Scale)
        .map(|k| {
            let versions = k.versions.iter().map(|v| api_version(k.group, v)).collect();
            (k.kind.as_str().to_owned(), versions, k.scale)
        })
        .collect();
    assert_eq!(readme_kinds(), table);
}

/// The rows of README's "Limits and hardening" table: (flag, default) for rows that name a flag.
fn readme_limits() -> Vec<(String, String)> {
    let text = readme();
    let start = text
        .find("## Limits and hardening")
        .expect("README.md has a Limits and hardening section");
    let table = &text[start..];
    let table = &table[table.find("| Limit |").expect("the limits table")..];
    table
        .lines()
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|row| {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let flag = cells.get(3)?.trim_matches('`');
            (!flag.is_empty()).then(|| (flag.to_owned(), cells[2].to_owned()))
        })
        .collect()
}

#[test]
fn every_serve_limit_is_in_the_readme_table_and_every_flag_there_exists() {
    let help = run(volguard(["serve", "--help"])).stdout;
    let documented = readme_limits();
    let flags: Vec<&str> = documented.iter().map(|(f, _)| f.as_str()).collect();
    for flag in &flags {
        assert!(
            help.contains(&format!("{flag} <")),
            "serve has no {flag}:\n{help}"
        );
    }
    // Every bounding flag of serve is documented there.
    for line in help.lines() {
        let Some(flag) = line.trim().split([' ', ',']).find(|w| w.starts_with("--")) else {
            continue;
        };
        let bounding = [
            "--max-",
            "--metrics-max-",
            "--heavy-",
            "--idle-",
            "--request-timeout",
        ]
        .iter()
        .any(|p| flag.starts_with(p));
        assert!(
            !bounding || flags.contains(&flag),
            "{flag} is missing from README's limits table"
        );
    }
    // The numeric defaults written there are serve's.
    for (flag, default) in &documented {
        let shown = help
            .split(&format!("{flag} <"))
            .nth(1)
            .and_then(|rest| rest.split("[default: ").nth(1))
            .and_then(|rest| rest.split(']').next())
            .unwrap_or_else(|| panic!("{flag} has a default in serve --help"));
        let readme_number: String = default.split([' ', '(']).next().unwrap_or("").replace(',', "");
        let expected = match shown.parse::<u64>() {
            Ok(bytes) if flag.ends_with("-bytes") => format!("{}", bytes >> 20),
            _ => shown.trim_end_matches('s').to_owned(),
        };
        assert_eq!(
            readme_number, expected,
            "{flag}: README says {default:?}, serve {shown}"
        );
    }
}

const PROVISIONERS_START: &str = "<!-- provisioners: made from src/domain/storage/provisioners.rs; VOLGUARD_BLESS=1 cargo nextest run -E 'binary(cli)' rewrites it -->\n";
const PROVISIONERS_END: &str = "<!-- end provisioners -->\n";

/// The README's table of provisioners, as the code has it.
fn provisioner_table() -> String {
    use volguard::domain::storage::Modes;
    use volguard::domain::storage::provisioners::PROVISIONERS;
    let short = |m: Modes| {
        let names: Vec<&str> = m
            .names()
            .into_iter()
            .map(|n| match n {
                "ReadWriteOnce" => "RWO",
                "ReadOnlyMany" => "ROX",
                "ReadWriteMany" => "RWX",
                _ => "RWOP",
            })
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    let mut out =
        String::from("| Storage | Provisioner | Filesystem | Block | Source |\n|---|---|---|---|---|\n");
    for p in PROVISIONERS {
        let mut names: Vec<String> = p.names.iter().map(|n| format!("`{n}`")).collect();
        if let Some(suffix) = p.suffix {
            names.push(format!("`*{suffix}`"));
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | [docs]({}) |\n",
            p.family,
            names.join(", "),
            short(p.filesystem),
            short(p.block),
            p.source
        ));
    }
    out
}

#[test]
fn the_readme_table_of_provisioners_is_the_codes() {
    let path = cli_common::root().join("README.md");
    let text = readme();
    let start = text.find(PROVISIONERS_START).expect("the table's start marker") + PROVISIONERS_START.len();
    let end = start
        + text[start..]
            .find(PROVISIONERS_END)
            .expect("the table's end marker");
    let want = provisioner_table();
    if std::env::var_os("VOLGUARD_BLESS").is_some() && text[start..end] != want {
        std::fs::write(&path, format!("{}{want}{}", &text[..start], &text[end..])).unwrap();
        return;
    }
    assert_eq!(&text[start..end], want, "VOLGUARD_BLESS=1 rewrites it");
}
