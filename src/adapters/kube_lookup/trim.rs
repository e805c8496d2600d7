//! Cached objects are cut down to what the rules read, so the caches cost memory in proportion to the
//! number of objects, not to their size: no managedFields, no status (but a claim's and a pod's), no
//! container images, env, probes or resources, no annotations (but an autoscaler's behavior).

use k8s_openapi::api::core::v1::{
    Container, PersistentVolumeClaim, Pod, PodSpec, PodStatus, PodTemplateSpec, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::domain::workload::{Autoscaler, Workload};

/// The metadata the rules read: identity, labels, owners.
fn meta(m: &mut ObjectMeta) {
    m.managed_fields = None;
    m.annotations = None;
    m.finalizers = None;
    m.resource_version = None;
    m.creation_timestamp = None;
    m.generation = None;
}

fn container(c: &Container) -> Container {
    Container {
        name: c.name.clone(),
        volume_mounts: c.volume_mounts.as_ref().map(|ms| {
            ms.iter()
                .map(|m| VolumeMount {
                    name: m.name.clone(),
                    mount_path: m.mount_path.clone(),
                    read_only: m.read_only,
                    ..VolumeMount::default()
                })
                .collect()
        }),
        ..Container::default()
    }
}

/// The pod spec's volumes, mounts and scheduling constraints: nothing else decides a volume's footprint.
fn pod_spec(spec: &mut PodSpec) {
    let trimmed = PodSpec {
        containers: spec.containers.iter().map(container).collect(),
        init_containers: spec
            .init_containers
            .as_ref()
            .map(|cs| cs.iter().map(container).collect()),
        volumes: spec.volumes.take(),
        node_name: spec.node_name.take(),
        node_selector: spec.node_selector.take().map(|s| {
            s.into_iter()
                .filter(|(k, _)| k == crate::domain::workload::HOSTNAME_LABEL)
                .collect()
        }),
        affinity: spec.affinity.take().map(|mut a| {
            a.pod_anti_affinity = None;
            if let Some(p) = a.pod_affinity.as_mut() {
                p.preferred_during_scheduling_ignored_during_execution = None;
            }
            if let Some(n) = a.node_affinity.as_mut() {
                n.preferred_during_scheduling_ignored_during_execution = None;
            }
            a
        }),
        ..PodSpec::default()
    };
    *spec = trimmed;
}

fn template(t: &mut PodTemplateSpec) {
    if let Some(m) = t.metadata.as_mut() {
        meta(m);
    }
    if let Some(s) = t.spec.as_mut() {
        pod_spec(s);
    }
}

/// A workload, cut down.
pub(super) fn workload(w: &mut Workload) {
    meta(w.metadata_mut());
    match w {
        Workload::Deployment(d) => {
            d.status = None;
            if let Some(s) = d.spec.as_mut() {
                template(&mut s.template);
            }
        }
        Workload::StatefulSet(s) => {
            s.status = None;
            if let Some(spec) = s.spec.as_mut() {
                template(&mut spec.template);
                for t in spec.volume_claim_templates.iter_mut().flatten() {
                    meta(&mut t.metadata);
                    t.status = None;
                }
            }
        }
        Workload::DaemonSet(d) => {
            d.status = None;
            if let Some(s) = d.spec.as_mut() {
                template(&mut s.template);
            }
        }
        Workload::ReplicaSet(r) => {
            r.status = None;
            if let Some(t) = r.spec.as_mut().and_then(|s| s.template.as_mut()) {
                template(t);
            }
        }
        Workload::ReplicationController(r) => {
            r.status = None;
            if let Some(t) = r.spec.as_mut().and_then(|s| s.template.as_mut()) {
                template(t);
            }
        }
        Workload::Job(j) => {
            j.status = None;
            if let Some(s) = j.spec.as_mut() {
                template(&mut s.template);
            }
        }
        Workload::CronJob(c) => {
            c.status = None;
            if let Some(t) = c
                .spec
                .as_mut()
                .and_then(|s| s.job_template.spec.as_mut())
                .map(|j| &mut j.template)
            {
                template(t);
            }
        }
        Workload::Pod(p) => pod(p),
    }
}

/// A pod keeps its phase: a finished pod holds no volume.
fn pod(p: &mut Pod) {
    let phase = p.status.as_ref().and_then(|s| s.phase.clone());
    p.status = phase.map(|phase| PodStatus {
        phase: Some(phase),
        ..PodStatus::default()
    });
    if let Some(s) = p.spec.as_mut() {
        pod_spec(s);
    }
}

/// A claim keeps its spec and its phase and bound access modes.
pub(super) fn claim(c: &mut PersistentVolumeClaim) {
    // An old claim may still name its class with the beta annotation.
    let class = c
        .metadata
        .annotations
        .as_mut()
        .and_then(|a| a.remove_entry(crate::domain::storage::BETA_CLASS_ANNOTATION));
    meta(&mut c.metadata);
    c.metadata.annotations = class.map(|kv| std::collections::BTreeMap::from([kv]));
    if let Some(s) = c.status.as_mut() {
        s.conditions = None;
        s.capacity = None;
        s.allocated_resources = None;
        s.allocated_resource_statuses = None;
        s.modify_volume_status = None;
    }
}

/// A StorageClass keeps its name, default-class annotations and provisioner; parameters, mount options and
/// topology are dropped (nothing reads them).
pub(super) fn storage_class(c: &mut k8s_openapi::api::storage::v1::StorageClass) {
    // Which class is the default reads these: the annotations that mark it, and (among several) its age.
    let annotations = c.metadata.annotations.take().map(|mut a| {
        a.retain(|k, _| crate::domain::storage::DEFAULT_CLASS_ANNOTATIONS.contains(&k.as_str()));
        a
    });
    let created = c.metadata.creation_timestamp.take();
    meta(&mut c.metadata);
    c.metadata.annotations = annotations.filter(|a| !a.is_empty());
    c.metadata.creation_timestamp = created;
    c.parameters = None;
    c.mount_options = None;
    c.allowed_topologies = None;
}

/// An autoscaler: its scale-up behavior is already read into the type.
pub(super) fn autoscaler(a: &mut Autoscaler) {
    meta(&mut a.metadata);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::{Footprint, ObjectType, Resource};
    use serde_json::json;

    #[test]
    fn a_trimmed_workload_has_the_same_footprint_and_is_smaller() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"app": "web"},
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "x".repeat(4000)}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "nodeSelector": {"kubernetes.io/hostname": "n1", "disk": "ssd"},
                    "containers": [{"name": "app", "image": "nginx", "env": [{"name": "A", "value": "b".repeat(2000)}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}]}],
                    "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}}]}}},
            "status": {"replicas": 3}});
        // As a watch delivers it: every field (a review's object is decoded without them already).
        let Ok(Resource::Workload(mut w)) = ObjectType::Deployment.decode_every_field(&d) else {
            panic!()
        };
        let before = Footprint::of(&w).unwrap();
        let size_before = serde_json::to_vec(&w.to_json().unwrap()).unwrap().len();
        workload(&mut w);
        let after = Footprint::of(&w).unwrap();
        assert_eq!(before.pods, after.pods);
        assert_eq!(before.claims, after.claims);
        assert_eq!(before.placement, after.placement);
        assert_eq!(before.rollout, after.rollout);
        assert_eq!(before.labels, after.labels);
        let size_after = serde_json::to_vec(&w.to_json().unwrap()).unwrap().len();
        assert!(size_after * 10 < size_before, "{size_after} vs {size_before}");
    }
}
