//! Orange Money WebPay (providers.md §3): a redirect flow. The merchant gets a `pay_token`
//! and a `payment_url`, the customer pays on the page behind it, and Orange notifies
//! `notif_url`. The customer's number is never sent, so the amount carries the test digits.

use std::{
    collections::HashMap,
    sync::{Arc, MutexGuard},
    time::Duration,
};

use poem::{
    Body, Request, Response, Route, get, handler,
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
    outcome::{Answer, Outcome},
    provider::Provider,
    tokens::{self, bearer},
    wire::{self, Reply, answer, header},
};

/// Orange's token lasts about ninety days (§3, auth).
const TOKEN_LIFETIME: Duration = Duration::from_secs(7_776_000);
const ID_LIMIT: usize = 30;
const URL_LIMIT: usize = 120;
/// The currency each WebPay segment settles in; `dev` is the sandbox's play money.
const SEGMENT_CURRENCIES: [(&str, &str); 8] = [
    ("dev", "OUV"),
    ("mg", "MGA"),
    ("cm", "XAF"),
    ("ci", "XOF"),
    ("sn", "XOF"),
    ("ml", "XOF"),
    ("cd", "CDF"),
    ("bw", "BWP"),
];

pub fn routes(route: Route) -> Route {
    route
        .at("/oauth/v3/token", post(issue_token))
        .at("/orange-money-webpay/:segment/v1/webpayment", post(webpayment))
        .at("/orange-money-webpay/:segment/v1/transactionstatus", post(transaction_status))
        .at("/orange/webpay/pay/:pay_token", get(pay_page))
}

/// What Orange keeps about a web payment beyond the common ledger fields.
pub struct WebPayment {
    amount: u64,
    currency: String,
    label: String,
    notif_url: String,
    notif_token: String,
    return_url: String,
    cancel_url: String,
    /// The customer can only act once someone has opened the pay page.
    page_opened: bool,
}

impl Provider for WebPayment {
    const NAME: &'static str = "orange";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.orange()
    }

    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer => "INITIATED",
            Phase::Confirmed => "PENDING",
            Phase::Succeeded { .. } => "SUCCESS",
            Phase::Failed => "FAILED",
            Phase::Expired => "EXPIRED",
        }
    }

    fn receipt(_collection: &Collection<Self>) -> String {
        ids::receipt()
    }

    fn notification(_app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let payment = &collection.details;
        let mut body =
            json!({ "status": Self::status(&collection.phase), "notif_token": payment.notif_token });
        if let Some(txnid) = collection.phase.receipt() {
            body["txnid"] = json!(txnid);
        }
        Some(Callback { method: Method::POST, url: payment.notif_url.clone(), body, headers: Vec::new() })
    }
}

#[handler]
fn issue_token(
    req: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
    Data(app): Data<&Arc<App>>,
) -> Reply {
    app.tokens().count_request(WebPayment::NAME);
    if !tokens::basic_matches(req.header("authorization"), &app.config) {
        return error(StatusCode::UNAUTHORIZED, 41, "Invalid credentials", "Invalid client id or secret");
    }
    let grant_type = form.ok().and_then(|Form(form)| form.get("grant_type").cloned());
    if grant_type.as_deref() != Some("client_credentials") {
        return error(
            StatusCode::BAD_REQUEST,
            23,
            "Missing body field",
            "grant_type=client_credentials is required, form-encoded",
        );
    }
    let access_token = app.tokens().issue(WebPayment::NAME, ids::token(32), TOKEN_LIFETIME);
    wire::json(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "access_token": access_token,
            "expires_in": TOKEN_LIFETIME.as_secs().to_string(),
        }),
    )
}

#[handler]
async fn webpayment(
    req: &Request,
    Path(segment): Path<String>,
    body: Body,
    Data(app): Data<&Arc<App>>,
) -> Reply {
    answer(create_payment(req, &segment, body, app).await)
}

#[handler]
async fn transaction_status(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(payment_status(req, body, app).await)
}

async fn create_payment(req: &Request, segment: &str, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    let body = authorized_json(req, body, app).await?;
    let order = Order::parse(&body, segment, app)?;
    let outcome = Outcome::for_amount(order.amount);
    let pay_token = format!("v1{}", ids::token(40).to_ascii_lowercase());
    let notif_token = ids::hex_token(16);
    let first_call = {
        let mut ledger = app.orange();
        ledger.count_initiate(&order.order_id);
        // Orange never sees the customer, and a merchant may use a fresh order id for each
        // attempt, so "the first call" of a test amount is the first order for that amount.
        let calls = ledger.count_initiate(&format!("amount:{}", order.amount));
        if ledger.contains(&order.order_id) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                23,
                "Duplicate order_id",
                &format!("order_id '{}' has already been used", order.order_id),
            ));
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                1,
                "Internal error",
                "The service encountered an unexpected error",
            ));
        }
        ledger.record(Collection::new(
            order.order_id.clone(),
            pay_token.clone(),
            None,
            order.amount.to_string(),
            outcome,
            WebPayment {
                amount: order.amount,
                currency: order.currency,
                label: order.label,
                notif_url: order.notif_url,
                notif_token: notif_token.clone(),
                return_url: order.return_url,
                cancel_url: order.cancel_url,
                page_opened: false,
            },
        ));
        calls == 1
    };
    if first_call && outcome.stalls_first_initiate() {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(
        StatusCode::CREATED,
        json!({
            "status": 201,
            "message": "OK",
            "pay_token": pay_token,
            "payment_url": format!("http://{}/orange/webpay/pay/{pay_token}", own_host(req)),
            "notif_token": notif_token,
        }),
    ))
}

async fn payment_status(req: &Request, body: Body, app: &App) -> Result<Reply, Reply> {
    let body = authorized_json(req, body, app).await?;
    let order_id =
        body["order_id"].as_str().ok_or_else(|| required("GetTransactionStatusInfo", "OrderId"))?;
    let amount = body["amount"].as_u64().ok_or_else(|| required("GetTransactionStatusInfo", "Amount"))?;
    let pay_token =
        body["pay_token"].as_str().ok_or_else(|| required("GetTransactionStatusInfo", "PayToken"))?;
    let mut ledger = app.orange();
    let collection = ledger
        .find(|collection| {
            collection.handle == pay_token
                && collection.reference == order_id
                && collection.details.amount == amount
        })
        .ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                23,
                "Invalid body field",
                "no payment matches this order_id, amount and pay_token",
            )
        })?;
    let mut answer =
        json!({ "status": WebPayment::status(&collection.phase), "order_id": collection.reference });
    if let Some(txnid) = collection.phase.receipt() {
        answer["txnid"] = json!(txnid);
    }
    Ok(wire::json(StatusCode::CREATED, answer))
}

/// Opening the page is what puts the order in front of the customer: the first open starts the
/// simulated customer, later ones only show where the payment stands.
#[handler]
fn pay_page(Path(pay_token): Path<String>, Data(app): Data<&Arc<App>>) -> Response {
    let (page, prompted) = {
        let mut ledger = app.orange();
        let Some(collection) = ledger.by_handle(&pay_token) else {
            return html(StatusCode::NOT_FOUND, "Orange Money", "<p>This payment does not exist.</p>");
        };
        let first_open = !collection.details.page_opened;
        collection.details.page_opened = true;
        let prompted = first_open
            && collection.phase == Phase::AwaitingCustomer
            && collection.outcome.answer() != Answer::Ignores;
        if prompted {
            collection.phase = Phase::Confirmed;
        }
        (page_for(collection), prompted)
    };
    if prompted {
        customer::prompt::<WebPayment>(app, &pay_token);
    }
    page
}

fn page_for(collection: &Collection<WebPayment>) -> Response {
    let payment = &collection.details;
    let state = match &collection.phase {
        Phase::AwaitingCustomer if collection.outcome.answer() == Answer::Ignores => {
            "The customer walked away without paying.".to_owned()
        }
        Phase::AwaitingCustomer => "Waiting for the customer.".to_owned(),
        Phase::Confirmed => "The customer confirmed; the payment is being processed.".to_owned(),
        Phase::Succeeded { receipt } => format!("Paid. Transaction {}.", escape(receipt)),
        Phase::Failed => "The payment failed: insufficient balance.".to_owned(),
        Phase::Expired => "This payment has expired.".to_owned(),
    };
    let body = format!(
        "<p>{label}</p>\n<p>Order {order}: {amount} {currency}</p>\n<p id=\"status\" data-status=\"{status}\">{state}</p>\n\
         <p><a href=\"{back}\">Back to the shop</a> · <a href=\"{cancel}\">Cancel</a></p>",
        label = escape(&payment.label),
        order = escape(&collection.reference),
        amount = payment.amount,
        currency = escape(&payment.currency),
        status = WebPayment::status(&collection.phase),
        back = escape(&payment.return_url),
        cancel = escape(&payment.cancel_url),
    );
    html(StatusCode::OK, "Orange Money WebPay", &body)
}

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n{body}\n</body></html>\n"
    );
    Response::builder().status(status).content_type("text/html; charset=utf-8").body(page)
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|char| match char {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&#39;".to_owned(),
            other => other.to_string(),
        })
        .collect()
}

/// The host the merchant addressed, so that `payment_url` works from wherever it called.
fn own_host(req: &Request) -> String {
    header(req, "host")
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(ToString::to_string))
        .or_else(|| req.local_addr().as_socket_addr().map(ToString::to_string))
        .unwrap_or_else(|| "127.0.0.1".to_owned())
}

/// Checks the bearer token and the JSON headers, then reads the body.
async fn authorized_json(req: &Request, body: Body, app: &App) -> Result<Value, Reply> {
    let Some(token) = bearer(req.header("authorization")) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            40,
            "Missing credentials",
            "Authorization header is missing",
        ));
    };
    if !app.tokens().accepts(WebPayment::NAME, token) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            42,
            "Expired credentials",
            "The access token is expired or unknown",
        ));
    }
    if !wire::is_json(req) {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            63,
            "Unsupported media type",
            "Content-Type must be application/json",
        ));
    }
    if header(req, "accept").is_some_and(|accept| !accepts_json(accept)) {
        return Err(error(
            StatusCode::NOT_ACCEPTABLE,
            62,
            "Not acceptable",
            "Accept must allow application/json",
        ));
    }
    let body = wire::json_body(body).await.filter(Value::is_object);
    body.ok_or_else(|| error(StatusCode::BAD_REQUEST, 23, "Invalid body", "The body must be a JSON object"))
}

fn accepts_json(accept: &str) -> bool {
    accept.split(',').map(|range| range.split(';').next().unwrap_or_default().trim()).any(|range| {
        range.eq_ignore_ascii_case("application/json")
            || range == "*/*"
            || range.eq_ignore_ascii_case("application/*")
    })
}

/// A webpayment body that passed validation.
struct Order {
    order_id: String,
    amount: u64,
    currency: String,
    label: String,
    notif_url: String,
    return_url: String,
    cancel_url: String,
}

impl Order {
    fn parse(body: &Value, segment: &str, app: &App) -> Result<Self, Reply> {
        let field = |name: &str, go_name: &str, limit: usize| -> Result<String, Reply> {
            let value = body[name].as_str().filter(|value| !value.is_empty());
            let value = value.ok_or_else(|| required("WebPaymentInfo", go_name))?;
            if value.chars().count() > limit {
                return Err(invalid("WebPaymentInfo", go_name, "max"));
            }
            Ok(value.to_owned())
        };
        let merchant_key = field("merchant_key", "MerchantKey", usize::MAX)?;
        if merchant_key != app.config.orange_merchant_key {
            return Err(error(
                StatusCode::BAD_REQUEST,
                23,
                "Invalid body field",
                "merchant_key does not belong to this application",
            ));
        }
        let currency = field("currency", "Currency", 3)?;
        let expected =
            SEGMENT_CURRENCIES.iter().find(|(known, _)| *known == segment).map(|(_, currency)| *currency);
        let accepted = match expected {
            Some(expected) => currency == expected,
            None => {
                currency.len() == 3
                    && currency.bytes().all(|byte| byte.is_ascii_uppercase())
                    && currency != "OUV"
            }
        };
        if !accepted {
            return Err(invalid("WebPaymentInfo", "Currency", "currency"));
        }
        let order_id = field("order_id", "OrderId", ID_LIMIT)?;
        let amount = match &body["amount"] {
            Value::Null => return Err(required("WebPaymentInfo", "Amount")),
            amount => amount
                .as_u64()
                .filter(|amount| *amount > 0)
                .ok_or_else(|| invalid("WebPaymentInfo", "Amount", "numeric"))?,
        };
        let url = |name: &str, go_name: &str| -> Result<String, Reply> {
            let url = field(name, go_name, URL_LIMIT)?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid("WebPaymentInfo", go_name, "url"));
            }
            Ok(url)
        };
        let return_url = url("return_url", "ReturnUrl")?;
        let cancel_url = url("cancel_url", "CancelUrl")?;
        let notif_url = url("notif_url", "NotifUrl")?;
        let lang = field("lang", "Lang", 2)?;
        if lang != "fr" && lang != "en" {
            return Err(invalid("WebPaymentInfo", "Lang", "oneof"));
        }
        let label = field("reference", "Reference", ID_LIMIT)?;
        Ok(Self { order_id, amount, currency, label, notif_url, return_url, cancel_url })
    }
}

/// Orange reports body errors with Go validator messages (§3, errors).
fn required(schema: &str, field: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, 23, "Missing body field", &validation(schema, field, "required"))
}

fn invalid(schema: &str, field: &str, tag: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, 23, "Invalid body field", &validation(schema, field, tag))
}

fn validation(schema: &str, field: &str, tag: &str) -> String {
    format!("Key: '{schema}.{field}' Error:Field validation for '{field}' failed on the '{tag}' tag")
}

fn error(status: StatusCode, code: u32, message: &str, description: &str) -> Reply {
    wire::json(status, json!({ "code": code, "message": message, "description": description }))
}
