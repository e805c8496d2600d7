//! Mutation through the library: every patch is checked operation by operation, applied with the
//! json-patch crate to the document as written, decoded again into its k8s-openapi type, judged again, and
//! mutated a second time to prove the webhook is idempotent (`reinvocationPolicy: IfNeeded`).

use std::path::{Path, PathBuf};

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use volguard::decision::mutate::{MUTATED_ANNOTATION, Mutation, Stage, mutate};
use volguard::decision::{Verdict, evaluate};
use volguard::domain::lookup::Bundle;
use volguard::domain::policy::{Action, PolicySet, load_path};
use volguard::domain::rules::{RuleId, Severity};
use volguard::domain::workload::{Decoded, Resource, decode};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mutate")
}

fn policies() -> PolicySet {
    load_path(&dir().join("policy.yaml")).expect("the test policy loads")
}

/// Every manifest of the directory, as a lookup: claims resolve across files, as in `volguard check`.
fn bundle() -> Bundle {
    let files: Vec<PathBuf> = std::fs::read_dir(dir())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n != "policy.yaml"))
        .collect();
    volguard::adapters::manifest::read_bundle(&files, "default").expect("fixtures read")
}

/// The document `kind`/`name` of a fixture file, as written.
fn document(file: &str, kind: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(file)).expect("fixture");
    let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("fixtures are YAML");
    docs.into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {file}"))
}

fn typed(value: &Value) -> Resource {
    match decode(value.clone()).expect("decodes") {
        Decoded::Resource(r) => *r,
        Decoded::Skipped { kind, .. } => panic!("{kind} is not a kind volguard reads"),
    }
}

fn run(value: &Value, stage: Stage) -> Mutation {
    mutate(value, &typed(value), stage, &bundle(), &policies()).expect("mutates")
}

/// The patch as JSON, to compare with an expected list of operations.
fn ops(m: &Mutation) -> Value {
    serde_json::to_value(&m.patch).expect("patches serialise")
}

/// Applies the patch to the document with the json-patch crate, checks the result is what `mutate` said,
/// decodes it, and mutates it again: nothing more to do. Returns the patched document.
fn apply_and_repeat(original: &Value, m: &Mutation, stage: Stage) -> Value {
    let mut patched = original.clone();
    json_patch::patch(&mut patched, &m.patch).expect("the patch applies to the document as written");
    assert_eq!(Some(&patched), m.object.as_ref());
    let again = run(&patched, stage);
    assert!(
        again.is_empty(),
        "a second pass must change nothing: {:#}",
        ops(&again)
    );
    assert_eq!(again.changes, vec![]);
    patched
}

fn rules_of(value: &Value) -> Vec<(RuleId, Action, Severity)> {
    let eval = evaluate(&typed(value), &bundle(), &policies()).expect("judged");
    eval.findings
        .iter()
        .map(|j| (j.finding.rule, j.action, j.finding.severity))
        .collect()
}

fn verdict(value: &Value) -> Verdict {
    evaluate(&typed(value), &bundle(), &policies())
        .expect("judged")
        .verdict()
}

#[test]
fn statefulset_gets_the_policy_template_its_mount_and_a_retention_policy() {
    let original = document("statefulset.yaml", "StatefulSet", "orders-db");
    // Without the template, the validating path says the policy's template is missing (advisory).
    assert_eq!(
        rules_of(&original),
        vec![(
            RuleId::StatefulsetPolicyTemplate,
            Action::Warn,
            Severity::Advisory
        )]
    );
    let m = run(&original, Stage::Create);
    assert_eq!(
        ops(&m),
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {
                MUTATED_ANNOTATION: "spec.persistentVolumeClaimRetentionPolicy, \
                    spec.template.spec.containers[db].volumeMounts[data], spec.volumeClaimTemplates[data]"}},
            {"op": "add", "path": "/spec/persistentVolumeClaimRetentionPolicy",
             "value": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
            // Container db has a list: the mount is appended. Sidecar metrics is not in `containers`.
            {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/1",
             "value": {"name": "data", "mountPath": "/var/lib/data"}},
            // No list at all: the list is added, not an index into nothing.
            {"op": "add", "path": "/spec/volumeClaimTemplates", "value": [{
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "labels": {"app.kubernetes.io/managed-by": "volguard"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd",
                         "resources": {"requests": {"storage": "10Gi"}}}}]}
        ])
    );
    let messages: Vec<(&str, &str)> = m
        .changes
        .iter()
        .map(|c| (c.policy.as_str(), c.message.as_str()))
        .collect();
    assert_eq!(
        messages,
        vec![
            (
                "database-storage",
                "added volumeClaimTemplate \"data\" (ReadWriteOnce, 10Gi, storageClassName fast-ssd) to \
                 StatefulSet orders-db: each replica gets a claim of its own"
            ),
            (
                "database-storage",
                "mounted volumeClaimTemplate \"data\" at /var/lib/data in container \"db\""
            ),
            (
                "repairs",
                "set persistentVolumeClaimRetentionPolicy whenDeleted: Retain, whenScaled: Retain"
            ),
        ]
    );
    let patched = apply_and_repeat(&original, &m, Stage::Create);
    assert_eq!(rules_of(&patched), vec![]);
    assert_eq!(verdict(&patched), Verdict::Allow);
    // The user's own mount of the config volume is untouched, and so is the sidecar.
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0],
        original["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
    );
    assert_eq!(
        patched["spec"]["template"]["spec"]["containers"][1],
        original["spec"]["template"]["spec"]["containers"][1]
    );
}

#[test]
fn existing_lists_and_annotations_are_appended_to_with_escaped_keys() {
    let original = document("statefulset-with-templates.yaml", "StatefulSet", "ledger");
    let m = run(&original, Stage::Create);
    assert_eq!(
        ops(&m),
        json!([
            // "volguard.io/mutated": the "/" of the key is escaped as "~1".
            {"op": "add", "path": "/metadata/annotations/volguard.io~1mutated", "value":
                "spec.persistentVolumeClaimRetentionPolicy, \
                 spec.template.spec.containers[db].volumeMounts[data], spec.volumeClaimTemplates[data]"},
            // whenDeleted: Delete is the user's: only the unset field is added.
            {"op": "add", "path": "/spec/persistentVolumeClaimRetentionPolicy/whenScaled", "value": "Retain"},
            {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/1",
             "value": {"name": "data", "mountPath": "/var/lib/data"}},
            {"op": "add", "path": "/spec/volumeClaimTemplates/1", "value": {
                "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data", "labels": {"app.kubernetes.io/managed-by": "volguard"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd",
                         "resources": {"requests": {"storage": "10Gi"}}}}}
        ])
    );
    let patched = apply_and_repeat(&original, &m, Stage::Create);
    assert_eq!(
        patched["metadata"]["annotations"]["team.example.com/owner"],
        "payments"
    );
    assert_eq!(
        patched["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
        "Delete"
    );
    assert_eq!(rules_of(&patched), vec![]);
}

#[test]
fn an_existing_statefulset_never_gets_a_template_patch_but_a_migration_finding() {
    let original = document("statefulset.yaml", "StatefulSet", "orders-db");
    let m = run(&original, Stage::Update);
    // The API server forbids changing volumeClaimTemplates on UPDATE: no template, and no mount of a
    // template that is not there. The retention policy may change, so it is still set.
    assert_eq!(
        ops(&m),
        json!([
            {"op": "add", "path": "/metadata/annotations",
             "value": {MUTATED_ANNOTATION: "spec.persistentVolumeClaimRetentionPolicy"}},
            {"op": "add", "path": "/spec/persistentVolumeClaimRetentionPolicy",
             "value": {"whenDeleted": "Retain", "whenScaled": "Retain"}}
        ])
    );
    let patched = apply_and_repeat(&original, &m, Stage::Update);
    let eval = evaluate(&typed(&patched), &bundle(), &policies()).expect("judged");
    let [judged] = eval.findings.as_slice() else {
        panic!("one finding expected: {:#?}", eval.findings)
    };
    assert_eq!(judged.finding.rule, RuleId::StatefulsetPolicyTemplate);
    assert_eq!(judged.action, Action::Warn, "advisory: capped at Warn");
    assert_eq!(judged.policy, "database-storage");
    assert_eq!(
        judged.finding.message,
        "StatefulSet data/orders-db has no volumeClaimTemplate \"data\", which policy \"database-storage\" \
         declares for every StatefulSet it selects. volguard's mutating webhook adds it when a StatefulSet is \
         created; an existing StatefulSet cannot change its volumeClaimTemplates (the API server forbids it)."
    );
    let fix = judged.finding.fix.as_deref().expect("a migration");
    assert!(
        fix.contains("kubectl delete statefulset orders-db --cascade=orphan"),
        "{fix}"
    );
    assert!(
        fix.contains("spec:\n  volumeClaimTemplates:\n  - metadata:\n      name: data\n"),
        "{fix}"
    );
}

#[test]
fn a_user_template_that_contradicts_the_policy_is_reported_not_rewritten() {
    let original = document("statefulset-contradicting.yaml", "StatefulSet", "search");
    let m = run(&original, Stage::Create);
    assert!(m.is_empty(), "{:#}", ops(&m));
    let eval = evaluate(&typed(&original), &bundle(), &policies()).expect("judged");
    // ReadWriteMany is also outside the modes the "repairs" policy allows templates.
    let [modes, judged] = eval.findings.as_slice() else {
        panic!("two findings expected: {:#?}", eval.findings)
    };
    assert_eq!(
        (modes.finding.rule, modes.action, modes.policy.as_str()),
        (RuleId::StatefulsetClaimTemplateModes, Action::Deny, "repairs")
    );
    assert_eq!(
        (judged.finding.rule, judged.action),
        (RuleId::StatefulsetPolicyTemplate, Action::Deny)
    );
    assert_eq!(
        judged.finding.message,
        "StatefulSet data/search has volumeClaimTemplate \"data\" with accessModes [ReadWriteMany] where the \
         policy asks for [ReadWriteOnce] and storageClassName \"nfs\" where the policy asks for \"fast-ssd\": \
         policy \"database-storage\" declares this template for every StatefulSet it selects, and volguard \
         never overwrites one the user wrote."
    );
}

#[test]
fn a_mount_path_held_by_another_volume_is_a_conflict_not_a_patch() {
    let original = document("statefulset-mount-conflict.yaml", "StatefulSet", "cache");
    let m = run(&original, Stage::Create);
    assert!(m.is_empty(), "{:#}", ops(&m));
    let eval = evaluate(&typed(&original), &bundle(), &policies()).expect("judged");
    let [judged] = eval.findings.as_slice() else {
        panic!("one finding expected: {:#?}", eval.findings)
    };
    assert_eq!(judged.action, Action::Deny);
    assert_eq!(
        judged.finding.message,
        "volguard cannot add volumeClaimTemplate \"data\" (mounted at /var/lib/data) to StatefulSet data/cache: \
         container \"db\" already mounts volume \"scratch\" at /var/lib/data."
    );
}

#[test]
fn one_replica_rolling_update_on_rwo_becomes_recreate() {
    let original = document("deployments.yaml", "Deployment", "cms");
    assert_eq!(
        rules_of(&original),
        vec![(RuleId::RolloutAttachDeadlock, Action::Warn, Severity::Violation)]
    );
    let m = run(&original, Stage::Create);
    assert_eq!(
        ops(&m),
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {MUTATED_ANNOTATION: "spec.strategy"}},
            {"op": "replace", "path": "/spec/strategy/type", "value": "Recreate"},
            {"op": "remove", "path": "/spec/strategy/rollingUpdate"}
        ])
    );
    assert_eq!(m.changes.len(), 1);
    assert_eq!(m.changes[0].rule, Some(RuleId::RolloutAttachDeadlock));
    assert_eq!(
        m.changes[0].message,
        "set spec.strategy to Recreate (rollingUpdate removed): with 1 replica on claim \"cms-uploads\" \
         (ReadWriteOnce), a rolling update would start the new pod before the old one releases the volume"
    );
    let patched = apply_and_repeat(&original, &m, Stage::Create);
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
    assert_eq!(rules_of(&patched), vec![]);
    // On UPDATE too: the strategy of an existing Deployment may change.
    assert_eq!(ops(&run(&original, Stage::Update)), ops(&m));
}

#[test]
fn a_rule_the_workload_skips_is_not_repaired() {
    let mut original = document("deployments.yaml", "Deployment", "cms");
    original["metadata"]["annotations"] = json!({
        "volguard.io/skip": "rollout-attach-deadlock",
        "volguard.io/skip-reason": "the volume is released by a preStop hook",
    });
    assert_eq!(rules_of(&original), vec![]);
    assert!(run(&original, Stage::Create).changes.is_empty());
    // Without its reason the skip is not honoured: the repair is made, and the skip itself denies.
    original["metadata"]["annotations"] = json!({"volguard.io/skip": "rollout-attach-deadlock"});
    assert_eq!(run(&original, Stage::Create).changes.len(), 1);
    assert_eq!(verdict(&original), Verdict::Deny);
}

#[test]
fn writable_mounts_of_a_shared_read_only_many_claim_become_read_only() {
    let original = document("deployments.yaml", "Deployment", "web");
    assert_eq!(verdict(&original), Verdict::Deny);
    let m = run(&original, Stage::Create);
    assert_eq!(
        ops(&m),
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {MUTATED_ANNOTATION:
                "spec.template.spec.containers[indexer].volumeMounts[content].readOnly, \
                 spec.template.spec.containers[nginx].volumeMounts[content].readOnly, \
                 spec.template.spec.containers[warm-cache].volumeMounts[content].readOnly"}},
            // nginx: only the content mount, not the emptyDir cache; sidecar is read-only already.
            {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/0/readOnly", "value": true},
            {"op": "add", "path": "/spec/template/spec/containers/2/volumeMounts/0/readOnly", "value": true},
            {"op": "add", "path": "/spec/template/spec/initContainers/0/volumeMounts/0/readOnly", "value": true}
        ])
    );
    let patched = apply_and_repeat(&original, &m, Stage::Create);
    assert_eq!(rules_of(&patched), vec![]);
    assert_eq!(verdict(&patched), Verdict::Allow);
}

#[test]
fn a_statefulset_sharing_one_claim_is_never_rewritten() {
    let original = document("deployments.yaml", "StatefulSet", "queue");
    let m = run(&original, Stage::Create);
    assert!(m.is_empty(), "{:#}", ops(&m));
    assert_eq!(
        rules_of(&original)
            .into_iter()
            .map(|(rule, action, _)| (rule, action))
            .collect::<Vec<_>>(),
        vec![
            (RuleId::SharedRwoClaim, Action::Deny),
            (RuleId::StatefulsetSharedClaim, Action::Deny)
        ]
    );
}

#[test]
fn claims_and_unselected_objects_are_left_alone() {
    let claim = document("deployments.yaml", "PersistentVolumeClaim", "cms-uploads");
    assert!(run(&claim, Stage::Create).is_empty());
    // The same Deployment outside the policies' namespaces.
    let mut elsewhere = document("deployments.yaml", "Deployment", "cms");
    elsewhere["metadata"]["namespace"] = json!("other");
    assert!(run(&elsewhere, Stage::Create).is_empty());
}

#[test]
fn fields_volguard_does_not_know_survive_the_patch() {
    let mut original = document("deployments.yaml", "Deployment", "cms");
    // A field from a newer API than the k8s-openapi types know: the patch is computed from the typed
    // object but applied to the document as received, so it stays.
    original["spec"]["template"]["spec"]["futureField"] = json!({"enabled": true});
    let m = run(&original, Stage::Create);
    let patched = apply_and_repeat(&original, &m, Stage::Create);
    assert_eq!(
        patched["spec"]["template"]["spec"]["futureField"],
        json!({"enabled": true})
    );
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
}

#[test]
fn a_cronjobs_mounts_are_repaired_inside_its_job_template() {
    let claim = document("deployments.yaml", "PersistentVolumeClaim", "site-content");
    let cronjob = json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "reindex", "namespace": "shop"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"parallelism": 2, "template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "indexer", "image": "ghcr.io/example/indexer:1.0.0",
                            "volumeMounts": [{"name": "content", "mountPath": "/data"}]}],
            "volumes": [{"name": "content", "persistentVolumeClaim": {"claimName": "site-content"}}]}}}}}
    });
    let lookup: Bundle = [typed(&claim)].iter().collect();
    let m = mutate(&cronjob, &typed(&cronjob), Stage::Create, &lookup, &policies()).expect("mutates");
    assert_eq!(
        ops(&m),
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {MUTATED_ANNOTATION:
                "spec.jobTemplate.spec.template.spec.containers[indexer].volumeMounts[content].readOnly"}},
            {"op": "add", "path": "/spec/jobTemplate/spec/template/spec/containers/0/volumeMounts/0/readOnly",
             "value": true}
        ])
    );
    let patched = m.object.clone().expect("patched");
    // The repaired object handed back is the one decoding the patched JSON gives.
    assert_eq!(m.repaired.as_deref(), Some(&typed(&patched)));
    let again = mutate(&patched, &typed(&patched), Stage::Create, &lookup, &policies()).expect("mutates");
    assert!(again.is_empty());
}

#[test]
fn a_template_the_user_wrote_gets_its_missing_mount_on_update_too() {
    // The user's "data" template matches the policy, but container db does not mount it.
    let mut original = document("statefulset-contradicting.yaml", "StatefulSet", "search");
    original["spec"]["volumeClaimTemplates"][0]["spec"]["accessModes"] = json!(["ReadWriteOnce"]);
    original["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"] = json!("fast-ssd");
    original["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] = json!([]);
    assert_eq!(
        rules_of(&original),
        vec![(
            RuleId::StatefulsetPolicyTemplate,
            Action::Warn,
            Severity::Advisory
        )]
    );
    let m = run(&original, Stage::Update);
    assert_eq!(
        ops(&m),
        json!([
            {"op": "add", "path": "/metadata/annotations", "value": {MUTATED_ANNOTATION:
                "spec.template.spec.containers[db].volumeMounts[data]"}},
            {"op": "add", "path": "/spec/template/spec/containers/0/volumeMounts/0",
             "value": {"name": "data", "mountPath": "/var/lib/data"}}
        ])
    );
    let patched = apply_and_repeat(&original, &m, Stage::Update);
    assert_eq!(rules_of(&patched), vec![]);
}

#[test]
fn the_webhook_patch_made_from_the_typed_object_applies_to_the_object_as_received() {
    use volguard::adapters::admission;
    // The webhook answers from the review decoded once, without the fields no rule reads and without
    // reading the body again. Its patch must name only what the repair changed, apply to the object as
    // received, and leave everything volguard does not read as sent. (That it equals the patch made
    // from the object decoded with every field is `decision::every_field`, over every fixture.)
    let body = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reviews/update-deployment-image.json"),
    )
    .expect("fixture");
    let received: Value = serde_json::from_slice::<Value>(&body).expect("JSON")["request"]["object"].clone();
    let review = admission::parse(&body).expect("parses");
    let claim = document("deployments.yaml", "PersistentVolumeClaim", "cms-uploads");
    let mut web_data = claim.clone();
    web_data["metadata"]["name"] = json!("web-data");
    let lookup: Bundle = [typed(&web_data)].iter().collect();
    let policies = load_path(&dir().join("webhook-policy.yaml")).expect("loads");
    let outcome = admission::mutate(&review, &lookup, &policies);
    assert!(outcome.response.allowed && outcome.patched);
    let patch: json_patch::Patch =
        serde_json::from_slice(outcome.response.patch.as_deref().expect("a patch")).expect("a JSON patch");
    // Only what the repair changed: the strategy, and the annotation recording it. A patch built from a
    // typed object missing fields the received one has would remove or replace them here.
    let paths: Vec<String> = serde_json::to_value(&patch)
        .expect("JSON")
        .as_array()
        .expect("a list of operations")
        .iter()
        .map(|op| op["path"].as_str().expect("a path").to_owned())
        .collect();
    assert!(!paths.is_empty());
    for path in &paths {
        assert!(
            path.starts_with("/spec/strategy") || path == "/metadata/annotations/volguard.io~1mutated",
            "{path} in {paths:?}"
        );
    }
    let mut patched = received.clone();
    json_patch::patch(&mut patched, &patch).expect("applies to the object as received");
    assert_eq!(patched["spec"]["strategy"], json!({"type": "Recreate"}));
    for kept in [
        "/spec/template/spec/containers/0/image",
        "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
        "/metadata/managedFields",
    ] {
        assert_eq!(patched.pointer(kept), received.pointer(kept), "{kept} as sent");
        assert!(patched.pointer(kept).is_some(), "{kept} is in the fixture");
    }
    // And the patched object is admitted by the validating webhook's decision.
    let eval = evaluate(&typed(&patched), &lookup, &policies).expect("judged");
    assert_ne!(eval.verdict(), Verdict::Deny, "{:?}", eval.findings);
}
