//! Start-up and shutdown: builds the parts from a [`Config`], runs them until a signal, and maps the result to
//! an exit code (0 stopped, 1 `--once` failed, 2 bad configuration).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::config::{Config, plan};
use crate::ecr::aws_http::AwsHttp;
use crate::ecr::{self, Ecr};
use crate::kubernetes::KubeConnection;
use crate::kubernetes::{self, Kubernetes};
use crate::leader;
use crate::rancher::settings::RancherAuth;
use crate::rancher::{self, Rancher, TargetSettings};
use crate::redact;
use crate::refresh::{Refresher, Source};
use crate::server;
use crate::status::Status;
use crate::target::Target;
use secrecy::ExposeSecret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped by a signal, or `--once` succeeded.
    Stopped = 0,
    /// `--once` did not bring every registry up to date.
    Failed = 1,
    /// A setting is wrong; nothing can work until it is fixed.
    BadConfig = 2,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        ExitCode::from(exit as u8)
    }
}

/// Runs the daemon (or one refresh with `--once`) until SIGTERM or SIGINT.
pub async fn run(config: Config) -> Exit {
    let shutdown = CancellationToken::new();
    tokio::spawn(cancel_on_signal(shutdown.clone()));
    run_until(config, shutdown).await
}

/// Runs until `shutdown` is cancelled; what [`run`] does, without the signal handling.
pub async fn run_until(config: Config, shutdown: CancellationToken) -> Exit {
    register_secrets(&config);
    for flag in &config.secret_flags {
        warn!(flag = %flag,
            "A secret was given as a command-line flag: every local user can read it in /proc/PID/cmdline. Use its environment variable or *_FILE form instead");
    }
    for name in &config.ignored {
        warn!("{name} is ignored: CONFIG_FILE describes the sources and targets");
    }
    // Proxy variables and CA bundles for AWS calls, read once: a bad one is a configuration error.
    let aws_http = match AwsHttp::from_env() {
        Ok(aws_http) => aws_http,
        Err(e) => return bad_config(&e.to_string()),
    };
    let mut regions = Vec::new();
    for source in &config.plan.sources {
        match ecr::resolve_region(&source.aws, source.public).await {
            Ok(region) => regions.push(region),
            Err(e) if config.plan.sources.len() == 1 => return bad_config(&e.to_string()),
            Err(e) => return bad_config(&format!("source '{}': {}", source.name, e)),
        }
    }

    let mut targets = Vec::new();
    for spec in &config.plan.targets {
        let tls = &spec.rancher.tls;
        let http = match rancher::http::http_client(tls, spec.rancher.timeout) {
            Ok(http) => http,
            Err(e) => return bad_config(&format!("CATTLE_CA_BUNDLE: the HTTP client for Rancher cannot use it: {e}")),
        };
        let settings = TargetSettings {
            auth: spec.rancher.auth.clone(),
            projects: spec.rancher.projects.clone(),
            cluster: spec.rancher.cluster.clone(),
            projects_check_interval: spec.rancher.projects_check_interval,
            environments: spec.rancher.environments.clone(),
        };
        let target = Rancher::new(http, spec.rancher.endpoint.clone(), settings);
        let name = spec.name.clone().unwrap_or_else(|| target.name());
        if tls.insecure_skip_verify {
            warn!(target = %name,
                "CATTLE_INSECURE_SKIP_VERIFY is on: Rancher's TLS certificate is NOT verified; anyone on the network path can read the Rancher key and the ECR passwords. Use CATTLE_CA_BUNDLE instead");
        }
        if matches!(spec.rancher.auth, RancherAuth::None) {
            warn!(target = %name,
                "No Rancher API key is set (CATTLE_ACCESS_KEY/CATTLE_SECRET_KEY or RANCHER_TOKEN): calling Rancher without authentication");
        }
        let proxy = rancher::http::proxy_for(spec.rancher.endpoint.url().as_str());
        info!(target = %name, proxy = %proxy.as_deref().unwrap_or("none"), "Rancher calls go {}",
            match proxy { Some(_) => "through a proxy", None => "directly" });
        targets.push((name, Target::Rancher(target), spec.auto_create, spec.sources.clone()));
    }
    for spec in &config.plan.kube_targets {
        let kubernetes =
            match kubernetes::connection::clients(&spec.kubernetes.connection, spec.kubernetes.target.timeout).await {
                Ok((client, watch_client)) => {
                    let server = spec.kubernetes.connection.server().to_string();
                    Kubernetes::new(client, watch_client, server, spec.kubernetes.target.clone())
                }
                Err(e) => return bad_config(&e),
            };
        let name = spec.name.clone().unwrap_or_else(|| kubernetes.name());
        targets.push((name, Target::Kubernetes(kubernetes), false, spec.sources.clone()));
    }

    if config.check_config {
        let names: Vec<String> = targets.iter().map(|(name, ..)| name.clone()).collect();
        print!("{}", plan::describe(&config.plan, &regions, &names));
        if let Some(election) = &config.leader {
            let settings = &election.settings;
            println!(
                "leader election: Lease {}/{}, identity {}; only the holder refreshes and writes",
                settings.namespace, settings.lease_name, settings.identity
            );
        }
        println!("The configuration is valid.");
        return Exit::Stopped;
    }

    let mut sources = Vec::new();
    for (spec, region) in config.plan.sources.iter().zip(&regions) {
        let ecr = Ecr::new(
            &aws_http,
            region.clone(),
            spec.aws.registry_ids.clone(),
            spec.aws.assume_role.as_ref(),
            spec.endpoint.as_deref(),
            spec.public,
        )
        .await;
        info!(
            source = %spec.name,
            region = %ecr.region(),
            public = spec.public,
            registry_ids = %spec.aws.registry_ids.join(","),
            assume_role = spec.aws.assume_role.as_ref().map(|r| r.role_arn.as_str()).unwrap_or("none"),
            endpoint = %ecr.endpoint_host(),
            proxy = %ecr.proxy().unwrap_or("none"),
            extra_ca = %aws_http.extra_cas().join(","),
            "Token source"
        );
        sources.push(Arc::new(Source::new(spec.name.clone(), ecr, spec.addresses.clone(), config.host_forms.clone())));
    }
    // The elector's client: its own connection pool, so that renewals never wait behind a slow sync. It is the
    // long-read-timeout client: each attempt is bounded by the elector itself, and a read timeout equal to the
    // renew period would expire the idle pooled connection just as the next renewal takes it ("connection error:
    // timed out" on every other renewal).
    let election = match &config.leader {
        None => None,
        Some(election) => {
            let connection = match &election.connection {
                Some(connection) => Some(connection),
                None => config.plan.kube_targets.first().map(|spec| &spec.kubernetes.connection),
            };
            let Some(connection) = connection else {
                return bad_config("LEADER_ELECTION: no Kubernetes API server to hold the Lease");
            };
            match kubernetes::connection::clients(connection, election.settings.timeout).await {
                Ok((_, client)) => Some((client, election.settings.clone(), connection.server().to_string())),
                Err(e) => return bad_config(&e),
            }
        }
    };
    let names: Vec<String> = targets.iter().map(|(name, ..)| name.clone()).collect();
    let status = match election {
        Some(_) => Arc::new(Status::new(&names).with_leader_election()),
        None => Arc::new(Status::new(&names)),
    };
    let refreshers: Vec<Refresher> = targets
        .into_iter()
        .map(|(name, target, auto_create, chosen)| {
            match &target {
                Target::Rancher(_) => info!(target = %name, auto_create, sources = chosen.len(), "Rancher target"),
                Target::Kubernetes(_) => info!(target = %name, sources = chosen.len(), "Kubernetes target"),
            }
            Refresher {
                name,
                sources: chosen.iter().map(|&i| sources[i].clone()).collect(),
                target,
                auto_create,
                dry_run: config.dry_run,
                schedule: config.schedule.clone(),
                backoff: config.backoff.clone(),
                status: status.clone(),
                trigger: Arc::default(),
            }
        })
        .collect();
    info!(version = env!("CARGO_PKG_VERSION"), targets = refreshers.len(), sources = sources.len(), "Starting");

    if config.once {
        let all = join_all(refreshers.iter().map(|r| r.refresh_once_logged()));
        let exit = tokio::select! {
            _ = shutdown.cancelled() => Exit::Failed,
            results = all => if results.iter().all(|ok| *ok) { Exit::Stopped } else { Exit::Failed },
        };
        if config.dry_run {
            info!("Dry run: nothing was changed in any target");
        }
        return exit;
    }

    // A soft limit of 1,024 open files is common; the hard limit is usually far higher. Raising it keeps the
    // health port and the refresh from competing for descriptors.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => debug!(open_files = limit, health_connections = server::max_connections(), "Open-file limit"),
        Err(e) => warn!(error = %e, "Could not raise the open-file limit"),
    }
    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => return bad_config(&format!("LISTEN_PORT: cannot listen on {}: {e}", config.listen)),
    };
    info!(address = %config.listen, "Health endpoint listening (/ping, /healthz, /readyz, /metrics)");
    let server_shutdown = shutdown.clone();
    let server =
        tokio::spawn(server::serve(listener, status.clone(), async move { server_shutdown.cancelled().await }));

    // Each target has its own loop, schedule and backoff; the semaphore bounds how many refresh at once.
    let permits = Arc::new(tokio::sync::Semaphore::new(config.concurrency));
    // Everything that writes, for as long as `term` lasts: the loops refresh at once, then when due; Kubernetes
    // targets also watch namespaces and ServiceAccounts, to write to new ones at once, and diagnose failed pulls.
    let write = |term: CancellationToken| {
        let (refreshers, permits, status) = (&refreshers, &permits, &status);
        async move {
            let loops = join_all(refreshers.iter().map(|r| r.run(&term, permits)));
            let watches = join_all(refreshers.iter().map(|r| r.target.watch(&r.name, status, &term)));
            // With KUBERNETES_DIAGNOSE_PULLS, failed ECR pulls are diagnosed on the Pod; an expired token wakes
            // the loop. The diagnosis writes Events, so it too runs only on the leader.
            let term_ref = &term;
            let diagnoses = join_all(refreshers.iter().map(|r| {
                let trigger = r.trigger.clone();
                let refresh_now = move |registry: &str| trigger.request(registry);
                async move { r.target.diagnose_pulls(&r.name, status, &refresh_now, term_ref).await }
            }));
            tokio::join!(loops, watches, diagnoses);
        }
    };
    match election {
        None => write(shutdown.clone()).await,
        Some((client, settings, server)) => {
            let lease = format!("{}/{}", settings.namespace, settings.lease_name);
            info!(lease = %lease, identity = %settings.identity, server = %server,
                "Leader election: standby until this replica holds the Lease; only the holder refreshes and writes");
            let limit = settings.timeout + Duration::from_secs(1);
            let leadership = leader::spawn(client, settings, shutdown.clone());
            let on_change = |leading: bool| {
                status.set_leading(leading);
                if leading {
                    info!(lease = %lease, "Leading: refreshing every target now");
                } else if !shutdown.is_cancelled() {
                    warn!(lease = %lease, "Standby: no longer the leader; stopped refreshing and writing");
                }
            };
            leader::lead(leadership.subscribe(), &shutdown, on_change, write).await;
            // Writing has stopped; the elector releases the Lease (bounded by its timeout).
            if tokio::time::timeout(limit, leadership.stopped()).await.is_err() {
                warn!(lease = %lease, "The Lease was not released in time; another replica takes over when it expires");
            }
        }
    }
    // The loops end only on shutdown; give the health server a moment to close its connections.
    let _ = tokio::time::timeout(Duration::from_millis(500), server).await;
    info!("Stopped");
    Exit::Stopped
}

/// Tells [`redact`] every secret of the configuration and of the AWS environment, so that no echo of one can
/// reach a log line or an answer.
fn register_secrets(config: &Config) {
    for target in &config.plan.targets {
        match &target.rancher.auth {
            RancherAuth::None => {}
            RancherAuth::Keys(keys) => redact::register_pair(&keys.access_key.expose(), &keys.secret_key.expose()),
            RancherAuth::Token(token) => {
                let token = token.expose();
                redact::register(&token);
                if let Some((access, secret)) = token.split_once(':') {
                    redact::register_pair(access, secret);
                }
            }
        }
    }
    for source in &config.plan.sources {
        if let Some(external_id) = source.aws.assume_role.as_ref().and_then(|r| r.external_id.as_ref()) {
            redact::register(&external_id.expose());
        }
    }
    for target in &config.plan.kube_targets {
        if let KubeConnection::Kubeconfig { kubeconfig, .. } = &target.kubernetes.connection {
            for user in &kubeconfig.0.auth_infos {
                if let Some(token) = user.auth_info.as_ref().and_then(|a| a.token.as_ref()) {
                    redact::register(token.expose_secret());
                }
            }
        }
    }
    for name in ["AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Ok(value) = std::env::var(name) {
            redact::register(&value);
        }
    }
}

fn bad_config(message: &str) -> Exit {
    error!("configuration error: {message}");
    Exit::BadConfig
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let name = wait_for_signal().await;
    info!(signal = name, "Shutting down");
    shutdown.cancel();
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        },
        _ => {
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "SIGINT"
}
