//! Self-managed TLS (`--self-managed`, the chart's `tls.mode: selfManaged`): what `serve --tls-secret`
//! may touch, by name wherever Kubernetes allows it. The chart's `volguard.tlsRoleRules` and
//! `volguard.tlsClusterRoleRules` render the same (compared in `tests/e2e/chart_render.rs`).
//!
//! `create` cannot be limited by resourceNames (the authorizer sees no name on a create), so it is
//! granted on secrets and leases in volguard's namespace. `list` and `watch` can: volguard watches the
//! Secret with a `metadata.name` field selector, which the API server authorizes as that name.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::Options;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn rule(group: &str, resources: &[&str], names: Option<&[String]>, verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(strings(&[group])),
        resources: Some(strings(resources)),
        resource_names: names.map(<[String]>::to_vec),
        verbs: strings(verbs),
        ..PolicyRule::default()
    }
}

/// The Secret and the Lease, in volguard's namespace.
pub(crate) fn role_rules(o: &Options) -> Vec<PolicyRule> {
    let secret = [o.tls_secret()];
    let lease = [o.name.clone()];
    vec![
        rule(
            "",
            &["secrets"],
            Some(&secret),
            &["get", "list", "watch", "update", "patch"],
        ),
        rule("", &["secrets"], None, &["create"]),
        rule(
            "coordination.k8s.io",
            &["leases"],
            Some(&lease),
            &["get", "update", "patch"],
        ),
        rule("coordination.k8s.io", &["leases"], None, &["create"]),
    ]
}

/// volguard's own two webhook configurations: their webhooks and caBundle, and deleting them
/// (`volguard unregister`, the chart's pre-delete hook).
pub(crate) fn cluster_role_rules(o: &Options) -> Vec<PolicyRule> {
    vec![rule(
        "admissionregistration.k8s.io",
        &["validatingwebhookconfigurations", "mutatingwebhookconfigurations"],
        Some(std::slice::from_ref(&o.name)),
        &["get", "patch", "delete"],
    )]
}

/// The Role, ClusterRole and their bindings, all named `NAME-tls`.
#[derive(Clone, Debug)]
pub struct TlsRbac {
    /// The Secret and the Lease.
    pub role: Role,
    /// Grants it to the service account.
    pub role_binding: RoleBinding,
    /// The webhooks' caBundle.
    pub cluster_role: ClusterRole,
    /// Grants it to the service account.
    pub cluster_role_binding: ClusterRoleBinding,
}

pub(super) fn rbac(o: &Options) -> TlsRbac {
    let name = format!("{}-tls", o.name);
    let subject = Subject {
        kind: "ServiceAccount".to_owned(),
        name: o.name.clone(),
        namespace: Some(o.namespace.clone()),
        ..Subject::default()
    };
    let role_ref = |kind: &str| RoleRef {
        api_group: "rbac.authorization.k8s.io".to_owned(),
        kind: kind.to_owned(),
        name: name.clone(),
    };
    TlsRbac {
        role: Role {
            metadata: o.meta(&name, true),
            rules: Some(role_rules(o)),
        },
        role_binding: RoleBinding {
            metadata: o.meta(&name, true),
            role_ref: role_ref("Role"),
            subjects: Some(vec![subject.clone()]),
        },
        cluster_role: ClusterRole {
            metadata: o.meta(&name, false),
            rules: Some(cluster_role_rules(o)),
            ..ClusterRole::default()
        },
        cluster_role_binding: ClusterRoleBinding {
            metadata: o.meta(&name, false),
            role_ref: role_ref("ClusterRole"),
            subjects: Some(vec![subject]),
        },
    }
}

/// `serve`'s flags for self-managed TLS, as the chart passes them.
pub(super) fn serve_args(o: &Options) -> Vec<String> {
    vec![
        format!("--tls-secret={}/{}", o.namespace, o.tls_secret()),
        format!("--service={}", o.name),
        format!("--validating-webhook={}", o.name),
        format!("--mutating-webhook={}", o.name),
        format!("--lease-name={}", o.name),
        "--lease-identity=$(POD_NAME)".to_owned(),
    ]
}
