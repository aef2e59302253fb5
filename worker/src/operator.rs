//! The endpoints operators scrape and probe, served apart from any public API: `/healthz`,
//! `/readyz`, `/metrics`. Workers serve them at `ULTRA_WORKER_ADDR`, API processes at
//! `ULTRA_API_OPERATOR_ADDR`, so that metrics (routes, volumes, error rates) never face the
//! internet.

use metrics_exporter_prometheus::PrometheusHandle;
use poem::{
    EndpointExt, IntoResponse, Route, Server, get, handler,
    http::StatusCode,
    listener::TcpListener,
    web::{Data, Json},
};
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use ultra_domain::health::Dependencies;

#[handler]
fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
async fn readyz(db: Data<&DatabaseConnection>, redis: Data<&ConnectionManager>) -> poem::Response {
    let dependencies = Dependencies::check(&db, &redis).await;
    let status = if dependencies.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = json!({
        "status": if dependencies.ready() { "ok" } else { "unavailable" },
        "database": if dependencies.database.is_ok() { "ok" } else { "unavailable" },
        "redis": if dependencies.redis.is_ok() { "ok" } else { "unavailable" },
    });
    Json(body).with_status(status).into_response()
}

#[handler]
fn metrics(handle: Data<&PrometheusHandle>) -> String {
    handle.render()
}

pub async fn serve(
    addr: &str,
    db: DatabaseConnection,
    redis: ConnectionManager,
    metrics_handle: PrometheusHandle,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Route::new()
        .at("/healthz", get(healthz))
        .at("/readyz", get(readyz))
        .at("/metrics", get(metrics))
        .data(db)
        .data(redis)
        .data(metrics_handle);
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(app, shutdown.cancelled_owned(), None)
        .await
}
