//! Claim templates a policy gives every StatefulSet it selects, and how a StatefulSet stands against
//! them: [`survey`] is shared by the `statefulset-policy-template` rule (what cannot be added) and the
//! mutation that adds what can (`decision::mutate`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSpec, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// A volumeClaimTemplate a policy declares, and where the pods mount it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ClaimTemplate {
    /// The template's (and the pod volume's) name.
    pub name: String,
    /// Access modes, as the API writes them.
    pub access_modes: Vec<String>,
    /// The StorageClass, when the policy names one.
    pub storage_class: Option<String>,
    /// The requested size (`10Gi`).
    pub storage: String,
    /// Labels of the claims.
    pub labels: BTreeMap<String, String>,
    /// Where the containers mount it.
    pub mount_path: String,
    /// The sub-path of the volume to mount, if any.
    pub sub_path: Option<String>,
    /// The containers that mount it; empty: every (non-init) container.
    pub containers: Vec<String>,
}

impl ClaimTemplate {
    /// The volumeClaimTemplates entry.
    pub(crate) fn to_claim(&self) -> PersistentVolumeClaim {
        PersistentVolumeClaim {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                labels: (!self.labels.is_empty()).then(|| self.labels.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(self.access_modes.clone()),
                storage_class_name: self.storage_class.clone(),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_owned(),
                        Quantity(self.storage.clone()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            status: None,
        }
    }

    /// The volumeMount added to each container.
    pub(crate) fn to_mount(&self) -> VolumeMount {
        VolumeMount {
            name: self.name.clone(),
            mount_path: self.mount_path.clone(),
            sub_path: self.sub_path.clone(),
            ..VolumeMount::default()
        }
    }

    /// The template as YAML to paste under `spec:` of a StatefulSet, for messages.
    pub(crate) fn to_yaml(&self) -> String {
        let mut yaml = format!(
            "volumeClaimTemplates:\n- metadata:\n    name: {}\n  spec:\n    accessModes: [{}]\n",
            self.name,
            self.access_modes.join(", ")
        );
        if let Some(class) = &self.storage_class {
            yaml.push_str(&format!("    storageClassName: {class}\n"));
        }
        yaml.push_str(&format!(
            "    resources:\n      requests:\n        storage: {}\n",
            self.storage
        ));
        yaml
    }
}
/// How a StatefulSet stands against one policy template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TemplateState {
    /// The StatefulSet has a volumeClaimTemplate of this name.
    Present {
        /// How the user's template differs from the policy's (access modes, storage class).
        contradictions: Vec<String>,
        /// Containers that should mount it, do not, and can.
        unmounted: Vec<String>,
        /// Containers that should mount it but use its mount path for another volume.
        conflicts: Vec<String>,
    },
    /// The StatefulSet has no such template.
    Absent {
        /// The containers that would mount it.
        containers: Vec<String>,
        /// Why it cannot be added as it stands (empty: it can).
        conflicts: Vec<String>,
    },
}

/// Compares a StatefulSet with one policy template.
pub(crate) fn survey(set: &StatefulSet, template: &ClaimTemplate) -> TemplateState {
    let spec = set.spec.as_ref();
    let pod = spec.and_then(|s| s.template.spec.as_ref());
    let user = spec
        .and_then(|s| s.volume_claim_templates.as_ref())
        .into_iter()
        .flatten()
        .find(|t| t.metadata.name.as_deref() == Some(template.name.as_str()));
    let containers = target_containers(pod, template);
    let mut conflicts = Vec::new();
    if containers.is_empty() {
        conflicts.push(if template.containers.is_empty() {
            "the pod template has no containers".to_owned()
        } else {
            format!(
                "the pod template has none of the containers {}",
                quoted(&template.containers)
            )
        });
    }
    let mut unmounted = Vec::new();
    let mut targets = Vec::new();
    for c in &containers {
        let mounts = c.volume_mounts.as_deref().unwrap_or_default();
        if mounts.iter().any(|m| m.name == template.name) {
            continue;
        }
        match mounts.iter().find(|m| m.mount_path == template.mount_path) {
            Some(other) => conflicts.push(format!(
                "container \"{}\" already mounts volume \"{}\" at {}",
                c.name, other.name, template.mount_path
            )),
            None => unmounted.push(c.name.clone()),
        }
        targets.push(c.name.clone());
    }
    match user {
        Some(user) => TemplateState::Present {
            contradictions: contradictions(user, template),
            unmounted,
            conflicts,
        },
        None => {
            let volumes = pod.and_then(|p| p.volumes.as_deref()).unwrap_or_default();
            if volumes.iter().any(|v| v.name == template.name) {
                conflicts.push(format!(
                    "the pod template already has a volume named \"{}\"",
                    template.name
                ));
            }
            TemplateState::Absent {
                containers: targets,
                conflicts,
            }
        }
    }
}

/// The containers a template is for: the named ones that exist, or every container.
pub(crate) fn target_containers<'a>(
    pod: Option<&'a PodSpec>,
    template: &ClaimTemplate,
) -> Vec<&'a Container> {
    pod.map(|p| p.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|c| template.containers.is_empty() || template.containers.contains(&c.name))
        .collect()
}

/// How the user's template of the same name differs from the policy's.
fn contradictions(user: &PersistentVolumeClaim, template: &ClaimTemplate) -> Vec<String> {
    let spec = user.spec.as_ref();
    let mut out = Vec::new();
    let mut modes = spec.and_then(|s| s.access_modes.clone()).unwrap_or_default();
    modes.sort();
    let mut wanted = template.access_modes.clone();
    wanted.sort();
    if modes != wanted {
        out.push(format!(
            "accessModes [{}] where the policy asks for [{}]",
            modes.join(", "),
            wanted.join(", ")
        ));
    }
    if let (Some(wanted), Some(class)) = (
        &template.storage_class,
        spec.and_then(|s| s.storage_class_name.as_ref()),
    ) && class != wanted
    {
        out.push(format!(
            "storageClassName \"{class}\" where the policy asks for \"{wanted}\""
        ));
    }
    out
}

/// `"a", "b"`.
pub(crate) fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}
