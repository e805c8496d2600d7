//! The `volguard` binary: parse the command line, install logging, run the command, exit with its code.

use std::io::IsTerminal as _;
use std::process::ExitCode;

use anyhow::Context as _;
use tracing_subscriber::EnvFilter;
use volguard::adapters::cli::{Cli, Exit, LogArgs, LogFormat};

// Reviews allocate many small strings (managedFields, labels) on every worker thread at once; mimalloc's
// thread-local heaps keep that off one contended arena.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Keeps the process's resident memory close to what it uses. mimalloc keeps freed memory in its arenas
/// for reuse, and on Linux lets transparent huge pages back them: after a burst of large review bodies the
/// resident size stayed at about twice what was in use (300 connections of 3 MiB: 142 to 166 MiB peak,
/// against 66 to 83 MiB tuned; `cargo bench --bench abuse -- --only 300`). Objects over 1 MiB (request
/// bodies, their largest strings) are therefore mapped on their own and returned to the OS when freed,
/// and huge pages are off for the process. Small allocations, where mimalloc's speed is, are untouched.
fn tune_allocator() {
    use std::ffi::c_int;
    // mimalloc v3's `mi_option_e` values, which libmimalloc-sys does not export: pinned to its numbering,
    // checked against the one value it does export (`_mi_option_last`).
    const _: () = assert!(
        libmimalloc_sys::_mi_option_last == 47,
        "mimalloc's option numbering changed: update ALLOW_THP and ARENA_MAX_OBJECT_SIZE"
    );
    const ALLOW_THP: c_int = 43;
    const ARENA_MAX_OBJECT_SIZE: c_int = 45;
    // SAFETY: mi_option_set only stores a value in mimalloc's option table; both options are read at
    // each use (an arena allocation, a new OS mapping), so setting them now applies from here on.
    unsafe {
        libmimalloc_sys::mi_option_set(ARENA_MAX_OBJECT_SIZE, 1024);
        libmimalloc_sys::mi_option_set(ALLOW_THP, 0);
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integer arguments and changes no memory of this process.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> ExitCode {
    tune_allocator();
    // Usage errors exit 2 here, through clap; as `kubectl-volguard`, help names `kubectl volguard`.
    let cli = Cli::parse_args();
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
