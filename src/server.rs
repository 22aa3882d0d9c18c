//! Health over HTTP: `GET /ping` answers `pong!`, as the predecessor's did, so existing health checks keep
//! working. Runs beside the refresh loop until shutdown.

use std::future::Future;

use axum::Router;
use axum::routing::get;
use tokio::net::TcpListener;

pub fn router() -> Router {
    Router::new().route("/ping", get(|| async { "pong!" }))
}

/// Serves until `shutdown` completes.
pub async fn serve(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router()).with_graceful_shutdown(shutdown).await
}
