//! How much one object may ask of a decision: containers, volumes and volume mounts in its pod spec, and
//! JSON values in all. Over a limit the object is not judged: the policy's failure mode answers, and the
//! message says which limit (and its flag). Real workloads stay far below the defaults; a crafted object
//! with a hundred thousand containers would otherwise cost the server memory and CPU in proportion.

use std::fmt;

use super::{Resource, Workload};

/// The limits on one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ObjectLimits {
    /// Containers, init and ephemeral ones included, in the pod spec.
    pub containers: usize,
    /// Volumes in the pod spec, and volumeClaimTemplates.
    pub volumes: usize,
    /// Volume mounts of all containers together.
    pub mounts: usize,
    /// JSON values in the object (an AdmissionReview's object and oldObject each), managedFields aside:
    /// checked before the object is decoded, in bodies over a few KiB.
    pub values: usize,
}

impl Default for ObjectLimits {
    fn default() -> Self {
        Self {
            containers: 256,
            volumes: 1024,
            mounts: 4096,
            values: 100_000,
        }
    }
}

/// A limit an object goes over.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("it has more than {limit} {what}, the most volguard judges in one object (raise it with {flag})")]
pub struct Exceeded {
    /// What was counted ("volumes").
    pub what: &'static str,
    /// How many were counted: more than the limit, perhaps not all (counting stops past the limit).
    pub count: usize,
    /// The limit.
    pub limit: usize,
    /// The `serve` flag that sets it.
    pub flag: &'static str,
}

/// Which limit, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    /// Containers.
    Containers,
    /// Volumes.
    Volumes,
    /// Volume mounts.
    Mounts,
    /// JSON values.
    Values,
}

impl Limited {
    fn what(self) -> &'static str {
        match self {
            Limited::Containers => "containers",
            Limited::Volumes => "volumes",
            Limited::Mounts => "volume mounts",
            Limited::Values => "JSON values",
        }
    }

    fn flag(self) -> &'static str {
        match self {
            Limited::Containers => "--max-containers",
            Limited::Volumes => "--max-volumes",
            Limited::Mounts => "--max-volume-mounts",
            Limited::Values => "--max-object-values",
        }
    }
}

impl fmt::Display for Limited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.what())
    }
}

impl ObjectLimits {
    /// The limit on `what`.
    pub fn of(&self, what: Limited) -> usize {
        match what {
            Limited::Containers => self.containers,
            Limited::Volumes => self.volumes,
            Limited::Mounts => self.mounts,
            Limited::Values => self.values,
        }
    }

    /// Whether `count` of `what` goes over the limit.
    pub fn check(&self, what: Limited, count: usize) -> Result<(), Exceeded> {
        let limit = self.of(what);
        if count > limit {
            return Err(Exceeded {
                what: what.what(),
                count,
                limit,
                flag: what.flag(),
            });
        }
        Ok(())
    }

    /// Whether a decoded resource goes over a limit (only workloads have a pod spec to count).
    pub(crate) fn check_resource(&self, resource: &Resource) -> Result<(), Exceeded> {
        let Resource::Workload(w) = resource else {
            return Ok(());
        };
        self.check_workload(w)
    }

    /// Whether a workload goes over a limit.
    pub(crate) fn check_workload(&self, w: &Workload) -> Result<(), Exceeded> {
        let Some(spec) = w.pod_spec() else {
            return Ok(());
        };
        let containers = spec.containers.len()
            + spec.init_containers.as_ref().map_or(0, Vec::len)
            + spec.ephemeral_containers.as_ref().map_or(0, Vec::len);
        self.check(Limited::Containers, containers)?;
        let templates = match w {
            Workload::StatefulSet(s) => s
                .spec
                .as_ref()
                .and_then(|s| s.volume_claim_templates.as_ref())
                .map_or(0, Vec::len),
            _ => 0,
        };
        self.check(
            Limited::Volumes,
            spec.volumes.as_ref().map_or(0, Vec::len) + templates,
        )?;
        let mounts = spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
            .map(|c| c.volume_mounts.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
            + spec
                .ephemeral_containers
                .iter()
                .flatten()
                .map(|c| c.volume_mounts.as_ref().map_or(0, Vec::len))
                .sum::<usize>();
        self.check(Limited::Mounts, mounts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::workload::{Decoded, decode};
    use serde_json::json;

    fn deployment(volumes: usize, containers: usize) -> Resource {
        let vs: Vec<_> = (0..volumes)
            .map(|i| json!({"name": format!("v{i}"), "emptyDir": {}}))
            .collect();
        let cs: Vec<_> = (0..containers)
            .map(|i| json!({"name": format!("c{i}"), "image": "i", "volumeMounts": [{"name": "v0", "mountPath": "/a"}]}))
            .collect();
        match decode(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {}, "template": {"spec": {"containers": cs, "volumes": vs}}}}),
        ) {
            Ok(Decoded::Resource(r)) => *r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_limit_names_its_count_and_flag() {
        let limits = ObjectLimits {
            containers: 2,
            volumes: 3,
            mounts: 4,
            values: 10,
        };
        assert_eq!(limits.check_resource(&deployment(3, 2)), Ok(()));
        let e = limits.check_resource(&deployment(4, 1)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "it has more than 3 volumes, the most volguard judges in one object (raise it with --max-volumes)"
        );
        let e = limits.check_resource(&deployment(1, 3)).unwrap_err();
        assert_eq!((e.what, e.count, e.flag), ("containers", 3, "--max-containers"));
        let limits = ObjectLimits { mounts: 1, ..limits };
        let e = limits.check_resource(&deployment(1, 2)).unwrap_err();
        assert_eq!((e.what, e.count), ("volume mounts", 2));
    }
}
