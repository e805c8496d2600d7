//! The environment a test's `volguard` child must not inherit: every `VOLGUARD_*` variable (each flag has
//! one, and more come with new flags) and the colour and log switches, any of which a developer's shell or
//! CI may set. Tests that want one set it on the command, explicitly.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// Whether `volguard` reads the variable as a setting.
pub fn is_setting(name: &OsStr) -> bool {
    name.to_str().is_some_and(|n| {
        n.starts_with("VOLGUARD_") || matches!(n, "NO_COLOR" | "CLICOLOR" | "CLICOLOR_FORCE" | "RUST_LOG")
    })
}

/// The settings this test process has in its environment.
pub fn inherited_settings() -> Vec<OsString> {
    std::env::vars_os()
        .map(|(name, _)| name)
        .filter(|name| is_setting(name))
        .collect()
}

/// The command, with none of the inherited settings.
pub fn hermetic(cmd: &mut Command) -> &mut Command {
    for name in inherited_settings() {
        cmd.env_remove(name);
    }
    cmd
}
