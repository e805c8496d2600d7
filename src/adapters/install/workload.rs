//! The workload half of the install: identity, RBAC, the policy ConfigMap, the Deployment, its
//! PodDisruptionBudget and Service.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource,
    HTTPGetAction, ObjectFieldSelector, PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec,
    PodTemplateSpec, Probe, ResourceRequirements, SeccompProfile, SecretVolumeSource, SecurityContext,
    Service, ServiceAccount, ServicePort, ServiceSpec, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Options, Trust};
use crate::domain::policy::BUILTIN_POLICY;
use crate::domain::workload::KINDS;

/// Where the policy ConfigMap is mounted, as a directory: a ConfigMap update swaps its `..data` symlink,
/// which the server's directory watch sees (a `subPath` mount would never update).
pub(crate) const POLICY_MOUNT: &str = "/etc/volguard/policy";
/// Where the TLS Secret is mounted, as a directory, for the same reason.
pub(crate) const TLS_MOUNT: &str = "/etc/volguard/tls";
/// The distroless `nonroot` user.
const NONROOT: i64 = 65532;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// What `volguard serve` reads from the cluster, from the table of kinds: every kind it caches (claims,
/// every workload kind, bare pods, autoscalers), per API group. Read-only, and nothing else.
pub(crate) fn cluster_role_rules() -> Vec<PolicyRule> {
    let mut rules: Vec<PolicyRule> = Vec::new();
    for k in KINDS.iter().filter(|k| k.watch.is_some()) {
        let Some(resource) = k.resource else { continue };
        match rules
            .iter_mut()
            .find(|r| r.api_groups.as_deref() == Some(&[k.group.to_owned()][..]))
        {
            Some(rule) => rule
                .resources
                .get_or_insert_with(Vec::new)
                .push(resource.to_owned()),
            None => rules.push(PolicyRule {
                api_groups: Some(strings(&[k.group])),
                resources: Some(strings(&[resource])),
                verbs: strings(&["get", "list", "watch"]),
                ..PolicyRule::default()
            }),
        }
    }
    rules
}

pub(super) fn service_account(o: &Options) -> ServiceAccount {
    ServiceAccount {
        metadata: o.meta(&o.name, true),
        ..ServiceAccount::default()
    }
}

pub(super) fn cluster_role(o: &Options) -> ClusterRole {
    ClusterRole {
        metadata: o.meta(&o.name, false),
        rules: Some(cluster_role_rules()),
        ..ClusterRole::default()
    }
}

pub(super) fn cluster_role_binding(o: &Options) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: o.meta(&o.name, false),
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".to_owned(),
            kind: "ClusterRole".to_owned(),
            name: o.name.clone(),
        },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".to_owned(),
            name: o.name.clone(),
            namespace: Some(o.namespace.clone()),
            ..Subject::default()
        }]),
    }
}

pub(super) fn policy(o: &Options) -> ConfigMap {
    ConfigMap {
        metadata: o.meta(&o.policy_config_map(), true),
        data: Some(BTreeMap::from([(
            "default.yaml".to_owned(),
            BUILTIN_POLICY.to_owned(),
        )])),
        ..ConfigMap::default()
    }
}

fn probe(path: &str, failure_threshold: i32) -> Probe {
    Probe {
        http_get: Some(HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::String("https".to_owned()),
            scheme: Some("HTTPS".to_owned()),
            ..HTTPGetAction::default()
        }),
        period_seconds: Some(10),
        timeout_seconds: Some(2),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    }
}

/// Readiness is `/readyz` (policy loaded, certificate loaded, caches synced), liveness is `/healthz`;
/// liveness gets more slack so a slow cache sync never restarts a pod.
pub fn probes() -> (Probe, Probe) {
    (probe("/readyz", 3), probe("/healthz", 6))
}

/// Non-root, read-only root, no privilege escalation, no capabilities, the runtime's seccomp profile.
pub(crate) fn container_security_context() -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(NONROOT),
        run_as_group: Some(NONROOT),
        read_only_root_filesystem: Some(true),
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities {
            drop: Some(strings(&["ALL"])),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        ..SeccompProfile::default()
    }
}

fn quantities(cpu: &str, memory: &str) -> BTreeMap<String, Quantity> {
    BTreeMap::from([
        ("cpu".to_owned(), Quantity(cpu.to_owned())),
        ("memory".to_owned(), Quantity(memory.to_owned())),
    ])
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.to_owned(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

fn env(o: &Options) -> Vec<EnvVar> {
    let mut env = vec![field_env("POD_IP", "status.podIP")];
    if o.trust == Trust::SelfManaged {
        // The Lease holder's identity.
        env.push(field_env("POD_NAME", "metadata.name"));
    }
    env
}

fn args(o: &Options) -> Vec<String> {
    let mut args = vec![
        "serve".to_owned(),
        "--addr=$(POD_IP):8443".to_owned(),
        "--metrics-addr=$(POD_IP):9090".to_owned(),
    ];
    if o.trust == Trust::SelfManaged {
        args.extend(super::tls::serve_args(o));
    } else {
        args.push(format!("--tls-cert={TLS_MOUNT}/tls.crt"));
        args.push(format!("--tls-key={TLS_MOUNT}/tls.key"));
    }
    args.push(format!("--policy={POLICY_MOUNT}"));
    args.push("--log-format=json".to_owned());
    args
}

pub(super) fn deployment(o: &Options) -> Deployment {
    let (readiness, liveness) = probes();
    let selector = LabelSelector {
        match_labels: Some(o.selector_labels()),
        ..LabelSelector::default()
    };
    let container = Container {
        name: "volguard".to_owned(),
        image: Some(o.image.clone()),
        image_pull_policy: Some("IfNotPresent".to_owned()),
        // Both listeners on the pod's own IP (from the downward API): what the Service, the kubelet's
        // probes and Prometheus reach, and nothing else.
        env: Some(env(o)),
        args: Some(args(o)),
        ports: Some(vec![
            ContainerPort {
                name: Some("https".to_owned()),
                container_port: 8443,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
            ContainerPort {
                name: Some("metrics".to_owned()),
                container_port: 9090,
                protocol: Some("TCP".to_owned()),
                ..ContainerPort::default()
            },
        ]),
        readiness_probe: Some(readiness),
        liveness_probe: Some(liveness),
        resources: Some(ResourceRequirements {
            requests: Some(quantities("50m", "64Mi")),
            limits: Some(quantities("500m", "256Mi")),
            ..ResourceRequirements::default()
        }),
        security_context: Some(container_security_context()),
        volume_mounts: Some(
            [
                Some(VolumeMount {
                    name: "policy".to_owned(),
                    mount_path: POLICY_MOUNT.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                }),
                // Self-managed: read from the API server, not mounted.
                (o.trust != Trust::SelfManaged).then(|| VolumeMount {
                    name: "tls".to_owned(),
                    mount_path: TLS_MOUNT.to_owned(),
                    read_only: Some(true),
                    ..VolumeMount::default()
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        ..Container::default()
    };
    let pod = PodSpec {
        service_account_name: Some(o.name.clone()),
        // Reviews in flight get the server's 15 s grace period, with room to spare.
        termination_grace_period_seconds: Some(30),
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        }),
        // Spread replicas over nodes, preferred rather than required so a one-node cluster still installs.
        affinity: Some(Affinity {
            pod_anti_affinity: Some(PodAntiAffinity {
                preferred_during_scheduling_ignored_during_execution: Some(vec![WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(selector.clone()),
                        topology_key: "kubernetes.io/hostname".to_owned(),
                        ..PodAffinityTerm::default()
                    },
                }]),
                ..PodAntiAffinity::default()
            }),
            ..Affinity::default()
        }),
        containers: vec![container],
        volumes: Some(
            [
                Some(Volume {
                    name: "policy".to_owned(),
                    config_map: Some(ConfigMapVolumeSource {
                        name: o.policy_config_map(),
                        ..ConfigMapVolumeSource::default()
                    }),
                    ..Volume::default()
                }),
                (o.trust != Trust::SelfManaged).then(|| Volume {
                    name: "tls".to_owned(),
                    secret: Some(SecretVolumeSource {
                        secret_name: Some(o.tls_secret()),
                        ..SecretVolumeSource::default()
                    }),
                    ..Volume::default()
                }),
            ]
            .into_iter()
            .flatten()
            .collect(),
        ),
        ..PodSpec::default()
    };
    Deployment {
        metadata: o.meta(&o.name, true),
        spec: Some(DeploymentSpec {
            replicas: Some(o.replicas),
            selector: selector.clone(),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(o.selector_labels()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub(super) fn disruption_budget(o: &Options) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: o.meta(&o.name, true),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(o.selector_labels()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

pub(super) fn service(o: &Options) -> Service {
    let port = |name: &str, port: i32| ServicePort {
        name: Some(name.to_owned()),
        port,
        target_port: Some(IntOrString::String(name.to_owned())),
        protocol: Some("TCP".to_owned()),
        ..ServicePort::default()
    };
    Service {
        metadata: o.meta(&o.name, true),
        spec: Some(ServiceSpec {
            selector: Some(o.selector_labels()),
            ports: Some(vec![port("https", 443), port("metrics", 9090)]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}
