//! The `volguard` binary as users run it: `check`, `review`, `mutate`, `certs`, options and environment,
//! and the README's commands and tables.

#[path = "../support/cli.rs"]
mod cli_common;

mod certs;
mod check;
mod mutate;
mod options;
mod readme;
mod review;
