//! Reloading the certificate pair and the policy when their files change, keeping the last good version.
//!
//! Kubernetes updates a Secret or ConfigMap volume by swapping a `..data` symlink, so the *directories*
//! are watched (notify), with a periodic content-hash check as a backstop for missed events. A new version
//! is swapped in only once it has fully parsed (certificate and key both, and matching); a broken one is
//! logged and counted, and the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tracing::{error, info, warn};

use super::state::AppState;
use super::tls::{PairPaths, load_pair};
use crate::domain::policy::load_path;

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    /// The policy file or directory (None: the built-in policy, nothing to reload).
    pub policy: Option<PathBuf>,
    /// The certificate pair (None: generated at start, nothing to reload).
    pub certs: Option<PairPaths>,
    /// How often contents are re-hashed even without a file event.
    pub poll: Duration,
}

/// Hashes every file a path stands for (a directory: its visible `.yaml`/`.yml` files). Blocking.
fn fingerprint(paths: &[&Path]) -> Option<[u8; 32]> {
    let mut hasher = Sha256::new();
    for path in paths {
        let mut files = Vec::new();
        if path.is_dir() {
            for entry in std::fs::read_dir(path).ok()?.flatten() {
                let p = entry.path();
                let visible = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with('.'));
                if visible && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
                    files.push(p);
                }
            }
            files.sort();
        } else {
            files.push(path.to_path_buf());
        }
        for f in files {
            hasher.update(f.as_os_str().as_encoded_bytes());
            hasher.update(std::fs::read(&f).unwrap_or_default());
        }
    }
    Some(hasher.finalize().into())
}

/// Directories to watch for a path: the directory itself, or a file's parent.
fn watch_dir(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_path_buf()
    }
}

/// What the watched files held when they were loaded: take it *before* loading them, so a change made
/// while the server starts is seen as a change (at worst the same content is loaded twice).
#[derive(Clone, Debug, Default)]
pub struct Baseline(Seen);

impl Baseline {
    /// Fingerprints the watched files as they are now. Call before loading them.
    pub async fn take(watched: &Watched) -> Self {
        Self(Seen {
            policy: hash_policy(watched).await,
            certs: hash_certs(watched).await,
        })
    }
}

/// Spawns the reloader; it runs until the process ends. Files that differ from `baseline` are reloaded.
pub fn spawn(
    state: Arc<AppState>,
    watched: Watched,
    baseline: Baseline,
) -> Option<tokio::task::JoinHandle<()>> {
    if watched.policy.is_none() && watched.certs.is_none() {
        return None;
    }
    let (tx, rx) = mpsc::channel::<()>(1);
    let mut dirs: Vec<PathBuf> = Vec::new();
    dirs.extend(watched.policy.iter().map(|p| watch_dir(p)));
    if let Some(c) = &watched.certs {
        dirs.push(watch_dir(&c.cert));
        dirs.push(watch_dir(&c.key));
    }
    dirs.sort();
    dirs.dedup();
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if res.is_ok() {
            // A full channel already holds a pending check: coalesce.
            let _ = tx.try_send(());
        }
    });
    let watcher = match watcher {
        Ok(mut w) => {
            for d in &dirs {
                if let Err(e) = w.watch(d, RecursiveMode::NonRecursive) {
                    warn!(dir = %d.display(), error = %e, "Cannot watch; relying on polling");
                }
            }
            Some(w)
        }
        Err(e) => {
            warn!(error = %e, "File watching unavailable; relying on polling");
            None
        }
    };
    Some(tokio::spawn(run(state, watched, baseline.0, rx, watcher)))
}

async fn run(
    state: Arc<AppState>,
    watched: Watched,
    mut seen: Seen,
    mut events: mpsc::Receiver<()>,
    _watcher: Option<notify::RecommendedWatcher>,
) {
    // A change between the baseline and now (while starting) is caught by the first check.
    check(&state, &watched, &mut seen).await;
    let mut poll = tokio::time::interval(watched.poll.max(Duration::from_millis(100)));
    poll.tick().await;
    loop {
        tokio::select! {
            event = events.recv() => {
                if event.is_none() { return; }
                // Let a burst of events (symlink swap, cert then key) settle.
                tokio::time::sleep(Duration::from_millis(50)).await;
                while events.try_recv().is_ok() {}
            }
            _ = poll.tick() => {}
        }
        check(&state, &watched, &mut seen).await;
    }
}

#[derive(Clone, Debug, Default)]
struct Seen {
    policy: Option<[u8; 32]>,
    certs: Option<[u8; 32]>,
}

async fn hash_policy(w: &Watched) -> Option<[u8; 32]> {
    let p = w.policy.clone()?;
    tokio::task::spawn_blocking(move || fingerprint(&[&p]))
        .await
        .ok()
        .flatten()
}

async fn hash_certs(w: &Watched) -> Option<[u8; 32]> {
    let c = w.certs.clone()?;
    tokio::task::spawn_blocking(move || fingerprint(&[&c.cert, &c.key]))
        .await
        .ok()
        .flatten()
}

/// Serves a newly loaded pair from the next handshake on, or, when it did not load, keeps the last good
/// one and counts the refusal. Files and the self-managed Secret both come through here.
pub(crate) fn swap_pair(
    state: &Arc<AppState>,
    loaded: Result<Arc<rustls::sign::CertifiedKey>, super::tls::TlsError>,
    source: &str,
) {
    let Some(store) = &state.certs else { return };
    match loaded {
        Ok(pair) => {
            store.store(pair);
            state.certs_swapped();
            info!(source, "Serving certificate reloaded");
        }
        Err(e) => {
            error!(source, error = %e, "Certificate reload refused; the last good pair keeps serving");
            state.metrics.cert_reload(false);
        }
    }
}

async fn check(state: &Arc<AppState>, watched: &Watched, seen: &mut Seen) {
    if let Some(path) = &watched.policy {
        let now = hash_policy(watched).await;
        if now.is_some() && now != seen.policy {
            seen.policy = now;
            let p = path.clone();
            match tokio::task::spawn_blocking(move || load_path(&p)).await {
                Ok(Ok(policies)) => {
                    info!(path = %path.display(), policies = policies.policies().len(), "Policy reloaded");
                    state.swap_policies(policies);
                }
                Ok(Err(e)) => {
                    error!(error = %e, "Policy reload refused; the last good policy keeps serving");
                    state.metrics.policy_reload(false, 0);
                }
                Err(e) => error!(error = %e, "Policy reload task failed"),
            }
        }
    }
    if let Some(paths) = &watched.certs {
        let now = hash_certs(watched).await;
        if now.is_some() && now != seen.certs {
            seen.certs = now;
            let p = paths.clone();
            match tokio::task::spawn_blocking(move || load_pair(&p)).await {
                Ok(loaded) => swap_pair(state, loaded, &paths.cert.display().to_string()),
                Err(e) => error!(error = %e, "Certificate reload task failed"),
            }
        }
    }
}
