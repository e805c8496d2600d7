//! The `volguard` binary as users run it: `check`, `review`, `mutate`, `certs`, options and environment,
//! the README's commands and tables, and
//! ARCHITECTURE.md's map (with the import rules it states).

#[path = "../support/cli.rs"]
mod cli_common;
#[path = "../support/env.rs"]
mod env;

mod architecture;
mod audit;
mod certs;
mod check;
mod convert;
mod mutate;
mod options;
mod readme;
mod review;
mod storage;
