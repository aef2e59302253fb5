//! Sandbox-only endpoints under `/_sandbox`, for tests and people: what each simulator has
//! recorded (payments, and posts to social platforms) and how often clients asked for tokens,
//! and what a user can do to an app outside any API (removing it from their social account).
//! No provider has these paths.

use std::{sync::Arc, time::Instant};

use poem::{
    IntoResponse, Response, Route, get, handler,
    http::StatusCode,
    post,
    web::{Data, Json, Path, Query},
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    airtel::UssdPush,
    app::App,
    bank::BankTransfer,
    mpesa::{B2cPayment, StkPush},
    mvola::MerchantPay,
    onepipe::Invoice,
    orange::WebPayment,
    provider::Provider,
    social::{Post, Posts},
    vtpass::VtpassPurchase,
};

pub fn routes(route: Route) -> Route {
    route
        .at("/_sandbox/transactions", get(transactions))
        .at("/_sandbox/posts", get(posts))
        .at("/_sandbox/social/:platform/revoke", post(revoke_social))
        .at("/_sandbox/stats", get(stats))
}

#[derive(Deserialize)]
struct Filter {
    provider: Option<String>,
    reference: Option<String>,
}

/// Every recorded collection of every provider, oldest first.
#[handler]
fn transactions(Query(filter): Query<Filter>, Data(app): Data<&Arc<App>>) -> Json<Value> {
    let mut found = Vec::new();
    summarize::<MerchantPay>(app, &filter, &mut found);
    summarize::<UssdPush>(app, &filter, &mut found);
    summarize::<WebPayment>(app, &filter, &mut found);
    summarize::<StkPush>(app, &filter, &mut found);
    summarize::<B2cPayment>(app, &filter, &mut found);
    summarize::<BankTransfer>(app, &filter, &mut found);
    summarize::<VtpassPurchase>(app, &filter, &mut found);
    summarize::<Invoice>(app, &filter, &mut found);
    found.sort_by_key(|(recorded_at, _)| *recorded_at);
    Json(Value::Array(found.into_iter().map(|(_, summary)| summary).collect()))
}

#[derive(Deserialize)]
struct PostFilter {
    network: Option<String>,
}

/// Every post and video sent to Meta and TikTok, oldest first; `network` is `facebook`,
/// `instagram` or `tiktok`.
#[handler]
fn posts(Query(filter): Query<PostFilter>, Data(app): Data<&Arc<App>>) -> Json<Value> {
    let mut found = Vec::new();
    list_posts(&app.meta().posts, &filter, &mut found);
    list_posts(&app.tiktok().posts, &filter, &mut found);
    found.sort_by_key(|(recorded_at, _)| *recorded_at);
    Json(Value::Array(found.into_iter().map(|(_, summary)| summary).collect()))
}

fn list_posts(recorded: &Posts, filter: &PostFilter, found: &mut Vec<(Instant, Value)>) {
    let wanted = |post: &&Post| filter.network.as_deref().is_none_or(|network| network == post.network);
    found.extend(recorded.all().iter().filter(wanted).map(|post| (post.recorded_at(), post.summary())));
}

/// The user removes the app in the platform's settings: every token it was issued stops
/// working at once, so a test can see how a client copes with a grant ended behind its back.
#[handler]
fn revoke_social(Path(platform): Path<String>, Data(app): Data<&Arc<App>>) -> Response {
    let revoked = match platform.as_str() {
        "meta" => app.meta().revoke_all(),
        "tiktok" => app.tiktok().revoke_all(),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    Json(json!({ "revoked": revoked })).into_response()
}

fn summarize<P: Provider>(app: &App, filter: &Filter, found: &mut Vec<(Instant, Value)>) {
    if filter.provider.as_deref().is_some_and(|provider| provider != P::NAME) {
        return;
    }
    let mut ledger = P::ledger(app);
    for (collection, initiate_calls) in ledger.entries() {
        if filter.reference.as_deref().is_some_and(|reference| reference != collection.reference) {
            continue;
        }
        let summary = json!({
            "provider": P::NAME,
            "reference": collection.reference,
            "handle": collection.handle,
            "msisdn": collection.msisdn,
            "amount": collection.amount,
            "status": P::status(&collection.phase),
            "initiateCalls": initiate_calls,
            "callbacksSent": collection.callbacks_sent,
            "refunds": P::refunds(collection),
        });
        found.push((collection.recorded_at(), summary));
    }
}

#[handler]
fn stats(Data(app): Data<&Arc<App>>) -> Json<Value> {
    let tokens = app.tokens();
    Json(json!({ "tokenRequests": {
        MerchantPay::NAME: tokens.requests(MerchantPay::NAME),
        UssdPush::NAME: tokens.requests(UssdPush::NAME),
        WebPayment::NAME: tokens.requests(WebPayment::NAME),
        // One Daraja token serves STK pushes and B2C payouts alike (see `mpesa`).
        StkPush::NAME: tokens.requests(StkPush::NAME),
        BankTransfer::NAME: tokens.requests(BankTransfer::NAME),
    }}))
}
