//! `statefulset-policy-template`: a StatefulSet measured against the claim templates its policy declares
//! (`spec.mutate.claimTemplates`). The mutating webhook adds what it can; this rule reports the rest: a
//! template that contradicts the policy, a mount path another volume holds, and a template missing from
//! a StatefulSet that already exists (the API server forbids changing its volumeClaimTemplates).

use k8s_openapi::api::apps::v1::StatefulSet;

use super::templates::{ClaimTemplate, TemplateState, quoted, survey};
use super::{Finding, RuleId};
use crate::domain::workload::ObjectRef;

/// The findings of one policy's templates on one StatefulSet.
pub(crate) fn policy_templates(
    set: &StatefulSet,
    object: &ObjectRef,
    templates: &[ClaimTemplate],
    policy: &str,
) -> Vec<Finding> {
    let name = &object.name;
    let mut out = Vec::new();
    for t in templates {
        let finding = |message: String| {
            let mut f = Finding::new(RuleId::StatefulsetPolicyTemplate, object, message);
            f.volume = Some(t.name.clone());
            f.access_mode = t.access_modes.first().cloned();
            f
        };
        match survey(set, t) {
            TemplateState::Present {
                contradictions,
                unmounted,
                conflicts,
            } => {
                if !contradictions.is_empty() {
                    let msg = format!(
                        "{object} has volumeClaimTemplate \"{}\" with {}: policy \"{policy}\" declares this \
                         template for every StatefulSet it selects, and volguard never overwrites one the user \
                         wrote.",
                        t.name,
                        contradictions.join(" and ")
                    );
                    let fix = format!(
                        "Use the policy's template (or give yours another name):\nspec:\n  {}An existing \
                         StatefulSet cannot change its volumeClaimTemplates: delete it with `kubectl delete \
                         statefulset {name} --cascade=orphan` (its pods keep running) and apply it again.",
                        indent(&t.to_yaml())
                    );
                    out.push(finding(msg).fix(fix));
                }
                if !conflicts.is_empty() {
                    out.push(conflict(finding, object, t, &conflicts));
                }
                if !unmounted.is_empty() {
                    let msg = format!(
                        "{object} does not mount volumeClaimTemplate \"{}\" in container{} {}; policy \
                         \"{policy}\" mounts it at {} (volguard's mutating webhook adds the mount).",
                        t.name,
                        if unmounted.len() == 1 { "" } else { "s" },
                        quoted(&unmounted),
                        t.mount_path
                    );
                    let fix = format!(
                        "Add to each container:\nvolumeMounts:\n- name: {}\n  mountPath: {}\n",
                        t.name, t.mount_path
                    );
                    out.push(finding(msg).fix(fix).advisory());
                }
            }
            TemplateState::Absent { conflicts, .. } if !conflicts.is_empty() => {
                out.push(conflict(finding, object, t, &conflicts));
            }
            TemplateState::Absent { .. } => {
                let msg = format!(
                    "{object} has no volumeClaimTemplate \"{}\", which policy \"{policy}\" declares for every \
                     StatefulSet it selects. volguard's mutating webhook adds it when a StatefulSet is created; \
                     an existing StatefulSet cannot change its volumeClaimTemplates (the API server forbids it).",
                    t.name
                );
                let fix = format!(
                    "Add it to the manifest (`volguard check --mutate -o yaml` prints the result):\nspec:\n  {}\
                     To migrate a StatefulSet that exists: `kubectl delete statefulset {name} --cascade=orphan` \
                     (the pods keep running), apply the manifest (the new StatefulSet adopts them), then `kubectl \
                     rollout restart statefulset {name}` so each pod comes back with its own claim. The new claims \
                     start empty: copy the data the pods need first.",
                    indent(&t.to_yaml())
                );
                out.push(finding(msg).fix(fix).advisory());
            }
        }
    }
    out
}

/// A template (or its mount) that cannot be added as the StatefulSet stands.
fn conflict(
    finding: impl Fn(String) -> Finding,
    object: &ObjectRef,
    t: &ClaimTemplate,
    conflicts: &[String],
) -> Finding {
    let msg = format!(
        "volguard cannot add volumeClaimTemplate \"{}\" (mounted at {}) to {object}: {}.",
        t.name,
        t.mount_path,
        conflicts.join("; ")
    );
    let fix = format!(
        "Mount the other volume elsewhere (or rename it), or add the template and its mount yourself:\nspec:\n  {}",
        indent(&t.to_yaml())
    );
    finding(msg).fix(fix)
}

/// Indents YAML written for the top level so it sits under `spec:` (the first line is already indented).
fn indent(yaml: &str) -> String {
    yaml.replace('\n', "\n  ").trim_end().to_owned() + "\n"
}
