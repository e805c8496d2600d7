use super::*;
use crate::domain::storage::Classes;

fn input(yaml: &str) -> Input {
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(yaml).unwrap();
    let mut input = Input::default();
    for d in docs {
        match d["kind"].as_str().unwrap() {
            "Deployment" => input.deployment = serde_json::from_value(d).unwrap(),
            "PersistentVolumeClaim" => input.claims.push(serde_json::from_value(d).unwrap()),
            "PersistentVolume" => input.volumes.push(serde_json::from_value(d).unwrap()),
            "Service" => input.services.push(serde_json::from_value(d).unwrap()),
            _ => input.autoscalers.push(d),
        }
    }
    input
}

const DEPLOYMENT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: nginx
        ports: [{containerPort: 80}]
        volumeMounts: [{name: data, mountPath: /d}, {name: conf, mountPath: /c, readOnly: true}]
      volumes:
      - {name: data, persistentVolumeClaim: {claimName: web-data}}
      - {name: conf, persistentVolumeClaim: {claimName: web-conf}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data, namespace: shop}
spec: {accessModes: [ReadWriteOnce], storageClassName: fast, resources: {requests: {storage: 5Gi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-conf, namespace: shop}
spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
"#;

/// No StorageClass known: every class question is unanswered, and no mode is refused on a guess.
static UNKNOWN_CLASSES: std::sync::LazyLock<Classes> = std::sync::LazyLock::new(Classes::default);

fn options(mode: TemplateMode) -> Options<'static> {
    Options {
        mode,
        pod_management: PodManagement::OrderedReady,
        classes: &UNKNOWN_CLASSES,
        retention_policy: true,
    }
}

#[test]
fn a_claim_mounted_read_only_everywhere_stays_a_volume_and_the_written_one_becomes_a_template() {
    let c = convert(&input(DEPLOYMENT), &options(TemplateMode::ReadWriteOnce)).unwrap();
    let spec = c.statefulset.spec.unwrap();
    let templates: Vec<_> = spec
        .volume_claim_templates
        .unwrap()
        .into_iter()
        .map(|t| (t.metadata.name.unwrap(), t.spec.unwrap().access_modes.unwrap()))
        .collect();
    assert_eq!(templates, [("data".to_owned(), vec!["ReadWriteOnce".to_owned()])]);
    let volumes: Vec<_> = spec
        .template
        .spec
        .unwrap()
        .volumes
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(volumes, ["conf"]);
    assert_eq!(c.kept[0].reason, KeptReason::ReadOnlyClaim("web-conf".into()));
    assert_eq!(c.ordinal_claims[0].metadata.name.as_deref(), Some("data-web-0"));
    assert!(matches!(&c.moves[0].how, Move::Copy { .. }));
}

#[test]
fn a_claim_with_a_volume_name_is_rebound_and_ordinal_zero_names_it() {
    let yaml = DEPLOYMENT.replace(
        "storageClassName: fast,",
        "storageClassName: fast, volumeName: pv-1,",
    );
    let c = convert(&input(&yaml), &options(TemplateMode::ReadWriteOncePod)).unwrap();
    let claim = c.ordinal_claims[0].spec.as_ref().unwrap();
    assert_eq!(claim.volume_name.as_deref(), Some("pv-1"));
    assert_eq!(
        claim.access_modes.as_deref(),
        Some(&["ReadWriteOncePod".to_owned()][..])
    );
    let md = c.plan.to_markdown();
    assert!(
        md.contains("kubectl patch pv pv-1 -p '{\"spec\":{\"persistentVolumeReclaimPolicy\":\"Retain\"}}'"),
        "{md}"
    );
}

#[test]
fn a_missing_claim_is_named() {
    let yaml = DEPLOYMENT.split("---").next().unwrap();
    let err = convert(&input(yaml), &options(TemplateMode::ReadWriteOnce)).unwrap_err();
    assert_eq!(
        err,
        ConvertError::MissingClaim {
            deployment: "web".into(),
            volume: "data".into(),
            claim: "web-data".into()
        }
    );
}

#[test]
fn a_mode_the_class_cannot_give_is_refused() {
    // Class "fast" is local-path, which gives ReadWriteOnce only.
    let fast: k8s_openapi::api::storage::v1::StorageClass = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "fast"}, "provisioner": "rancher.io/local-path"
    }))
    .unwrap();
    let classes = Classes::new(&[fast], crate::domain::storage::ProvisionerTable::default());
    let err = convert(
        &input(DEPLOYMENT),
        &Options {
            mode: TemplateMode::ReadWriteOncePod,
            pod_management: PodManagement::Parallel,
            classes: &classes,
            retention_policy: true,
        },
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "claim web-data's storage class fast cannot give ReadWriteOncePod: choose another --access-mode, or move \
         the data to a class that can"
    );
}

fn titles(plan: &Plan) -> Vec<&str> {
    plan.steps.iter().map(|s| s.title.as_str()).collect()
}

#[test]
fn an_unknown_volume_is_copied_by_a_job_after_the_pods_stop_and_before_the_statefulset() {
    let c = convert(&input(DEPLOYMENT), &options(TemplateMode::ReadWriteOnce)).unwrap();
    assert_eq!(
        titles(&c.plan),
        [
            "Save the objects as they are",
            "Stop the Deployment's pods",
            "Create the claims ordinal 0 will mount",
            "Copy the data",
            "Create the StatefulSet",
            "Delete the Deployment",
        ]
    );
    let copy = &c.plan.steps[3];
    assert!(
        copy.run[0].contains("name: copy-data-to-web\n"),
        "{}",
        copy.run[0]
    );
    assert!(
        copy.run[0].contains("claimName: web-data\n          readOnly: true\n"),
        "{}",
        copy.run[0]
    );
    assert!(copy.run[0].contains("claimName: data-web-0\n"), "{}", copy.run[0]);
    // The old claim is never deleted by the plan when its data was copied: the last step says when to.
    assert!(
        c.plan
            .steps
            .iter()
            .all(|s| !s.run.iter().any(|r| r.contains("delete pvc web-data")))
    );
    assert!(
        c.plan.steps[5]
            .why
            .contains("Claim web-data still holds the old copy")
    );
}

#[test]
fn a_known_volume_lacking_the_template_mode_gets_it_in_the_reservation() {
    let yaml = format!(
        "{}\n---\n{}",
        DEPLOYMENT.replace(
            "storageClassName: fast,",
            "storageClassName: fast, volumeName: pv-1,"
        ),
        "apiVersion: v1\nkind: PersistentVolume\nmetadata: {name: pv-1}\nspec: {accessModes: [ReadWriteOnce], \
         persistentVolumeReclaimPolicy: Delete, capacity: {storage: 5Gi}}\n"
    );
    let c = convert(&input(&yaml), &options(TemplateMode::ReadWriteOncePod)).unwrap();
    assert_eq!(
        c.moves[0].how,
        Move::Rebind {
            volume: "pv-1".into(),
            reclaim_policy: Some("Delete".into()),
            class: Some(String::new()),
            add_mode: Some("ReadWriteOncePod".into()),
        }
    );
    // The PV has no class: the new claim says so, or the default class would be written into it.
    assert_eq!(
        c.ordinal_claims[0]
            .spec
            .as_ref()
            .unwrap()
            .storage_class_name
            .as_deref(),
        Some("")
    );
    let reserve = c
        .plan
        .steps
        .iter()
        .find(|s| s.title.starts_with("Reserve"))
        .unwrap();
    assert!(
        reserve.run[0].ends_with(",\"accessModes\":[\"ReadWriteOncePod\"]}}'"),
        "{}",
        reserve.run[0]
    );
    let keep = c.plan.steps.iter().find(|s| s.title.starts_with("Keep")).unwrap();
    assert_eq!(
        keep.rollback,
        ["kubectl patch pv pv-1 -p '{\"spec\":{\"persistentVolumeReclaimPolicy\":\"Delete\"}}'"]
    );
}

#[test]
fn an_hpa_for_another_target_is_left_alone() {
    let mut i = input(DEPLOYMENT);
    i.autoscalers.push(serde_json::json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "other", "namespace": "shop"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "other"}}
    }));
    // Named "web" but not the Deployment's: another namespace, another kind, another API group.
    for (namespace, kind, api_version) in [
        ("other", "Deployment", "apps/v1"),
        ("shop", "StatefulSet", "apps/v1"),
        ("shop", "Deployment", "example.com/v1"),
    ] {
        i.autoscalers.push(serde_json::json!({
            "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": format!("web-{namespace}-{kind}"), "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": api_version, "kind": kind, "name": "web"}}
        }));
    }
    i.autoscalers.push(serde_json::json!({
        "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "shop", "uid": "u", "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 2, "managedFields": [{"manager": "kubectl"}],
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}",
                "autoscaling.alpha.kubernetes.io/conditions": "[]", "team": "web"}},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 3},
        "status": {"currentReplicas": 2}
    }));
    let c = convert(&i, &options(TemplateMode::ReadWriteOnce)).unwrap();
    assert_eq!(
        c.autoscalers,
        [serde_json::json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "shop", "annotations": {"team": "web"}},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web"}, "maxReplicas": 3}
        })]
    );
}

#[test]
fn an_empty_selector_is_checked_before_the_step_after_the_pods_stop() {
    let empty = |yaml: &str| yaml.replace("selector: {matchLabels: {app: web}}", "selector: {}");
    let rebound = DEPLOYMENT.replace(
        "storageClassName: fast,",
        "storageClassName: fast, volumeName: pv-1,",
    );
    for (yaml, stop) in [(empty(DEPLOYMENT), 2), (empty(&rebound), 3)] {
        let c = convert(&input(&yaml), &options(TemplateMode::ReadWriteOnce)).unwrap();
        assert_eq!(titles(&c.plan)[stop - 1], "Stop the Deployment's pods");
        let note = format!(
            "The Deployment's selector has no matchLabels: check that no pod of it runs before step {} with \
             `kubectl get pods`.",
            stop + 1
        );
        assert!(c.plan.notes.contains(&note), "{:#?}", c.plan.notes);
        let down = format!("The pods are down from step {stop} until");
        assert!(c.plan.notes[0].contains(&down), "{}", c.plan.notes[0]);
    }
}
