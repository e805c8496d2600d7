//! The abuse probes of issue 12, shared by the abuse tests (tests/abuse.rs, which assert the bounds) and
//! the abuse bench (benches/abuse.rs, which prints them before and after for any two binaries).
//!
//! Each probe starts its own `volguard serve` process from a built binary on 127.0.0.1, attacks it as a
//! hostile caller would, bounded in count and time, while an honest caller checks /healthz and a
//! well-formed review on fresh connections; the process is measured from /proc.

#![allow(dead_code)]

#[path = "../support/env.rs"]
pub mod env;

pub mod bodies;
pub mod client;
pub mod probes;
pub mod server;
pub mod siege;
