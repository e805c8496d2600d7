//! The `volguard` binary as users run it: `check`, `review`, `mutate`, `certs`, options and environment,
//! SARIF and JUnit output, the integrations (pre-commit, the GitHub Action, krew and kubectl, `--exclude`),
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
mod integrations;
mod junit;
mod mutate;
mod options;
mod readme;
mod readme_integrations;
mod review;
mod sarif;
mod storage;
