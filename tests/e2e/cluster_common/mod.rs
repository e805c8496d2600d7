//! The real kube-apiserver of `../shared/e2e/cluster.sh`, for the tests that need one: finding it (a
//! failure when absent: the default nextest profile never runs this binary), kubectl, namespaces.

#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The kubeconfig `cluster.sh` writes, unless VOLGUARD_E2E_KUBECONFIG points elsewhere.
fn kubeconfig() -> Option<PathBuf> {
    let path = std::env::var_os("VOLGUARD_E2E_KUBECONFIG")
        .map(PathBuf::from)
        .or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
            Some(cache.join("volguard-e2e/kubeconfig"))
        })?;
    path.exists().then_some(path)
}

/// The cluster's kubeconfig. These tests run only under `cargo nextest run --profile e2e` (the default
/// profile reports them as skipped), so a missing API server is a failure that says how to start one.
pub fn cluster() -> PathBuf {
    let found = kubeconfig().filter(|k| {
        kubectl(k, &["get", "--raw", "/readyz", "--request-timeout=5s"], None)
            .status
            .success()
    });
    match found {
        Some(kubeconfig) => kubeconfig,
        None => panic!(
            "no kube-apiserver answers: start one with `../shared/e2e/cluster.sh up` (or run the \
             suite without `--profile e2e`, which skips the end-to-end tests)"
        ),
    }
}

/// `kubectl --kubeconfig K args...`, with `stdin` piped in.
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kubectl runs");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("kubectl finishes")
}

/// Standard output and standard error.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

pub use crate::ports::free_port;

/// Polls `done` until it holds, failing after `limit`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A name no earlier run used: namespaces never finish deleting on this control plane.
pub fn fresh_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{prefix}-{}-{}", std::process::id(), nanos % 100_000)
}

/// The webhook registrations a test makes, by kind.
pub const WEBHOOK_KINDS: &[&str] = &["validatingwebhookconfiguration", "mutatingwebhookconfiguration"];

/// Kills `volguard serve` and deletes the named cluster-wide objects of `kinds` however the test ends;
/// prints the server's log when the test failed.
pub struct Cleanup {
    /// The `volguard serve` process.
    pub server: std::process::Child,
    /// The cluster.
    pub kubeconfig: PathBuf,
    /// The name of every cluster-wide object to delete.
    pub name: String,
    /// Their kinds.
    pub kinds: &'static [&'static str],
    /// The server's log file.
    pub log: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for kind in self.kinds {
            let _ = kubectl(
                &self.kubeconfig,
                &["delete", kind, &self.name, "--ignore-not-found"],
                None,
            );
        }
        let _ = self.server.kill();
        let _ = self.server.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.log)
        {
            eprintln!("--- volguard serve log ---\n{log}");
        }
    }
}

/// `volguard serve` started against the cluster, ready: policy and certificate loaded, caches synced.
pub struct Served {
    /// The HTTPS port on 127.0.0.1.
    pub port: u16,
    /// The plain-HTTP metrics port on 127.0.0.1.
    pub metrics_port: u16,
    /// The generated dev CA: the webhooks' caBundle.
    pub ca: PathBuf,
    /// Stops the server and deletes `name` of `kinds` when dropped.
    pub cleanup: Cleanup,
    /// Holds the certificates and the log; removed when dropped.
    pub dir: tempfile::TempDir,
}

/// Starts the `volguard` binary on free 127.0.0.1 ports with a generated dev CA and the cluster's claim
/// lookups, and waits (bounded) until `/readyz` answers. `name` of `kinds` is deleted when it is dropped.
pub fn serve(kubeconfig: &Path, name: String, kinds: &'static [&'static str]) -> Served {
    serve_with(kubeconfig, name, kinds, &[])
}

/// How many times a server is started on new ports when another process took one of its ports first.
const START_ATTEMPTS: usize = 5;

/// [`serve`] with more arguments for `volguard serve` (`--policy DIR`, ...).
///
/// The ports are free when picked, but tests run in parallel: another can bind one before this server
/// does. The server then exits saying the address is in use, and is started again on new ports (only
/// that is retried; any other early exit fails the test with the server's log).
pub fn serve_with(
    kubeconfig: &Path,
    name: String,
    kinds: &'static [&'static str],
    extra: &[&std::ffi::OsStr],
) -> Served {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("serve.log");
    let cert_dir = dir.path().join("certs");
    let ca = cert_dir.join("ca.crt");
    for attempt in 1..=START_ATTEMPTS {
        let (port, metrics_port) = (free_port(), free_port());
        let server = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}")])
            .args(["--metrics-addr", &format!("127.0.0.1:{metrics_port}")])
            .arg("--dev-cert-dir")
            .arg(&cert_dir)
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args(["--grace-period", "2s", "--log-level", "info"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("volguard serve starts");
        let mut cleanup = Cleanup {
            server,
            kubeconfig: kubeconfig.to_path_buf(),
            name: name.clone(),
            kinds,
            log: log.clone(),
        };
        let mut exited = false;
        wait_until("volguard /readyz", Duration::from_secs(60), || {
            if cleanup.server.try_wait().expect("status").is_some() {
                exited = true;
                return true;
            }
            Command::new("curl")
                .args(["-sf", "--max-time", "2", "--cacert"])
                .arg(&ca)
                .arg(format!("https://127.0.0.1:{port}/readyz"))
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        if !exited {
            return Served {
                port,
                metrics_port,
                ca,
                cleanup,
                dir,
            };
        }
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            text.contains("Address already in use") && attempt < START_ATTEMPTS,
            "volguard serve exited early (attempt {attempt}):\n{text}"
        );
        // Not a failure of this test: keep the objects named `name` (the caller's) by not cleaning up.
        cleanup.kinds = &[];
    }
    unreachable!("every attempt returns or fails")
}

/// The rule that also sends claims, as the chart registers them (for `unsupported-access-mode` and the
/// claim rules), for [`webhooks_with`].
pub const CLAIM_RULES: &str = r#"
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["persistentvolumeclaims"]"#;

/// A ValidatingWebhookConfiguration and a MutatingWebhookConfiguration, both `name`, sending the
/// workload kinds volguard judges in `namespace` to `https://127.0.0.1:port/{validate,mutate}`.
pub fn webhooks(name: &str, port: u16, ca_bundle: &str, namespace: &str) -> String {
    webhooks_with(name, port, ca_bundle, namespace, "")
}

/// [`webhooks`], sending also what `extra_rules` (YAML list items, such as [`CLAIM_RULES`]) select.
pub fn webhooks_with(name: &str, port: u16, ca_bundle: &str, namespace: &str, extra_rules: &str) -> String {
    let workload_rules = r#"
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "statefulsets", "daemonsets", "replicasets", "deployments/scale", "statefulsets/scale", "replicasets/scale"]
  - apiGroups: ["batch"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
  - apiGroups: ["autoscaling"]
    apiVersions: ["v1", "v2"]
    operations: ["CREATE", "UPDATE"]
    resources: ["horizontalpodautoscalers"]"#;
    let rules = format!("{workload_rules}{extra_rules}");
    let common = |path: &str| {
        format!(
            "  clientConfig:\n    url: https://127.0.0.1:{port}/{path}\n    caBundle: {ca_bundle}\n  rules:{rules}\n  \
             admissionReviewVersions: [\"v1\"]\n  sideEffects: None\n  matchPolicy: Equivalent\n  timeoutSeconds: 5\n  \
             failurePolicy: Fail\n  namespaceSelector:\n    matchLabels:\n      kubernetes.io/metadata.name: {namespace}\n"
        )
    };
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: {name}\n\
         webhooks:\n- name: validate.volguard.io\n{}---\napiVersion: admissionregistration.k8s.io/v1\n\
         kind: MutatingWebhookConfiguration\nmetadata:\n  name: {name}\nwebhooks:\n- name: mutate.volguard.io\n  \
         reinvocationPolicy: IfNeeded\n{}",
        common("validate"),
        common("mutate")
    )
}

/// Creates namespace `ns` (labelled with its name, as servers newer than v1.20 do by themselves) and
/// registers [`webhooks`] named `name` for it, trusting the CA at `ca`.
pub fn namespace_with_webhooks(kubeconfig: &Path, ns: &str, name: &str, port: u16, ca: &Path) {
    labelled_namespace(kubeconfig, ns);
    register(kubeconfig, &webhooks(name, port, &ca_bundle(ca), ns));
}

/// Creates namespace `ns`, labelled with its name (as servers newer than v1.20 do by themselves), which
/// the webhooks' `namespaceSelector` selects.
pub fn labelled_namespace(kubeconfig: &Path, ns: &str) {
    let out = kubectl(kubeconfig, &["create", "namespace", ns], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let label = format!("kubernetes.io/metadata.name={ns}");
    let out = kubectl(kubeconfig, &["label", "namespace", ns, &label], None);
    assert!(out.status.success(), "{:?}", text(&out));
}

/// The CA file at `ca`, base64-encoded for a `caBundle`.
pub fn ca_bundle(ca: &Path) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(std::fs::read(ca).expect("the dev CA"))
}

/// Applies webhook configurations (from [`webhooks`] or [`webhooks_with`]).
pub fn register(kubeconfig: &Path, configurations: &str) {
    let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(configurations));
    assert!(out.status.success(), "registering the webhooks: {:?}", text(&out));
}

/// A ReadWriteOnce-or-other claim `name` of 1Gi in `ns`, of the default class.
pub fn claim(ns: &str, name: &str, mode: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: {name}\n  namespace: {ns}\nspec:\n  \
         accessModes: [{mode}]\n  resources:\n    requests:\n      storage: 1Gi\n"
    )
}

/// A Deployment of `replicas` nginx pods mounting claim `claim`, with `annotations` (a YAML flow mapping's
/// entries, or ""), updated by recreating its pods.
pub fn deployment(ns: &str, name: &str, replicas: u32, claim: &str, annotations: &str) -> String {
    deployment_with_strategy(ns, name, replicas, claim, annotations, "{type: Recreate}")
}

/// As [`deployment`], with `strategy` (a YAML flow mapping) as its `spec.strategy`.
pub fn deployment_with_strategy(
    ns: &str,
    name: &str,
    replicas: u32,
    claim: &str,
    annotations: &str,
    strategy: &str,
) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app: {name}}}
  annotations: {{{annotations}}}
spec:
  replicas: {replicas}
  strategy: {strategy}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
        volumeMounts:
        - name: data
          mountPath: /usr/share/nginx/html
      volumes:
      - name: data
        persistentVolumeClaim:
          claimName: {claim}
"#
    )
}

/// Applies `yaml` with kubectl: whether it succeeded, and what kubectl printed.
pub fn apply(kubeconfig: &Path, yaml: &str) -> (bool, String) {
    let out = kubectl(kubeconfig, &["apply", "-f", "-"], Some(yaml));
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// Runs kubectl: whether it succeeded, and what it printed.
pub fn run(kubeconfig: &Path, args: &[&str]) -> (bool, String) {
    let out = kubectl(kubeconfig, args, None);
    let (stdout, stderr) = text(&out);
    (out.status.success(), format!("{stdout}{stderr}"))
}

/// The value of the first metric line on 127.0.0.1:`port`/metrics that starts with `line_start`.
pub fn metric(port: u16, line_start: &str) -> Option<f64> {
    let out = std::process::Command::new("curl")
        .args([
            "-sf",
            "--max-time",
            "2",
            &format!("http://127.0.0.1:{port}/metrics"),
        ])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The summary of volguard's PolicyReport in `ns` (`{"pass": .., "fail": .., ...}`), or None when there
/// is no such report.
pub fn report_summary(kubeconfig: &Path, ns: &str) -> Option<serde_json::Value> {
    let out = kubectl(
        kubeconfig,
        &[
            "get",
            "policyreports",
            "-n",
            ns,
            "volguard",
            "-o",
            "jsonpath={.summary}",
        ],
        None,
    );
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}
