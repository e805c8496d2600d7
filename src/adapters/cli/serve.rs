//! `volguard serve`: the HTTPS admission webhook, from flags to a running [`server`](crate::adapters::server).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use tracing::{info, warn};

use super::{Exit, ObjectLimitArgs};
use crate::adapters::audit::background::{self, BackgroundAudit};
use crate::adapters::kube_lookup::{self, ClusterLookup};
use crate::adapters::managed_tls::lease::LeaseConfig;
use crate::adapters::managed_tls::{self, ManagedTls};
use crate::adapters::policy_report::{ReportApi, WriteLimits};
use crate::adapters::server::start::{Config, TlsSource, start};
use crate::adapters::server::tls::PairPaths;
use crate::adapters::server::{ConnectionLimits, Limits, ServeOptions, shutdown_signal};
use crate::domain::lookup::{Bundle, Lookup, Prefetch};
use crate::domain::workload::DEFAULT_NAMESPACE;

/// `volguard serve` flags.
#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// HTTPS address for /validate, /mutate, /healthz and /readyz: loopback unless told otherwise (the
    /// chart binds the pod's IP). IP:PORT; an IPv6 address may be bracketed or not (`$(POD_IP):8443`).
    #[arg(long, env = "VOLGUARD_ADDR", default_value = "127.0.0.1:8443", value_parser = parse_listen_addr)]
    pub addr: SocketAddr,
    /// Plain-HTTP address for GET /metrics (Prometheus text format): loopback unless told otherwise (the
    /// chart binds the pod's IP).
    #[arg(long, env = "VOLGUARD_METRICS_ADDR", default_value = "127.0.0.1:9090", value_parser = parse_listen_addr)]
    pub metrics_addr: SocketAddr,
    /// Serving certificate chain (PEM), reloaded when it changes; with --tls-key.
    #[arg(long, env = "VOLGUARD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serving private key (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC), reloaded when it changes; with --tls-cert.
    #[arg(long, env = "VOLGUARD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Self-managed TLS: keep the CA and serving certificate in this Secret (NAMESPACE/NAME), created and
    /// renewed by the replica holding the Lease (--lease-name), reloaded by every replica without a restart.
    #[arg(long, value_name = "NAMESPACE/NAME", env = "VOLGUARD_TLS_SECRET", conflicts_with = "tls_cert",
        value_parser = parse_secret_ref)]
    pub tls_secret: Option<(String, String)>,
    /// With --tls-secret: the Service the API server calls (its NAME, NAME.NAMESPACE, NAME.NAMESPACE.svc
    /// and NAME.NAMESPACE.svc.cluster.local go into the certificate; NAMESPACE is the Secret's).
    #[arg(long, value_name = "NAME", env = "VOLGUARD_SERVICE", requires = "tls_secret")]
    pub service: Option<String>,
    /// With --tls-secret: another DNS name or IP address for the certificate (e.g. 127.0.0.1 for a
    /// webhook registered by URL); repeat or separate with commas.
    #[arg(
        long = "tls-san",
        value_name = "NAME",
        env = "VOLGUARD_TLS_SANS",
        value_delimiter = ',',
        requires = "tls_secret"
    )]
    pub tls_sans: Vec<String>,
    /// With --tls-secret: the ValidatingWebhookConfiguration whose caBundle the leader keeps.
    #[arg(
        long,
        value_name = "NAME",
        env = "VOLGUARD_VALIDATING_WEBHOOK",
        requires = "tls_secret"
    )]
    pub validating_webhook: Option<String>,
    /// With --tls-secret: the MutatingWebhookConfiguration whose caBundle the leader keeps.
    #[arg(
        long,
        value_name = "NAME",
        env = "VOLGUARD_MUTATING_WEBHOOK",
        requires = "tls_secret"
    )]
    pub mutating_webhook: Option<String>,
    /// With --tls-secret: a YAML file holding the ValidatingWebhookConfiguration and/or
    /// MutatingWebhookConfiguration volguard should be registered with. The leader puts their webhooks
    /// (caBundle set) into the configurations named by --validating-webhook and --mutating-webhook once it
    /// answers reviews, so a fresh install sends nothing to volguard before a replica is ready.
    #[arg(
        long,
        value_name = "PATH",
        env = "VOLGUARD_WEBHOOKS_FILE",
        requires = "tls_secret"
    )]
    pub webhooks_file: Option<PathBuf>,
    /// With --tls-secret: the coordination.k8s.io Lease (in the Secret's namespace) that elects the replica
    /// managing the certificate; default: the Secret's name.
    #[arg(
        long,
        value_name = "NAME",
        env = "VOLGUARD_LEASE_NAME",
        requires = "tls_secret"
    )]
    pub lease_name: Option<String>,
    /// With --tls-secret or --audit-interval: this replica's identity in the Leases; default: the pod name
    /// (HOSTNAME) and the process id.
    #[arg(long, value_name = "ID", env = "VOLGUARD_LEASE_IDENTITY")]
    pub lease_identity: Option<String>,
    /// With --tls-secret or --audit-interval: how long the leader holds a Lease without renewing it
    /// (renewed every third).
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_LEASE_DURATION", default_value = "15s",
        value_parser = parse_duration)]
    pub lease_duration: Duration,
    /// Audit every workload in the cluster in the background, this often and soon after a watch event
    /// changes one (at most one pass per 10s), and keep one policy report per namespace (as `volguard
    /// audit --write-reports`); only the replica holding --audit-lease does. Off unless set; at least 10s.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_AUDIT_INTERVAL", value_parser = parse_duration,
        requires = "audit_lease", conflicts_with = "no_cluster")]
    pub audit_interval: Option<Duration>,
    /// With --audit-interval: the coordination.k8s.io Lease (NAMESPACE/NAME) that elects the replica that
    /// audits.
    #[arg(long, value_name = "NAMESPACE/NAME", env = "VOLGUARD_AUDIT_LEASE", value_parser = parse_secret_ref,
        requires = "audit_interval")]
    pub audit_lease: Option<(String, String)>,
    /// With --audit-interval: audit only this namespace (default: every namespace).
    #[arg(
        long,
        value_name = "NAME",
        env = "VOLGUARD_AUDIT_NAMESPACE",
        requires = "audit_interval"
    )]
    pub audit_namespace: Option<String>,
    /// With --audit-interval: the report API written.
    #[arg(long, value_enum, env = "VOLGUARD_AUDIT_REPORT_API", default_value_t = ReportApi::Wgpolicyk8s)]
    pub audit_report_api: ReportApi,
    /// With --audit-interval: workloads judged at most in one pass; a cluster with more fails the pass
    /// (logged, and counted in volguard_audit_runs_total{result="failure"}).
    #[arg(
        long,
        value_name = "N",
        env = "VOLGUARD_AUDIT_MAX_OBJECTS",
        default_value_t = 10_000
    )]
    pub audit_max_objects: usize,
    /// With --audit-interval: results kept in one namespace's report (failures first).
    #[arg(
        long,
        value_name = "N",
        env = "VOLGUARD_AUDIT_MAX_REPORT_RESULTS",
        default_value_t = 1000
    )]
    pub audit_max_report_results: usize,
    /// With --audit-interval: the pause after each report write (apply, list page, delete): the rate limit.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_AUDIT_WRITE_PAUSE", default_value = "100ms",
        value_parser = parse_duration)]
    pub audit_write_pause: Duration,
    /// With --tls-secret: the serving certificate's life; it is renewed two thirds through it.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_CERT_LIFETIME", default_value = "2160h",
        value_parser = parse_duration)]
    pub cert_lifetime: Duration,
    /// With --tls-secret: the CA's life; a new CA joins the caBundle two thirds through it, and signs once
    /// the webhooks trust it. The old one stays in the caBundle until it expires.
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_CA_LIFETIME", default_value = "26280h",
        value_parser = parse_duration)]
    pub ca_lifetime: Duration,
    /// Without --tls-cert: where the generated dev CA (ca.crt) and serving pair for localhost are written.
    #[arg(long, env = "VOLGUARD_DEV_CERT_DIR", default_value = "certs/dev")]
    pub dev_cert_dir: PathBuf,
    /// A VolumePolicy file, or a directory of them (a mounted ConfigMap), reloaded when it changes;
    /// default: the built-in policy.
    #[arg(long, env = "VOLGUARD_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubeconfig for claim lookups (default: in-cluster config, then KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "VOLGUARD_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context.
    #[arg(long, env = "VOLGUARD_CONTEXT")]
    pub context: Option<String>,
    /// Do not contact a cluster: claims and scale targets are unknown to the rules (reported as missing),
    /// unless given with --objects.
    #[arg(long, env = "VOLGUARD_NO_CLUSTER")]
    pub no_cluster: bool,
    /// With --no-cluster: manifest files (or directories) whose claims and workloads reviews are judged
    /// against, read once at start-up, as `volguard review -f` does. For offline testing and benchmarks.
    #[arg(long, value_name = "PATH", env = "VOLGUARD_OBJECTS", requires = "no_cluster")]
    pub objects: Vec<PathBuf>,
    /// How long a review may take, body included; keep it below the webhook's timeoutSeconds.
    #[arg(long, env = "VOLGUARD_REQUEST_TIMEOUT", default_value = "8s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long reviews in flight may take to finish after SIGTERM.
    #[arg(long, env = "VOLGUARD_GRACE_PERIOD", default_value = "15s", value_parser = parse_duration)]
    pub grace_period: Duration,
    /// How often the policy and certificate files are re-hashed, besides file events.
    #[arg(long, env = "VOLGUARD_RELOAD_POLL", default_value = "10s", value_parser = parse_duration)]
    pub reload_poll: Duration,
    /// Require every client to present a certificate signed by a CA in this PEM file: the API server's,
    /// given to it by an AdmissionConfiguration (see README, "Limits and hardening").
    #[arg(long, value_name = "PATH", env = "VOLGUARD_CLIENT_CA")]
    pub client_ca: Option<PathBuf>,
    /// The largest review body accepted (an UPDATE carries two copies of the object).
    #[arg(long, value_name = "BYTES", env = "VOLGUARD_MAX_BODY_BYTES", default_value_t = Limits::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Review bodies held at once, all requests together; over it a review is refused at once (503).
    #[arg(long, value_name = "BYTES", env = "VOLGUARD_MAX_INFLIGHT_BYTES",
        default_value_t = Limits::default().max_inflight_bytes)]
    pub max_inflight_bytes: usize,
    /// Reviews larger than 128 KiB decoded and judged at once, off the request threads.
    #[arg(long, value_name = "N", env = "VOLGUARD_HEAVY_REVIEWS", default_value_t = Limits::default().heavy_reviews)]
    pub heavy_reviews: usize,
    /// What one object may ask of a decision.
    #[command(flatten)]
    pub object_limits: ObjectLimitArgs,
    /// Connections open at once on the webhook listener; more are closed as soon as accepted.
    #[arg(long, value_name = "N", env = "VOLGUARD_MAX_CONNECTIONS",
        default_value_t = ConnectionLimits::webhook().max_connections)]
    pub max_connections: usize,
    /// Connections open at once on the metrics listener.
    #[arg(long, value_name = "N", env = "VOLGUARD_METRICS_MAX_CONNECTIONS",
        default_value_t = ConnectionLimits::metrics().max_connections)]
    pub metrics_max_connections: usize,
    /// How long a connection may stay open with no request in flight (HTTP/1.1 keep-alive and HTTP/2).
    #[arg(long, value_name = "DURATION", env = "VOLGUARD_IDLE_TIMEOUT", default_value = "90s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Benchmark baseline (`cargo bench --bench load`): allow every review after reading only its uid,
    /// without decoding the object or evaluating a policy. Only in builds with the `bench-baseline`
    /// feature: it allows everything.
    #[cfg(feature = "bench-baseline")]
    #[arg(long, hide = true)]
    pub baseline_allow_all: bool,
}

/// `IP:PORT`, where an IPv6 address may also come unbracketed (`fd00::1:8443`: the port is what follows
/// the last colon), so a manifest can write `--addr=$(POD_IP):8443` on IPv4 and IPv6 clusters alike.
pub(crate) fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let expected = || format!("invalid address {s:?}: expected IP:PORT, e.g. 127.0.0.1:8443 or [::1]:8443");
    let (ip, port) = s.rsplit_once(':').ok_or_else(expected)?;
    let ip: std::net::IpAddr = ip.parse().map_err(|_| expected())?;
    let port: u16 = port.parse().map_err(|_| expected())?;
    Ok(SocketAddr::new(ip, port))
}

/// `NAMESPACE/NAME`.
fn parse_secret_ref(s: &str) -> Result<(String, String), String> {
    match s.split_once('/') {
        Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((ns.to_owned(), name.to_owned()))
        }
        _ => Err(format!("invalid Secret {s:?}: expected NAMESPACE/NAME")),
    }
}

/// A duration flag: jiff's friendly format (`8s`, `500ms`, `2m`, `1m30s`, `2 minutes`) or ISO 8601
/// (`PT8S`); a bare number is seconds. Negative durations are refused.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("invalid duration {s:?}: {e}"));
    }
    let parsed: jiff::SignedDuration = s
        .parse()
        .map_err(|e| format!("invalid duration {s:?}: expected e.g. 8s, 500ms, 2m ({e})"))?;
    Duration::try_from(parsed).map_err(|_| format!("invalid duration {s:?}: it must not be negative"))
}

/// Runs the server until SIGTERM or SIGINT, then drains and exits 0.
pub fn run(args: ServeArgs) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio")?;
    runtime.block_on(serve(args))
}

async fn serve(args: ServeArgs) -> anyhow::Result<Exit> {
    let ServeArgs {
        addr,
        metrics_addr,
        tls_cert,
        tls_key,
        tls_secret,
        service,
        tls_sans,
        validating_webhook,
        mutating_webhook,
        webhooks_file,
        lease_name,
        lease_identity,
        lease_duration,
        audit_interval,
        audit_lease,
        audit_namespace,
        audit_report_api,
        audit_max_objects,
        audit_max_report_results,
        audit_write_pause,
        cert_lifetime,
        ca_lifetime,
        dev_cert_dir,
        policy,
        kubeconfig,
        context,
        no_cluster,
        objects,
        request_timeout,
        grace_period,
        reload_poll,
        client_ca,
        max_body_bytes,
        max_inflight_bytes,
        heavy_reviews,
        object_limits,
        max_connections,
        metrics_max_connections,
        idle_timeout,
        #[cfg(feature = "bench-baseline")]
        baseline_allow_all,
    } = args;
    #[cfg(not(feature = "bench-baseline"))]
    let baseline_allow_all = false;
    // One stop signal for the server, the election and the Secret's watcher: on SIGTERM the leader gives
    // the Lease up while the server drains.
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        stop_tx.send_replace(true);
    });
    let desired = match &webhooks_file {
        Some(path) => Some(Arc::new(
            managed_tls::DesiredWebhooks::read(path)
                .await
                .context("reading --webhooks-file")?,
        )),
        None => None,
    };
    let identity = lease_identity.unwrap_or_else(default_identity);
    let managed_config = tls_secret.map(|(namespace, secret)| {
        let mut sans: Vec<String> = service
            .as_deref()
            .map(|s| ManagedTls::service_names(s, &namespace))
            .unwrap_or_default();
        sans.extend(tls_sans);
        ManagedTls {
            lease: lease_name.unwrap_or_else(|| secret.clone()),
            identity: identity.clone(),
            namespace,
            secret,
            lease_duration,
            cert_lifetime,
            ca_lifetime,
            sans,
            validating_webhook,
            mutating_webhook,
            webhooks: desired,
            ready: Arc::default(),
        }
    });
    if managed_config.as_ref().is_some_and(|m| m.sans.is_empty()) {
        anyhow::bail!("--tls-secret needs --service or --tls-san: the names the certificate is for");
    }
    // A claim the watch has not delivered yet is fetched directly; that must fit well inside the review's
    // own deadline.
    let get_timeout = request_timeout / 4;
    let audit = match (audit_interval, audit_lease) {
        (Some(interval), Some((namespace, name))) => Some(BackgroundAudit {
            interval,
            namespace: audit_namespace,
            api: audit_report_api,
            max_objects: audit_max_objects,
            max_results: audit_max_report_results,
            limits: WriteLimits {
                request_timeout,
                pause: audit_write_pause,
            },
            lease: LeaseConfig {
                namespace,
                name,
                identity: identity.clone(),
                duration: lease_duration,
            },
        }),
        _ => None,
    };
    let (lookup, prefetch, cluster) = if objects.is_empty() {
        cluster_lookup(no_cluster, kubeconfig.as_deref(), context.as_deref(), get_timeout).await?
    } else {
        (object_lookup(objects).await?, None, None)
    };
    let mut managed = None;
    let tls = match (tls_cert, tls_key, managed_config) {
        (Some(cert), Some(key), _) => TlsSource::Files(PairPaths { cert, key }),
        (_, _, Some(config)) => {
            let client = kube_lookup::client(kubeconfig.as_deref(), context.as_deref())
                .await
                .context("connecting to the cluster for --tls-secret")?;
            info!(secret = %config.secret, namespace = %config.namespace, lease = %config.lease,
                identity = %config.identity, "Self-managed TLS");
            match managed_tls::start(client, config, stop.clone()).await? {
                Some(m) => {
                    let pair = Arc::clone(&m.pair);
                    managed = Some(m);
                    TlsSource::Managed(pair)
                }
                None => return Ok(Exit::Clean),
            }
        }
        _ => TlsSource::Generate(dev_cert_dir),
    };
    let config = Config {
        addr,
        metrics_addr: Some(metrics_addr),
        tls,
        policy,
        options: ServeOptions {
            limits: Limits {
                request_timeout,
                max_body_bytes,
                max_inflight_bytes,
                heavy_reviews,
                objects: object_limits.into(),
                ..Limits::default()
            },
            connections: ConnectionLimits {
                max_connections,
                idle_timeout,
                ..ConnectionLimits::webhook()
            },
            metrics_connections: ConnectionLimits {
                max_connections: metrics_max_connections,
                idle_timeout,
                ..ConnectionLimits::metrics()
            },
            grace: grace_period,
        },
        reload_poll,
        lookup,
        prefetch,
        baseline_allow_all,
        client_ca,
    };
    let server_stop = {
        let mut stop = stop.clone();
        async move {
            let _ = stop.wait_for(|s| *s).await;
        }
    };
    let running = start(config, server_stop)
        .await
        .context("starting the webhook server")?;
    if let Some(m) = &managed {
        m.watch(Arc::clone(&running.state), stop.clone());
    }
    let mut audit_running = None;
    if let Some(cluster) = cluster {
        if let Some(config) = audit {
            let client = kube_lookup::client(kubeconfig.as_deref(), context.as_deref())
                .await
                .context("connecting to the cluster for --audit-interval")?;
            info!(lease = %config.lease.name, namespace = %config.lease.namespace,
                interval = ?config.interval, "Background audit");
            audit_running = Some(background::start(
                client,
                Arc::clone(&cluster),
                Arc::clone(&running.state),
                config,
                stop.clone(),
            ));
        }
        running
            .state
            .metrics
            .watch_caches(Arc::new(move || cluster.stats()));
    } else if audit.is_some() {
        anyhow::bail!("--audit-interval needs the cluster: not with --objects, nor without a kubeconfig");
    }
    if let Some(ca) = &running.generated_ca {
        eprintln!(
            "volguard: serving https://{} with a generated dev certificate; CA bundle: {}\n  try: curl --cacert {} \
             https://localhost:{}/healthz",
            running.addr,
            ca.display(),
            ca.display(),
            running.addr.port()
        );
    }
    running.wait().await.context("the server task failed")?;
    if let Some(m) = managed {
        m.finish().await;
    }
    if let Some(a) = audit_running {
        a.finish().await;
    }
    info!("Stopped");
    Ok(Exit::Clean)
}

/// The pod's name (HOSTNAME in a pod) and the process id: unique among replicas, and among processes on
/// one machine.
fn default_identity() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "volguard".to_owned());
    format!("{host}_{}", std::process::id())
}

/// The claims and workloads of `--objects`, read once (off the reactor: the files may be large).
async fn object_lookup(paths: Vec<PathBuf>) -> anyhow::Result<Arc<dyn Lookup>> {
    let bundle = tokio::task::spawn_blocking(move || {
        crate::adapters::manifest::read_bundle(&paths, DEFAULT_NAMESPACE)
    })
    .await
    .context("reading --objects")?
    .context("reading --objects")?;
    Ok(Arc::new(bundle))
}

/// The lookup, its prefetch, and the cluster caches behind them when there are some (for metrics).
type ClusterParts = (
    Arc<dyn Lookup>,
    Option<Arc<dyn Prefetch>>,
    Option<Arc<ClusterLookup>>,
);

/// The cluster lookup (and its prefetch of what the caches have not seen yet), unless told not to contact
/// one. Without any cluster configuration (a laptop with no kubeconfig) it serves without one, saying so;
/// inside a pod a broken configuration is an error.
async fn cluster_lookup(
    no_cluster: bool,
    kubeconfig: Option<&std::path::Path>,
    context: Option<&str>,
    get_timeout: Duration,
) -> anyhow::Result<ClusterParts> {
    if no_cluster {
        return Ok((Arc::new(Bundle::default()), None, None));
    }
    match kube_lookup::client(kubeconfig, context).await {
        Ok(client) => {
            let cluster = Arc::new(ClusterLookup::start(client, get_timeout));
            let prefetch: Arc<dyn Prefetch> = cluster.clone();
            Ok((cluster.clone(), Some(prefetch), Some(cluster)))
        }
        Err(e)
            if kubeconfig.is_none()
                && context.is_none()
                && std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() =>
        {
            warn!(error = %e, "No cluster configuration found; serving without claim lookups (pass --no-cluster to silence)");
            Ok((Arc::new(Bundle::default()), None, None))
        }
        Err(e) => Err(e).context("connecting to the cluster (pass --no-cluster to serve without one)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("8s"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("PT8S"), Ok(Duration::from_secs(8)));
        assert_eq!(parse_duration("2 minutes"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("-5s")
                .unwrap_err()
                .contains("must not be negative")
        );
    }

    #[test]
    fn listen_addresses_take_pod_ips_of_either_family() {
        let parsed = |s: &str| parse_listen_addr(s).map(|a| a.to_string());
        assert_eq!(parsed("10.1.2.3:8443"), Ok("10.1.2.3:8443".to_owned()));
        assert_eq!(parsed("[fd00::1]:8443"), Ok("[fd00::1]:8443".to_owned()));
        // `$(POD_IP):8443` on an IPv6 cluster.
        assert_eq!(parsed("fd00::1:8443"), Ok("[fd00::1]:8443".to_owned()));
        assert_eq!(parsed("::1:9090"), Ok("[::1]:9090".to_owned()));
        for bad in [
            "localhost:8443",
            "10.1.2.3",
            "10.1.2.3:http",
            ":8443",
            "fd00::1:99999",
        ] {
            assert_eq!(
                parse_listen_addr(bad),
                Err(format!(
                    "invalid address {bad:?}: expected IP:PORT, e.g. 127.0.0.1:8443 or [::1]:8443"
                )),
            );
        }
    }

    #[test]
    fn objects_need_no_cluster() {
        use crate::adapters::cli::{Cli, Command};
        use clap::{CommandFactory as _, Parser as _};
        let err = Cli::try_parse_from(["volguard", "serve", "--objects", "claims.yaml"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
        let cli = Cli::try_parse_from([
            "volguard",
            "serve",
            "--no-cluster",
            "--objects",
            "a.yaml",
            "--objects",
            "b/",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve parses as Serve");
        };
        assert_eq!(args.objects, [PathBuf::from("a.yaml"), PathBuf::from("b/")]);
        let help = Cli::command()
            .find_subcommand_mut("serve")
            .expect("serve")
            .render_long_help()
            .to_string();
        assert!(help.contains("--objects"), "{help}");
        assert!(!help.contains("baseline"), "{help}");
    }
}

#[cfg(all(test, not(feature = "bench-baseline")))]
mod release {
    use crate::adapters::cli::Cli;
    use clap::Parser as _;

    #[test]
    fn the_released_binary_has_no_switch_that_allows_everything() {
        let err = Cli::try_parse_from(["volguard", "serve", "--baseline-allow-all"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::UnknownArgument);
    }
}
