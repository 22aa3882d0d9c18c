//! Health and metrics over HTTP, beside the refresh loop:
//!
//! - `GET /ping` answers `pong!`, as the predecessor's did, so existing health checks keep working;
//! - `GET /healthz`: 200 while the refresh loop is alive;
//! - `GET /readyz`: 200 when every credential is far from expiry, else 503 with a JSON reason; with leader
//!   election the answer says `"role":"leader"` or `"role":"standby"` (a standby is ready);
//! - `GET /metrics`: Prometheus metrics (OpenMetrics text).
//!
//! The port is open to anyone who can reach it, so it is bounded: at most [`max_connections`] connections at
//! once (more are closed at once), one request per connection, request heads of at most 16 KiB that must arrive
//! within 5 seconds, and 10 seconds per connection in all. Request bodies are never read. However the port is
//! used, it cannot take the file descriptors the refresh needs.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::status::Status;

pub fn router(status: Arc<Status>) -> Router {
    Router::new()
        .route("/ping", get(|| async { "pong!" }))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(status)
}

async fn healthz(State(status): State<Arc<Status>>) -> Response {
    match status.liveness(tokio::time::Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn readyz(State(status): State<Arc<Status>>) -> Response {
    match status.readiness(SystemTime::now()) {
        Ok(()) => {
            let body = match status.role() {
                Some(role) => serde_json::json!({ "ready": true, "role": role }),
                None => serde_json::json!({ "ready": true }),
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
        Err(not_ready) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(not_ready)).into_response(),
    }
}

async fn metrics(State(status): State<Arc<Status>>) -> Response {
    let body = status.encode_metrics(SystemTime::now());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// The most health connections served at once, whatever the descriptor limit.
pub const MAX_CONNECTIONS: usize = 256;
/// A request head must arrive within this (a client that sends a byte a second is dropped).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// No connection lasts longer than this, however slowly its client reads.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest request head read.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// How many health connections may be open at once: [`MAX_CONNECTIONS`], or a quarter of the open-file limit
/// when that is lower, so that at least three quarters stay for the refresh.
pub fn max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(1024);
    MAX_CONNECTIONS.min(usize::try_from(soft / 4).unwrap_or(MAX_CONNECTIONS)).max(1)
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = router(status);
    let permits = Arc::new(Semaphore::new(max_connections()));
    let mut last_warning: Option<tokio::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of descriptors, most likely: wait instead of spinning, and say so at most once a minute.
                if last_warning.is_none_or(|at| at.elapsed() > Duration::from_secs(60)) {
                    warn!(error = %e, "Health endpoint cannot accept connections");
                    last_warning = Some(tokio::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Full: closing at once costs nothing and keeps the descriptors for the refresh.
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, connection).await;
        });
    }
}

/// The `healthcheck` command: asks the running daemon's `/readyz` and tells whether it is ready. For
/// `HEALTHCHECK` in images that have no curl.
pub async fn healthcheck(address: std::net::SocketAddr) -> Result<(), String> {
    let ip = match address.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        ip if ip.is_unspecified() => std::net::IpAddr::from([127, 0, 0, 1]),
        ip => ip,
    };
    let url = format!("http://{}/readyz", std::net::SocketAddr::new(ip, address.port()));
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .no_proxy()
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let response = client.get(&url).send().await.map_err(|e| format!("{url}: {}", e.without_url()))?;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    if status.is_success() { Ok(()) } else { Err(format!("{url}: HTTP {status}: {}", body.trim())) }
}
