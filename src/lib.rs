//! volguard: admission policy for Kubernetes volumes and workloads.
//!
//! Three rooms, each using only the ones above it (a test in `tests/cli/architecture.rs` keeps it so):
//!
//! ```text
//!  domain     what a workload, a claim and a policy are; pure, no I/O
//!             access, labels, workload ─▶ lookup (trait) ─▶ footprint ─▶ rules ─▶ policy
//!  decision   the one decision every caller goes through: evaluate (CREATE and UPDATE, the ratchet),
//!             mutate (the repair plan as a JSON patch)
//!  adapters   bytes and processes around it: manifest files, AdmissionReviews, the cluster's objects
//!             (kube_lookup), the HTTPS server, the CLI, install manifests, certificates
//! ```
//!
//! `volguard check`, `volguard review` and the webhook all decode at the edge (adapters), look up what the
//! cluster (or the files) know through [`domain::lookup::Lookup`], and call [`decision::evaluate`]: one
//! decision for one object, whoever asks. See ARCHITECTURE.md for the path of a review.
#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]
#![warn(missing_docs, unreachable_pub)]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod adapters;
pub mod decision;
pub mod domain;
