//! `volguard convert --cluster` against the real kube-apiserver, and its data plan run step by step: the
//! commands are taken from the printed plan (plan.md), run as a user would paste them, and each step's
//! checks run after it.
//!
//! This control plane has no kube-controller-manager (see ../shared/e2e/cluster.sh): no PV controller
//! binds claims or moves volumes between phases, no pvc-protection controller lifts the finalizer of a
//! deleted claim, no StatefulSet controller makes pods. The test plays those controllers where the plan
//! waits on them, writing what they would write (a phase through the status subresource, the uid in the
//! PV's claimRef, the finalizer lifted once no pod uses the claim), and then runs the plan's checks
//! marked "once the controllers have acted" too, except those that need pods or a Job's pod to run.

use std::path::Path;
use std::process::Command;

use crate::cluster_common;
use cluster_common::{fresh_name, kubectl, text};

/// A step of plan.md: its title, the shell to run, and its checks (command, expected output, set by a
/// controller).
#[derive(Debug, Default)]
struct Step {
    title: String,
    run: String,
    checks: Vec<(String, String, bool)>,
    rollback: String,
}

/// Reads the steps out of the Markdown the way a reader would: the block after `Run:`, each block after
/// `Check (expect …):`.
fn parse_plan(plan: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut lines = plan.lines();
    // What the next fenced block is: the step's run, a check with its expectation, or the rollback.
    let mut next: Option<(String, bool)> = None;
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix("## Step ") {
            let title = title.split_once(". ").expect("`## Step N. title`").1;
            steps.push(Step {
                title: title.to_owned(),
                ..Step::default()
            });
        } else if line == "Run:" {
            next = Some(("run".into(), false));
        } else if let Some(rest) = line.strip_prefix("Check") {
            let by_controller = rest.starts_with(", once the controllers have acted");
            let expect = if rest.contains("(expect nothing printed)") {
                String::new()
            } else {
                let start = rest.find("(expect `").expect("an expectation") + "(expect `".len();
                let end = start + rest[start..].find("`)").expect("its end");
                rest[start..end].to_owned()
            };
            next = Some((expect, by_controller));
        } else if line == "Roll back:" {
            next = Some(("rollback".into(), false));
        } else if line == "```sh" {
            let mut block = String::new();
            for l in lines.by_ref() {
                if l == "```" {
                    break;
                }
                block.push_str(l);
                block.push('\n');
            }
            let step = steps.last_mut().expect("blocks come inside steps");
            match next.take() {
                Some((what, _)) if what == "run" && step.run.is_empty() => step.run = block,
                Some((what, _)) if what == "rollback" && step.rollback.is_empty() => step.rollback = block,
                Some((expect, by_controller)) => {
                    step.checks.push((block.trim().to_owned(), expect, by_controller))
                }
                None => {}
            }
        }
    }
    steps
}

/// Runs shell text as pasted into a terminal in `dir`, with the test cluster's kubeconfig.
fn shell(kubeconfig: &Path, dir: &Path, script: &str) -> (bool, String, String) {
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("bash runs");
    let (stdout, stderr) = text(&out);
    (out.status.success(), stdout, stderr)
}

fn ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = kubectl(kubeconfig, args, None);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "kubectl {args:?}: {stdout}{stderr}");
    stdout
}

fn jsonpath(kubeconfig: &Path, what: &[&str], path: &str) -> String {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    let path = format!("jsonpath={path}");
    args.extend(["-o", &path]);
    ok(kubeconfig, &args)
}

/// What the PV controller writes: a phase, through the status subresource.
fn set_phase(kubeconfig: &Path, what: &[&str], phase: &str) {
    let patch = format!("{{\"status\":{{\"phase\":\"{phase}\"}}}}");
    let mut args = vec!["patch"];
    args.extend_from_slice(what);
    args.extend(["--subresource=status", "--type", "merge", "-p", &patch]);
    ok(kubeconfig, &args);
}

fn objects(ns: &str, pv: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: PersistentVolume
metadata:
  name: {pv}
spec:
  accessModes: [ReadWriteOnce]
  capacity: {{storage: 1Gi}}
  persistentVolumeReclaimPolicy: Delete
  storageClassName: manual
  hostPath: {{path: /srv/{pv}}}
  claimRef: {{apiVersion: v1, kind: PersistentVolumeClaim, namespace: {ns}, name: notes-data}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: notes-data, namespace: {ns}}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: manual
  resources: {{requests: {{storage: 1Gi}}}}
  volumeName: {pv}
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: notes, namespace: {ns}, labels: {{app: notes}}}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: notes}}}}
  template:
    metadata: {{labels: {{app: notes}}}}
    spec:
      containers:
      - name: notes
        image: registry.example.com/notes:1.4
        ports: [{{name: http, containerPort: 8080}}]
        volumeMounts: [{{name: data, mountPath: /var/lib/notes}}]
      volumes:
      - {{name: data, persistentVolumeClaim: {{claimName: notes-data}}}}
---
apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {{name: notes, namespace: {ns}}}
spec:
  scaleTargetRef: {{apiVersion: apps/v1, kind: Deployment, name: notes}}
  minReplicas: 2
  maxReplicas: 4
  metrics:
  - type: Resource
    resource: {{name: cpu, target: {{type: Utilization, averageUtilization: 75}}}}
"#
    )
}

/// A namespace with the PersistentVolume, its bound claim (bound as the PV controller would), the
/// Deployment and its HPA; and a scratch directory.
fn bound_claim_and_deployment() -> (std::path::PathBuf, String, String, tempfile::TempDir) {
    let kubeconfig = cluster_common::cluster();
    let ns = fresh_name("convert");
    let pv = format!("{ns}-data");
    ok(&kubeconfig, &["create", "namespace", &ns]);
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&objects(&ns, &pv)));
    assert!(out.status.success(), "{:?}", text(&out));

    // The PV controller would bind them.
    bind(&kubeconfig, &ns, "notes-data", &pv);
    let dir = tempfile::tempdir().unwrap();
    (kubeconfig, ns, pv, dir)
}

/// `volguard convert --cluster` for the Deployment, writing into `dir`.
fn convert(kubeconfig: &Path, ns: &str, dir: &Path) -> Vec<Step> {
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args([
            "convert",
            "--cluster",
            "--namespace",
            ns,
            "--name",
            "notes",
            "--kubeconfig",
        ])
        .arg(kubeconfig)
        .arg("--output-dir")
        .arg(dir)
        .output()
        .expect("volguard convert runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    parse_plan(&std::fs::read_to_string(dir.join("plan.md")).unwrap())
}

/// Runs one step's commands as pasted, then plays the controllers this cluster lacks, then runs the
/// step's checks; returns how many checks ran.
fn run_step(kubeconfig: &Path, ns: &str, pv: &str, dir: &Path, step: &Step) -> usize {
    if step.title == "Release the volume: delete the old claim" {
        // The pvc-protection controller lifts the finalizer once no pod uses the claim (the step before
        // made sure none does).
        lift_finalizer(kubeconfig, ns, "notes-data");
    }
    let (ran, o, e) = shell(kubeconfig, dir, &step.run);
    assert!(ran, "step {:?} failed:\n{}\n{o}{e}", step.title, step.run);
    // What the PV controller would do next.
    match step.title.as_str() {
        "Release the volume: delete the old claim" => set_phase(kubeconfig, &["pv", pv], "Released"),
        "Reserve the volume for the claim ordinal 0 will mount" => {
            set_phase(kubeconfig, &["pv", pv], "Available")
        }
        "Create the claims ordinal 0 will mount" => bind(kubeconfig, ns, "data-notes-0", pv),
        _ => {}
    }
    let mut checked = 0;
    for (command, expect, by_controller) in &step.checks {
        // Pods never run here: a check on a pod or on ready replicas cannot hold.
        if *by_controller && (command.contains(" get pod ") || command.contains("readyReplicas")) {
            continue;
        }
        let (ran, o, e) = shell(kubeconfig, dir, command);
        assert!(ran, "check of {:?} failed: {command}\n{e}", step.title);
        assert_eq!(o.trim(), expect, "check of {:?}: {command}", step.title);
        checked += 1;
    }
    checked
}

fn lift_finalizer(kubeconfig: &Path, ns: &str, claim: &str) {
    ok(
        kubeconfig,
        &[
            "-n",
            ns,
            "patch",
            "pvc",
            claim,
            "--type",
            "merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );
}

/// What the PV controller writes when it binds a claim to a volume: the claim's uid in the volume's
/// claimRef, both phases Bound.
fn bind(kubeconfig: &Path, ns: &str, claim: &str, pv: &str) {
    let uid = jsonpath(kubeconfig, &["-n", ns, "pvc", claim], "{.metadata.uid}");
    let patch = format!(
        "{{\"spec\":{{\"claimRef\":{{\"apiVersion\":\"v1\",\"kind\":\"PersistentVolumeClaim\",\
         \"namespace\":\"{ns}\",\"name\":\"{claim}\",\"uid\":\"{uid}\"}}}}}}"
    );
    ok(kubeconfig, &["patch", "pv", pv, "--type", "merge", "-p", &patch]);
    set_phase(kubeconfig, &["pv", pv], "Bound");
    set_phase(kubeconfig, &["-n", ns, "pvc", claim], "Bound");
}

#[test]
fn convert_plan_moves_the_claims_volume_to_ordinal_zero_step_by_step() {
    let (kubeconfig, ns, pv, dir) = bound_claim_and_deployment();
    // This API server (1.20) has no ReadWriteOncePod: asked for, it is refused before anything is written.
    let refused = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args([
            "convert",
            "--cluster",
            "-n",
            &ns,
            "--name",
            "notes",
            "--access-mode",
            "ReadWriteOncePod",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .output()
        .expect("volguard convert runs");
    let (o, e) = text(&refused);
    assert_eq!((refused.status.code(), o.as_str()), (Some(2), ""), "{e}");
    assert_eq!(
        e,
        "error: --access-mode ReadWriteOncePod: this API server (1.20) predates it (on by default from 1.27); use \
         ReadWriteOnce\n"
    );

    let steps = convert(&kubeconfig, &ns, dir.path());

    // The API server accepts the objects as they are written (before any step ran).
    let (accepted, o, e) = shell(
        &kubeconfig,
        dir.path(),
        "kubectl apply --dry-run=server -f statefulset.yaml",
    );
    assert!(accepted, "{o}{e}");
    // The HPA exists already (the test made it for the Deployment): the dry run would retarget it.
    assert_eq!(
        o,
        "statefulset.apps/notes created (server dry run)\nservice/notes-headless created (server dry run)\n\
         horizontalpodautoscaler.autoscaling/notes configured (server dry run)\n\
         persistentvolumeclaim/data-notes-0 created (server dry run)\n"
    );

    let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Save the objects as they are",
            "Keep the volume when its claim is deleted",
            "Stop the Deployment's pods",
            "Release the volume: delete the old claim",
            "Reserve the volume for the claim ordinal 0 will mount",
            "Create the claims ordinal 0 will mount",
            "Create the StatefulSet",
            "Delete the Deployment",
        ]
    );
    let checked: usize = steps
        .iter()
        .map(|step| run_step(&kubeconfig, &ns, &pv, dir.path(), step))
        .sum();
    assert_eq!(checked, 13, "every check that can hold without nodes ran");

    // The end: ordinal 0's claim on the original volume, the volume kept and bound to it.
    let new_uid = jsonpath(
        &kubeconfig,
        &["-n", &ns, "pvc", "data-notes-0"],
        "{.metadata.uid}",
    );
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["-n", &ns, "pvc", "data-notes-0"],
            "{.spec.volumeName}"
        ),
        pv
    );
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["pv", &pv],
            "{.spec.claimRef.namespace}/{.spec.claimRef.name}/{.spec.claimRef.uid}/{.spec.persistentVolumeReclaimPolicy}"
        ),
        format!("{ns}/data-notes-0/{new_uid}/Retain")
    );
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["-n", &ns, "statefulset", "notes"],
            "{.spec.serviceName} {.spec.replicas} {.spec.template.spec.volumes}"
        ),
        "notes-headless 2 "
    );
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["-n", &ns, "hpa", "notes"],
            "{.spec.scaleTargetRef.kind}/{.spec.scaleTargetRef.name}"
        ),
        "StatefulSet/notes"
    );
    assert_eq!(
        ok(&kubeconfig, &["-n", &ns, "get", "deployment,pvc", "-o", "name"]),
        "persistentvolumeclaim/data-notes-0\n"
    );
}

/// Every step up to the ordinal-0 claim, then their rollbacks, last first: the old claim is back on its
/// volume, the volume's policy and the Deployment's replicas as they were.
#[test]
fn convert_plan_rolls_back_step_by_step() {
    let (kubeconfig, ns, pv, dir) = bound_claim_and_deployment();
    let steps = convert(&kubeconfig, &ns, dir.path());
    let create = steps
        .iter()
        .position(|s| s.title == "Create the claims ordinal 0 will mount")
        .unwrap();
    let done = &steps[..=create];
    for step in done {
        run_step(&kubeconfig, &ns, &pv, dir.path(), step);
    }
    assert_eq!(
        jsonpath(&kubeconfig, &["pv", &pv], "{.spec.claimRef.name}"),
        "data-notes-0"
    );
    for step in done.iter().rev() {
        if step.title == "Create the claims ordinal 0 will mount" {
            lift_finalizer(&kubeconfig, &ns, "data-notes-0");
        }
        let (ran, o, e) = shell(&kubeconfig, dir.path(), &step.rollback);
        assert!(
            ran,
            "rollback of {:?} failed:\n{}\n{o}{e}",
            step.title, step.rollback
        );
        if step.title == "Release the volume: delete the old claim" {
            bind(&kubeconfig, &ns, "notes-data", &pv);
        }
    }
    let claim_uid = jsonpath(&kubeconfig, &["-n", &ns, "pvc", "notes-data"], "{.metadata.uid}");
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["-n", &ns, "pvc", "notes-data"],
            "{.spec.volumeName} {.spec.storageClassName}"
        ),
        format!("{pv} manual")
    );
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["pv", &pv],
            "{.spec.claimRef.name}/{.spec.claimRef.uid}/{.spec.persistentVolumeReclaimPolicy}"
        ),
        format!("notes-data/{claim_uid}/Delete")
    );
    assert_eq!(
        jsonpath(
            &kubeconfig,
            &["-n", &ns, "deployment", "notes"],
            "{.spec.replicas}"
        ),
        "2"
    );
    assert_eq!(
        ok(&kubeconfig, &["-n", &ns, "get", "pvc", "-o", "name"]),
        "persistentvolumeclaim/notes-data\n"
    );

    // A Deployment whose claim the cluster does not hold: a usage error, nothing written.
    let orphan = objects(&ns, &pv)
        .split("---\n")
        .find(|d| d.contains("kind: Deployment"))
        .unwrap()
        .replace("name: notes, namespace", "name: orphan, namespace")
        .replace("claimName: notes-data", "claimName: gone");
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&orphan));
    assert!(out.status.success(), "{:?}", text(&out));
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args([
            "convert",
            "--cluster",
            "-n",
            &ns,
            "--name",
            "orphan",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .output()
        .expect("volguard convert runs");
    let (o, e) = text(&out);
    assert_eq!((out.status.code(), o.as_str()), (Some(2), ""));
    assert_eq!(
        e,
        "error: Deployment orphan mounts claim gone (volume data), which is not in the input: add the claim's \
         manifest to the files (kubectl get pvc gone -o yaml); with --cluster, create the claim or correct \
         claimName\n"
    );
}

#[test]
fn plans_are_parsed_as_written() {
    let plan = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/convert/shared-rwo-claim/plan.md"),
    )
    .unwrap();
    let steps = parse_plan(&plan);
    assert_eq!(steps.len(), 8);
    assert_eq!(
        steps[2].run,
        "kubectl -n docs scale deployment wiki --replicas=0\n"
    );
    assert_eq!(
        steps[2].checks,
        [
            (
                "kubectl -n docs get deployment wiki -o jsonpath='{.spec.replicas}'".to_owned(),
                "0".to_owned(),
                false
            ),
            (
                "kubectl -n docs get pods -l app.kubernetes.io/name=wiki -o name".to_owned(),
                String::new(),
                false
            ),
        ]
    );
    assert!(
        steps[5]
            .run
            .starts_with("kubectl -n docs apply -f - <<'EOF'\napiVersion: v1\n")
    );
    assert!(steps[5].run.ends_with("EOF\n"));
    assert_eq!(
        steps[4].rollback,
        "kubectl patch pv pvc-3f1c2a9e-8d4b-4c1e-9a7f-0b5e6d2c1a00 --type merge -p '{\"spec\":{\"claimRef\":null}}'\n"
    );
}

#[test]
fn a_namespace_with_more_services_than_convert_reads_is_said_to_be_cut() {
    // 501 headless Services (no cluster IP to allocate) beside the Deployment: convert reads 500 and says
    // that one it should reuse may be missed.
    let (kubeconfig, ns, _pv, dir) = bound_claim_and_deployment();
    let services: String = (0..=500)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Service\nmetadata: {{name: s-{i}, namespace: {ns}}}\nspec: {{clusterIP: None, \
                 selector: {{app: none}}, ports: [{{port: 80}}]}}\n---\n"
            )
        })
        .collect();
    let out = kubectl(&kubeconfig, &["apply", "-f", "-"], Some(&services));
    assert!(out.status.success(), "{:?}", text(&out));
    let out = crate::env::hermetic(&mut Command::new(env!("CARGO_BIN_EXE_volguard")))
        .args([
            "convert",
            "--cluster",
            "--namespace",
            &ns,
            "--name",
            "notes",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .arg("--output-dir")
        .arg(dir.path())
        .output()
        .expect("volguard convert runs");
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "more than 500 Services in {ns}: only the first 500 were read, so one the conversion should reuse \
             or retarget may be missed"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("HorizontalPodAutoscalers in"), "{stderr}");
    let _ = kubectl(&kubeconfig, &["delete", "namespace", &ns, "--wait=false"], None);
}
