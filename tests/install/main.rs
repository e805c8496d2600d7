//! What installs volguard: `volguard manifests`, the Helm chart (compared with `manifests`;
//! rendered by Helm itself in tests/e2e/chart_render.rs) and its values' documentation, the README's
//! install instructions, and the release that publishes the image, binaries, crate and chart.

#[path = "../support/env.rs"]
mod env;
#[path = "../support/install.rs"]
mod install_common;

mod chart;
mod manifests;
mod package;
mod readme;
mod release;
mod values_doc;
