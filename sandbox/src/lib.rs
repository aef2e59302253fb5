//! The provider sandbox: simulators that speak each provider's wire protocol, served on one
//! port for tests and `ultra dev`. Providers are added here as their adapters land.

use std::{future::Future, time::Duration};

use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener, web::Json};
use serde_json::{Value, json};

#[handler]
fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn serve(addr: &str, shutdown: impl Future<Output = ()> + Send) -> std::io::Result<()> {
    let app = Route::new().at("/healthz", get(healthz)).with(poem::middleware::Tracing);
    tracing::info!(%addr, "sandbox listening");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
        .await
}
