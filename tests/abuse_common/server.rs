//! One `volguard serve` process, started from a built binary on free 127.0.0.1 ports with a dev
//! certificate, and read from the outside as an operator would: peak and current RSS, CPU seconds and
//! open file descriptors from /proc. Killed when dropped (a failing assertion included).

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// How long a server gets to write its certificate and answer /healthz.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// How a server is started.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Flags after `serve` (besides the listeners and the certificate directory, which are chosen here).
    pub args: Vec<String>,
    /// A kubeconfig: the server watches that cluster. Without one it runs `--no-cluster`.
    pub kubeconfig: Option<PathBuf>,
    /// A file descriptor limit (`ulimit -n`) for the process, as a small container might have.
    pub nofile: Option<u32>,
}

/// A running `volguard serve`.
pub struct Served {
    child: Child,
    /// The webhook's HTTPS address.
    pub addr: SocketAddr,
    /// The metrics listener's plain-HTTP address.
    pub metrics_addr: SocketAddr,
    /// The dev CA the server wrote.
    pub ca_pem: String,
    dir: TempDir,
}

/// A port nothing listens on right now, outside the ephemeral range (see `tests/support/ports.rs`).
/// Another test could still pick it before the server binds it; the server then exits saying the
/// address is in use, and [`Served::start`] tries again on new ports.
fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::ports::free_port()))
}

/// How many times a server is started on new ports when another process took one of its ports first.
const START_ATTEMPTS: usize = 5;

impl Served {
    /// Starts `bin serve ...` and waits until /readyz answers 200 over TLS.
    pub async fn start(bin: &Path, launch: &Launch) -> Self {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::attempt(bin, launch).await {
                Ok(served) => return served,
                // Tests run in parallel, each picking free ports: a port can be taken between the pick
                // and the server's bind. Only that is retried; any other exit fails at once.
                Err(log) if log.contains("Address already in use") => last = log,
                Err(log) => panic!("volguard serve exited at start:\n{log}"),
            }
        }
        panic!("volguard serve found its ports taken {START_ATTEMPTS} times:\n{last}")
    }

    async fn attempt(bin: &Path, launch: &Launch) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (addr, metrics_addr) = (free_addr(), free_addr());
        let certs = dir.path().join("certs");
        let log = File::create(dir.path().join("serve.log")).expect("a log file");
        let mut serve: Vec<String> = vec![
            "serve".into(),
            "--addr".into(),
            addr.to_string(),
            "--metrics-addr".into(),
            metrics_addr.to_string(),
            "--dev-cert-dir".into(),
            certs.display().to_string(),
        ];
        match &launch.kubeconfig {
            Some(k) => serve.extend(["--kubeconfig".into(), k.display().to_string()]),
            None => serve.push("--no-cluster".into()),
        }
        serve.extend(launch.args.iter().cloned());
        let mut cmd = match launch.nofile {
            // `exec` keeps the pid: /proc readings are the server's own.
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin)
                    .args(&serve);
                sh
            }
            None => {
                let mut c = Command::new(bin);
                c.args(&serve);
                c
            }
        };
        // Only the flags above configure the server, whatever this shell exports.
        super::env::hermetic(&mut cmd).env_remove("KUBECONFIG");
        let child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("the volguard binary starts");
        let mut served = Served {
            child,
            addr,
            metrics_addr,
            ca_pem: String::new(),
            dir,
        };
        served.wait_ready(&certs.join("ca.crt")).await?;
        Ok(served)
    }

    /// Waits until /readyz answers 200; the server's log when it exited first.
    async fn wait_ready(&mut self, ca: &Path) -> Result<(), String> {
        let until = Instant::now() + START_DEADLINE;
        loop {
            if !self.alive() {
                return Err(self.log_tail());
            }
            if let Ok(pem) = std::fs::read_to_string(ca)
                && !pem.is_empty()
            {
                self.ca_pem = pem;
                let client = super::client::https(&self.ca_pem);
                // Ready: policy and certificate loaded and, watching a cluster, its caches synced.
                if let Ok(r) = client.get(self.url("/readyz")).send().await
                    && r.status().is_success()
                {
                    return Ok(());
                }
            }
            assert!(
                Instant::now() < until,
                "volguard serve was not ready within {START_DEADLINE:?}:\n{}",
                self.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `https://127.0.0.1:PORT<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{path}", self.addr)
    }

    /// `http://127.0.0.1:PORT/metrics`.
    pub fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.metrics_addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    /// The most memory the process has had resident since it started (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// The memory resident now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// User and system CPU seconds the process has used.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // The command name (field 2) is in parentheses and may hold spaces: count from after it.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        // utime and stime are fields 14 and 15, that is 11 and 12 after the state (field 3).
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        ticks as f64 / clock_ticks()
    }

    /// File descriptors the process has open.
    pub fn open_fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).map_or(0, |d| d.count())
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Clock ticks per second (`getconf CLK_TCK`), 100 on every Linux this runs on if getconf is missing.
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}
