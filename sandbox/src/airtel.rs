//! Airtel Money Africa Open API (providers.md §2): USSD-push collections, enquiry, refunds,
//! and callbacks to the one URL configured for the app. Most failures come back as HTTP 200
//! with `status.success: false`, as Airtel's gateway does.

use std::{
    sync::{Arc, MutexGuard},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use poem::{
    Body, Request, Route, get, handler,
    http::StatusCode,
    post,
    web::{Data, Path},
};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    app::App,
    callbacks::Callback,
    customer, ids,
    ledger::{Collection, Ledger, Phase},
    outcome::{Outcome, RefundOutcome},
    provider::Provider,
    tokens::bearer,
    wire::{self, Reply, answer, header},
};

/// Airtel's documented token lifetime: three minutes (§2, auth).
const TOKEN_LIFETIME: Duration = Duration::from_secs(180);
/// Airtel's `reference` is 4 to 64 characters (§2, collection).
const REFERENCE_LENGTH: std::ops::RangeInclusive<usize> = 4..=64;
const MERCHANT_NAME: &str = "ULTRA SANDBOX MERCHANT";

pub fn routes(route: Route) -> Route {
    route
        .at("/auth/oauth2/token", post(issue_token))
        .at("/merchant/v1/payments/", post(collect))
        .at("/merchant/v1/payments", post(collect))
        .at("/standard/v1/payments/refund", post(refund_request))
        .at("/standard/v1/payments/:id", get(enquiry))
}

/// What Airtel keeps about a USSD-push collection beyond the common ledger fields.
pub struct UssdPush {
    currency: String,
    /// Airtel numbers the transaction when it sends the push, whatever the customer does
    /// later; enquiry shows it only once paid.
    airtel_money_id: String,
    /// Refund requests for a paid collection, counted so that test number `07` refuses only
    /// the first.
    refund_requests: u32,
    refund: Option<Refund>,
}

struct Refund {
    airtel_money_id: String,
    settled: bool,
}

impl Refund {
    fn status(&self) -> &'static str {
        if self.settled { "SUCCESS" } else { "TIP" }
    }
}

impl Provider for UssdPush {
    const NAME: &'static str = "airtel";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.airtel()
    }

    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer | Phase::Confirmed => "TIP",
            Phase::Succeeded { .. } => "TS",
            Phase::Failed => "TF",
            Phase::Expired => "TE",
        }
    }

    fn receipt(collection: &Collection<Self>) -> String {
        collection.details.airtel_money_id.clone()
    }

    fn notification(app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let url = app.config.airtel_callback_url.clone()?;
        let transaction = json!({
            "id": collection.reference,
            "message": message(collection),
            "status_code": Self::status(&collection.phase),
            "airtel_money_id": collection.details.airtel_money_id,
        });
        let mut body = json!({ "transaction": transaction });
        if let Some(key) = &app.config.airtel_callback_key {
            body["hash"] = json!(hash(key, &transaction));
        }
        Some(Callback { method: Method::POST, url, body, headers: Vec::new() })
    }

    fn refunds(collection: &Collection<Self>) -> Vec<Value> {
        collection
            .details
            .refund
            .iter()
            .map(|refund| json!({ "status": refund.status(), "amount": collection.amount }))
            .collect()
    }
}

/// Base64(HMAC-SHA256) of the compact JSON of `transaction`, the serialization the callback
/// body carries it in. Which bytes Airtel signs is ambiguous in public copies (§2, callback).
fn hash(key: &str, transaction: &Value) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(transaction.to_string().as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The receipt text Airtel shows the customer and echoes in `message`.
fn message(collection: &Collection<UssdPush>) -> String {
    let push = &collection.details;
    match collection.phase {
        Phase::Succeeded { .. } => format!(
            "Paid {} {} to {MERCHANT_NAME}. Trans ID {}.",
            push.currency, collection.amount, push.airtel_money_id
        ),
        Phase::Failed => "Insufficient balance".to_owned(),
        Phase::Expired => "Transaction expired".to_owned(),
        Phase::AwaitingCustomer | Phase::Confirmed => "Transaction in progress".to_owned(),
    }
}

#[handler]
async fn issue_token(body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    app.tokens().count_request(UssdPush::NAME);
    let Some(body) = wire::json_body(body).await else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "the body must be JSON");
    };
    let config = &app.config;
    if body["client_id"] != config.client_id.as_str()
        || body["client_secret"] != config.client_secret.as_str()
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Invalid client authentication");
    }
    if body["grant_type"] != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let access_token = app.tokens().issue(UssdPush::NAME, ids::token(32), TOKEN_LIFETIME);
    wire::json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "expires_in": TOKEN_LIFETIME.as_secs().to_string(),
            "token_type": "bearer",
        }),
    )
}

#[handler]
async fn collect(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(collect_payment(req, body, app).await)
}

#[handler]
fn enquiry(req: &Request, Path(id): Path<String>, Data(app): Data<&Arc<App>>) -> Reply {
    answer(enquire(req, &id, app))
}

#[handler]
async fn refund_request(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(refund_payment(req, body, app).await)
}

async fn collect_payment(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    let market = authorize(req, app)?;
    let body = wire::json_body(body).await.ok_or_else(|| field_error("Invalid JSON body"))?;
    let push = PushRequest::parse(&body, &market)?;
    let outcome = Outcome::for_msisdn(&push.msisdn);
    let first_call = {
        let mut ledger = app.airtel();
        let calls = ledger.count_initiate(&push.id);
        if ledger.contains(&push.id) {
            return Err(failure("400", "ESB000041", None, "External Transaction ID already exists"));
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            let body = json!({ "status": {
                "code": "500",
                "message": "Internal server error",
                "result_code": "ESB000001",
                "success": false,
            }});
            return Err(wire::json(StatusCode::INTERNAL_SERVER_ERROR, body));
        }
        ledger.record(Collection::new(
            push.id.clone(),
            push.id.clone(),
            Some(push.msisdn),
            push.amount,
            outcome,
            UssdPush {
                currency: market.currency,
                airtel_money_id: ids::receipt(),
                refund_requests: 0,
                refund: None,
            },
        ));
        calls == 1
    };
    customer::prompt::<UssdPush>(app, &push.id);
    if first_call && outcome.stalls_first_initiate() {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(success(json!({ "transaction": { "id": push.id, "status": "SUCCESS" } }), "SUCCESS", "DP00800001006"))
}

fn enquire(req: &Request, id: &str, app: &App) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let mut ledger = app.airtel();
    let collection = ledger.by_reference(id).ok_or_else(not_found)?;
    let status = UssdPush::status(&collection.phase);
    let mut transaction =
        json!({ "id": collection.reference, "message": message(collection), "status": status });
    if let Phase::Succeeded { receipt } = &collection.phase {
        transaction["airtel_money_id"] = json!(receipt);
    }
    let response_code = match collection.phase {
        Phase::Succeeded { .. } => "DP00800001001",
        Phase::Failed => "DP00800001007",
        Phase::Expired => "DP00800001029",
        Phase::AwaitingCustomer | Phase::Confirmed => "DP00800001006",
    };
    let status_message = if status == "TS" { "SUCCESS" } else { "Transaction Status" };
    Ok(success(json!({ "transaction": transaction }), status_message, response_code))
}

/// Airtel has no refund enquiry (§2), so a repeated request for the same transaction reports
/// the refund already under way instead of refunding twice.
async fn refund_payment(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let body = wire::json_body(body).await.ok_or_else(|| field_error("Invalid JSON body"))?;
    let id = body
        .pointer("/transaction/airtel_money_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| field_error("Missing transaction.airtel_money_id"))?;
    let (reply, settled) = {
        let mut ledger = app.airtel();
        let collection =
            ledger.find(|collection| collection.details.airtel_money_id == id).ok_or_else(not_found)?;
        if let Some(refund) = &collection.details.refund {
            return Ok(refund_reply(refund));
        }
        if !matches!(collection.phase, Phase::Succeeded { .. }) {
            return Err(refused());
        }
        collection.details.refund_requests += 1;
        let refund_outcome = RefundOutcome::for_msisdn(collection.msisdn.as_deref().unwrap_or_default());
        if refund_outcome == RefundOutcome::RefusedOnce && collection.details.refund_requests == 1 {
            return Err(refused());
        }
        let refund =
            Refund { airtel_money_id: ids::receipt(), settled: refund_outcome != RefundOutcome::Slow };
        let reply = (refund_reply(&refund), refund.settled);
        collection.details.refund = Some(refund);
        reply
    };
    if !settled {
        settle_refund_later(app, id.to_owned());
    }
    Ok(reply)
}

/// Lets a refund still in progress settle after the customer delay.
fn settle_refund_later(app: &Arc<App>, airtel_money_id: String) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        tokio::time::sleep(app.config.settle_delay).await;
        let mut ledger = app.airtel();
        let refund = ledger
            .find(|collection| collection.details.airtel_money_id == airtel_money_id)
            .and_then(|collection| collection.details.refund.as_mut());
        if let Some(refund) = refund {
            refund.settled = true;
        }
    });
}

fn refund_reply(refund: &Refund) -> Reply {
    let (message, response_code) =
        if refund.settled { ("SUCCESS", "DP00800001001") } else { ("Refund in progress", "DP00800001006") };
    success(
        json!({ "transaction": { "airtel_money_id": refund.airtel_money_id, "status": refund.status() } }),
        message,
        response_code,
    )
}

/// The country and currency a call is made in, from `X-Country` and `X-Currency`.
struct Market {
    country: String,
    currency: String,
}

/// Checks the token first, then the routing headers every Airtel call carries.
fn authorize(req: &Request, app: &App) -> Result<Market, Reply> {
    let token = bearer(req.header("authorization"));
    if !token.is_some_and(|token| app.tokens().accepts(UssdPush::NAME, token)) {
        return Err(wire::json(
            StatusCode::UNAUTHORIZED,
            json!({ "error": "invalid_token", "error_description": "Access token is invalid or expired" }),
        ));
    }
    let country = header(req, "X-Country").filter(|country| is_code(country, 2)).ok_or_else(|| {
        wire::json(
            StatusCode::BAD_REQUEST,
            json!({ "status_message": "Partner not found", "status_code": "ROUTER110" }),
        )
    })?;
    let currency = header(req, "X-Currency")
        .filter(|currency| is_code(currency, 3))
        .ok_or_else(|| field_error("Invalid/Missing Currency"))?;
    Ok(Market { country: country.to_owned(), currency: currency.to_owned() })
}

fn is_code(value: &str, len: usize) -> bool {
    value.len() == len && value.bytes().all(|byte| byte.is_ascii_uppercase())
}

/// A collection body that passed validation.
struct PushRequest {
    id: String,
    msisdn: String,
    amount: String,
}

impl PushRequest {
    fn parse(body: &Value, market: &Market) -> Result<Self, Reply> {
        let reference = body["reference"].as_str().ok_or_else(|| field_error("Missing reference"))?;
        if !REFERENCE_LENGTH.contains(&reference.chars().count()) {
            return Err(field_error("reference must be 4 to 64 characters"));
        }
        let subscriber = &body["subscriber"];
        let msisdn = subscriber["msisdn"].as_str().ok_or_else(|| field_error("Missing subscriber.msisdn"))?;
        if msisdn.len() != 9 || !msisdn.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(field_error("subscriber.msisdn must be 9 digits, without the country code"));
        }
        let transaction = &body["transaction"];
        for (object, name) in [(subscriber, "subscriber"), (transaction, "transaction")] {
            matches_market(object, name, "country", &market.country)?;
            matches_market(object, name, "currency", &market.currency)?;
        }
        let amount = transaction["amount"]
            .as_number()
            .filter(|amount| amount.as_f64().is_some_and(|amount| amount > 0.0))
            .ok_or_else(|| field_error("transaction.amount must be a positive number"))?;
        let id = transaction["id"]
            .as_str()
            .filter(|id| !id.is_empty())
            .ok_or_else(|| field_error("Missing transaction.id"))?;
        Ok(Self { id: id.to_owned(), msisdn: msisdn.to_owned(), amount: amount.to_string() })
    }
}

/// `country` and `currency` in the body are optional, but must agree with the headers.
fn matches_market(object: &Value, name: &str, field: &str, expected: &str) -> Result<(), Reply> {
    match &object[field] {
        Value::Null => Ok(()),
        value if *value == *expected => Ok(()),
        _ => Err(field_error(&format!("{name}.{field} must match X-{}", capitalized(field)))),
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
}

fn success(data: Value, message: &str, response_code: &str) -> Reply {
    wire::json(
        StatusCode::OK,
        json!({
            "data": data,
            "status": {
                "code": "200",
                "message": message,
                "result_code": "ESB000010",
                "response_code": response_code,
                "success": true,
            },
        }),
    )
}

/// Airtel's "HTTP 200 but failed" answer.
fn failure(code: &str, result_code: &str, response_code: Option<&str>, message: &str) -> Reply {
    let mut status =
        json!({ "code": code, "message": message, "result_code": result_code, "success": false });
    if let Some(response_code) = response_code {
        status["response_code"] = json!(response_code);
    }
    wire::json(StatusCode::OK, json!({ "status": status }))
}

fn field_error(message: &str) -> Reply {
    failure("400", "ESB000008", None, message)
}

fn not_found() -> Reply {
    failure("404", "ESB000045", Some("DP00800001025"), "Transaction not found")
}

fn refused() -> Reply {
    failure("400", "ESB000011", Some("DP00800001008"), "Refused")
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    wire::json(status, json!({ "error": error, "error_description": description }))
}
