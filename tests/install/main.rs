//! What installs volguard: `volguard manifests`, the Helm chart (compared with `manifests`, and rendered by
//! Helm itself where it can be), and the README's install instructions.

#[path = "../support/env.rs"]
mod env;
#[path = "../support/install.rs"]
mod install_common;

mod chart;
mod chart_render;
mod manifests;
mod readme;
