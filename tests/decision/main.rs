//! The decision, in process: the rule cases, claim footprints in every order, the scenarios, mutation
//! plans, and loading and validating policy files.

#[path = "../support/env.rs"]
mod env;
#[path = "../support/scenario.rs"]
mod scenario_common;

mod cases;
mod claim_order;
mod mutate;
mod policy_load;
mod scenarios;
mod schema;
