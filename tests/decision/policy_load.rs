//! Loading policies: every way a policy file can be wrong gets its exact `LoadError`, with the line and
//! column to fix, and a directory (a ConfigMap mount) loads the way the API server mounts it.

use std::path::Path;

use pretty_assertions::assert_eq;
use volguard::domain::policy::{
    Action, FailureMode, LoadError, Policy, PolicySet, Target, load_path, load_str,
};
use volguard::domain::rules::RuleId;
use volguard::domain::workload::Kind;

const FILE: &str = "policy.yaml";

fn load(text: &str) -> Result<Vec<Policy>, LoadError> {
    load_str(text, FILE)
}

/// A policy document named `p` whose `spec:` block is `spec` (indented by two).
fn with_spec(spec: &str) -> String {
    format!("apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: p\nspec:\n{spec}")
}

fn parse(line: u64, column: u64, message: &str) -> Option<LoadError> {
    Some(LoadError::Parse {
        path: FILE.into(),
        line,
        column,
        message: message.into(),
    })
}

fn invalid(line: u64, column: u64, message: &str) -> Option<LoadError> {
    Some(LoadError::Invalid {
        path: FILE.into(),
        line,
        column,
        message: message.into(),
    })
}

fn fixture(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/policies")
        .join(path)
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn named(name: &str) -> String {
    format!("apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: {name}\nspec: {{}}\n")
}

fn names(set: &PolicySet) -> Vec<&str> {
    set.policies().iter().map(|p| p.name.as_str()).collect()
}

// Unknown keys: the message names the key and every key that was expected there.

#[test]
fn unknown_top_level_key_is_named_with_the_expected_keys() {
    let text =
        "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: p\nspec: {}\nstatus: {}\n";
    assert_eq!(
        load(text).err(),
        parse(
            6,
            1,
            "unknown field `status`, expected one of apiVersion, kind, metadata, spec"
        )
    );
}

#[test]
fn unknown_spec_key_is_named_with_the_expected_keys() {
    assert_eq!(
        load(&with_spec("  matches: {}\n")).err(),
        parse(
            6,
            3,
            "unknown field `matches`, expected one of match, exclude, defaultAction, failureMode, rules, mutate, provisioners"
        )
    );
}

#[test]
fn unknown_metadata_key_is_named() {
    let text = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: p\n  namespace: volguard\nspec: {}\n";
    assert_eq!(
        load(text).err(),
        parse(
            5,
            3,
            "unknown field `namespace`, expected one of name, labels, annotations"
        )
    );
}

#[test]
fn unknown_key_inside_a_rule_is_named() {
    assert_eq!(
        load(&with_spec(
            "  rules:\n    shared-rwo-claim:\n      actoin: Deny\n"
        ))
        .err(),
        parse(8, 7, "unknown field `actoin`, expected one of action")
    );
    assert_eq!(
        load(&with_spec(
            "  rules:\n    statefulset-claim-template-modes:\n      allowedModes: [ReadWriteOnce]\n"
        ))
        .err(),
        parse(
            8,
            7,
            "unknown field `allowedModes`, expected one of action, allowedAccessModes"
        )
    );
}

#[test]
fn unknown_rule_id_lists_every_rule() {
    assert_eq!(
        load(&with_spec(
            "  rules:\n    shared-rwo-claim: {action: Deny}\n    shared-rwx-claim: {action: Deny}\n"
        ))
        .err(),
        parse(
            8,
            5,
            "unknown field `shared-rwx-claim`, expected one of shared-rwo-claim, rollout-attach-deadlock, \
             statefulset-claim-template-modes, statefulset-shared-claim, statefulset-policy-template, \
             shared-claim-writable, stateless-deployment, missing-claim, unsupported-access-mode, unbindable-claim"
        )
    );
}

#[test]
fn the_removed_claim_breaks_workloads_rule_says_what_replaced_it() {
    assert_eq!(
        load(&with_spec(
            "  rules:\n    claim-breaks-workloads: {action: Warn}\n"
        ))
        .err(),
        parse(
            7,
            5,
            "rule claim-breaks-workloads was removed: a claim created or updated under the workloads that mount \
             it is now judged by their own rules (shared-rwo-claim, statefulset-shared-claim, \
             shared-claim-writable), with their actions; delete this entry"
        )
    );
}

#[test]
fn lookup_failed_is_not_a_rule_to_configure() {
    // Its action comes from failureMode.
    let err = load(&with_spec("  rules:\n    lookup-failed: {action: Warn}\n")).err();
    assert!(
        matches!(&err, Some(LoadError::Parse { line: 7, column: 5, message, .. })
            if message.starts_with("unknown field `lookup-failed`")),
        "{err:?}"
    );
}

#[test]
fn unknown_selector_key_is_named() {
    assert_eq!(
        load(&with_spec(
            "  match:\n    selector:\n      matchLabel: {app: web}\n"
        ))
        .err(),
        parse(
            8,
            7,
            "unknown field `matchLabel`, expected one of matchLabels, matchExpressions"
        )
    );
}

#[test]
fn duplicate_keys_are_refused() {
    assert_eq!(
        load(&with_spec("  defaultAction: Warn\n  defaultAction: Deny\n")).err(),
        parse(
            7,
            3,
            "duplicate mapping key: defaultAction, set DuplicateKeyPolicy in Options if acceptable"
        )
    );
}

// Wrong types.

#[test]
fn a_scalar_where_a_list_belongs_is_refused() {
    assert_eq!(
        load(&with_spec("  match:\n    namespaces: shop\n")).err(),
        parse(7, 17, "expected sequence start")
    );
    assert_eq!(
        load(&with_spec("  match:\n    kinds: Deployment\n")).err(),
        parse(7, 12, "expected sequence start")
    );
}

#[test]
fn a_list_or_scalar_where_a_mapping_belongs_is_refused() {
    assert_eq!(
        load(&with_spec("  rules: [shared-rwo-claim]\n")).err(),
        parse(6, 10, "expected mapping start")
    );
    assert_eq!(
        load(&with_spec("  rules:\n    shared-rwo-claim: Deny\n")).err(),
        parse(7, 23, "expected mapping start")
    );
    assert_eq!(load("- a\n- b\n").err(), parse(1, 1, "expected mapping start"));
}

// Unknown enum values: the message lists the values that are allowed.

#[test]
fn unknown_action_lists_the_actions() {
    assert_eq!(
        load(&with_spec("  defaultAction: Block\n")).err(),
        parse(
            6,
            18,
            "unknown variant `Block`, expected one of Off, Audit, Warn, Deny"
        )
    );
    // Values are case-sensitive, as in Kubernetes.
    assert_eq!(
        load(&with_spec("  rules:\n    missing-claim: {action: warn}\n")).err(),
        parse(
            7,
            29,
            "unknown variant `warn`, expected one of Off, Audit, Warn, Deny"
        )
    );
}

#[test]
fn unknown_kind_lists_the_kinds() {
    assert_eq!(
        load(&with_spec("  match:\n    kinds: [Deployment, ConfigMap]\n")).err(),
        parse(
            7,
            25,
            "unknown variant `ConfigMap`, expected one of Deployment, StatefulSet, DaemonSet, ReplicaSet, \
             ReplicationController, Job, CronJob, Pod, HorizontalPodAutoscaler, Scale, PersistentVolumeClaim"
        )
    );
}

#[test]
fn unknown_operator_lists_the_operators() {
    let spec = "  match:\n    selector:\n      matchExpressions:\n        - {key: app, operator: Like, values: [web]}\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        parse(
            9,
            32,
            "unknown variant `Like`, expected one of In, NotIn, Exists, DoesNotExist"
        )
    );
}

#[test]
fn unknown_failure_mode_lists_the_modes() {
    assert_eq!(
        load(&with_spec("  failureMode: Open\n")).err(),
        parse(6, 16, "unknown variant `Open`, expected one of Fail, Ignore")
    );
    assert_eq!(
        load(&with_spec("  failureMode: true\n")).err(),
        parse(6, 16, "unknown variant `true`, expected one of Fail, Ignore")
    );
}

#[test]
fn unknown_access_mode_lists_the_modes() {
    let spec =
        "  rules:\n    statefulset-claim-template-modes:\n      allowedAccessModes: [ReadWriteOnce, RWX]\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        parse(
            8,
            43,
            "unknown variant `RWX`, expected one of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod"
        )
    );
}

// Values that parse but are not valid.

#[test]
fn exists_with_values_is_invalid() {
    let spec = "  match:\n    selector:\n      matchExpressions:\n        - {key: canary, operator: Exists, values: [\"true\"]}\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(9, 11, "invalid selector: operator Exists takes no values")
    );
    let spec = "  exclude:\n    selector:\n      matchExpressions:\n        - key: canary\n          operator: DoesNotExist\n          values: [x]\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(9, 11, "invalid selector: operator DoesNotExist takes no values")
    );
}

#[test]
fn in_and_not_in_without_values_are_invalid() {
    let spec =
        "  match:\n    selector:\n      matchExpressions:\n        - key: tier\n          operator: In\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(9, 11, "invalid selector: operator In needs at least one value")
    );
    let spec = "  match:\n    selector:\n      matchExpressions:\n        - {key: tier, operator: NotIn, values: []}\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(9, 11, "invalid selector: operator NotIn needs at least one value")
    );
}

#[test]
fn bad_label_keys_and_values_are_invalid() {
    // A matchLabels error points at the selector; a matchExpressions error at the requirement.
    let spec = "  match:\n    selector:\n      matchLabels:\n        \"app name\": web\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(
            8,
            7,
            "invalid selector: matchLabels: label key \"app name\": the name part must be 1-63 characters of \
             letters, digits, '-', '_' and '.', starting and ending alphanumeric"
        )
    );
    let spec =
        "  match:\n    selector:\n      matchExpressions:\n        - {key: Acme.io/team, operator: Exists}\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(
            9,
            11,
            "invalid selector: label key \"Acme.io/team\": the prefix must be a DNS subdomain such as example.com"
        )
    );
    let spec = "  match:\n    selector:\n      matchLabels:\n        app: -web-\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(
            8,
            7,
            "invalid selector: matchLabels: value \"-web-\" of \"app\" is not a label value (at most 63 \
             characters of letters, digits, '-', '_' and '.', starting and ending alphanumeric)"
        )
    );
    let spec = "  match:\n    selector:\n      matchExpressions:\n        - {key: tier, operator: In, values: [front end]}\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(9, 11, "invalid selector: \"front end\" is not a label value")
    );
}

#[test]
fn invalid_namespace_is_pointed_at() {
    assert_eq!(
        load(&with_spec("  match:\n    namespaces: [shop, Payments_EU]\n")).err(),
        invalid(
            7,
            24,
            "invalid namespace \"Payments_EU\": expected a DNS label (lowercase letters, digits and '-', at most \
             63, starting and ending with a letter or digit)"
        )
    );
    assert_eq!(
        load(&with_spec(
            "  exclude:\n    namespaces:\n      - kube-system\n      - -tmp\n"
        ))
        .err(),
        invalid(
            9,
            9,
            "invalid namespace \"-tmp\": expected a DNS label (lowercase letters, digits and '-', at most 63, \
             starting and ending with a letter or digit)"
        )
    );
}

#[test]
fn empty_allowed_access_modes_is_invalid() {
    let spec =
        "  rules:\n    statefulset-claim-template-modes:\n      action: Deny\n      allowedAccessModes: []\n";
    assert_eq!(
        load(&with_spec(spec)).err(),
        invalid(
            9,
            27,
            "allowedAccessModes must list at least one of ReadWriteOnce, ReadOnlyMany, ReadWriteMany, \
             ReadWriteOncePod"
        )
    );
}

// The document's frame.

#[test]
fn missing_metadata_or_spec_is_named() {
    let text = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nspec: {}\n";
    assert_eq!(load(text).err(), parse(3, 1, "missing field `metadata`"));
    let text = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: p\n";
    assert_eq!(load(text).err(), parse(3, 1, "missing field `spec`"));
    let text = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata: {}\nspec: {}\n";
    assert_eq!(load(text).err(), parse(3, 11, "missing field `name`"));
}

#[test]
fn an_empty_name_is_pointed_at() {
    let text = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: \"\"\nspec: {}\n";
    assert_eq!(load(text).err(), invalid(4, 9, "metadata.name must not be empty"));
    let text = "apiVersion: volguard.io/v1alpha1\nkind: VolumePolicy\nmetadata:\n  name: '  '\nspec: {}\n";
    assert_eq!(load(text).err(), invalid(4, 9, "metadata.name must not be empty"));
}

#[test]
fn wrong_api_version_or_kind_names_the_expected_one() {
    let text = "apiVersion: volguard.io/v1\nkind: VolumePolicy\nmetadata:\n  name: p\nspec: {}\n";
    assert_eq!(
        load(text).err(),
        parse(
            1,
            13,
            "unknown variant `volguard.io/v1`, expected one of volguard.io/v1alpha1"
        )
    );
    let text =
        "apiVersion: volguard.io/v1alpha1\nkind: ClusterVolumePolicy\nmetadata:\n  name: p\nspec: {}\n";
    assert_eq!(
        load(text).err(),
        parse(
            2,
            7,
            "unknown variant `ClusterVolumePolicy`, expected one of VolumePolicy"
        )
    );
    let text = "kind: VolumePolicy\nmetadata:\n  name: p\nspec: {}\n";
    assert!(
        matches!(load(text).err(), Some(LoadError::Parse { message, .. }) if message == "missing field `apiVersion`")
    );
}

#[test]
fn yaml_syntax_errors_carry_line_and_column() {
    assert_eq!(
        load(&with_spec("  match: {kinds: [Deployment}\n")).err(),
        parse(6, 18, "mismatched bracket '[' closed by '}'")
    );
    assert_eq!(
        load(&with_spec("  match:\n\tkinds: []\n")).err(),
        parse(7, 2, "tabs disallowed within this context (block indentation)")
    );
}

#[test]
fn errors_display_as_file_line_column() {
    let err = load(&with_spec("  defaultAction: Block\n")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "policy.yaml:6:18: unknown variant `Block`, expected one of Off, Audit, Warn, Deny"
    );
}

#[test]
fn a_text_without_documents_is_empty() {
    assert_eq!(load("").err(), Some(LoadError::Empty { path: FILE.into() }));
    assert_eq!(
        load("# policies go here\n---\n").err(),
        Some(LoadError::Empty { path: FILE.into() })
    );
}

#[test]
fn duplicate_names_in_one_file_are_refused() {
    let text = format!("{}---\n{}", named("team"), named("team"));
    assert_eq!(
        load(&text).err(),
        Some(LoadError::DuplicateName {
            name: "team".into(),
            first: FILE.into(),
            second: FILE.into(),
        })
    );
}

// Files and directories.

#[test]
fn errors_from_a_file_name_the_file() {
    let path = fixture("broken/unknown-rule.yaml");
    let err = load_path(&path).unwrap_err();
    assert_eq!(
        err,
        LoadError::Parse {
            path: path.display().to_string(),
            line: 8,
            column: 5,
            message: "unknown field `shared-rwx-claim`, expected one of shared-rwo-claim, rollout-attach-deadlock, \
                      statefulset-claim-template-modes, statefulset-shared-claim, statefulset-policy-template, \
                      shared-claim-writable, stateless-deployment, missing-claim, unsupported-access-mode, unbindable-claim"
                .into(),
        }
    );
}

#[test]
fn a_missing_path_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.yaml");
    assert!(matches!(load_path(&path), Err(LoadError::Io { path: p, message })
            if p == path.display().to_string() && message.contains("No such file or directory")),);
}

#[test]
fn a_directory_loads_yaml_and_yml_files_in_name_order() {
    let set = load_path(&fixture("split")).unwrap();
    assert_eq!(names(&set), ["baseline", "payments", "sandbox"]);
    let sources: Vec<&str> = set.policies().iter().map(|p| p.source.as_str()).collect();
    let dir = fixture("split");
    assert_eq!(
        sources,
        [
            dir.join("00-baseline.yaml").display().to_string(),
            dir.join("10-payments.yml").display().to_string(),
            dir.join("10-payments.yml").display().to_string(),
        ]
    );
    let sandbox = &set.policies()[2];
    assert_eq!(sandbox.failure_mode, FailureMode::Ignore);
    assert_eq!(sandbox.action(RuleId::LookupFailed), Action::Warn);
    assert_eq!(sandbox.action(RuleId::SharedRwoClaim), Action::Audit);
}

#[test]
fn duplicate_names_across_files_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a-team.yaml", &named("storage"));
    write(
        dir.path(),
        "b-team.yaml",
        &format!("{}---\n{}", named("extra"), named("storage")),
    );
    assert_eq!(
        load_path(dir.path()).err(),
        Some(LoadError::DuplicateName {
            name: "storage".into(),
            first: dir.path().join("a-team.yaml").display().to_string(),
            second: dir.path().join("b-team.yaml").display().to_string(),
        })
    );
}

#[test]
fn an_empty_directory_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Some(LoadError::Empty {
        path: dir.path().display().to_string(),
    });
    assert_eq!(load_path(dir.path()).err(), empty);
    // Files that are not YAML, and hidden files, do not count.
    write(dir.path(), "README.md", "# policies\n");
    write(dir.path(), ".policy.yaml.swp", &named("swap"));
    write(dir.path(), ".hidden.yaml", &named("hidden"));
    assert_eq!(load_path(dir.path()).err(), empty);
}

#[cfg(unix)]
#[test]
fn a_configmap_mount_is_read_through_its_symlinks_once() {
    // The kubelet mounts a ConfigMap as <dir>/..<timestamp>/<key>, a `..data` symlink to the timestamped
    // directory, and one `<key> -> ..data/<key>` symlink per key; an update swaps `..data`.
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let stamp = dir.path().join("..2024_08_01_12_00_00.123456789");
    std::fs::create_dir(&stamp).unwrap();
    write(&stamp, "policy.yaml", &named("cluster"));
    write(&stamp, "payments.yaml", &named("payments"));
    symlink(&stamp, dir.path().join("..data")).unwrap();
    symlink("..data/policy.yaml", dir.path().join("policy.yaml")).unwrap();
    symlink("..data/payments.yaml", dir.path().join("payments.yaml")).unwrap();
    let set = load_path(dir.path()).unwrap();
    assert_eq!(names(&set), ["payments", "cluster"]);
    assert_eq!(
        set.policies()[1].source,
        dir.path().join("policy.yaml").display().to_string()
    );
}

// The built-in policy.

fn target<'a>(kind: Kind, namespace: &'a str) -> Target<'a> {
    Target {
        kinds: vec![kind],
        namespace,
        labels: None,
    }
}

#[test]
fn the_builtin_policy_loads_with_its_documented_actions() {
    let set = PolicySet::builtin().unwrap();
    assert_eq!(names(&set), ["default"]);
    let p = &set.policies()[0];
    assert_eq!(p.source, "policies/default.yaml (built in)");
    assert_eq!(p.failure_mode, FailureMode::Fail);
    let actions: Vec<(&str, Action)> = RuleId::ALL.iter().map(|r| (r.as_str(), p.action(*r))).collect();
    assert_eq!(
        actions,
        [
            ("shared-rwo-claim", Action::Deny),
            ("rollout-attach-deadlock", Action::Warn),
            ("statefulset-claim-template-modes", Action::Deny),
            ("statefulset-shared-claim", Action::Deny),
            ("statefulset-policy-template", Action::Deny),
            ("shared-claim-writable", Action::Deny),
            ("stateless-deployment", Action::Off),
            ("missing-claim", Action::Warn),
            ("unsupported-access-mode", Action::Deny),
            ("unbindable-claim", Action::Deny),
            ("lookup-failed", Action::Deny),
        ]
    );
}

#[test]
fn the_builtin_policy_selects_every_kind_outside_kube_system() {
    let set = PolicySet::builtin().unwrap();
    let p = &set.policies()[0];
    for kind in [
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::CronJob,
        Kind::HorizontalPodAutoscaler,
        Kind::Scale,
    ] {
        assert!(p.selects(&target(kind, "default")), "{kind}");
        assert!(p.selects(&target(kind, "kube-public")), "{kind}");
        assert!(!p.selects(&target(kind, "kube-system")), "{kind}");
    }
}

#[test]
fn unlisted_rules_take_the_default_action_but_opt_in_rules_stay_off() {
    let p = &load(&with_spec("  defaultAction: Audit\n  failureMode: Ignore\n")).unwrap()[0];
    for rule in RuleId::ALL {
        let want = match rule {
            RuleId::StatelessDeployment => Action::Off,
            RuleId::LookupFailed => Action::Warn,
            _ => Action::Audit,
        };
        assert_eq!(p.action(rule), want, "{rule}");
    }
}

#[test]
fn rules_listed_without_an_action_take_the_default_action() {
    let p = &load(&with_spec(
        "  defaultAction: Warn\n  rules:\n    stateless-deployment: {}\n    shared-rwo-claim: {action: Deny}\n",
    ))
    .unwrap()[0];
    assert_eq!(p.action(RuleId::StatelessDeployment), Action::Warn);
    assert_eq!(p.action(RuleId::SharedRwoClaim), Action::Deny);
    assert_eq!(p.action(RuleId::MissingClaim), Action::Warn);
}

#[test]
fn a_rule_written_with_no_value_is_listed_like_an_empty_mapping() {
    // `stateless-deployment:` is YAML null: the user listed the opt-in rule, so it runs with defaultAction.
    let p = &load(&with_spec(
        "  defaultAction: Warn\n  rules:\n    stateless-deployment:\n    statefulset-claim-template-modes:\n",
    ))
    .unwrap()[0];
    assert_eq!(p.action(RuleId::StatelessDeployment), Action::Warn);
    assert_eq!(p.action(RuleId::StatefulsetClaimTemplateModes), Action::Warn);
    // An explicit null action is the same as no action.
    let p = &load(&with_spec("  rules:\n    stateless-deployment: {action: null}\n")).unwrap()[0];
    assert_eq!(p.action(RuleId::StatelessDeployment), Action::Deny);
}

// spec.mutate: each invalid value names its line and column and what was expected.

/// A `spec.mutate.claimTemplates` with one template whose lines are `template` (indented by eight).
fn with_template(template: &str) -> String {
    with_spec(&format!(
        "  mutate:\n    claimTemplates:\n      - name: data\n{template}"
    ))
}

const MOUNT: &str = "        mount: {mountPath: /var/lib/data}\n";

#[test]
fn a_valid_mutate_section_loads() {
    let text = with_template(&format!(
        "        accessModes: [ReadWriteOnce]\n        storage: 1.5Gi\n        storageClassName: fast.ssd\n{MOUNT}"
    ));
    let policies = load(&text).expect("loads");
    assert_eq!(policies.len(), 1);
}

#[test]
fn unknown_key_in_a_claim_template_is_named() {
    let text = with_template(&format!(
        "        accessModes: [ReadWriteOnce]\n        storage: 1Gi\n        size: 1Gi\n{MOUNT}"
    ));
    assert_eq!(
        load(&text).err(),
        parse(
            11,
            9,
            "unknown field `size`, expected one of name, accessModes, storageClassName, storage, labels, mount"
        )
    );
}

#[test]
fn a_template_needs_its_size() {
    let text = with_template(&format!("        accessModes: [ReadWriteOnce]\n{MOUNT}"));
    let err = load(&text).err();
    assert!(
        matches!(&err, Some(LoadError::Parse { message, .. }) if message.contains("missing field `storage`")),
        "{err:?}"
    );
}

#[test]
fn an_invalid_size_is_refused_where_it_is_written() {
    let text = with_template(&format!(
        "        accessModes: [ReadWriteOnce]\n        storage: ten gigs\n{MOUNT}"
    ));
    assert_eq!(
        load(&text).err(),
        invalid(
            10,
            18,
            "invalid storage \"ten gigs\": expected a quantity such as 10Gi, 500Mi or 1T"
        )
    );
    let zero = with_template(&format!(
        "        accessModes: [ReadWriteOnce]\n        storage: 0Gi\n{MOUNT}"
    ));
    assert!(load(&zero).is_err(), "a claim of size zero is refused");
}

#[test]
fn a_template_mode_the_policy_itself_forbids_is_refused() {
    let text = with_template(&format!(
        "        accessModes: [ReadWriteMany]\n        storage: 1Gi\n{MOUNT}"
    ));
    assert_eq!(
        load(&text).err(),
        invalid(
            9,
            22,
            "claim template \"data\" asks for ReadWriteMany, which this policy's \
             statefulset-claim-template-modes does not allow (allowed: ReadWriteOnce, ReadWriteOncePod)"
        )
    );
    // With that rule off, the policy may hand out shared templates.
    let off = format!("{text}  rules:\n    statefulset-claim-template-modes: {{action: Off}}\n");
    assert!(load(&off).is_ok(), "{:?}", load(&off).err());
}

#[test]
fn a_relative_mount_path_and_an_escaping_sub_path_are_refused() {
    let relative = with_template(
        "        accessModes: [ReadWriteOnce]\n        storage: 1Gi\n        mount: {mountPath: data}\n",
    );
    assert_eq!(
        load(&relative).err(),
        invalid(11, 28, "invalid mountPath \"data\": expected an absolute path")
    );
    let escaping = with_template(
        "        accessModes: [ReadWriteOnce]\n        storage: 1Gi\n        mount:\n          mountPath: /data\n          subPath: ../etc\n",
    );
    assert_eq!(
        load(&escaping).err(),
        invalid(
            13,
            20,
            "invalid subPath \"../etc\": expected a relative path without '..'"
        )
    );
}

#[test]
fn two_templates_with_one_name_or_one_mount_path_are_refused() {
    let text = with_spec(
        "  mutate:\n    claimTemplates:\n      - {name: data, accessModes: [ReadWriteOnce], storage: 1Gi, mount: {mountPath: /a}}\n      - {name: data, accessModes: [ReadWriteOnce], storage: 1Gi, mount: {mountPath: /b}}\n",
    );
    assert_eq!(
        load(&text).err(),
        invalid(9, 16, "claim template \"data\" is declared twice")
    );
    let text = with_spec(
        "  mutate:\n    claimTemplates:\n      - {name: data, accessModes: [ReadWriteOnce], storage: 1Gi, mount: {mountPath: /a}}\n      - {name: logs, accessModes: [ReadWriteOnce], storage: 1Gi, mount: {mountPath: /a}}\n",
    );
    assert_eq!(
        load(&text).err(),
        invalid(
            9,
            85,
            "mountPath \"/a\" is already used by claim template \"data\""
        )
    );
}

#[test]
fn invalid_names_are_refused() {
    let text = with_spec(
        "  mutate:\n    claimTemplates:\n      - {name: Data, accessModes: [ReadWriteOnce], storage: 1Gi, mount: {mountPath: /a}}\n",
    );
    let err = load(&text).err();
    assert!(
        matches!(&err, Some(LoadError::Invalid { line: 8, column: 16, message, .. })
            if message.starts_with("invalid claim template name \"Data\"")),
        "{err:?}"
    );
    let text = with_template(
        "        accessModes: [ReadWriteOnce]\n        storage: 1Gi\n        mount: {mountPath: /a, containers: [Web_1]}\n",
    );
    let err = load(&text).err();
    assert!(
        matches!(&err, Some(LoadError::Invalid { line: 11, message, .. })
            if message == "invalid container name \"Web_1\": expected a DNS label"),
        "{err:?}"
    );
}

#[test]
fn unknown_repair_and_retention_values_are_named() {
    let text = with_spec("  mutate:\n    repairs:\n      recreate: true\n");
    assert_eq!(
        load(&text).err(),
        parse(
            8,
            7,
            "unknown field `recreate`, expected one of recreateStrategy, readOnlyMounts"
        )
    );
    let text = with_spec("  mutate:\n    persistentVolumeClaimRetentionPolicy: {whenDeleted: Keep}\n");
    let err = load(&text).err();
    assert!(
        matches!(&err, Some(LoadError::Parse { line: 7, message, .. })
            if message.contains("unknown variant `Keep`") && message.contains("Retain") && message.contains("Delete")),
        "{err:?}"
    );
}
