//! Health and metrics over HTTP, beside the refresh loop:
//!
//! - `GET /ping` answers `pong!`, as the predecessor's did, so existing health checks keep working;
//! - `GET /healthz`: 200 while the refresh loop is alive;
//! - `GET /readyz`: 200 when every credential is far from expiry, else 503 with a JSON reason;
//! - `GET /metrics`: Prometheus metrics (OpenMetrics text).

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

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
        Ok(()) => (StatusCode::OK, axum::Json(serde_json::json!({ "ready": true }))).into_response(),
        Err(not_ready) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(not_ready)).into_response(),
    }
}

async fn metrics(State(status): State<Arc<Status>>) -> Response {
    let body = status.encode_metrics(SystemTime::now());
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body).into_response()
}

/// Serves until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    status: Arc<Status>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(status)).with_graceful_shutdown(shutdown).await
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
