//! The steps of the plan, in order: save, keep (Retain), stop, release, reserve, create the claims, copy,
//! create the StatefulSet, delete the Deployment; each with its checks and rollback.

use super::{Check, MANIFEST_FILE, Plan, Step, Subject, later_ordinals, selector_arg};
use crate::domain::convert::volumes::{ClaimMove, Move};

/// The plan for `s`.
pub(in crate::domain::convert) fn build(s: &Subject<'_>) -> Plan {
    let ns = s.namespace;
    let k = format!("kubectl -n {ns}");
    let rebinds: Vec<(&ClaimMove, &str, Option<&str>, Option<&str>)> = s
        .moves
        .iter()
        .filter_map(|m| match &m.how {
            Move::Rebind {
                volume,
                reclaim_policy,
                add_mode,
                ..
            } => Some((m, volume.as_str(), reclaim_policy.as_deref(), add_mode.as_deref())),
            Move::Copy { .. } => None,
        })
        .collect();
    let copies: Vec<(&ClaimMove, &str)> = s
        .moves
        .iter()
        .filter_map(|m| match &m.how {
            Move::Copy { why } => Some((m, why.as_str())),
            Move::Rebind { .. } => None,
        })
        .collect();
    let mut plan = Plan {
        title: format!(
            "Data plan: Deployment {} to StatefulSet {} (namespace {ns})",
            s.deployment, s.statefulset
        ),
        ..Plan::default()
    };
    // The step that stops the Deployment's pods: after "Save", and after "Keep" when a volume is rebound.
    let stop_step = if rebinds.is_empty() { 2 } else { 3 };
    plan.notes.push(format!(
        "Run the steps in order, each only once the previous one's checks print what they expect. The pods \
         are down from step {stop_step} until the StatefulSet's ordinal 0 is Ready. To go back, run the `Roll \
         back` blocks of the steps done, last first. volguard applies nothing."
    ));
    plan.notes.push(format!(
        "`{MANIFEST_FILE}` is what `volguard convert` printed on standard output (or wrote with --output-dir)."
    ));
    for (m, _, _, _) in &rebinds {
        if let Move::Rebind { volume, .. } = &m.how {
            plan.notes.push(format!(
                "claim {} (volume {}): its PersistentVolume {volume} is rebound to claim {}, which ordinal 0 \
                 mounts; no data is copied.",
                m.claim, m.volume, m.ordinal_claim
            ));
        }
    }
    for (m, why) in &copies {
        plan.notes.push(format!(
            "claim {} (volume {}): {why}. A Job copies its data into claim {} instead (step \"Copy the data\").",
            m.claim, m.volume, m.ordinal_claim
        ));
    }
    if s.replicas > 1 {
        plan.notes.push(format!(
            "The Deployment runs {} replicas on one claim; the StatefulSet gives each its own: ordinal 0 gets \
             today's data, {}.",
            s.replicas,
            later_ordinals(s.replicas)
        ));
    }
    if s.selector.is_empty() {
        plan.notes.push(format!(
            "The Deployment's selector has no matchLabels: check that no pod of it runs before step {} with \
             `kubectl get pods`.",
            stop_step + 1
        ));
    }

    let mut backup = vec![format!(
        "{k} get deployment {d} -o yaml > backup-deployment-{d}.yaml",
        d = s.deployment
    )];
    for m in s.moves {
        backup.push(format!(
            "{k} get pvc {c} -o yaml > backup-pvc-{c}.yaml",
            c = m.claim
        ));
    }
    for (_, pv, _, _) in &rebinds {
        backup.push(format!("kubectl get pv {pv} -o yaml > backup-pv-{pv}.yaml"));
    }
    plan.steps.push(Step {
        title: "Save the objects as they are".to_owned(),
        why: "A copy of the Deployment, its claims and their volumes, to compare with or restore from."
            .to_owned(),
        run: backup,
        checks: vec![Check::now(
            format!("test -s backup-deployment-{}.yaml && echo saved", s.deployment),
            "saved",
        )],
        rollback: vec!["# nothing changed".to_owned()],
    });

    if !rebinds.is_empty() {
        let mut step = Step {
            title: "Keep the volume when its claim is deleted".to_owned(),
            why: "A dynamically provisioned volume is usually `Delete`: deleting its claim (two steps on) would delete \
                  the data. `Retain` keeps it."
                .to_owned(),
            ..Step::default()
        };
        for (_, pv, policy, _) in &rebinds {
            step.run.push(format!(
                "kubectl patch pv {pv} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"Retain\"}}}}'"
            ));
            step.checks.push(Check::now(
                format!("kubectl get pv {pv} -o jsonpath='{{.spec.persistentVolumeReclaimPolicy}}'"),
                "Retain",
            ));
            step.rollback.push(match policy {
                Some(p) if *p != "Retain" => format!(
                    "kubectl patch pv {pv} -p '{{\"spec\":{{\"persistentVolumeReclaimPolicy\":\"{p}\"}}}}'"
                ),
                Some(_) => "# it was Retain already: nothing to undo".to_owned(),
                None => format!("# set back the policy recorded in backup-pv-{pv}.yaml"),
            });
        }
        plan.steps.push(step);
    }

    let pods = selector_arg(s.selector);
    let mut stop = Step {
        title: "Stop the Deployment's pods".to_owned(),
        why: format!(
            "No pod may use the claim while it is released or copied. Scaling to 0 keeps the Deployment to roll \
             back to; it is deleted in the last step.{}",
            if s.autoscaled {
                " Its HorizontalPodAutoscaler leaves a Deployment at 0 replicas alone."
            } else {
                ""
            }
        ),
        run: vec![format!("{k} scale deployment {} --replicas=0", s.deployment)],
        checks: vec![Check::now(
            format!(
                "{k} get deployment {} -o jsonpath='{{.spec.replicas}}'",
                s.deployment
            ),
            "0",
        )],
        rollback: vec![format!(
            "{k} scale deployment {} --replicas={}",
            s.deployment, s.replicas
        )],
    };
    if let Some(pods) = &pods {
        stop.checks
            .push(Check::now(format!("{k} get pods -l {pods} -o name"), ""));
    }
    plan.steps.push(stop);

    if !rebinds.is_empty() {
        let mut release = Step {
            title: "Release the volume: delete the old claim".to_owned(),
            why: "The volume stays (Retain), Released, still reserved for the deleted claim's uid."
                .to_owned(),
            ..Step::default()
        };
        let mut reserve = Step {
            title: "Reserve the volume for the claim ordinal 0 will mount".to_owned(),
            why: "Replacing claimRef (name and namespace, no uid) makes the volume Available to that one claim \
                  only, so no other pending claim can take it before the next step creates it."
                .to_owned(),
            ..Step::default()
        };
        for (m, pv, _, add_mode) in &rebinds {
            release.run.push(format!("{k} delete pvc {}", m.claim));
            release.checks.push(Check::now(
                format!("{k} get pvc {} -o name --ignore-not-found", m.claim),
                "",
            ));
            release.checks.push(Check::later(
                format!("kubectl get pv {pv} -o jsonpath='{{.status.phase}}'"),
                "Released",
            ));
            let restore = restore_claim(m, ns, pv);
            release.rollback.push(format!(
                "kubectl patch pv {pv} --type merge -p '{{\"spec\":{{\"claimRef\":null}}}}'"
            ));
            release.rollback.push(restore);
            let modes = add_mode
                .map(|mode| format!(",\"accessModes\":[\"{mode}\"]"))
                .unwrap_or_default();
            if let Some(mode) = add_mode {
                reserve.why.push_str(&format!(
                    " Volume {pv} did not list {mode}, which the new claim asks for: it is set, or the claim \
                     would never bind."
                ));
            }
            reserve.run.push(format!(
                "kubectl patch pv {pv} --type merge -p '{{\"spec\":{{\"claimRef\":{{\"apiVersion\":\"v1\",\
                 \"kind\":\"PersistentVolumeClaim\",\"namespace\":\"{ns}\",\"name\":\"{}\",\"uid\":null,\
                 \"resourceVersion\":null}}{modes}}}}}'",
                m.ordinal_claim
            ));
            reserve.checks.push(Check::now(
                format!("kubectl get pv {pv} -o jsonpath='{{.spec.claimRef.name}}/{{.spec.claimRef.uid}}'"),
                format!("{}/", m.ordinal_claim),
            ));
            reserve.checks.push(Check::later(
                format!("kubectl get pv {pv} -o jsonpath='{{.status.phase}}'"),
                "Available",
            ));
            reserve.rollback.push(format!(
                "kubectl patch pv {pv} --type merge -p '{{\"spec\":{{\"claimRef\":null}}}}'"
            ));
        }
        plan.steps.push(release);
        plan.steps.push(reserve);
    }

    let mut create = Step {
        title: "Create the claims ordinal 0 will mount".to_owned(),
        why: "A StatefulSet adopts a claim that already has the name it would give its own \
              (<template>-<statefulset>-<ordinal>), so ordinal 0 mounts this one."
            .to_owned(),
        ..Step::default()
    };
    for (m, claim) in s.moves.iter().zip(s.ordinal_claims) {
        create.run.push(format!(
            "{k} apply -f - <<'EOF'\n{}EOF",
            crate::domain::convert::to_yaml(claim)
        ));
        create
            .rollback
            .push(format!("{k} delete pvc {}", m.ordinal_claim));
        match &m.how {
            Move::Rebind { volume, .. } => {
                create.checks.push(Check::now(
                    format!(
                        "{k} get pvc {} -o jsonpath='{{.spec.volumeName}}'",
                        m.ordinal_claim
                    ),
                    volume.clone(),
                ));
                create.checks.push(Check::later(
                    format!("{k} get pvc {} -o jsonpath='{{.status.phase}}'", m.ordinal_claim),
                    "Bound",
                ));
                create.checks.push(Check::later(
                    format!(
                        "kubectl get pv {volume} -o jsonpath='{{.spec.claimRef.name}}/{{.status.phase}}'"
                    ),
                    format!("{}/Bound", m.ordinal_claim),
                ));
            }
            Move::Copy { .. } => create.checks.push(Check::now(
                format!("{k} get pvc {} -o name", m.ordinal_claim),
                format!("persistentvolumeclaim/{}", m.ordinal_claim),
            )),
        }
    }
    plan.steps.push(create);

    if !copies.is_empty() {
        let mut copy = Step {
            title: "Copy the data".to_owned(),
            why: "A Job mounts the old claim read-only and the new one, and copies with `cp -a` (owners, modes, \
                  times, links kept). Caveats: both claims must attach to the Job's node (ReadWriteOnce \
                  volumes in one zone); the copy takes as long as the data; SELinux labels and ACLs are not \
                  copied; the Job runs as root, which a namespace enforcing the restricted Pod Security \
                  Standard refuses; the old claim is kept until you have checked the data."
                .to_owned(),
            ..Step::default()
        };
        for (m, _) in &copies {
            let job = format!("copy-{}-to-{}", m.volume, s.statefulset);
            copy.run
                .push(format!("{k} apply -f - <<'EOF'\n{}EOF", copy_job(&job, ns, m)));
            copy.checks.push(Check::later(
                format!("{k} get job {job} -o jsonpath='{{.status.succeeded}}'"),
                "1",
            ));
            copy.rollback.push(format!("{k} delete job {job}"));
        }
        plan.steps.push(copy);
    }

    let mut apply = Step {
        title: "Create the StatefulSet".to_owned(),
        why: format!(
            "{MANIFEST_FILE} holds the StatefulSet, its headless Service{} and the claims of the previous step \
             (unchanged by this apply).",
            if s.autoscaled {
                ", the HorizontalPodAutoscaler now pointing at it"
            } else {
                ""
            }
        ),
        run: vec![format!("kubectl apply -f {MANIFEST_FILE}")],
        checks: vec![Check::now(
            format!(
                "{k} get statefulset {} -o jsonpath='{{.spec.volumeClaimTemplates[*].metadata.name}}'",
                s.statefulset
            ),
            s.moves
                .iter()
                .map(|m| m.volume.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        )],
        rollback: vec![
            format!("{k} delete statefulset {}", s.statefulset),
            "# then undo the earlier steps, last first".to_owned(),
        ],
    };
    for m in s.moves {
        apply.checks.push(Check::later(
            format!(
                "{k} get pod {}-0 -o jsonpath='{{.spec.volumes[?(@.name==\"{}\")].persistentVolumeClaim.claimName}}'",
                s.statefulset, m.volume
            ),
            m.ordinal_claim.clone(),
        ));
    }
    apply.checks.push(Check::later(
        format!(
            "{k} get statefulset {} -o jsonpath='{{.status.readyReplicas}}'",
            s.statefulset
        ),
        s.replicas.to_string(),
    ));
    plan.steps.push(apply);

    let mut retire = Step {
        title: "Delete the Deployment".to_owned(),
        why: "Once ordinal 0 serves today's data.".to_owned(),
        run: vec![format!("{k} delete deployment {}", s.deployment)],
        checks: vec![Check::now(
            format!("{k} get deployment {} -o name --ignore-not-found", s.deployment),
            "",
        )],
        rollback: vec![format!(
            "# recreate it from backup-deployment-{}.yaml (without metadata.uid and metadata.resourceVersion)",
            s.deployment
        )],
    };
    for (m, _) in &copies {
        retire.why.push_str(&format!(
            " Claim {} still holds the old copy: delete it (`{k} delete pvc {}`) once the data is checked.",
            m.claim, m.claim
        ));
    }
    plan.steps.push(retire);
    plan
}

/// The old claim again, bound to its volume: the way back after it was deleted.
fn restore_claim(m: &ClaimMove, namespace: &str, volume: &str) -> String {
    let mut claim = m.original.clone();
    claim.metadata.namespace = Some(namespace.to_owned());
    if let Some(spec) = claim.spec.as_mut() {
        spec.volume_name = Some(volume.to_owned());
    }
    format!(
        "kubectl -n {namespace} apply -f - <<'EOF'\n{}EOF",
        crate::domain::convert::to_yaml(&claim)
    )
}

/// The Job copying a claim's data into the ordinal-0 claim.
fn copy_job(name: &str, namespace: &str, m: &ClaimMove) -> String {
    let job = serde_json::json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{
                    "name": "copy",
                    "image": "docker.io/library/busybox:1.36",
                    "command": ["sh", "-c", "cp -a /from/. /to/ && sync && du -s /from /to"],
                    "volumeMounts": [
                        {"name": "from", "mountPath": "/from", "readOnly": true},
                        {"name": "to", "mountPath": "/to"}
                    ]
                }],
                "volumes": [
                    {"name": "from", "persistentVolumeClaim": {"claimName": m.claim, "readOnly": true}},
                    {"name": "to", "persistentVolumeClaim": {"claimName": m.ordinal_claim}}
                ]
            }}
        }
    });
    crate::domain::convert::to_yaml(&job)
}
