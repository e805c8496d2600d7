//! What common provisioners can give: access modes per volumeMode, from each one's documentation.
//!
//! A provisioner not listed here is unknown: volguard then says nothing about what its classes can give.
//! A policy adds or corrects entries with `spec.provisioners` (see README, "Storage classes").

use super::Modes;

/// One row of the table: a storage system and the provisioner names its classes use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Provisioner {
    /// The storage system, as people call it.
    pub family: &'static str,
    /// The provisioner names of its classes: the CSI driver's, then the in-tree plugin's it replaces.
    pub names: &'static [&'static str],
    /// A name suffix that also matches (Rook names its drivers `<operator namespace>.rbd.csi.ceph.com`).
    pub suffix: Option<&'static str>,
    /// Access modes with `volumeMode: Filesystem` (the default).
    pub filesystem: Modes,
    /// Access modes with `volumeMode: Block` (empty: raw block volumes are not offered).
    pub block: Modes,
    /// A provisioner of the same vendor that gives ReadWriteMany on a filesystem, for suggestions.
    pub shared_alternative: Option<&'static str>,
    /// Where the modes come from.
    pub source: &'static str,
}

const RWO: Modes = Modes::RWO;
const ROX: Modes = Modes::ROX;
const RWX: Modes = Modes::RWX;
const RWOP: Modes = Modes::RWOP;
const NONE: Modes = Modes::EMPTY;

/// The built-in table, in the order README.md lists it.
pub const PROVISIONERS: &[Provisioner] = &[
    Provisioner {
        family: "AWS EBS",
        names: &["ebs.csi.aws.com", "kubernetes.io/aws-ebs"],
        suffix: None,
        filesystem: RWO.or(RWOP),
        // Multi-Attach: io2 volumes, raw block only.
        block: RWO.or(RWOP).or(RWX),
        shared_alternative: Some("efs.csi.aws.com"),
        source: "https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/multi-attach.md",
    },
    Provisioner {
        family: "AWS EFS",
        names: &["efs.csi.aws.com"],
        suffix: None,
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: NONE,
        shared_alternative: None,
        source: "https://github.com/kubernetes-sigs/aws-efs-csi-driver#features",
    },
    Provisioner {
        family: "Google Persistent Disk",
        names: &["pd.csi.storage.gke.io", "kubernetes.io/gce-pd"],
        suffix: None,
        // ReadOnlyMany from a pre-populated disk or snapshot.
        filesystem: RWO.or(ROX).or(RWOP),
        // Multi-writer Hyperdisk, raw block only.
        block: RWO.or(ROX).or(RWX).or(RWOP),
        shared_alternative: Some("filestore.csi.storage.gke.io"),
        source: "https://cloud.google.com/kubernetes-engine/docs/concepts/persistent-volumes#access_modes",
    },
    Provisioner {
        family: "Google Filestore",
        names: &["filestore.csi.storage.gke.io"],
        suffix: None,
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: NONE,
        shared_alternative: None,
        source: "https://cloud.google.com/filestore/docs/csi-driver",
    },
    Provisioner {
        family: "Azure Disk",
        names: &["disk.csi.azure.com", "kubernetes.io/azure-disk"],
        suffix: None,
        filesystem: RWO.or(RWOP),
        // Shared disks (maxShares > 1), raw block only.
        block: RWO.or(RWOP).or(RWX),
        shared_alternative: Some("file.csi.azure.com"),
        source: "https://learn.microsoft.com/en-us/azure/aks/azure-disk-csi",
    },
    Provisioner {
        family: "Azure Files",
        names: &["file.csi.azure.com", "kubernetes.io/azure-file"],
        suffix: None,
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: NONE,
        shared_alternative: None,
        source: "https://learn.microsoft.com/en-us/azure/aks/azure-files-csi",
    },
    Provisioner {
        family: "Ceph RBD (Rook)",
        names: &["rbd.csi.ceph.com", "kubernetes.io/rbd"],
        suffix: Some(".rbd.csi.ceph.com"),
        filesystem: RWO.or(ROX).or(RWOP),
        block: RWO.or(ROX).or(RWX).or(RWOP),
        shared_alternative: Some("cephfs.csi.ceph.com"),
        source: "https://github.com/ceph/ceph-csi/blob/devel/README.md#support-matrix",
    },
    Provisioner {
        family: "CephFS (Rook)",
        names: &["cephfs.csi.ceph.com", "kubernetes.io/cephfs"],
        suffix: Some(".cephfs.csi.ceph.com"),
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: NONE,
        shared_alternative: None,
        source: "https://github.com/ceph/ceph-csi/blob/devel/README.md#support-matrix",
    },
    Provisioner {
        family: "NFS (csi-driver-nfs)",
        names: &["nfs.csi.k8s.io"],
        suffix: None,
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: NONE,
        shared_alternative: None,
        source: "https://github.com/kubernetes-csi/csi-driver-nfs",
    },
    Provisioner {
        family: "NFS subdir external provisioner",
        names: &[
            "k8s-sigs.io/nfs-subdir-external-provisioner",
            "cluster.local/nfs-subdir-external-provisioner",
        ],
        suffix: None,
        // Not a CSI driver: no ReadWriteOncePod, which Kubernetes gives CSI volumes only.
        filesystem: RWO.or(ROX).or(RWX),
        block: NONE,
        shared_alternative: None,
        source: "https://github.com/kubernetes-sigs/nfs-subdir-external-provisioner",
    },
    Provisioner {
        family: "Longhorn",
        names: &["driver.longhorn.io"],
        suffix: None,
        // ReadWriteMany through Longhorn's share manager (NFS), on a filesystem only.
        filesystem: RWO.or(RWX).or(RWOP),
        block: RWO.or(RWOP),
        shared_alternative: None,
        source: "https://longhorn.io/docs/latest/nodes-and-volumes/volumes/rwx-volumes/",
    },
    Provisioner {
        family: "local-path",
        names: &["rancher.io/local-path"],
        suffix: None,
        // hostPath volumes, not CSI: no ReadWriteOncePod.
        filesystem: RWO,
        block: NONE,
        shared_alternative: None,
        source: "https://github.com/rancher/local-path-provisioner#usage",
    },
    Provisioner {
        family: "OpenEBS local (hostpath, LVM, ZFS) and Mayastor",
        names: &[
            "openebs.io/local",
            "local.csi.openebs.io",
            "zfs.csi.openebs.io",
            "io.openebs.csi-mayastor",
        ],
        suffix: None,
        filesystem: RWO.or(RWOP),
        block: RWO.or(RWOP),
        shared_alternative: None,
        source: "https://openebs.io/docs/concepts/data-engines",
    },
    Provisioner {
        family: "vSphere CNS",
        names: &["csi.vsphere.vmware.com", "kubernetes.io/vsphere-volume"],
        suffix: None,
        // ReadWriteMany and ReadOnlyMany are vSAN File Services volumes.
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: RWO.or(RWOP),
        shared_alternative: None,
        source: "https://techdocs.broadcom.com/us/en/vmware-cis/vsphere/container-storage-plugin/3-0/getting-started-with-vmware-vsphere-container-storage-plug-in-3-0/vsphere-container-storage-plug-in-concepts/vsphere-functionality-supported-by-vsphere-container-storage-plug-in.html",
    },
    Provisioner {
        family: "Portworx",
        names: &["pxd.portworx.com", "kubernetes.io/portworx-volume"],
        suffix: None,
        // ReadWriteMany with sharedv4 volumes.
        filesystem: RWO.or(ROX).or(RWX).or(RWOP),
        block: RWO.or(RWX).or(RWOP),
        shared_alternative: None,
        source: "https://docs.portworx.com/portworx-enterprise/operations/operate-kubernetes/storage-operations/create-pvcs/create-sharedv4-pvcs",
    },
];

/// The built-in row for a provisioner name, if any.
pub fn builtin(provisioner: &str) -> Option<&'static Provisioner> {
    PROVISIONERS
        .iter()
        .find(|p| p.names.contains(&provisioner) || p.suffix.is_some_and(|s| provisioner.ends_with(s)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_listed_once_and_every_row_offers_read_write_once() {
        let mut seen = std::collections::BTreeSet::new();
        for p in PROVISIONERS {
            for n in p.names {
                assert!(seen.insert(*n), "{n} is listed twice");
                assert_eq!(builtin(n).map(|b| b.family), Some(p.family));
            }
            assert!(p.filesystem.contains(Modes::RWO), "{}", p.family);
            assert!(p.source.starts_with("https://"), "{}", p.family);
            if let Some(alt) = p.shared_alternative {
                let alt = builtin(alt).expect("the alternative is in the table");
                assert!(alt.filesystem.contains(Modes::RWX), "{}", p.family);
            }
        }
    }

    #[test]
    fn rook_drivers_match_by_suffix() {
        let rbd = builtin("rook-ceph.rbd.csi.ceph.com").map(|p| p.family);
        assert_eq!(rbd, Some("Ceph RBD (Rook)"));
        let fs = builtin("storage.cephfs.csi.ceph.com").map(|p| p.family);
        assert_eq!(fs, Some("CephFS (Rook)"));
        assert_eq!(builtin("example.com/nas"), None);
        assert_eq!(builtin("xebs.csi.aws.com"), None);
    }
}
