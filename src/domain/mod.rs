//! The domain: what a workload, a claim and a policy are, and the rules over them. Pure: no I/O, no
//! clock, no network; cluster state comes in through the [`lookup::Lookup`] trait.

pub mod access;
pub mod convert;
pub mod footprint;
pub mod labels;
pub mod lookup;
pub mod policy;
pub mod rules;
pub mod storage;
pub mod workload;
