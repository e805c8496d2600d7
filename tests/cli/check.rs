//! `volguard check` end to end: the binary on real files, its exit codes, its text, JSON and YAML.

use crate::cli_common;

use cli_common::{d, decisions, fixture, run, volguard};
use pretty_assertions::assert_eq;
use serde_json::json;

#[test]
fn examples_directory_gives_the_decisions_examples_readme_documents() {
    let out = run(volguard(["check", "-f", "examples/", "-o", "json"]));
    assert_eq!(out.code, 1, "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    let report = out.json();
    assert_eq!(
        decisions(&report),
        [
            d("Deployment cms/site", "Allow", &[]),
            d("Deployment cms/site-editor", "Deny", &["shared-claim-writable"]),
            d("CronJob analytics/nightly-report", "Deny", &["shared-rwo-claim"]),
            d("DaemonSet logging/log-shipper", "Deny", &["shared-rwo-claim"]),
            d("Deployment payments/api", "Deny", &["shared-rwo-claim"]),
            d(
                "HorizontalPodAutoscaler payments/api",
                "Deny",
                &["shared-rwo-claim"]
            ),
            d("Job media/thumbnails", "Allow", &[]),
            d("Deployment ci/build-cache", "Warn", &["shared-rwo-claim"]),
            d("StatefulSet db/postgres", "Allow", &[]),
            d("Deployment tools/wiki", "Warn", &["rollout-attach-deadlock"]),
            d("Deployment shop/web", "Deny", &["shared-rwo-claim"]),
        ]
    );
    assert_eq!(
        report["summary"],
        json!({"objects": 11, "denied": 6, "warned": 2, "claims": 7,
               "skipped": {"ConfigMap": 1, "Service": 2}, "inputErrors": 0, "strict": false, "exitCode": 1})
    );
    let claims: Vec<(&str, &str)> = report["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["accessModes"][0].as_str().unwrap()))
        .collect();
    assert_eq!(
        claims,
        [
            ("site-content", "ReadOnlyMany"),
            ("reports", "ReadWriteOnce"),
            ("log-buffer", "ReadWriteOnce"),
            ("api-state", "ReadWriteOnce"),
            ("build-cache", "ReadWriteOnce"),
            ("wiki-data", "ReadWriteOnce"),
            ("web-uploads", "ReadWriteOnce"),
        ]
    );
    let skipped: Vec<(&str, &str)> = report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["kind"].as_str().unwrap(), s["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        skipped,
        [
            ("Service", "postgres"),
            ("ConfigMap", "web-config"),
            ("Service", "web")
        ]
    );
}

#[test]
fn an_allowed_file_exits_zero_with_only_the_summary() {
    let out = run(volguard(["check", "-f", "examples/postgres-statefulset.yaml"]));
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout,
        "1 object checked, 0 denied, 0 warned; skipped: 1 Service\n"
    );
    assert_eq!(out.stderr, "");
}

#[test]
fn a_denied_deployment_exits_one_with_message_and_indented_fix() {
    let out = run(volguard(["check", "-f", "examples/web-shared-rwo.yaml"]));
    assert_eq!(out.code, 1);
    let expected = "\
DENY  Deployment shop/web  (examples/web-shared-rwo.yaml document 2, line 19)
  [shared-rwo-claim] deny: Deployment shop/web may run 3 pods that all mount claim \"web-uploads\" (volume \
\"uploads\"), whose access mode is ReadWriteOnce: the volume attaches to one node at a time, so a pod scheduled \
on a second node hangs in ContainerCreating with \"Multi-Attach error for volume ... Volume is already used by \
pod(s)\".
    fix:
      If every replica needs its own data, run it as a StatefulSet and add under spec (removing volume \
\"uploads\" from the pod template):
      volumeClaimTemplates:
      - metadata:
          name: uploads
        spec:
          accessModes: [\"ReadWriteOnce\"]
          storageClassName: standard-rwo
          resources:
            requests:
              storage: 20Gi
      If the replicas must share the data, use a claim whose storage offers ReadWriteMany (or ReadOnlyMany, \
mounted readOnly: true). Otherwise keep replicas: 1 with strategy: {type: Recreate}.

1 object checked, 1 denied, 0 warned; 1 claim read; skipped: 1 ConfigMap, 1 Service
";
    assert_eq!(out.stdout, expected);
}

#[test]
fn warnings_fail_the_run_only_with_strict() {
    let file = "examples/single-replica-rollout.yaml";
    let lenient = run(volguard(["check", "-f", file]));
    assert_eq!(lenient.code, 0);
    assert!(lenient.stdout.starts_with(
        "WARN  Deployment tools/wiki  (examples/single-replica-rollout.yaml document 2, line 17)\n  \
         [rollout-attach-deadlock] warn: "
    ));
    let strict = run(volguard(["check", "--strict", "-f", file, "-o", "json"]));
    assert_eq!(strict.code, 1);
    let summary = &strict.json()["summary"];
    assert_eq!(
        (&summary["warned"], &summary["strict"], &summary["exitCode"]),
        (&json!(1), &json!(true), &json!(1))
    );
    let mut by_env = volguard(["check", "-f", file]);
    by_env.env("VOLGUARD_STRICT", "true");
    assert_eq!(run(by_env).code, 1);
}

#[test]
fn dash_reads_standard_input() {
    let text = std::fs::read_to_string("examples/web-shared-rwo.yaml").unwrap();
    let mut cmd = volguard(["check", "-f", "-"]);
    cmd.write_stdin(text);
    let out = run(cmd);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout
            .starts_with("DENY  Deployment shop/web  (- document 2, line 19)\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.ends_with(
            "1 object checked, 1 denied, 0 warned; 1 claim read; skipped: 1 ConfigMap, 1 Service\n"
        )
    );
}

#[test]
fn a_directory_is_recursed_reading_manifest_files_only() {
    // tree/ holds apps/web/deployment.yaml, apps/web/notes.txt, storage/claim.json, storage/class.yml
    // and .hidden/claim.yaml (which would make the claim ReadWriteMany, were it read).
    let out = run(volguard(["check", "-o", "json", "-f", &fixture("tree")]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    let report = out.json();
    assert_eq!(
        decisions(&report),
        [d("Deployment tree/web", "Deny", &["shared-rwo-claim"])]
    );
    let files: Vec<&str> = ["objects", "claims", "skipped"]
        .iter()
        .flat_map(|list| report[list].as_array().unwrap())
        .map(|o| o["origin"]["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "tests/fixtures/check/tree/apps/web/deployment.yaml",
            "tests/fixtures/check/tree/storage/claim.json",
        ]
    );
    // The StorageClass is read (what its claims can be given), neither judged nor skipped.
    assert_eq!(report["summary"]["skipped"], json!({}));
}

#[test]
fn a_claim_defined_in_another_file_is_resolved() {
    let (deployment, claim) = (fixture("split/deployment.yaml"), fixture("split/claim.yaml"));
    let both = run(volguard(["check", "-o", "json", "-f", &deployment, &claim]));
    assert_eq!(both.code, 1);
    let report = both.json();
    assert_eq!(
        decisions(&report),
        [d("Deployment finance/reports", "Deny", &["shared-rwo-claim"])]
    );
    assert_eq!(report["objects"][0]["findings"][0]["accessMode"], "ReadWriteOnce");
    assert_eq!(
        report["claims"],
        json!([{"origin": {"file": claim, "document": 1, "line": 1, "item": null},
                "namespace": "finance", "name": "report-archive", "accessModes": ["ReadWriteOnce"]}])
    );
    // Without the claim's file the same Deployment cannot be judged on access modes: a warning only.
    let alone = run(volguard(["check", "-o", "json", "-f", &deployment]));
    assert_eq!(alone.code, 0);
    assert_eq!(
        decisions(&alone.json()),
        [d("Deployment finance/reports", "Warn", &["missing-claim"])]
    );
}

#[test]
fn json_report_names_every_field_of_a_finding() {
    let out = run(volguard([
        "check",
        "-f",
        "examples/content-writable.yaml",
        "examples/content-readonly.yaml",
        "-o",
        "json",
    ]));
    assert_eq!(out.code, 1);
    let report = out.json();
    let editor = &report["objects"][0];
    assert_eq!(
        editor["origin"],
        json!({"file": "examples/content-writable.yaml", "document": 1, "line": 4, "item": null})
    );
    assert_eq!(
        (&editor["kind"], &editor["namespace"], &editor["name"]),
        (&json!("Deployment"), &json!("cms"), &json!("site-editor"))
    );
    assert_eq!(editor["verdict"], "Deny");
    assert_eq!(editor["policies"], json!(["default"]));
    assert_eq!(editor["findings"].as_array().unwrap().len(), 1);
    let f = &editor["findings"][0];
    assert_eq!(f["rule"], "shared-claim-writable");
    assert_eq!(f["action"], "Deny");
    assert_eq!(f["policy"], "default");
    assert_eq!(f["severity"], "violation");
    assert_eq!(f["container"], "editor");
    assert_eq!(f["volume"], "content");
    assert_eq!(f["claim"], "site-content");
    assert_eq!(f["accessMode"], "ReadOnlyMany");
    assert_eq!(
        f["message"],
        "Deployment cms/site-editor may run 2 pods that share claim \"site-content\" (ReadOnlyMany) with \
         Deployment cms/site (4 pods), but container \"editor\" mounts volume \"content\" read-write at /srv/content: a ReadOnlyMany volume is \
         attached read-only on every node, so the pod fails to start or its writes fail."
    );
    assert_eq!(
        f["fix"],
        "Mount it read-only in container \"editor\":\n  volumeMounts:\n  - name: content\n    mountPath: \
         /srv/content\n    readOnly: true\nIf the pods must write, use a claim whose storage offers \
         ReadWriteMany."
    );
    let site = &report["objects"][1];
    assert_eq!(
        (&site["name"], &site["verdict"]),
        (&json!("site"), &json!("Allow"))
    );
    assert_eq!(site["findings"], json!([]));
    assert_eq!(report["objects"].as_array().unwrap().len(), 2);
    assert_eq!(report["claims"][0]["name"], "site-content");
    assert_eq!(report["skipped"], json!([]));
    assert_eq!(report["errors"], json!([]));
}

#[test]
fn yaml_output_is_the_json_report_in_yaml() {
    let args = [
        "check",
        "-f",
        "examples/",
        "tests/fixtures/check/broken/undecodable.yaml",
    ];
    let yaml = run(volguard(args.iter().chain(&["-o", "yaml"])));
    let json = run(volguard(args.iter().chain(&["-o", "json"])));
    assert_eq!((yaml.code, json.code), (2, 2));
    let parsed: serde_json::Value = serde_saphyr::from_str(&yaml.stdout)
        .unwrap_or_else(|e| panic!("YAML output does not parse: {e}\n{}", yaml.stdout));
    assert_eq!(parsed, json.json());
    assert_eq!(parsed["summary"]["inputErrors"], 2);
    assert_eq!(yaml.stderr, json.stderr);
}

#[test]
fn kinds_volguard_does_not_judge_are_counted_as_skipped() {
    let out = run(volguard(["check", "-f", &fixture("skipped.yaml"), "-o", "json"]));
    assert_eq!(out.code, 0);
    let report = out.json();
    assert_eq!(
        report["summary"]["skipped"],
        json!({"Certificate": 1, "ConfigMap": 2, "Deployment (extensions/v1beta1)": 1, "Namespace": 1,
               "Service": 1})
    );
    assert_eq!(report["summary"]["objects"], 0);
    assert_eq!(
        report["skipped"][5],
        json!({"origin": {"file": "tests/fixtures/check/skipped.yaml", "document": 6, "line": 25, "item": null},
               "apiVersion": "extensions/v1beta1", "kind": "Deployment", "namespace": "shop", "name": "ancient"})
    );
    let text = run(volguard(["check", "-f", &fixture("skipped.yaml")]));
    assert_eq!(
        text.stdout,
        "0 objects checked, 0 denied, 0 warned; skipped: 1 Certificate, 2 ConfigMap, 1 Deployment \
         (extensions/v1beta1), 1 Namespace, 1 Service\n"
    );
}

#[test]
fn malformed_and_undecodable_documents_are_input_errors_and_the_rest_is_still_checked() {
    let out = run(volguard([
        "check",
        "-f",
        "tests/fixtures/check/broken/malformed.yaml",
        "tests/fixtures/check/broken/undecodable.yaml",
        "examples/web-shared-rwo.yaml",
    ]));
    assert_eq!(out.code, 2, "input errors win over denials");
    assert_eq!(
        out.stderr,
        "error: tests/fixtures/check/broken/malformed.yaml document 2, line 7: syntax error at line 12 column \
         11: unclosed bracket '['\n\
         error: tests/fixtures/check/broken/undecodable.yaml document 2, line 9: Deployment shop/typo: invalid \
         Deployment (apps/v1): spec.replicas: invalid type: string \"three\", expected i32\n\
         error: tests/fixtures/check/broken/undecodable.yaml document 3, line 17: not a Kubernetes object: the \
         document is not a mapping\n"
    );
    assert!(
        out.stdout
            .starts_with("DENY  Deployment shop/web  (examples/web-shared-rwo.yaml document 2, line 19)\n"),
        "{}",
        out.stdout
    );
    // The documents around the broken one (two ConfigMaps) and the claim before the bad Deployment count.
    assert!(
        out.stdout.ends_with(
            "\n1 object checked, 1 denied, 0 warned; 2 claims read; skipped: 3 ConfigMap, 1 Service; 3 input errors\n"
        ),
        "{}",
        out.stdout
    );
}

#[test]
fn input_errors_in_json_carry_stage_document_and_position() {
    let out = run(volguard([
        "check",
        "-o",
        "json",
        "-f",
        "tests/fixtures/check/broken/",
    ]));
    assert_eq!(out.code, 2);
    let report = out.json();
    let file = |name: &str| format!("tests/fixtures/check/broken/{name}");
    assert_eq!(
        report["errors"],
        json!([
            {"origin": {"file": file("bad-surge.yaml"), "document": 1, "line": 1, "item": null},
             "stage": "evaluate", "at": null, "object": "Deployment shop/surging",
             "message": "`maxSurge` must be a non-negative integer or a percentage like \"25%\", got \"lots\""},
            {"origin": {"file": file("malformed.yaml"), "document": 2, "line": 7, "item": null},
             "stage": "parse", "at": {"line": 12, "column": 11}, "object": null,
             "message": "unclosed bracket '['"},
            {"origin": {"file": file("undecodable.yaml"), "document": 2, "line": 9, "item": null},
             "stage": "decode", "at": null, "object": "Deployment shop/typo",
             "message": "invalid Deployment (apps/v1): spec.replicas: invalid type: string \"three\", expected i32"},
            {"origin": {"file": file("undecodable.yaml"), "document": 3, "line": 17, "item": null},
             "stage": "decode", "at": null, "object": null,
             "message": "not a Kubernetes object: the document is not a mapping"},
        ])
    );
    // The other Deployment of bad-surge.yaml is judged although its neighbour could not be.
    assert_eq!(decisions(&report), [d("Deployment shop/calm", "Allow", &[])]);
    assert_eq!(report["claims"][0]["name"], "fine");
    assert_eq!(report["summary"]["skipped"], json!({"ConfigMap": 2}));
    assert_eq!(report["summary"]["exitCode"], 2);
}

#[test]
fn an_object_over_a_limit_is_an_input_error_naming_the_limit_and_the_rest_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many-containers.yaml");
    let containers: String = (0..5)
        .map(|i| format!("      - name: c{i}\n        image: busybox\n"))
        .collect();
    let manifest = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: crowded\n  namespace: shop\nspec:\n  \
         selector:\n    matchLabels: {{app: crowded}}\n  template:\n    metadata:\n      labels: {{app: crowded}}\n    \
         spec:\n      containers:\n{containers}"
    );
    std::fs::write(&path, manifest).unwrap();
    let file = path.to_str().unwrap();
    let out = run(volguard([
        "check",
        "--max-containers",
        "4",
        "-f",
        file,
        "examples/web-shared-rwo.yaml",
    ]));
    assert_eq!(out.code, 2, "input errors win over denials: {}", out.stdout);
    assert_eq!(
        out.stderr,
        format!(
            "error: {file} document 1, line 1: Deployment shop/crowded: not judged: it has more than 4 \
             containers, the most volguard judges in one object (raise it with --max-containers)\n"
        )
    );
    assert!(
        out.stdout
            .starts_with("DENY  Deployment shop/web  (examples/web-shared-rwo.yaml document 2, line 19)\n"),
        "{}",
        out.stdout
    );
    // Within the limit (the default is 256), the same object is judged.
    let out = run(volguard(["check", "-f", file]));
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "{}", out.stdout);
}

#[test]
fn a_bad_policy_file_is_a_usage_error_with_file_line_and_column() {
    let out = run(volguard([
        "check",
        "-f",
        "examples/",
        "--policy",
        "tests/fixtures/check/bad-policy.yaml",
    ]));
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "error: tests/fixtures/check/bad-policy.yaml:6:3: unknown field `defaultActoin`, expected one of match, \
         exclude, defaultAction, failureMode, allowExceptions, rules, mutate, provisioners\n"
    );
    assert_eq!(out.stdout, "");
}

#[test]
fn usage_errors_exit_two() {
    for args in [
        vec!["check"],
        vec!["check", "-f"],
        vec!["check", "-f", "examples/", "-o", "xml"],
        vec!["check", "-f", "examples/", "--no-such-flag"],
        vec!["check", "-f", "examples/", "--log-level", "volguard=loud"],
        vec!["frobnicate"],
    ] {
        let out = run(volguard(&args));
        assert_eq!(out.code, 2, "{args:?}");
        assert!(out.stderr.starts_with("error: "), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "", "{args:?}");
    }
}

#[test]
fn check_cluster_without_an_answering_cluster_is_a_usage_error_saying_why() {
    // A kubeconfig naming a port on 127.0.0.1 where nothing listens: the caches never sync.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: none\n  cluster:\n    server: http://127.0.0.1:{port}\n\
             contexts:\n- name: none\n  context: {{cluster: none, user: none}}\ncurrent-context: none\nusers:\n\
             - name: none\n  user: {{}}\n"
        ),
    )
    .expect("write kubeconfig");
    let mut cmd = volguard([
        "check",
        "-f",
        "tests/fixtures/cases/deployment-rwo-three-replicas-denied/input.yaml",
    ]);
    cmd.args([
        "--cluster",
        "--cluster-timeout",
        "1s",
        "--color",
        "never",
        "--kubeconfig",
    ])
    .arg(&kubeconfig);
    let out = run(cmd);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "the cluster's claims and workloads were not listed within 1s (volguard needs list and watch on \
             persistentvolumeclaims, deployments, statefulsets and replicasets in all namespaces"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stdout.is_empty(),
        "no report without the cluster: {}",
        out.stdout
    );
}

#[test]
fn a_claim_with_a_skip_but_no_reason_is_refused_offline_as_the_webhook_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("claim.yaml");
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: data\n  namespace: shop\n  annotations:\n    \
         volguard.io/skip: shared-rwo-claim\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      \
         storage: 1Gi\n",
    )
    .unwrap();
    let out = run(volguard([
        "check".as_ref(),
        "-o".as_ref(),
        "json".as_ref(),
        "-f".as_ref(),
        file.as_os_str(),
    ]));
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert_eq!(
        decisions(&out.json()),
        [d("PersistentVolumeClaim shop/data", "Deny", &["invalid-skip"])]
    );
}
