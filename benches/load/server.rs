//! One `volguard serve` process under load: started from the release binary cargo built for this bench, on
//! free 127.0.0.1 ports with a generated dev certificate, and killed when dropped (a panic included).

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::client::{ReviewTemplate, Target};

/// What the server answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// volguard as shipped: decode, look up, evaluate the policy.
    Volguard,
    /// `--baseline-allow-all`: the same stack answering `allowed: true` from the uid alone.
    Baseline,
}

impl Mode {
    /// The name in the results table and in file names.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Volguard => "volguard",
            Mode::Baseline => "baseline",
        }
    }

    /// The `allowed` every answer must carry: the benchmark review is a violation.
    pub fn allows(self) -> bool {
        self == Mode::Baseline
    }
}

/// A running server process.
pub struct ServerProcess {
    child: Child,
    /// The HTTPS address.
    pub addr: SocketAddr,
    /// The dev CA the server writes at start-up (`ca.crt` under its `--dev-cert-dir`).
    pub ca: PathBuf,
    /// The metrics address (plain HTTP, `/metrics`).
    #[allow(dead_code, reason = "read by benches/apiserver.rs, which shares this module")]
    pub metrics_addr: SocketAddr,
    log: Arc<Mutex<VecDeque<String>>>,
}

/// How many of the server's last log lines are kept, to show if it fails.
const LOG_TAIL: usize = 20;

/// A port nothing listens on right now. Another process could take it before the server binds it; the
/// server then fails to start and says so, which the readiness wait reports.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
}

impl ServerProcess {
    /// Starts `volguard serve --no-cluster` (with `--objects <objects>` when given) in `mode`, writing its
    /// certificates under `dir`. Its log (standard error, at serve's default level: a line per review) is read as it comes
    /// and only the last lines kept, so a long run fills no disk.
    pub fn start(bin: &Path, mode: Mode, dir: &Path, objects: Option<&Path>) -> Self {
        Self::start_with(bin, mode, dir, objects, &[], None)
    }

    /// As [`start`](Self::start), with more `serve` arguments, and pinned to one CPU (`taskset -c CPU`,
    /// which execs the server: the process id stays the server's) when `cpu` is given.
    pub fn start_with(
        bin: &Path,
        mode: Mode,
        dir: &Path,
        objects: Option<&Path>,
        extra: &[&std::ffi::OsStr],
        cpu: Option<usize>,
    ) -> Self {
        let addr = free_addr();
        let metrics_addr = free_addr();
        let certs = dir.join(format!("certs-{}", mode.name()));
        let mut cmd = match cpu {
            Some(cpu) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        // Only the flags below configure the server, whatever this shell exports.
        crate::env::hermetic(&mut cmd);
        cmd.arg("serve").arg("--no-cluster");
        if let Some(objects) = objects {
            cmd.arg("--objects").arg(objects);
        }
        cmd.arg("--addr")
            .arg(addr.to_string())
            .arg("--metrics-addr")
            .arg(metrics_addr.to_string())
            .arg("--dev-cert-dir")
            .arg(&certs);
        if mode == Mode::Baseline {
            cmd.arg("--baseline-allow-all");
        }
        cmd.args(extra);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let log = Arc::new(Mutex::new(VecDeque::with_capacity(LOG_TAIL + 1)));
        let stderr = child.stderr.take().expect("standard error is piped");
        let tail = Arc::clone(&log);
        // Ends when the process does (the pipe closes).
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut tail = tail.lock().expect("the log tail lock");
                if tail.len() == LOG_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Self {
            child,
            addr,
            ca: certs.join("ca.crt"),
            metrics_addr,
            log,
        }
    }

    /// Panics, with the end of the server's log, if the process has exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the server exited ({status}); its log ends:\n{}", self.log_tail());
        }
    }

    /// Waits (at most 30 s) for `GET /readyz` to answer 200 over HTTPS, trusting the CA the server wrote.
    pub async fn wait_ready(&mut self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            self.assert_running();
            if self.ca.exists() {
                let target = Target::new(self.addr, &self.ca, ReviewTemplate::empty(), true);
                if let Ok(mut conn) = target.connect().await
                    && let Ok((status, _)) = target
                        .exchange(&mut conn, "GET", "/readyz", Default::default())
                        .await
                    && status.is_success()
                {
                    return;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server was not ready within 30 s; its log ends:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let tail = self.log.lock().expect("the log tail lock");
        tail.iter().map(String::as_str).collect::<Vec<_>>().join("\n")
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's peak resident set size in KiB (`VmHWM` in `/proc/<pid>/status`), while it runs.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// The process's resident set size now, in KiB (`VmRSS`).
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with(field))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

/// The CPU time (user and system) process `pid` (or `self`) has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, in parentheses (which may hold spaces): state, then fields 4 to 52;
    // utime and stime are fields 14 and 15, in clock ticks (USER_HZ, 100 on Linux).
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    Some((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Our own child, by its handle; then reap it so no zombie outlives the bench.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
