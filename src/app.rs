//! Start-up and shutdown: builds the parts from a [`Config`], runs them until a signal, and maps the result to
//! an exit code (0 stopped, 1 `--once` failed, 2 bad configuration).

use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::config::RancherAuth;
use crate::ecr::{self, Ecr};
use crate::rancher::{self, Target, TargetSettings};
use crate::refresh::Refresher;
use crate::server;
use crate::status::Status;

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
    let region = match ecr::resolve_region(&config.aws).await {
        Ok(region) => region,
        Err(e) => {
            error!("configuration error: {e}");
            return Exit::BadConfig;
        }
    };
    if config.rancher.tls.insecure_skip_verify {
        warn!(
            "CATTLE_INSECURE_SKIP_VERIFY is on: Rancher's TLS certificate is NOT verified; anyone on the network path can read the Rancher key and the ECR passwords. Use CATTLE_CA_BUNDLE instead"
        );
    }
    let http = match rancher::http_client(&config.rancher.tls, config.rancher.timeout) {
        Ok(http) => http,
        Err(e) => {
            error!("configuration error: CATTLE_CA_BUNDLE: the HTTP client for Rancher cannot use it: {e}");
            return Exit::BadConfig;
        }
    };
    if matches!(config.rancher.auth, RancherAuth::None) {
        warn!(
            "No Rancher API key is set (CATTLE_ACCESS_KEY/CATTLE_SECRET_KEY or RANCHER_TOKEN): calling Rancher without authentication"
        );
    }
    let settings = TargetSettings {
        auth: config.rancher.auth,
        projects: config.rancher.projects,
        cluster: config.rancher.cluster,
    };
    let rancher = Target::new(http, config.rancher.endpoint, settings);
    let ecr = Ecr::new(region.clone(), config.aws.registry_ids.clone(), config.aws.assume_role.as_ref()).await;
    let status = Arc::new(Status::new(&[rancher.name()]));
    let refresher = Refresher {
        ecr,
        rancher,
        auto_create: config.auto_create,
        schedule: config.schedule,
        backoff: config.backoff,
        status: status.clone(),
    };

    info!(
        version = env!("CARGO_PKG_VERSION"),
        rancher = %refresher.target(),
        region = %region,
        registry_ids = %config.aws.registry_ids.join(","),
        assume_role = config.aws.assume_role.as_ref().map(|r| r.role_arn.as_str()).unwrap_or("none"),
        auto_create = config.auto_create,
        "Starting"
    );

    if config.once {
        return tokio::select! {
            _ = shutdown.cancelled() => Exit::Failed,
            result = refresher.refresh_once() => match result {
                Ok(_) => Exit::Stopped,
                Err(e) => {
                    match e.hint() {
                        Some(hint) => error!(error = %e, kind = e.kind(), "Refresh failed: {hint}"),
                        None => error!(error = %e, kind = e.kind(), "Refresh failed: {}", e.summary()),
                    }
                    Exit::Failed
                }
            },
        };
    }

    let listener = match TcpListener::bind(config.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            error!("configuration error: LISTEN_PORT: cannot listen on {}: {e}", config.listen);
            return Exit::BadConfig;
        }
    };
    info!(address = %config.listen, "Health endpoint listening (/ping, /healthz, /readyz, /metrics)");
    let server_shutdown = shutdown.clone();
    let server = tokio::spawn(server::serve(listener, status, async move { server_shutdown.cancelled().await }));

    refresher.run(&shutdown).await;
    // The loop ends only on shutdown; give the health server a moment to close its connections.
    let _ = tokio::time::timeout(std::time::Duration::from_millis(500), server).await;
    info!("Stopped");
    Exit::Stopped
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
