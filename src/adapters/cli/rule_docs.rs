//! What each rule is, for readers outside volguard: a one-line summary, a paragraph, and the address of
//! its row in README.md's rules table. SARIF's `tool.driver.rules[]` is built from this; JUnit and any
//! later output can reuse it. The paragraphs follow README.md's "Rules" table (tests/cli/sarif.rs checks
//! that every rule id is in that table and that the help address names its heading).

use crate::domain::rules::RuleId;

/// The repository, from Cargo.toml's `repository`.
pub(crate) const REPOSITORY: &str = env!("CARGO_PKG_REPOSITORY");

/// README.md's rules table on the repository's web page (GitHub makes `### Rules` the anchor `#rules`).
pub(crate) fn help_uri() -> String {
    format!("{REPOSITORY}/blob/main/README.md#rules")
}

/// The documentation of one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RuleDoc {
    /// One line: what the rule catches.
    pub(crate) summary: &'static str,
    /// Why it breaks at run time, and what the usual fix is.
    pub(crate) description: &'static str,
}

/// The documentation of `rule`.
pub(crate) fn doc(rule: RuleId) -> RuleDoc {
    let (summary, description) = match rule {
        RuleId::SharedRwoClaim => (
            "A ReadWriteOnce or ReadWriteOncePod volume shared by pods that may run on different nodes.",
            "The pods that may run at the same time, of every workload that mounts one claim (or one inline \
             single-attach disk), cannot share it: a ReadWriteOnce volume attaches to one node at a time, so a \
             pod on a second node hangs in ContainerCreating with a Multi-Attach error; on ReadWriteOncePod \
             every second pod hangs. Give each replica its own claim (a StatefulSet's volumeClaimTemplates), \
             use storage that offers ReadWriteMany, or keep one replica with strategy Recreate.",
        ),
        RuleId::RolloutAttachDeadlock => (
            "A one-replica Deployment whose rolling update waits on the volume its old pod holds.",
            "With RollingUpdate, maxSurge above 0 and maxUnavailable 0, the new pod starts before the old \
             one stops and waits forever for the ReadWriteOnce (or ReadWriteOncePod) volume the old pod \
             holds, so the rollout never completes. Use strategy Recreate, or maxUnavailable: 1.",
        ),
        RuleId::StatefulsetClaimTemplateModes => (
            "A StatefulSet volumeClaimTemplate with an access mode the policy does not allow.",
            "Each StatefulSet replica already gets its own claim from a volumeClaimTemplate, so a shared \
             access mode buys nothing and limits the workload to the storage that offers it. Ask for one of \
             the policy's allowedAccessModes (ReadWriteOnce or ReadWriteOncePod by default).",
        ),
        RuleId::StatefulsetSharedClaim => (
            "A multi-replica StatefulSet sharing one claim from its pod template.",
            "A StatefulSet with two or more replicas that mounts one claim read-write from its pod template \
             makes every replica share one volume instead of owning one. Move the claim to \
             volumeClaimTemplates.",
        ),
        RuleId::StatefulsetPolicyTemplate => (
            "A StatefulSet without the claim template its policy declares, or with one that contradicts it.",
            "The policy's spec.mutate.claimTemplates declares a volumeClaimTemplate this StatefulSet lacks, \
             contradicts (access modes, storage class), or cannot receive because its mount path is taken. \
             The API server does not let an existing StatefulSet's templates change: the fix explains how to \
             migrate.",
        ),
        RuleId::SharedClaimWritable => (
            "A ReadOnlyMany claim mounted read-write by pods that share it.",
            "A ReadOnlyMany volume is attached read-only on every node, so a container that mounts it \
             read-write fails to start or its writes fail. Mount it with readOnly: true, or use storage that \
             offers ReadWriteMany.",
        ),
        RuleId::StatelessDeployment => (
            "A persistent claim in a Deployment (opt-in).",
            "The policy asks Deployments to be stateless: a persistentVolumeClaim volume in a Deployment is \
             reported. Run stateful workloads as StatefulSets.",
        ),
        RuleId::MissingClaim => (
            "A mounted claim that does not exist in the object's namespace.",
            "The pods stay Pending until the claim exists, and its access modes cannot be checked. Create \
             the claim (in the cluster, or in the files given to volguard check), or fix its name.",
        ),
        RuleId::UnsupportedAccessMode => (
            "A claim asking its StorageClass for an access mode the class's provisioner cannot give.",
            "A claim, a StatefulSet volumeClaimTemplate or a generic ephemeral volume asks for an access mode \
             (in its volumeMode) that its StorageClass's provisioner does not offer, ReadWriteMany on a block \
             disk with a filesystem say: the claim never binds and every pod on it stays Pending. Ask for a \
             mode the class offers, or use a class whose storage offers this one.",
        ),
        RuleId::UnbindableClaim => (
            "A workload mounting a claim its StorageClass cannot provision as asked.",
            "The workload mounts a claim (not bound yet) whose access mode its StorageClass's provisioner \
             cannot give, so the claim never binds and the workload's pods stay Pending. Fix the claim's \
             access modes or storage class.",
        ),
        RuleId::LookupFailed => (
            "A claim or workload that could not be looked up.",
            "A claim, the other workloads mounting it, or an autoscaler's target could not be looked up (a \
             cache not yet synced, an API server out of reach). The action comes from the policy's \
             failureMode.",
        ),
        RuleId::InvalidSkip => (
            "A volguard.io/skip annotation that cannot be honoured.",
            "A volguard.io/skip annotation without a volguard.io/skip-reason, or naming a rule it cannot skip, \
             is not honoured: the rules it names still apply. Add the reason, or remove the annotation.",
        ),
    };
    RuleDoc { summary, description }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_its_own_summary_and_a_longer_description() {
        let summaries: std::collections::BTreeSet<_> = RuleId::ALL.iter().map(|r| doc(*r).summary).collect();
        assert_eq!(summaries.len(), RuleId::ALL.len());
        for rule in RuleId::ALL {
            let d = doc(rule);
            assert!(d.summary.ends_with('.') && d.description.ends_with('.'), "{rule}");
            assert!(d.description.len() > d.summary.len(), "{rule}");
        }
    }

    #[test]
    fn the_help_uri_points_at_the_readme_rules_heading_of_the_repository() {
        assert_eq!(
            help_uri(),
            "https://github.com/volguard/volguard/blob/main/README.md#rules"
        );
    }
}
