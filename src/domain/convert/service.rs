//! The headless Service a StatefulSet names in `serviceName`, and HPAs retargeted to the StatefulSet.
//!
//! See <https://kubernetes.io/docs/concepts/services-networking/service/#headless-services>.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The Service to create (`None` when one of `services` is reused) and the name of the reused one.
pub(super) fn headless(
    name: &str,
    namespace: &str,
    pod_labels: &BTreeMap<String, String>,
    pod: &PodSpec,
    services: &[Service],
) -> (Option<Service>, Option<String>) {
    let reusable = services.iter().find(|s| {
        let in_namespace = s.metadata.namespace.as_deref().is_none_or(|n| n == namespace);
        let spec = s.spec.as_ref();
        let is_headless = spec.and_then(|s| s.cluster_ip.as_deref()) == Some("None");
        let selector = spec.and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty());
        let selects = selector.is_some_and(|sel| sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v)));
        in_namespace && is_headless && selects
    });
    if let Some(s) = reusable {
        return (None, s.metadata.name.clone());
    }
    let mut ports: Vec<ServicePort> = Vec::new();
    for port in pod.containers.iter().flat_map(|c| c.ports.iter().flatten()) {
        let protocol = port.protocol.clone().unwrap_or_else(|| "TCP".to_owned());
        if ports
            .iter()
            .any(|p| p.port == port.container_port && p.protocol.as_deref() == Some(&protocol))
        {
            continue;
        }
        ports.push(ServicePort {
            name: Some(
                port.name
                    .clone()
                    .unwrap_or_else(|| format!("{}-{}", protocol.to_lowercase(), port.container_port)),
            ),
            port: port.container_port,
            target_port: Some(IntOrString::Int(port.container_port)),
            protocol: Some(protocol),
            ..ServicePort::default()
        });
    }
    let service = Service {
        metadata: ObjectMeta {
            name: Some(format!("{name}-headless")),
            namespace: Some(namespace.to_owned()),
            labels: (!pod_labels.is_empty()).then(|| pod_labels.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".to_owned()),
            selector: (!pod_labels.is_empty()).then(|| pod_labels.clone()),
            ports: (!ports.is_empty()).then_some(ports),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    (Some(service), None)
}

/// An object as read from the API server without what the server sets (status, uid, resourceVersion,
/// timestamps, generation, managedFields) and kubectl's last-applied annotation: what a user writes.
pub(crate) fn strip_server_set(object: &mut serde_json::Value) {
    if let Some(obj) = object.as_object_mut() {
        obj.remove("status");
    }
    let Some(meta) = object["metadata"].as_object_mut() else {
        return;
    };
    for server_set in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "selfLink",
    ] {
        meta.remove(server_set);
    }
    if let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut()) {
        annotations.remove(crate::domain::workload::LAST_APPLIED);
        if annotations.is_empty() {
            meta.remove("annotations");
        }
    }
}

/// The HPAs (any `autoscaling` version, as written) whose scaleTargetRef is the Deployment, pointed at
/// the StatefulSet of the same name; server-set metadata and status dropped.
pub(super) fn retarget(name: &str, namespace: &str, hpas: &[serde_json::Value]) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for hpa in hpas {
        let target = &hpa["spec"]["scaleTargetRef"];
        let ns = hpa["metadata"]["namespace"].as_str().unwrap_or(namespace);
        let is_ours = target["kind"] == "Deployment"
            && target["name"] == name
            && ns == namespace
            && target["apiVersion"].as_str().is_none_or(|v| v == "apps/v1");
        if !is_ours {
            continue;
        }
        let mut hpa = hpa.clone();
        strip_server_set(&mut hpa);
        // The v1 API's record of v2 fields, which the version written carries itself.
        if let Some(meta) = hpa["metadata"].as_object_mut()
            && let Some(annotations) = meta.get_mut("annotations").and_then(|a| a.as_object_mut())
        {
            annotations.retain(|k, _| !k.starts_with("autoscaling.alpha.kubernetes.io/"));
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
        hpa["spec"]["scaleTargetRef"] = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "name": name,
        });
        out.push(hpa);
    }
    out
}
