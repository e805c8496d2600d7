//! `volguard manifests`: its output decodes into the typed objects, and its flags land where they should.
//! The API server's own verdict on it is in tests/e2e/install.rs.

use crate::install_common;

use install_common::{decode, manifests, run, volguard};
use volguard::adapters::install::{DEFAULT_IMAGE, Install, Options, Trust};

fn ca_file() -> (tempfile::TempDir, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = volguard::adapters::certs::Ca::generate("test CA", 1).unwrap();
    let path = dir.path().join("ca.crt");
    std::fs::write(&path, &ca.pem).unwrap();
    let path = path.to_str().unwrap().to_owned();
    (dir, path, ca.pem)
}

#[test]
fn the_output_is_the_typed_install_and_decodes_back() {
    let (_dir, ca, pem) = ca_file();
    let yaml = manifests(&["--namespace", "guard", "--ca-bundle", &ca]);
    let decoded = decode(&yaml);
    let expected = Install::new(&Options::new(
        "volguard",
        "guard",
        Trust::CaBundle(pem.clone().into_bytes()),
    ))
    .documents()
    .unwrap();
    assert_eq!(decoded.docs, expected);
    for hook in [
        &decoded.validating.webhooks.as_ref().unwrap()[0].client_config,
        &decoded.mutating.webhooks.as_ref().unwrap()[0].client_config,
    ] {
        assert_eq!(hook.ca_bundle.as_ref().unwrap().0, pem.as_bytes());
        let service = hook.service.as_ref().unwrap();
        assert_eq!(
            (service.name.as_str(), service.namespace.as_str()),
            ("volguard", "guard")
        );
        assert_eq!(service.port, Some(443));
        assert!(hook.url.is_none());
    }
    assert_eq!(decoded.container().image.as_deref(), Some(DEFAULT_IMAGE));
    assert!(decoded.issuer.is_none() && decoded.certificate.is_none());
    let pdb = decoded.disruption_budget.spec.unwrap();
    assert_eq!(
        pdb.selector.unwrap().match_labels,
        decoded.deployment.spec.as_ref().unwrap().selector.match_labels
    );
}

#[test]
fn cert_manager_issues_the_secret_and_injects_the_ca() {
    let yaml = manifests(&["--namespace", "guard", "--name", "vg", "--cert-manager"]);
    let decoded = decode(&yaml);
    let certificate = decoded.certificate.expect("a Certificate");
    assert_eq!(certificate.spec.secret_name, "vg-tls");
    assert_eq!(
        certificate.spec.dns_names,
        ["vg", "vg.guard", "vg.guard.svc", "vg.guard.svc.cluster.local"]
    );
    assert_eq!(
        certificate.spec.issuer_ref.name,
        decoded.issuer.unwrap().metadata.name.unwrap()
    );
    for annotations in [
        &decoded.validating.metadata.annotations,
        &decoded.mutating.metadata.annotations,
    ] {
        let annotations = annotations.as_ref().unwrap();
        assert_eq!(annotations["cert-manager.io/inject-ca-from"], "guard/vg");
    }
    assert!(
        decoded.validating.webhooks.unwrap()[0]
            .client_config
            .ca_bundle
            .is_none()
    );
    let volumes = decoded
        .deployment
        .spec
        .unwrap()
        .template
        .spec
        .unwrap()
        .volumes
        .unwrap();
    assert!(
        volumes
            .iter()
            .any(|v| v.secret.as_ref().and_then(|s| s.secret_name.as_deref()) == Some("vg-tls"))
    );
}

#[test]
fn a_webhook_url_replaces_the_service() {
    let (_dir, ca, _) = ca_file();
    let yaml = manifests(&[
        "--ca-bundle",
        &ca,
        "--webhook-url",
        "https://127.0.0.1:8443/",
        "--failure-policy",
        "Ignore",
        "--image",
        "registry.example/volguard:dev",
    ]);
    let decoded = decode(&yaml);
    let validate = &decoded.validating.webhooks.as_ref().unwrap()[0];
    let mutate = &decoded.mutating.webhooks.as_ref().unwrap()[0];
    assert_eq!(
        validate.client_config.url.as_deref(),
        Some("https://127.0.0.1:8443/validate")
    );
    assert_eq!(
        mutate.client_config.url.as_deref(),
        Some("https://127.0.0.1:8443/mutate")
    );
    assert!(validate.client_config.service.is_none());
    assert_eq!(validate.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(mutate.failure_policy.as_deref(), Some("Ignore"));
    assert_eq!(mutate.reinvocation_policy.as_deref(), Some("IfNeeded"));
    assert_eq!(
        decoded.container().image.as_deref(),
        Some("registry.example/volguard:dev")
    );
}

#[test]
fn usage_errors_exit_2() {
    let (dir, ca, _) = ca_file();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    for args in [
        vec!["manifests"],
        vec!["manifests", "--ca-bundle", &ca, "--cert-manager"],
        vec!["manifests", "--ca-bundle", not_pem.to_str().unwrap()],
        vec!["manifests", "--ca-bundle", "/nonexistent/ca.crt"],
        vec![
            "manifests",
            "--cert-manager",
            "--webhook-url",
            "http://127.0.0.1:8443",
        ],
        vec!["manifests", "--cert-manager", "--failure-policy", "fail"],
    ] {
        let out = run(volguard(&args));
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}
