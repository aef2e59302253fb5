//! The provider sandbox: simulators of MVola, Airtel Money, Orange Money WebPay, Safaricom
//! M-Pesa Daraja, a Kenyan bank-transfer rail, VTpass and OnePipe that speak each provider's
//! wire protocol (`providers.md` §1–7), all at the root of one port, so that an adapter's base
//! URL is simply the sandbox's address (VTpass's with its `/api`). The social platforms of §8,
//! Meta and TikTok, each serve several hosts, so they live under `/meta` and `/tiktok`. State
//! lives in memory and is lost on restart. Test numbers choose each payment's fate (see
//! `outcome`), test markers each post's (see `social`).

mod airtel;
mod app;
mod bank;
mod callbacks;
mod config;
mod customer;
mod ids;
mod inspect;
mod ledger;
mod meta;
mod mpesa;
mod mvola;
mod onepipe;
mod orange;
mod outcome;
mod provider;
mod social;
mod tiktok;
mod tokens;
mod vtpass;
mod wire;

use std::{future::Future, time::Duration};

use poem::{EndpointExt, Route, Server, get, handler, listener::TcpListener, web::Json};
use serde_json::{Value, json};

pub use crate::{
    config::SandboxConfig,
    mpesa::{PASSKEY as MPESA_PASSKEY, SHORTCODE as MPESA_SHORTCODE},
};

#[handler]
fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

pub async fn serve(
    addr: &str,
    config: SandboxConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let routes = Route::new().at("/healthz", get(healthz));
    let routes = mvola::routes(airtel::routes(orange::routes(mpesa::routes(bank::routes(routes)))));
    let routes = vtpass::routes(onepipe::routes(routes));
    let routes = meta::routes(tiktok::routes(routes));
    let routes = inspect::routes(routes);
    let app = routes.data(app::App::new(config)).with(poem::middleware::Tracing);
    tracing::info!(%addr, "sandbox listening");
    Server::new(TcpListener::bind(addr))
        .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
        .await
}
