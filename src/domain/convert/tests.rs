use super::*;

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

fn options(mode: TemplateMode) -> Options<'static> {
    Options {
        mode,
        pod_management: PodManagement::OrderedReady,
        classes: &UnknownClasses,
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

struct NoPod;
impl ClassCapabilities for NoPod {
    fn can_give(&self, class: Option<&str>, mode: &str, _: Option<&str>) -> Option<bool> {
        (class == Some("fast")).then_some(mode != "ReadWriteOncePod")
    }
}

#[test]
fn a_mode_the_class_cannot_give_is_refused() {
    let err = convert(
        &input(DEPLOYMENT),
        &Options {
            mode: TemplateMode::ReadWriteOncePod,
            pod_management: PodManagement::Parallel,
            classes: &NoPod,
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
