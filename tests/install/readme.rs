//! The README's install commands that need no cluster are run here as written (in a scratch directory),
//! and the output they produce is an install the other tests would accept.

use crate::install_common;

use install_common::{decode, root};

/// The fenced `sh` block that follows the first line containing `marker`, with `\` continuations joined.
fn commands_after(marker: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = text
        .find(marker)
        .unwrap_or_else(|| panic!("README.md no longer says {marker:?}"));
    let body = start + text[start..].find("```sh\n").expect("a sh block follows") + "```sh\n".len();
    let end = body + text[body..].find("```\n").expect("the block ends");
    text[body..end]
        .replace("\\\n", " ")
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_plain_manifest_commands_work_as_written() {
    let commands = commands_after("These two commands run anywhere:");
    assert_eq!(commands.len(), 2, "{commands:#?}");
    let dir = tempfile::tempdir().unwrap();
    for command in &commands {
        let rest = command
            .strip_prefix("cargo run --release -- ")
            .unwrap_or_else(|| panic!("{command:?} runs volguard"));
        let (args, redirect) = match rest.split_once(" > ") {
            Some((args, file)) => (args, Some(dir.path().join(file))),
            None => (rest, None),
        };
        let out = install_common::volguard(args.split(' '))
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(file) = redirect {
            std::fs::write(file, &out.stdout).unwrap();
        }
    }
    for file in ["ca.crt", "ca.b64", "tls.crt", "tls.key"] {
        assert!(dir.path().join("certs/volguard").join(file).is_file(), "{file}");
    }
    let decoded = decode(&std::fs::read_to_string(dir.path().join("volguard.yaml")).unwrap());
    let hook = &decoded.validating.webhooks.unwrap()[0].client_config;
    let ca = std::fs::read(dir.path().join("certs/volguard/ca.crt")).unwrap();
    assert_eq!(hook.ca_bundle.as_ref().unwrap().0, ca);
    let service = hook.service.as_ref().unwrap();
    assert_eq!(
        (service.name.as_str(), service.namespace.as_str()),
        ("volguard", "volguard")
    );
    // The Secret the README creates by hand is the one the Deployment mounts.
    let secret = commands_after("the Secret first so the pods start");
    assert!(
        secret
            .iter()
            .any(|c| c.contains("create secret tls volguard-tls")),
        "{secret:#?}"
    );
    let pod = decoded.deployment.spec.unwrap().template.spec.unwrap();
    let volumes = pod.volumes.unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("volguard-tls"))
    );
}

#[test]
fn cluster_and_tool_commands_are_marked_as_such() {
    let text = std::fs::read_to_string(root().join("README.md")).unwrap();
    for marker in [
        "Needs Docker (not run by the tests or CI)",
        "Needs Docker, Helm and a [kind](https://kind.sigs.k8s.io) cluster",
        "Needs Helm 3 and a cluster.",
        "Then, against a cluster,",
        "With cert-manager installed in the cluster",
        "Uninstall (needs a cluster):",
    ] {
        assert!(text.contains(marker), "README.md says {marker:?}");
    }
}
