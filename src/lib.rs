//! volguard: admission policy for Kubernetes volumes and workloads.
//!
//! The crate is split by concept:
//!
//! ```text
//!  manifest / admission ──decode──▶ workload::Resource ──▶ workload::Footprint
//!                                                              │
//!  lookup::Lookup (claims, every user of a claim) ──▶ footprint::ClaimFootprint ──▶ rules ──▶ policy::evaluate
//!                                                                   │
//!                                      policy `spec.mutate` ──▶ mutate ──▶ JSON patch (repairs)
//! ```
//!
//! Everything left of `rules` is decoding at the edge; `rules` and `policy` are pure functions, shared by
//! `volguard check` and the webhook server so both give one decision for one object. `install` builds the
//! objects that run the webhook in a cluster (`volguard manifests`; the chart in `charts/volguard` mirrors
//! them).
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod admission;
pub mod certs;
pub mod cli;
pub mod footprint;
pub mod install;
pub mod kube_lookup;
pub mod labels;
pub mod lookup;
pub mod manifest;
pub mod mutate;
pub mod policy;
pub mod rules;
pub mod server;
pub mod workload;
