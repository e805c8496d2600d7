//! Self-managed TLS against the real kube-apiserver: `serve --tls-secret` creates its CA and serving
//! certificate in a Secret, patches the caBundle of its webhook configurations, renews the certificate
//! (a 30 s life here) with a second replica picking each renewal up with no failed review, and elects
//! one leader through a Lease, which another replica takes over once it expires.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster_common::{self, free_port, fresh_name, kubectl, text, wait_until, webhooks};

/// A `volguard serve --tls-secret` process; killed (and its log printed on failure) when dropped.
struct Replica {
    child: Child,
    port: u16,
    metrics_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.log)
        {
            eprintln!("--- volguard serve :{} log ---\n{log}", self.port);
        }
    }
}

impl Replica {
    fn metrics(&self) -> String {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "2"])
            .arg(format!("http://127.0.0.1:{}/metrics", self.metrics_port))
            .output()
            .expect("curl runs");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The value of a metric line starting with `series ` (0 when absent).
    fn metric(&self, series: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    fn leads(&self) -> bool {
        self.metric("volguard_leader") == 1.0
    }

    fn ready(&self) -> bool {
        Command::new("curl")
            .args(["-skf", "--max-time", "2"])
            .arg(format!("https://127.0.0.1:{}/readyz", self.port))
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// The serial number of the certificate it serves now.
    fn served_serial(&self) -> String {
        let pem = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "openssl s_client -connect 127.0.0.1:{} -servername 127.0.0.1 </dev/null 2>/dev/null \
                 | openssl x509 -noout -serial",
                self.port
            ))
            .output()
            .expect("openssl runs");
        String::from_utf8_lossy(&pem.stdout).trim().to_owned()
    }

    fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("status").is_none()
    }
}

/// Starts a replica managing `NS/volguard-tls` for the webhooks named `name`, with `extra` flags.
fn replica(kubeconfig: &Path, ns: &str, name: &str, extra: &[&str]) -> Replica {
    replica_with(kubeconfig, ns, name, extra, None)
}

/// [`replica`], with `--webhooks-file` holding what `webhooks_for(port)` writes.
fn replica_with(
    kubeconfig: &Path,
    ns: &str,
    name: &str,
    extra: &[&str],
    webhooks_for: Option<&dyn Fn(u16) -> String>,
) -> Replica {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, metrics_port) = (free_port(), free_port());
    let log = dir.path().join("serve.log");
    let mut extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    if let Some(webhooks) = webhooks_for {
        let file = dir.path().join("webhooks.yaml");
        std::fs::write(&file, webhooks(port)).expect("write the webhooks file");
        extra.push(format!("--webhooks-file={}", file.display()));
    }
    let child = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
        .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args([
            "--tls-secret",
            &format!("{ns}/volguard-tls"),
            "--tls-san",
            "127.0.0.1",
        ])
        .args(["--validating-webhook", name, "--mutating-webhook", name])
        .args(["--grace-period", "2s", "--log-level", "info,volguard=debug"])
        .args(&extra)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("volguard serve starts");
    Replica {
        child,
        port,
        metrics_port,
        log,
        _dir: dir,
    }
}

fn wait_ready(r: &mut Replica) {
    wait_until("volguard /readyz", Duration::from_secs(60), || {
        assert!(r.is_running(), "volguard serve exited early");
        r.ready()
    });
}

/// Deletes the webhook configurations named `name` however the test ends.
struct Webhooks {
    kubeconfig: PathBuf,
    name: String,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        for kind in cluster_common::WEBHOOK_KINDS {
            let _ = kubectl(
                &self.kubeconfig,
                &["delete", kind, &self.name, "--ignore-not-found"],
                None,
            );
        }
    }
}

/// A namespace with claim `data` (ReadWriteOnce).
fn namespace(kubeconfig: &Path, ns: &str) {
    let out = kubectl(kubeconfig, &["create", "namespace", ns], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let label = format!("kubernetes.io/metadata.name={ns}");
    let out = kubectl(kubeconfig, &["label", "namespace", ns, &label], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let claim = format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: {ns}\nspec:\n  accessModes: \
         [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    );
    let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(&claim));
    assert!(out.status.success(), "{:?}", text(&out));
}

/// Both webhook configurations, sending the workloads of `ns` to `https://127.0.0.1:port`, with no
/// caBundle: volguard sets it.
fn register(kubeconfig: &Path, ns: &str, name: &str, port: u16) -> Webhooks {
    let guard = Webhooks {
        kubeconfig: kubeconfig.to_path_buf(),
        name: name.to_owned(),
    };
    let registrations = webhooks(name, port, "\"\"", ns).replace("    caBundle: \"\"\n", "");
    let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(&registrations));
    assert!(out.status.success(), "registering the webhooks: {:?}", text(&out));
    guard
}

/// Three replicas on the ReadWriteOnce claim: volguard denies it.
fn denied_deployment(ns: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {ns}}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - {{name: web, image: nginx:1.27, volumeMounts: [{{name: data, mountPath: /data}}]}}
      volumes:
      - {{name: data, persistentVolumeClaim: {{claimName: data}}}}
"#
    )
}

/// `kubectl create --dry-run=server`: (denied by volguard, standard error).
fn review(kubeconfig: &Path, ns: &str) -> (bool, String) {
    let out = kubectl(
        kubeconfig,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&denied_deployment(ns)),
    );
    let (_, stderr) = text(&out);
    let denied = !out.status.success()
        && stderr.contains("admission webhook \"validate.volguard.io\" denied the request")
        && stderr.contains("[shared-rwo-claim]");
    (denied, stderr)
}

fn jsonpath(kubeconfig: &Path, args: &[&str], path: &str) -> String {
    let mut all: Vec<&str> = vec!["get"];
    all.extend(args);
    let expr = format!("-o=jsonpath={path}");
    all.push(&expr);
    let out = kubectl(kubeconfig, &all, None);
    text(&out).0
}

fn secret_field(kubeconfig: &Path, ns: &str, key: &str) -> String {
    let path = format!("{{.data.{}}}", key.replace('.', "\\."));
    jsonpath(kubeconfig, &["secret", "-n", ns, "volguard-tls"], &path)
}

fn ca_bundles(kubeconfig: &Path, name: &str) -> Vec<String> {
    cluster_common::WEBHOOK_KINDS
        .iter()
        .map(|kind| jsonpath(kubeconfig, &[kind, name], "{.webhooks[*].clientConfig.caBundle}"))
        .collect()
}

#[test]
fn self_managed_serve_creates_its_secret_and_ca_bundle_and_the_api_server_calls_it() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-sm");
    let name = format!("volguard-{ns}");
    namespace(&kubeconfig, &ns);
    let mut r = replica(&kubeconfig, &ns, &name, &[]);
    let _webhooks = register(&kubeconfig, &ns, &name, r.port);
    wait_ready(&mut r);

    // The Secret: a kubernetes.io/tls pair, the CA bundle and the CA key.
    let kind = jsonpath(&kubeconfig, &["secret", "-n", &ns, "volguard-tls"], "{.type}");
    assert_eq!(kind, "kubernetes.io/tls");
    for key in ["tls.crt", "tls.key", "ca.crt", "ca.key"] {
        assert!(
            !secret_field(&kubeconfig, &ns, key).is_empty(),
            "{key} in the Secret"
        );
    }
    assert!(r.leads(), "the only replica leads: {}", r.metrics());

    // Both configurations trust the Secret's CA, and only the caBundle changed.
    let ca = secret_field(&kubeconfig, &ns, "ca.crt");
    wait_until("the caBundle patched", Duration::from_secs(30), || {
        ca_bundles(&kubeconfig, &name).iter().all(|b| *b == ca)
    });
    let url = jsonpath(
        &kubeconfig,
        &["validatingwebhookconfiguration", &name],
        "{.webhooks[0].clientConfig.url}",
    );
    assert_eq!(url, format!("https://127.0.0.1:{}/validate", r.port));

    // The API server calls volguard over TLS and gets its denial. The claim reaches volguard's cache
    // through its watch: retry (bounded) until it is known.
    let mut last = String::new();
    wait_until(
        "volguard's denial through the API server",
        Duration::from_secs(30),
        || {
            let (denied, stderr) = review(&kubeconfig, &ns);
            assert!(!stderr.contains("x509"), "a TLS failure: {stderr}");
            last = stderr;
            denied
        },
    );
    assert!(
        last.contains(&format!("volguard denied Deployment {ns}/web")),
        "{last}"
    );

    // The metrics count down to both expiries.
    let metrics = r.metrics();
    for cert in ["ca", "serving"] {
        let left = r.metric(&format!(
            "volguard_certificate_expiry_seconds{{certificate=\"{cert}\"}}"
        ));
        assert!(left > 0.0, "{cert}: {metrics}");
    }
}

#[test]
fn self_managed_renewal_reaches_a_second_replica_with_no_failed_review() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-renew");
    let name = format!("volguard-{ns}");
    namespace(&kubeconfig, &ns);
    let life = ["--cert-lifetime", "30s"];
    let mut leader = replica(&kubeconfig, &ns, &name, &life);
    wait_ready(&mut leader);
    assert!(leader.leads(), "{}", leader.metrics());
    let mut follower = replica(&kubeconfig, &ns, &name, &life);
    wait_ready(&mut follower);
    assert!(!follower.leads(), "one leader: {}", follower.metrics());
    assert_eq!(follower.metric("volguard_leader"), 0.0, "{}", follower.metrics());

    // The API server calls the follower, which never writes the Secret: it only reloads it.
    let _webhooks = register(&kubeconfig, &ns, &name, follower.port);
    wait_until(
        "volguard's denial through the follower",
        Duration::from_secs(30),
        || review(&kubeconfig, &ns).0,
    );

    // Reviews through the API server, one after another, while the 30 s certificate is renewed (two
    // thirds into its life) at least twice. Every one must come back as volguard's denial.
    let reloads = "volguard_certificate_reloads_total{result=\"success\"}";
    let before = follower.metric(reloads);
    let first_serial = follower.served_serial();
    let started = Instant::now();
    let (mut sent, mut failed, mut tls_failures) = (0u32, Vec::new(), 0u32);
    while follower.metric(reloads) < before + 2.0 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "two renewals within 90 s; {sent} reviews sent"
        );
        let (denied, stderr) = review(&kubeconfig, &ns);
        sent += 1;
        if !denied {
            if stderr.contains("x509") || stderr.contains("tls") || stderr.contains("certificate") {
                tls_failures += 1;
            }
            failed.push(stderr);
        }
    }
    let renewal = started.elapsed();
    let renewed = follower.metric(reloads) - before;
    eprintln!(
        "renewals seen by the follower: {renewed} in {renewal:?}; reviews sent: {sent}; failed: {}; TLS failures: \
         {tls_failures}",
        failed.len()
    );
    assert_eq!(tls_failures, 0, "{failed:#?}");
    assert_eq!(failed, Vec::<String>::new(), "every review answered by volguard");
    assert!(sent >= 10, "reviews kept flowing during the renewals: {sent}");

    // The follower serves the Secret's newest certificate, not the one it started with.
    let secret_serial = {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "kubectl --kubeconfig {} get secret -n {ns} volguard-tls -o jsonpath='{{.data.tls\\.crt}}' \
                 | base64 -d | openssl x509 -noout -serial",
                kubeconfig.display()
            ))
            .output()
            .expect("kubectl and openssl run");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    wait_until(
        "the follower serving the Secret's certificate",
        Duration::from_secs(20),
        || follower.served_serial() == secret_serial,
    );
    assert_ne!(first_serial, follower.served_serial(), "renewed");
    assert!(leader.is_running() && follower.is_running());
}

#[test]
fn self_managed_lease_has_one_leader_and_another_takes_over_once_it_expires() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-lease");
    let out = kubectl(&kubeconfig, &["create", "namespace", &ns], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let lease = ["--lease-duration", "3s"];
    let name = format!("volguard-{ns}");
    let mut a = replica(&kubeconfig, &ns, &name, &lease);
    let mut b = replica(&kubeconfig, &ns, &name, &lease);
    wait_ready(&mut a);
    wait_ready(&mut b);
    // Exactly one leads, for a while (each renews every second).
    for _ in 0..5 {
        assert!(
            a.leads() != b.leads(),
            "one leader: a {}, b {}",
            a.leads(),
            b.leads()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let holder = |k: &Path| jsonpath(k, &["lease", "-n", &ns, "volguard-tls"], "{.spec.holderIdentity}");
    let first = holder(&kubeconfig);
    let transitions = |k: &Path| {
        jsonpath(
            k,
            &["lease", "-n", &ns, "volguard-tls"],
            "{.spec.leaseTransitions}",
        )
        .parse::<u32>()
        .unwrap_or(0)
    };
    let before = transitions(&kubeconfig);
    let (gone, other) = if a.leads() {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // SIGKILL: no release; the other must wait for the Lease to expire.
    gone.child.kill().expect("kill the leader");
    let _ = gone.child.wait();
    wait_until("the other replica leading", Duration::from_secs(30), || {
        other.leads()
    });
    let second = holder(&kubeconfig);
    assert_ne!(first, second, "a new holder");
    assert!(!second.is_empty());
    assert_eq!(transitions(&kubeconfig), before + 1, "one transition");
    assert!(other.ready(), "the new leader still serves");

    // SIGTERM: the leader gives the Lease up before it exits, rather than leaving it to expire.
    let term = Command::new("kill")
        .args(["-TERM", &other.child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(term.success());
    let started = Instant::now();
    while other.is_running() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve stops on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(holder(&kubeconfig), "", "released on shutdown");
}

#[test]
fn self_managed_webhooks_go_in_only_once_volguard_serves_and_unregister_takes_them_out() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-order");
    let name = format!("volguard-{ns}");
    namespace(&kubeconfig, &ns);
    // Installed inactive, as the chart does: both configurations, no webhooks.
    let _guard = Webhooks {
        kubeconfig: kubeconfig.clone(),
        name: name.clone(),
    };
    let empty = format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {{name: {name}}}\n\
         ---\napiVersion: admissionregistration.k8s.io/v1\nkind: MutatingWebhookConfiguration\nmetadata: {{name: {name}}}\n"
    );
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&empty));
    assert!(out.status.success(), "{:?}", text(&out));
    let (_, stderr) = review(&kubeconfig, &ns);
    assert!(
        !stderr.contains("volguard"),
        "nothing is sent before volguard runs: {stderr}"
    );

    let (ns2, name2) = (ns.clone(), name.clone());
    let file = move |port: u16| webhooks(&name2, port, "\"\"", &ns2).replace("    caBundle: \"\"\n", "");
    let mut r = replica_with(&kubeconfig, &ns, &name, &[], Some(&file));
    // Whenever the API server has been given volguard's webhooks, volguard is ready to answer them.
    let count = |k: &Path| {
        jsonpath(
            k,
            &["validatingwebhookconfiguration", &name],
            "{.webhooks[*].name}",
        )
        .split_whitespace()
        .count()
    };
    let mut samples = 0;
    wait_until("the webhooks put in", Duration::from_secs(60), || {
        assert!(r.is_running(), "volguard serve exited early");
        samples += 1;
        let n = count(&kubeconfig);
        if n > 0 {
            assert!(r.ready(), "webhooks active while volguard is not ready");
        }
        n > 0
    });
    eprintln!("{samples} samples before the webhooks went in");
    assert_eq!(count(&kubeconfig), 1);
    let ca = secret_field(&kubeconfig, &ns, "ca.crt");
    assert!(ca_bundles(&kubeconfig, &name).iter().all(|b| *b == ca));
    wait_until("volguard's denial", Duration::from_secs(30), || {
        review(&kubeconfig, &ns).0
    });

    // Unregistered: gone, and the running leader does not put them back (it may only patch them).
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args([
            "unregister",
            "--validating-webhook",
            &name,
            "--mutating-webhook",
            &name,
        ])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .output()
        .expect("volguard unregister runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let gone = || {
        cluster_common::WEBHOOK_KINDS.iter().all(|kind| {
            let out = kubectl(&kubeconfig, &["get", kind, &name], None);
            text(&out).1.contains("NotFound")
        })
    };
    assert!(gone());
    let deadline = Instant::now() + Duration::from_secs(8);
    while Instant::now() < deadline {
        assert!(gone(), "the leader brought a configuration back");
        std::thread::sleep(Duration::from_millis(500));
    }
    let out = kubectl(
        &kubeconfig,
        &["create", "--dry-run=server", "-f", "-"],
        Some(&denied_deployment(&ns)),
    );
    assert!(out.status.success(), "no webhook left to call: {:?}", text(&out));
    // Unregistering again is fine.
    let again = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args(["unregister", "--validating-webhook", &name])
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .status()
        .expect("runs");
    assert!(again.success());
}

/// The PEM certificates of a base64 PEM bundle, in order.
fn certificates(b64: &str) -> Vec<String> {
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&pem)
        .split_inclusive("-----END CERTIFICATE-----")
        .filter(|c| c.contains("-----BEGIN CERTIFICATE-----"))
        .map(|c| c.trim().to_owned())
        .collect()
}

fn certificates_in(b64: &str) -> usize {
    certificates(b64).len()
}

#[test]
fn self_managed_ca_rotation_keeps_both_cas_trusted_and_no_review_fails() {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("vg-carot");
    let name = format!("volguard-{ns}");
    namespace(&kubeconfig, &ns);
    // A 45 s CA rotates about 30 s in; the new one signs once the webhooks trust it.
    let life = ["--ca-lifetime", "45s", "--cert-lifetime", "15s"];
    let mut leader = replica(&kubeconfig, &ns, &name, &life);
    wait_ready(&mut leader);
    let mut follower = replica(&kubeconfig, &ns, &name, &life);
    wait_ready(&mut follower);
    let _webhooks = register(&kubeconfig, &ns, &name, follower.port);
    wait_until(
        "volguard's denial through the follower",
        Duration::from_secs(30),
        || review(&kubeconfig, &ns).0,
    );
    let first_ca = secret_field(&kubeconfig, &ns, "ca.crt");
    assert_eq!(certificates_in(&first_ca), 1);

    // Reviews until the CA has rotated and the follower serves a certificate of the new CA.
    let started = Instant::now();
    let (mut sent, mut failed, mut overlap) = (0u32, Vec::new(), false);
    let mut rotated_and_served = false;
    while !rotated_and_served {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "a CA rotation within 120 s; {sent} reviews sent"
        );
        let (denied, stderr) = review(&kubeconfig, &ns);
        sent += 1;
        if !denied {
            failed.push(stderr);
        }
        let bundles = ca_bundles(&kubeconfig, &name);
        overlap |= bundles.iter().all(|b| certificates_in(b) == 2);
        let ca = secret_field(&kubeconfig, &ns, "ca.crt");
        let rotated = certificates(&ca).first() != certificates(&first_ca).first();
        if rotated && overlap {
            // The follower's certificate verifies against the new bundle's first CA only.
            let check = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "kubectl --kubeconfig {k} get secret -n {ns} volguard-tls -o jsonpath='{{.data.ca\\.crt}}' \
                     | base64 -d | awk '/BEGIN/{{n++}} n==1' > {d}/newest.crt && openssl s_client -connect \
                     127.0.0.1:{p} -CAfile {d}/newest.crt -verify_return_error </dev/null >/dev/null 2>&1",
                    k = kubeconfig.display(),
                    d = follower._dir.path().display(),
                    p = follower.port
                ))
                .status()
                .expect("sh runs");
            rotated_and_served = check.success();
        }
    }
    eprintln!(
        "CA rotated and served in {:?}; reviews sent: {sent}; failed: {}; both CAs in the caBundle: {overlap}",
        started.elapsed(),
        failed.len()
    );
    assert_eq!(failed, Vec::<String>::new(), "every review answered by volguard");
    assert!(overlap, "the old and the new CA were trusted together");
    assert!(leader.is_running() && follower.is_running());
}
