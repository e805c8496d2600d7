//! The `volguard` binary: parse the command line, install logging, run the command, exit with its code.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use tracing_subscriber::EnvFilter;
use volguard::cli::{Cli, Exit, LogArgs, LogFormat};

// Reviews allocate many small strings (managedFields, labels) on every worker thread at once; mimalloc's
// thread-local heaps keep that off one contended arena.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Usage errors exit 2 here, through clap.
    let cli = Cli::parse();
    let result = init_tracing(&cli.log, cli.command.default_log_level()).and_then(|()| cli.command.run());
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            Exit::Usage.into()
        }
    }
}

/// Logs go to standard error, so standard output carries only the command's result.
fn init_tracing(log: &LogArgs, default_level: &str) -> anyhow::Result<()> {
    let level = log.log_level.as_deref().unwrap_or(default_level);
    let filter = EnvFilter::builder()
        .parse(level)
        .with_context(|| format!("invalid --log-level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match log.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
            .try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed
        .map_err(|e| anyhow::anyhow!(e))
        .context("installing the log subscriber")
}
