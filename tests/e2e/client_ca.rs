//! `serve --client-ca` with a real kube-apiserver: a second API server, started on the e2e cluster's etcd
//! with the flags of the first plus the AdmissionConfiguration README.md documents ("Limits and
//! hardening"), presents a client certificate to volguard and gets its reviews judged; the first API
//! server, which has none, is refused (its webhook call fails and `failurePolicy: Fail` rejects the
//! request).

use crate::cluster_common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cluster_common::{WEBHOOK_KINDS, free_port, fresh_name, kubectl, serve_with, text, wait_until};
use volguard::adapters::certs::{self, Ca};

/// The second kube-apiserver, killed (and its log shown, on failure) when dropped.
struct ApiServer {
    child: Child,
    log: PathBuf,
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking()
            && let Ok(log) = std::fs::read_to_string(&self.log)
        {
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!("--- second kube-apiserver log (last lines) ---");
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The command line of the cluster's running kube-apiserver (`cluster.sh` records its pid).
fn running_apiserver(kubeconfig: &Path) -> Vec<String> {
    let state = kubeconfig
        .parent()
        .expect("the kubeconfig lives in the cluster's state directory");
    let pid = std::fs::read_to_string(state.join("run/apiserver.pid")).expect("cluster.sh recorded the pid");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pid.trim())).expect("the API server runs");
    cmdline
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Starts another kube-apiserver like the running one, on `port`, with `admission_config`.
fn second_apiserver(kubeconfig: &Path, port: u16, admission_config: &Path, dir: &Path) -> ApiServer {
    let mut args = running_apiserver(kubeconfig);
    let bin = args.remove(0);
    let mut args: Vec<String> = args
        .into_iter()
        .filter(|a| !a.starts_with("--secure-port=") && !a.starts_with("--admission-control-config-file="))
        .collect();
    args.push(format!("--secure-port={port}"));
    args.push(format!(
        "--admission-control-config-file={}",
        admission_config.display()
    ));
    let log = dir.join("apiserver.log");
    let child = Command::new(bin)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .spawn()
        .expect("the second kube-apiserver starts");
    ApiServer { child, log }
}

/// `kubeconfig`, pointed at the API server on `port`.
fn kubeconfig_for(kubeconfig: &Path, port: u16, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(kubeconfig).expect("the kubeconfig");
    let start = text.find("https://127.0.0.1:").expect("the server URL") + "https://127.0.0.1:".len();
    let end = start + text[start..].find(|c: char| !c.is_ascii_digit()).expect("a port");
    let path = dir.join("second.kubeconfig");
    std::fs::write(&path, format!("{}{port}{}", &text[..start], &text[end..])).expect("writing");
    path
}

fn apply(kubeconfig: &Path, args: &[&str], manifest: &str) -> (bool, String, String) {
    let out = kubectl(kubeconfig, args, Some(manifest));
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

fn deployment(namespace: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {namespace}\nspec:\n  \
         replicas: 3\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: \
         {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.27\n        \
         volumeMounts:\n        - {{name: data, mountPath: /data}}\n      volumes:\n      - name: data\n        \
         persistentVolumeClaim: {{claimName: data}}\n"
    )
}

fn claim(namespace: &str) -> String {
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: {namespace}\nspec:\n  \
         accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n"
    )
}

#[test]
fn only_the_api_server_given_the_client_certificate_gets_reviews() {
    let kubeconfig = cluster_common::cluster();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let name = fresh_name("vg-clientca");

    // volguard, trusting one client CA, which issues the API server's certificate.
    let clients = Ca::generate("kube-apiserver clients", 1).expect("a client CA");
    let client_ca = dir.path().join("client-ca.crt");
    std::fs::write(&client_ca, &clients.pem).expect("writing the client CA");
    let pair = clients.issue_client("kube-apiserver", 1).expect("a client pair");
    let (client_crt, client_key) = certs::write_client(dir.path(), &pair).expect("writing the pair");
    let served = serve_with(
        &kubeconfig,
        name.clone(),
        WEBHOOK_KINDS,
        &["--client-ca".as_ref(), client_ca.as_os_str()],
    );

    // The AdmissionConfiguration and webhook kubeconfig README.md shows, with this test's paths, and the
    // user named after the webhook URL's host:port (README's names the Service).
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let shown = &readme[readme
        .find("**Who may ask.**")
        .expect("README documents --client-ca")..];
    let shown = &shown[shown.find("```yaml\n").expect("a YAML block") + "```yaml\n".len()..];
    let shown = &shown[..shown.find("```").expect("the block ends")];
    let (admission_doc, webhook_doc) = shown.split_once("\n---\n").expect("two documents");
    let webhook_kubeconfig = dir.path().join("webhook-kubeconfig.yaml");
    let admission = dir.path().join("admission.yaml");
    let substitute = |doc: &str, pairs: &[(&str, String)]| {
        pairs.iter().fold(doc.to_owned(), |doc, (from, to)| {
            assert!(doc.contains(from), "README's block names {from}:\n{doc}");
            doc.replace(from, to)
        })
    };
    std::fs::write(
        &admission,
        substitute(
            admission_doc,
            &[(
                "/etc/kubernetes/webhook-kubeconfig.yaml",
                webhook_kubeconfig.display().to_string(),
            )],
        ),
    )
    .expect("writing the admission config");
    std::fs::write(
        &webhook_kubeconfig,
        substitute(
            webhook_doc,
            &[
                ("volguard.volguard.svc", format!("\"127.0.0.1:{}\"", served.port)),
                (
                    "/etc/kubernetes/pki/volguard-client.crt",
                    client_crt.display().to_string(),
                ),
                (
                    "/etc/kubernetes/pki/volguard-client.key",
                    client_key.display().to_string(),
                ),
            ],
        ),
    )
    .expect("writing the webhook kubeconfig");

    let port = free_port();
    let _second = second_apiserver(&kubeconfig, port, &admission, dir.path());
    let second = kubeconfig_for(&kubeconfig, port, dir.path());
    wait_until("the second kube-apiserver", Duration::from_secs(60), || {
        kubectl(
            &second,
            &["get", "--raw", "/readyz", "--request-timeout=5s"],
            None,
        )
        .status
        .success()
    });

    // A namespace of this test only (v1.20 does not label namespaces with their name itself), its claim,
    // and the webhook, registered for that namespace alone.
    let namespace = name.clone();
    let out = kubectl(&kubeconfig, &["create", "namespace", &namespace], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let label = format!("kubernetes.io/metadata.name={namespace}");
    let out = kubectl(&kubeconfig, &["label", "namespace", &namespace, &label], None);
    assert!(out.status.success(), "{:?}", text(&out));
    let (ok, _, err) = apply(&kubeconfig, &["apply", "-f", "-"], &claim(&namespace));
    assert!(ok, "{err}");
    use base64::Engine as _;
    let ca_bundle =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(&served.ca).expect("the dev CA"));
    let webhook = format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  \
         name: {name}\nwebhooks:\n  - name: validate.volguard.io\n    admissionReviewVersions: [v1]\n    \
         sideEffects: None\n    failurePolicy: Fail\n    timeoutSeconds: 10\n    clientConfig:\n      url: \
         https://127.0.0.1:{port}/validate\n      caBundle: {ca_bundle}\n    namespaceSelector:\n      \
         matchLabels: {{kubernetes.io/metadata.name: {namespace}}}\n    rules:\n      - apiGroups: [apps]\n        \
         apiVersions: [v1]\n        operations: [CREATE]\n        resources: [deployments]\n",
        port = served.port
    );
    let (ok, _, err) = apply(&kubeconfig, &["apply", "-f", "-"], &webhook);
    assert!(ok, "{err}");

    // Through the API server with the client certificate: judged (once the webhook and the claim have
    // reached the API server's and volguard's caches).
    let expected = format!(
        "admission webhook \"validate.volguard.io\" denied the request: volguard denied Deployment {namespace}/web:"
    );
    let dry_run = ["create", "--dry-run=server", "-f", "-"];
    let mut last = String::new();
    wait_until(
        "a review judged through the second API server",
        Duration::from_secs(60),
        || {
            // Until then a dry run is admitted (no webhook yet) or admitted with a missing-claim warning.
            let (_, _, err) = apply(&second, &dry_run, &deployment(&namespace));
            last = err;
            last.contains(&expected)
        },
    );
    assert!(last.contains("[shared-rwo-claim]"), "{last}");

    // Through the API server without one: the call fails, and failurePolicy Fail refuses the request.
    let (ok, _, err) = apply(&kubeconfig, &dry_run, &deployment(&namespace));
    assert!(!ok, "refused without volguard's decision");
    assert!(
        err.contains("failed calling webhook \"validate.volguard.io\"") && !err.contains("volguard denied"),
        "{err}"
    );
    let metrics = Command::new("curl")
        .args(["-sf", "--max-time", "5"])
        .arg(format!("http://127.0.0.1:{}/metrics", served.metrics_port))
        .output()
        .expect("curl runs");
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    assert!(
        metrics.lines().any(
            |l| l.starts_with("volguard_refused_total{reason=\"client_certificate\"}") && !l.ends_with(" 0")
        ),
        "the refusal is counted:\n{metrics}"
    );
}
