//! MVola Merchant Pay v1 (providers.md §1): a WSO2 token endpoint and three resources under
//! one prefix, callbacks by PUT.

use std::{
    collections::HashMap,
    sync::{Arc, MutexGuard},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use poem::{
    Body, Request, Route, get, handler,
    http::StatusCode,
    post,
    web::{Data, Form, Path},
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    app::App,
    callbacks::Callback,
    customer, ids,
    ledger::{Collection, Ledger, Phase},
    outcome::Outcome,
    provider::Provider,
    tokens::{self, bearer},
    wire::{self, Reply, answer, header},
};

const MERCHANT_PAY: &str = "/mvola/mm/transactions/type/merchantpay/1.0.0";
const SCOPE: &str = "EXT_INT_MVOLA_SCOPE";
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// MVola caps `descriptionText` at 50 characters (§1, initiate).
const DESCRIPTION_LIMIT: usize = 50;

pub fn routes(route: Route) -> Route {
    route
        .at("/token", post(issue_token))
        .at(format!("{MERCHANT_PAY}/"), post(initiate))
        .at(MERCHANT_PAY, post(initiate))
        .at(format!("{MERCHANT_PAY}/status/:server_correlation_id"), get(status_query))
        .at(format!("{MERCHANT_PAY}/:transaction_reference"), get(details_query))
}

/// What MVola keeps about a merchant payment beyond the common ledger fields.
pub struct MerchantPay {
    merchant: String,
    correlation_id: String,
    callback_url: Option<String>,
    request_date: String,
    creation_date: String,
    notification_method: &'static str,
}

impl Provider for MerchantPay {
    const NAME: &'static str = "mvola";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.mvola()
    }

    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer | Phase::Confirmed => "pending",
            Phase::Succeeded { .. } => "completed",
            Phase::Failed | Phase::Expired => "failed",
        }
    }

    fn receipt(_collection: &Collection<Self>) -> String {
        ids::mvola_reference()
    }

    fn notification(_app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let payment = &collection.details;
        let body = json!({
            "transactionStatus": Self::status(&collection.phase),
            "serverCorrelationId": collection.handle,
            "transactionReference": collection.phase.receipt().unwrap_or_default(),
            "requestDate": payment.request_date,
            "debitParty": party(collection.msisdn.as_deref().unwrap_or_default()),
            "creditParty": party(&payment.merchant),
            "fees": [{ "feeAmount": "0" }],
            "metadata": [{ "key": "XCorrelationId", "value": payment.correlation_id }],
        });
        Some(Callback { method: Method::PUT, url: payment.callback_url.clone()?, body, headers: Vec::new() })
    }
}

#[handler]
fn issue_token(
    req: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
    Data(app): Data<&Arc<App>>,
) -> Reply {
    app.tokens().count_request(MerchantPay::NAME);
    let Ok(Form(form)) = form else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "the body must be application/x-www-form-urlencoded",
        );
    };
    if !tokens::basic_matches(req.header("authorization"), &app.config) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "A valid OAuth client could not be found for the given consumer key and secret",
        );
    }
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    if form.get("scope").map(String::as_str) != Some(SCOPE) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "scope must be EXT_INT_MVOLA_SCOPE");
    }
    let access_token = app.tokens().issue(MerchantPay::NAME, jwt(&app.config.client_id), TOKEN_LIFETIME);
    wire::json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "scope": SCOPE,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
        }),
    )
}

#[handler]
async fn initiate(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(initiate_payment(req, body, app).await)
}

#[handler]
fn status_query(req: &Request, Path(id): Path<String>, Data(app): Data<&Arc<App>>) -> Reply {
    answer(payment_status(req, &id, app))
}

#[handler]
fn details_query(req: &Request, Path(reference): Path<String>, Data(app): Data<&Arc<App>>) -> Reply {
    answer(payment_details(req, &reference, app))
}

async fn initiate_payment(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let merchant = merchant_headers(req, true)?;
    if header(req, "content-type").is_none() {
        return Err(missing("Content-Type"));
    }
    if !wire::is_json(req) {
        return Err(invalid("Content-Type", "must be application/json"));
    }
    let body = wire::json_body(body).await.ok_or_else(|| invalid("body", "must be a JSON object"))?;
    let order = Order::parse(&body, &merchant)?;
    let outcome = Outcome::for_msisdn(&order.debit);
    let callback_url = header(req, "X-Callback-URL").map(str::to_owned);
    let notification_method =
        if callback_url.is_some() && outcome.notifies() { "callback" } else { "polling" };
    let handle = ids::uuid();
    let first_call = {
        let mut ledger = app.mvola();
        let calls = ledger.count_initiate(&order.reference);
        if ledger.contains(&order.reference) {
            return Err(business_error(
                StatusCode::CONFLICT,
                "businessRule",
                "4009",
                "Duplicate transaction reference",
                &order.reference,
            ));
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(business_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "5000",
                "Internal server error",
                &order.reference,
            ));
        }
        ledger.record(Collection::new(
            order.reference.clone(),
            handle.clone(),
            Some(order.debit),
            order.amount,
            outcome,
            MerchantPay {
                merchant,
                correlation_id: header(req, "X-CorrelationID").unwrap_or_default().to_owned(),
                callback_url,
                request_date: order.request_date,
                creation_date: wire::timestamp(),
                notification_method,
            },
        ));
        calls == 1
    };
    customer::prompt::<MerchantPay>(app, &handle);
    if first_call && outcome.stalls_first_initiate() {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(
        StatusCode::ACCEPTED,
        json!({
            "status": "pending",
            "serverCorrelationId": handle,
            "notificationMethod": notification_method,
        }),
    ))
}

fn payment_status(req: &Request, id: &str, app: &App) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let merchant = merchant_headers(req, true)?;
    let mut ledger = app.mvola();
    let collection = ledger
        .find(|collection| collection.handle == id && collection.details.merchant == merchant)
        .ok_or_else(|| not_found(id))?;
    Ok(wire::json(
        StatusCode::OK,
        json!({
            "status": MerchantPay::status(&collection.phase),
            "serverCorrelationId": collection.handle,
            "notificationMethod": collection.details.notification_method,
            "objectReference": collection.phase.receipt().unwrap_or_default(),
        }),
    ))
}

fn payment_details(req: &Request, reference: &str, app: &App) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let merchant = merchant_headers(req, false)?;
    let mut ledger = app.mvola();
    let collection = ledger
        .find(|collection| {
            collection.phase.receipt() == Some(reference) && collection.details.merchant == merchant
        })
        .ok_or_else(|| not_found(reference))?;
    let payment = &collection.details;
    Ok(wire::json(
        StatusCode::OK,
        json!({
            "amount": collection.amount,
            "currency": "Ar",
            "requestDate": payment.request_date,
            "creationDate": payment.creation_date,
            "transactionStatus": MerchantPay::status(&collection.phase),
            "transactionReference": reference,
            "debitParty": party(collection.msisdn.as_deref().unwrap_or_default()),
            "creditParty": party(&payment.merchant),
            "fees": [{ "feeAmount": "0" }],
            "metadata": [
                { "key": "originalTransactionResult", "value": "0" },
                { "key": "originalTransactionResultDesc", "value": "0" },
                { "key": "XCorrelationId", "value": payment.correlation_id },
            ],
        }),
    ))
}

/// The gateway checks the token before the API sees any header or body.
fn authorize(req: &Request, app: &App) -> Result<(), Reply> {
    let token = bearer(req.header("authorization"));
    if token.is_some_and(|token| app.tokens().accepts(MerchantPay::NAME, token)) {
        return Ok(());
    }
    Err(wire::json(
        StatusCode::UNAUTHORIZED,
        json!({ "fault": {
            "code": 900901,
            "message": "Invalid Credentials",
            "description": "Invalid Credentials. Make sure you have given the correct access token",
        }}),
    ))
}

/// Checks the headers MVola requires on every Merchant Pay call (§1, header table) and
/// returns the merchant's MSISDN from `UserAccountIdentifier`.
fn merchant_headers(req: &Request, partner_required: bool) -> Result<String, Reply> {
    for name in ["Version", "X-CorrelationID", "Cache-Control", "UserAccountIdentifier"] {
        if header(req, name).is_none() {
            return Err(missing(name));
        }
    }
    if partner_required && header(req, "partnerName").is_none() {
        return Err(missing("partnerName"));
    }
    if header(req, "Version") != Some("1.0") {
        return Err(invalid("Version", "must be 1.0"));
    }
    if header(req, "Cache-Control") != Some("no-cache") {
        return Err(invalid("Cache-Control", "must be no-cache"));
    }
    header(req, "UserAccountIdentifier")
        .and_then(|value| value.strip_prefix("msisdn;"))
        .filter(|msisdn| is_local_msisdn(msisdn))
        .map(str::to_owned)
        .ok_or_else(|| invalid("UserAccountIdentifier", "must be msisdn;03XXXXXXXX"))
}

/// An initiate body that passed validation.
struct Order {
    amount: String,
    reference: String,
    request_date: String,
    debit: String,
}

impl Order {
    fn parse(body: &Value, merchant: &str) -> Result<Self, Reply> {
        if !body.is_object() {
            return Err(invalid("body", "must be a JSON object"));
        }
        let amount = text(body, "amount")?;
        if amount.is_empty() || !amount.bytes().all(|byte| byte.is_ascii_digit()) || amount.starts_with('0') {
            return Err(invalid("amount", "must be a whole number of Ariary, as a string"));
        }
        if text(body, "currency")? != "Ar" {
            return Err(invalid("currency", "must be Ar"));
        }
        if text(body, "descriptionText")?.chars().count() > DESCRIPTION_LIMIT {
            return Err(invalid("descriptionText", "must be at most 50 characters"));
        }
        let reference = text(body, "requestingOrganisationTransactionReference")?;
        if reference.is_empty() {
            return Err(missing("requestingOrganisationTransactionReference"));
        }
        let request_date = text(body, "requestDate")?;
        if DateTime::parse_from_rfc3339(request_date).is_err() {
            return Err(invalid("requestDate", "must be yyyy-MM-ddTHH:mm:ss.SSSZ"));
        }
        text(body, "originalTransactionReference")?;
        let debit = msisdn_of(body, "debitParty")?;
        let credit = msisdn_of(body, "creditParty")?;
        if credit != merchant {
            return Err(invalid("creditParty", "must be the merchant of UserAccountIdentifier"));
        }
        if let Some(metadata) = body.get("metadata") {
            let pairs = metadata.as_array().ok_or_else(|| invalid("metadata", "must be a list"))?;
            if !pairs.iter().all(is_string_pair) {
                return Err(invalid("metadata", "entries must be {key, value} strings"));
            }
        }
        Ok(Self {
            amount: amount.to_owned(),
            reference: reference.to_owned(),
            request_date: request_date.to_owned(),
            debit,
        })
    }
}

fn text<'a>(body: &'a Value, name: &str) -> Result<&'a str, Reply> {
    match body.get(name) {
        None | Some(Value::Null) => Err(missing(name)),
        Some(value) => value.as_str().ok_or_else(|| invalid(name, "must be a string")),
    }
}

/// The MSISDN of a `[{key:"msisdn", value}]` party list.
fn msisdn_of(body: &Value, name: &str) -> Result<String, Reply> {
    let parties = body.get(name).ok_or_else(|| missing(name))?;
    let parties = parties.as_array().ok_or_else(|| invalid(name, "must be a list"))?;
    if !parties.iter().all(is_string_pair) {
        return Err(invalid(name, "entries must be {key, value} strings"));
    }
    let msisdn = parties
        .iter()
        .find(|party| party["key"] == "msisdn")
        .and_then(|party| party["value"].as_str())
        .ok_or_else(|| missing(&format!("{name}.msisdn")))?;
    if !is_local_msisdn(msisdn) {
        return Err(invalid(name, "msisdn must be a local number 03XXXXXXXX"));
    }
    Ok(msisdn.to_owned())
}

fn is_string_pair(entry: &Value) -> bool {
    entry["key"].is_string() && entry["value"].is_string()
}

/// MVola numbers are local, ten digits, no `+261` (§1).
fn is_local_msisdn(msisdn: &str) -> bool {
    msisdn.len() == 10 && msisdn.starts_with("03") && msisdn.bytes().all(|byte| byte.is_ascii_digit())
}

fn party(msisdn: &str) -> Value {
    json!([{ "key": "msisdn", "value": msisdn }])
}

fn missing(name: &str) -> Reply {
    business_error(StatusCode::BAD_REQUEST, "validation", "4001", &format!("Missing field {name}"), name)
}

fn invalid(name: &str, rule: &str) -> Reply {
    business_error(
        StatusCode::BAD_REQUEST,
        "validation",
        "4002",
        &format!("Invalid field {name}: {rule}"),
        name,
    )
}

fn not_found(id: &str) -> Reply {
    business_error(StatusCode::NOT_FOUND, "identification", "4004", "Transaction not found", id)
}

/// MVola's business error body (§1, errors), its one parameter naming what it is about.
fn business_error(status: StatusCode, category: &str, code: &str, description: &str, subject: &str) -> Reply {
    wire::json(
        status,
        json!({
            "ErrorCategory": category,
            "ErrorCode": code,
            "ErrorDescription": description,
            "ErrorDateTime": wire::timestamp(),
            "ErrorParameters": [{ "key": "subject", "value": subject }],
        }),
    )
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    wire::json(status, json!({ "error": error, "error_description": description }))
}

/// MVola's access tokens are JWTs; clients that peek into them should find one.
fn jwt(client_id: &str) -> String {
    let now = Utc::now().timestamp();
    let header = json!({ "alg": "RS256", "typ": "JWT" });
    let claims = json!({
        "sub": client_id,
        "scope": SCOPE,
        "iat": now,
        "exp": now + TOKEN_LIFETIME.as_secs() as i64,
        "jti": ids::uuid(),
    });
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(ids::token(64)),
    )
}
