//! The adapters: everything between the decision and the outside world. Manifest files and
//! AdmissionReviews in, the cluster's objects through watches and GETs, the HTTPS server, the CLI, and
//! the objects and certificates that install volguard, and the policy reports `audit` writes.

pub mod admission;
pub mod audit;
pub mod certs;
pub mod cli;
pub mod install;
pub mod kube_lookup;
pub mod managed_tls;
pub mod manifest;
pub mod policy_report;
pub mod server;
