//! Storage-class awareness through `volguard check` and `volguard review`: for every provisioner family of
//! the built-in table, a claim its class can provision (allowed) and one it cannot (denied), with the
//! expectation written into each claim of the fixtures by hand; then what workloads on such claims are told.

use crate::cli_common;

use cli_common::{d, decisions, run, volguard};
use pretty_assertions::assert_eq;
use volguard::domain::storage::provisioners;

const DIR: &str = "tests/fixtures/storage";

/// `(claim, rule ids expected)` from each claim's `volguard.test/expect` annotation, in file order.
fn expected(files: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for f in files {
        for v in documents(f) {
            if v["kind"] != "PersistentVolumeClaim" {
                continue;
            }
            let expect = v["metadata"]["annotations"]["volguard.test/expect"]
                .as_str()
                .unwrap();
            let rules = if expect.is_empty() {
                vec![]
            } else {
                vec![expect.to_owned()]
            };
            out.push((v["metadata"]["name"].as_str().unwrap().to_owned(), rules));
        }
    }
    out
}

/// The documents of a fixture file.
fn documents(file: &str) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(cli_common::root().join(DIR).join(file)).unwrap();
    serde_saphyr::from_multiple(&text).unwrap()
}

#[test]
fn every_provisioner_family_in_both_verdicts() {
    let files = ["classes.yaml", "claims.yaml", "edge-claims.yaml"];
    let paths: Vec<String> = files.iter().map(|f| format!("{DIR}/{f}")).collect();
    let mut args = vec!["check", "-o", "json", "-f"];
    args.extend(paths.iter().map(String::as_str));
    let out = run(volguard(args));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    let got: Vec<(String, String, Vec<String>)> = decisions(&report);
    let want: Vec<(String, String, Vec<String>)> = expected(&files)
        .into_iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|(name, rules)| {
            (
                format!("PersistentVolumeClaim storage/{name}"),
                "Deny".to_owned(),
                rules,
            )
        })
        .collect();
    assert_eq!(got, want);
    // Every family of the built-in table has, in claims.yaml, a claim of one of its classes that is
    // allowed and one that is denied: a family added to the table without fixtures fails here.
    let classes: std::collections::BTreeMap<String, String> = documents("classes.yaml")
        .into_iter()
        .filter(|d| d["kind"] == "StorageClass")
        .map(|d| {
            (
                d["metadata"]["name"].as_str().unwrap().to_owned(),
                d["provisioner"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let denied: Vec<String> = got.iter().map(|(object, _, _)| object.clone()).collect();
    let mut verdicts: std::collections::BTreeMap<&str, (usize, usize)> = std::collections::BTreeMap::new();
    for claim in documents("claims.yaml") {
        let class = &classes[claim["spec"]["storageClassName"].as_str().unwrap()];
        let family = provisioners::builtin(class).unwrap().family;
        let name = format!(
            "PersistentVolumeClaim storage/{}",
            claim["metadata"]["name"].as_str().unwrap()
        );
        let (allowed, refused) = verdicts.entry(family).or_default();
        if denied.contains(&name) {
            *refused += 1;
        } else {
            *allowed += 1;
        }
    }
    for p in provisioners::PROVISIONERS {
        let (allowed, refused) = verdicts.get(p.family).copied().unwrap_or_default();
        assert!(
            allowed > 0 && refused > 0,
            "{}: {allowed} allowed, {refused} denied",
            p.family
        );
    }
    assert_eq!(verdicts.len(), provisioners::PROVISIONERS.len());
    // Each family once denied, plus the edge claim that gets the default class.
    assert_eq!(want.len(), provisioners::PROVISIONERS.len() + 1);
    assert_eq!(report["summary"]["claims"], 35);
    assert_eq!(report["summary"]["skipped"], serde_json::json!({}));
    let ebs = &report["objects"][0]["findings"][0];
    assert_eq!(ebs["accessMode"], "ReadWriteMany");
    assert_eq!(ebs["claim"], "ebs-never-binds");
    assert_eq!(
        ebs["message"],
        "PersistentVolumeClaim storage/ebs-never-binds asks for ReadWriteMany, but class \"gp3\" (ebs.csi.aws.com) \
         cannot give ReadWriteMany with volumeMode: Filesystem; it gives ReadWriteOnce, ReadWriteOncePod (source: \
         https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/multi-attach.md). The claim never \
         binds: it stays Pending, and so does every pod that mounts it."
    );
    assert_eq!(
        ebs["fix"],
        "If one node at a time is enough, ask the claim for ReadWriteOnce only (for one claim per replica, a \
         StatefulSet's volumeClaimTemplates). ebs.csi.aws.com gives ReadWriteMany with volumeMode: Block (a raw \
         device: the application must write to it as one, through volumeDevices). Or name a StorageClass whose \
         provisioner gives ReadWriteMany (for this vendor, efs.csi.aws.com); accessModes and storageClassName \
         cannot change once a claim exists, so create a new claim and move the data."
    );
    let defaulted = report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "defaulted")
        .unwrap();
    assert!(
        defaulted["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("but the default class \"gp2\" (kubernetes.io/aws-ebs) cannot give ReadWriteMany"),
        "{defaulted:#}"
    );
}

#[test]
fn workloads_are_told_what_their_claims_classes_can_give() {
    let out = run(volguard([
        "check",
        "-o",
        "json",
        "-f",
        "tests/fixtures/storage/classes.yaml",
        "tests/fixtures/storage/workloads.yaml",
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(
        decisions(&report),
        [
            d(
                "PersistentVolumeClaim storage/uploads",
                "Deny",
                &["unsupported-access-mode"]
            ),
            d("Deployment storage/uploads", "Deny", &["unbindable-claim"]),
            d("StatefulSet storage/cache", "Deny", &["unsupported-access-mode"]),
            d("Deployment storage/web", "Deny", &["shared-rwo-claim"]),
            d("Deployment storage/wiki", "Deny", &["shared-rwo-claim"]),
        ]
    );
    let finding = |i: usize| report["objects"][i]["findings"][0].clone();
    assert_eq!(
        finding(1)["message"],
        "Deployment storage/uploads mounts claim \"uploads\" (volume \"files\"), which asks for ReadWriteMany, but \
         class \"gp3\" (ebs.csi.aws.com) cannot give ReadWriteMany with volumeMode: Filesystem; it gives \
         ReadWriteOnce, ReadWriteOncePod (source: \
         https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/multi-attach.md). The claim never \
         binds, so these pods stay Pending. Deployment storage/uploads may run 3 pods and relies on ReadWriteMany \
         to share it across nodes."
    );
    assert_eq!(
        finding(2)["message"],
        "StatefulSet storage/cache has volumeClaimTemplate \"data\" asking for ReadWriteOncePod, but class \
         \"local-path\" (rancher.io/local-path) cannot give ReadWriteOncePod with volumeMode: Filesystem; it gives \
         ReadWriteOnce (source: https://github.com/rancher/local-path-provisioner#usage). Each replica's claim never \
         binds, so its pod stays Pending."
    );
    // On EBS, ReadWriteMany is not proposed; the vendor's shared filesystem is.
    let web_fix = finding(3)["fix"].as_str().unwrap().to_owned();
    assert!(
        web_fix.ends_with(
            "If the replicas must share the data, use a claim of a class that gives ReadWriteMany, such as one of \
             efs.csi.aws.com: class \"gp3\" (ebs.csi.aws.com) cannot with volumeMode: Filesystem. Otherwise keep \
             replicas: 1 with strategy: {type: Recreate}."
        ),
        "{web_fix}"
    );
    // On EFS it is, by name.
    let wiki_fix = finding(4)["fix"].as_str().unwrap().to_owned();
    assert!(
        wiki_fix.ends_with(
            "If the replicas must share the data, use a claim that asks class \"efs-sc\" (efs.csi.aws.com) for \
             ReadWriteMany, which it gives (or ReadOnlyMany, mounted readOnly: true, which it gives too). Otherwise \
             keep replicas: 1 with strategy: {type: Recreate}."
        ),
        "{wiki_fix}"
    );
    // Without the classes, volguard cannot tell: the general advice, and no storage finding.
    let blind = run(volguard([
        "check",
        "-o",
        "json",
        "-f",
        "tests/fixtures/storage/workloads.yaml",
    ]));
    let report = blind.json();
    assert_eq!(
        decisions(&report),
        [
            d("Deployment storage/uploads", "Allow", &[]),
            d("StatefulSet storage/cache", "Allow", &[]),
            d("Deployment storage/web", "Deny", &["shared-rwo-claim"]),
            d("Deployment storage/wiki", "Deny", &["shared-rwo-claim"]),
        ]
    );
    let fix = report["objects"][2]["findings"][0]["fix"].as_str().unwrap();
    assert!(fix.contains(
        "use a claim whose storage offers ReadWriteMany (or ReadOnlyMany, mounted readOnly: true)"
    ));
}

#[test]
fn a_policy_corrects_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("ebs-multi-attach.yaml");
    std::fs::write(
        &policy,
        "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: our-storage\nspec:\n  \
         provisioners:\n  - name: ebs.csi.aws.com\n    filesystem: [ReadWriteOnce, ReadWriteMany]\n  - name: \
         example.com/nas\n    filesystem: [ReadWriteOnce]\n",
    )
    .unwrap();
    let out = run(volguard([
        "check".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "--policy".as_ref(),
        policy.as_os_str(),
        "-f".as_ref(),
        "tests/fixtures/storage/classes.yaml".as_ref(),
        "tests/fixtures/storage/edge-claims.yaml".as_ref(),
        "tests/fixtures/storage/workloads.yaml".as_ref(),
    ]));
    let report = out.json();
    let storage: Vec<_> = decisions(&report)
        .into_iter()
        .filter(|(_, _, rules)| {
            rules
                .iter()
                .any(|r| r.contains("access-mode") || r.contains("unbindable"))
        })
        .collect();
    // EBS now shares a filesystem (per this policy); gp2 (in-tree EBS) is a name of its own and still not;
    // the NAS is known now, and cannot.
    assert_eq!(
        storage,
        [
            d(
                "PersistentVolumeClaim storage/defaulted",
                "Deny",
                &["unsupported-access-mode"]
            ),
            d(
                "PersistentVolumeClaim storage/unknown-provisioner",
                "Deny",
                &["unsupported-access-mode"]
            ),
            d("StatefulSet storage/cache", "Deny", &["unsupported-access-mode"]),
        ]
    );
    let nas = &report["objects"][1]["findings"][0]["message"];
    assert!(nas.as_str().unwrap().ends_with("it gives ReadWriteOnce (source: policy \"our-storage\"). The claim never binds: it stays Pending, and so does every pod that mounts it."), "{nas}");
}

#[test]
fn a_policy_with_a_provisioner_twice_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("twice.yaml");
    let check = |text: &str| {
        std::fs::write(&policy, text).unwrap();
        run(volguard([
            "check".as_ref(),
            "--policy".as_ref(),
            policy.as_os_str(),
            "-f".as_ref(),
            "tests/fixtures/storage/classes.yaml".as_ref(),
        ]))
    };
    let out = check(
        "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: twice\nspec:\n  provisioners:\n  \
         - name: example.com/nas\n    filesystem: [ReadWriteMany]\n  - name: example.com/nas\n    filesystem: \
         [ReadWriteOnce]\n  - name: x\n    filesytem: []\n",
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("twice.yaml:12:5: unknown field `filesytem`, expected one of name, filesystem, block"),
        "{}",
        out.stderr
    );
    let out = check(
        "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: twice\nspec:\n  provisioners:\n  \
         - name: example.com/nas\n    filesystem: [ReadWriteMany]\n  - name: example.com/nas\n",
    );
    assert_eq!(out.code, 2);
    assert!(
        out.stderr
            .contains("twice.yaml:9:11: provisioner \"example.com/nas\" is listed twice"),
        "{}",
        out.stderr
    );
}

/// The captured PVC create, asking for `modes` of class gp3 (EBS), as the webhook would receive it.
fn pvc_review(modes: &[&str]) -> tempfile::NamedTempFile {
    let text =
        std::fs::read_to_string(cli_common::root().join("tests/fixtures/reviews/create-pvc.json")).unwrap();
    let mut review: serde_json::Value = serde_json::from_str(&text).unwrap();
    let spec = &mut review["request"]["object"]["spec"];
    spec["accessModes"] = serde_json::json!(modes);
    spec["storageClassName"] = serde_json::json!("gp3");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(&review).unwrap()).unwrap();
    file
}

#[test]
fn review_denies_a_claim_its_class_cannot_provision() {
    let classes = "tests/fixtures/storage/classes.yaml";
    let rwx = pvc_review(&["ReadWriteMany"]);
    let out = run(volguard([
        "review".as_ref(),
        rwx.path().as_os_str(),
        "-f".as_ref(),
        classes.as_ref(),
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let response = &out.json()["response"];
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "volguard denied PersistentVolumeClaim shop/web-data:\n[unsupported-access-mode] PersistentVolumeClaim \
             shop/web-data asks for ReadWriteMany, but class \"gp3\" (ebs.csi.aws.com) cannot give ReadWriteMany"
        ),
        "{message}"
    );
    let rwo = pvc_review(&["ReadWriteOnce"]);
    let out = run(volguard([
        "review".as_ref(),
        rwo.path().as_os_str(),
        "-f".as_ref(),
        classes.as_ref(),
    ]));
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.json()["response"]["allowed"], true);
    // Without the class at hand nothing can be said: allowed.
    let out = run(volguard(["review".as_ref(), rwx.path().as_os_str()]));
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_claim_created_under_its_workloads_is_told_what_its_class_can_share() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yaml");
    let deployment =
        std::fs::read_to_string(cli_common::root().join("tests/fixtures/storage/workloads.yaml"))
            .unwrap()
            .split("\n---\n")
            .find(|d| d.contains("name: web\n") && d.contains("kind: Deployment"))
            .unwrap()
            .replace("namespace: storage", "namespace: shop");
    std::fs::write(&web, deployment).unwrap();
    let fix_for = |class: &str| {
        let review = pvc_review(&["ReadWriteOnce"]);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(review.path()).unwrap()).unwrap();
        v["request"]["object"]["spec"]["storageClassName"] = serde_json::json!(class);
        std::fs::write(review.path(), serde_json::to_vec(&v).unwrap()).unwrap();
        let out = run(volguard([
            "review".as_ref(),
            review.path().as_os_str(),
            "-f".as_ref(),
            "tests/fixtures/storage/classes.yaml".as_ref(),
            "-f".as_ref(),
            web.as_os_str(),
        ]));
        assert_eq!(out.code, 1, "{}", out.stderr);
        let message = out.json()["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            message.contains(
                "[shared-rwo-claim] PersistentVolumeClaim shop/web-data has access mode ReadWriteOnce"
            ),
            "{message}"
        );
        message
    };
    let ebs = fix_for("gp3");
    assert!(
        ebs.contains(
            "Create the claim with a class that gives ReadWriteMany, such as one of efs.csi.aws.com (class \"gp3\" \
             (ebs.csi.aws.com) gives neither ReadWriteMany nor ReadOnlyMany with volumeMode: Filesystem), or change \
             the workloads before creating it"
        ),
        "{ebs}"
    );
    let efs = fix_for("efs-sc");
    assert!(
        efs.contains(
            "Create the claim with an access mode its workloads can share, which class \"efs-sc\" (efs.csi.aws.com) \
             gives: ReadWriteMany, or ReadOnlyMany mounted readOnly: true, or change the workloads"
        ),
        "{efs}"
    );
    let pd = fix_for("standard-rwo");
    assert!(
        pd.contains(
            "Create the claim with ReadOnlyMany, mounted readOnly: true, which class \"standard-rwo\" \
             (pd.csi.storage.gke.io) gives (ReadWriteMany it cannot, with volumeMode: Filesystem), or change"
        ),
        "{pd}"
    );
}

#[test]
fn of_two_default_classes_in_the_files_the_newest_is_the_default_as_in_the_cluster() {
    // "a-ebs" comes first by name, "z-efs" is newer: Kubernetes (1.26+) and the cluster cache take the
    // newest, so must the files. An EFS claim may be ReadWriteMany; an EBS one may not.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("classes-and-claim.yaml");
    let class = |name: &str, provisioner: &str, created: &str| {
        format!(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: {name}\n  creationTimestamp: \
             \"{created}\"\n  annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\"\nprovisioner: \
             {provisioner}\n"
        )
    };
    let claim = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: shared\n  namespace: shop\nspec:\n  \
                 accessModes: [ReadWriteMany]\n  resources:\n    requests:\n      storage: 1Gi\n";
    let write = |first: &str, second: &str| {
        std::fs::write(&file, format!("{first}---\n{second}---\n{claim}")).unwrap();
        run(volguard([
            "check".as_ref(),
            "-o".as_ref(),
            "json".as_ref(),
            "-f".as_ref(),
            file.as_os_str(),
        ]))
    };
    let (ebs_old, efs_new) = (
        class("a-ebs", "ebs.csi.aws.com", "2024-01-01T00:00:00Z"),
        class("z-efs", "efs.csi.aws.com", "2025-01-01T00:00:00Z"),
    );
    let out = write(&ebs_old, &efs_new);
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert_eq!(decisions(&out.json()), []);
    // The other way round, the newest is EBS: the claim never binds.
    let (ebs_new, efs_old) = (
        class("a-ebs", "ebs.csi.aws.com", "2025-01-01T00:00:00Z"),
        class("z-efs", "efs.csi.aws.com", "2024-01-01T00:00:00Z"),
    );
    let out = write(&efs_old, &ebs_new);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert_eq!(
        decisions(&out.json()),
        [d(
            "PersistentVolumeClaim shop/shared",
            "Deny",
            &["unsupported-access-mode"]
        )]
    );
}
