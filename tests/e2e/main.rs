//! The tests that need the shared tools: volguard behind the real kube-apiserver of
//! `../shared/e2e/cluster.sh up`, called exactly as in production, and the chart rendered by Helm
//! (`../shared/tools/helm-check`). The default nextest profile skips this binary (nextest reports the
//! tests as skipped); `cargo nextest run --profile e2e` runs them, and there a missing API server or tool
//! is a failure that says what is missing. `.ci/run` starts the cluster and runs them.

mod cluster_common;
#[path = "../support/env.rs"]
mod env;
#[path = "../support/install.rs"]
mod install_common;
#[path = "../support/ports.rs"]
mod ports;
#[path = "../support/scenario.rs"]
mod scenario_common;

mod chart_render;
mod check_cluster;
mod client_ca;
mod convert;
mod install;
mod mutate;
mod scenarios;
mod self_managed;
mod storage_classes;
mod validate;
