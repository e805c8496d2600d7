//! Storage classes through the webhook, in process: for every provisioner family, the claim its class can
//! provision is admitted and the one it cannot is refused, each sent as the API server sends a claim's
//! CREATE (the captured `create-pvc` review with the fixture's claim as its object).

use crate::common;

use std::sync::Arc;

use common::{Protocol, Setup, TestServer, review_json, to_vec};
use serde_json::Value;
use volguard::domain::lookup::Bundle;
use volguard::domain::workload::{Decoded, decode};

fn documents(file: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/storage")
        .join(file);
    serde_saphyr::from_multiple(&std::fs::read_to_string(path).expect("fixture")).expect("YAML")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_provisioner_family_in_both_verdicts_through_the_webhook() {
    let classes: Bundle = documents("classes.yaml")
        .into_iter()
        .map(|d| match decode(d).expect("a StorageClass decodes") {
            Decoded::Resource(r) => *r,
            other => panic!("not read: {other:?}"),
        })
        .collect::<Vec<_>>()
        .iter()
        .collect();
    let setup = Setup {
        lookup: Arc::new(classes),
        ..Setup::default()
    };
    let server = TestServer::start(setup).await;
    let client = server.client(Protocol::Http1);
    let mut judged = 0;
    for (i, claim) in documents("claims.yaml").into_iter().enumerate() {
        let name = claim["metadata"]["name"].as_str().unwrap().to_owned();
        let expect = claim["metadata"]["annotations"]["volguard.test/expect"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut review = review_json("create-pvc");
        review["request"]["uid"] = format!("5e1c0000-0000-4000-8000-{i:012}").into();
        review["request"]["name"] = name.clone().into();
        review["request"]["namespace"] = "storage".into();
        review["request"]["object"] = claim;
        let response = server
            .post(&client, "/validate", to_vec(&review))
            .await
            .response();
        assert_eq!(response["uid"], review["request"]["uid"]);
        let message = response["status"]["message"].as_str().unwrap_or_default();
        if expect.is_empty() {
            assert_eq!(response["allowed"], true, "{name}: {response:#}");
        } else {
            assert_eq!(response["allowed"], false, "{name}: {response:#}");
            assert!(
                message.starts_with(&format!(
                    "volguard denied PersistentVolumeClaim storage/{name}:\n[{expect}] PersistentVolumeClaim \
                     storage/{name} asks for"
                )),
                "{message}"
            );
        }
        judged += 1;
    }
    assert_eq!(judged, 30);
}
