//! What installs volguard: `volguard manifests`, the Helm chart (compared with `manifests`;
//! rendered by Helm itself in tests/e2e/chart_render.rs), and the README's install instructions.

#[path = "../support/env.rs"]
mod env;
#[path = "../support/install.rs"]
mod install_common;

mod chart;
mod manifests;
mod package;
mod readme;
mod values_doc;
