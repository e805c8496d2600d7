//! Policies: which objects a `VolumePolicy` selects, what action each rule's findings get, and what it
//! asks to repair. The decision that applies them is `crate::decision`.

mod load;
pub mod model;
pub mod mutation;
pub mod schema;
mod select;

pub(crate) use load::BUILTIN_SOURCE;
pub use load::{BUILTIN_POLICY, LoadError, load_path, load_str};
pub use model::{Action, FailureMode};
pub use select::Target;

use crate::domain::rules::{RuleId, RuleParams};

/// A loaded, validated policy: it can only be built by the loader.
#[derive(Clone, Debug)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    /// Where it was loaded from.
    pub source: String,
    pub(crate) select: select::Criteria,
    pub(crate) exclude: Option<select::Criteria>,
    pub(crate) default_action: Action,
    pub(crate) settings: Vec<(RuleId, Action)>,
    pub(crate) params: RuleParams,
    pub(crate) mutation: mutation::MutationPolicy,
    /// What to do when a lookup fails.
    pub failure_mode: FailureMode,
    pub(crate) exceptions: Exceptions,
}

/// Where a policy lets an object skip rules (`volguard.io/skip`).
#[derive(Clone, Debug)]
pub(crate) struct Exceptions {
    /// `spec.allowExceptions`.
    pub allowed: bool,
    /// Rules whose own `allowExceptions` is set.
    pub rules: Vec<(RuleId, bool)>,
}

impl Default for Exceptions {
    fn default() -> Self {
        Self {
            allowed: true,
            rules: Vec::new(),
        }
    }
}

impl Policy {
    /// The action this policy gives a rule's findings.
    pub fn action(&self, rule: RuleId) -> Action {
        match rule {
            RuleId::LookupFailed => match self.failure_mode {
                FailureMode::Fail => Action::Deny,
                FailureMode::Ignore => Action::Warn,
            },
            // An exception that cannot be honoured is never itself excepted or softened.
            RuleId::InvalidSkip => Action::Deny,
            _ => self
                .settings
                .iter()
                .find(|(r, _)| *r == rule)
                .map(|(_, a)| *a)
                .unwrap_or(match rule {
                    RuleId::StatelessDeployment => Action::Off,
                    _ => self.default_action,
                }),
        }
    }

    /// Whether this policy lets an object it selects skip `rule` with a `volguard.io/skip` annotation.
    pub fn allows_exception(&self, rule: RuleId) -> bool {
        self.exceptions
            .rules
            .iter()
            .find(|(r, _)| *r == rule)
            .map_or(self.exceptions.allowed, |(_, allowed)| *allowed)
    }

    /// Whether the policy applies to the target.
    pub fn selects(&self, target: &Target<'_>) -> bool {
        self.select.holds_for(target)
            && !self
                .exclude
                .as_ref()
                .is_some_and(|e| !e.is_empty() && e.holds_for(target))
    }
}

/// Every loaded policy; each one that selects an object applies, and the strictest action wins.
#[derive(Clone, Debug)]
pub struct PolicySet {
    policies: Vec<Policy>,
    /// What every policy says provisioners give, merged once at load ([`PolicySet::provisioners`]).
    provisioners: crate::domain::storage::ProvisionerTable,
}

impl PolicySet {
    /// The policy compiled into the binary (`policies/default.yaml`).
    pub fn builtin() -> Result<Self, LoadError> {
        load_str(BUILTIN_POLICY, BUILTIN_SOURCE).map(Self::new)
    }

    /// A set of loaded policies.
    pub(crate) fn new(policies: Vec<Policy>) -> Self {
        let mut provisioners = crate::domain::storage::ProvisionerTable::default();
        for p in &policies {
            for e in &p.params.provisioners.entries {
                if !provisioners
                    .entries
                    .iter()
                    .any(|t| t.provisioner == e.provisioner)
                {
                    provisioners.entries.push(e.clone());
                }
            }
        }
        Self {
            policies,
            provisioners,
        }
    }

    /// The policies, in load order.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The strictest failure mode of the policies that select a resource by its own kind and labels
    /// (None when no policy selects it): what to do when it cannot be judged at all.
    pub(crate) fn failure_mode_for(
        &self,
        resource: &crate::domain::workload::Resource,
    ) -> Option<FailureMode> {
        let object = resource.object_ref();
        let target = Target {
            kinds: vec![object.kind],
            namespace: &object.namespace,
            labels: resource.metadata().labels.as_ref(),
        };
        self.selecting(&target).map(|p| p.failure_mode).min()
    }

    /// What every policy says provisioners give, over the built-in table (the first policy to list a
    /// provisioner wins): for what is said of a claim whatever policy selects its workloads.
    pub(crate) fn provisioners(&self) -> &crate::domain::storage::ProvisionerTable {
        &self.provisioners
    }

    /// The policies that select the target.
    pub(crate) fn selecting<'a>(&'a self, target: &'a Target<'a>) -> impl Iterator<Item = &'a Policy> + 'a {
        self.policies.iter().filter(move |p| p.selects(target))
    }
}
