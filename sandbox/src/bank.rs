//! A Kenyan bank-transfer rail in the style of the PesaLink aggregators (providers.md §7).
//! There is no one public API to copy, so the shape is ours: an OAuth client-credentials token,
//! a transfer keyed by the merchant's reference, a status query by that reference and a
//! callback once the destination bank has answered. The reference is the idempotency key: the
//! same request again answers with the transfer already made instead of paying twice.

use std::{
    collections::HashMap,
    sync::{Arc, MutexGuard},
    time::Duration,
};

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
    wire::{self, Reply, answer},
};

const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// PesaLink's ceiling for one transfer, in cents (KES 999,999).
const AMOUNT_LIMIT: u64 = 99_999_900;
const REFERENCE_LIMIT: usize = 64;
const ACCOUNT_NUMBER_LENGTH: std::ops::RangeInclusive<usize> = 6..=20;
/// The banks Sellapay's `sendFundsToLocalBank` names (seed 001), by its codes and names; the
/// Sellapay surface passes its `bank_code` through unchanged.
const BANKS: [(&str, &str); 10] = [
    ("001", "KCB Group Limited"),
    ("002", "Barclays Bank"),
    ("006", "Co-operative Bank"),
    ("007", "Standard Chartered"),
    ("008", "Citibank Kenya"),
    ("011", "Diamond Trust Bank"),
    ("014", "National Bank of Kenya"),
    ("015", "Equity Bank"),
    ("031", "Housing Finance"),
    ("032", "Consolidated Bank Kenya"),
];

pub fn routes(route: Route) -> Route {
    route
        .at("/bank/oauth/token", post(issue_token))
        .at("/bank/v1/transfers", post(create))
        .at("/bank/v1/transfers/:reference", get(status_query))
}

/// What the rail keeps about a transfer beyond the common ledger fields.
pub struct BankTransfer {
    cents: u64,
    bank_code: &'static str,
    bank_name: &'static str,
    account_number: String,
    account_name: String,
    narration: String,
    callback_url: Option<String>,
    created_at: String,
}

impl Provider for BankTransfer {
    const NAME: &'static str = "bank";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.bank()
    }

    /// Submitted to the switch at once, a transfer is `PROCESSING` until the destination bank
    /// answers; only the creating answer still says `PENDING`.
    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer | Phase::Confirmed => "PROCESSING",
            Phase::Succeeded { .. } => "COMPLETED",
            Phase::Failed | Phase::Expired => "FAILED",
        }
    }

    fn receipt(_collection: &Collection<Self>) -> String {
        ids::rail_reference()
    }

    fn notification(_app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let event = match collection.phase {
            Phase::Succeeded { .. } => "transfer.completed",
            _ => "transfer.failed",
        };
        let body = json!({ "event": event, "data": transfer(collection, Self::status(&collection.phase)) });
        Some(Callback {
            method: Method::POST,
            url: collection.details.callback_url.clone()?,
            body,
            headers: Vec::new(),
        })
    }
}

/// The transfer as every answer and callback shows it.
fn transfer(collection: &Collection<BankTransfer>, status: &str) -> Value {
    let details = &collection.details;
    let mut transfer = json!({
        "transfer_id": collection.handle,
        "reference": collection.reference,
        "status": status,
        "amount": shillings(details.cents),
        "currency": "KES",
        "bank_code": details.bank_code,
        "bank_name": details.bank_name,
        "account_number": details.account_number,
        "account_name": details.account_name,
        "narration": details.narration,
        "created_at": details.created_at,
    });
    let failure = match &collection.phase {
        Phase::Succeeded { receipt } => {
            transfer["rail_reference"] = json!(receipt);
            None
        }
        // Test number `01`, the only way a transfer fails before it expires.
        Phase::Failed => Some(("ACCOUNT_INVALID", "The destination account is closed or does not exist")),
        // The switch reverses a transfer the destination bank never confirmed.
        Phase::Expired => Some(("TIMEOUT", "The destination bank did not answer; the transfer was reversed")),
        Phase::AwaitingCustomer | Phase::Confirmed => None,
    };
    if let Some((code, message)) = failure {
        transfer["failure_reason"] = json!({ "code": code, "message": message });
    }
    transfer
}

/// Client credentials the RFC 6749 way: Basic authentication and a form body.
#[handler]
fn issue_token(
    req: &Request,
    form: poem::Result<Form<HashMap<String, String>>>,
    Data(app): Data<&Arc<App>>,
) -> Reply {
    app.tokens().count_request(BankTransfer::NAME);
    if !tokens::basic_matches(req.header("authorization"), &app.config) {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Client authentication failed");
    }
    let grant_type = form.ok().and_then(|Form(form)| form.get("grant_type").cloned());
    if grant_type.as_deref() != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials, form-encoded",
        );
    }
    let access_token = app.tokens().issue(BankTransfer::NAME, ids::token(40), TOKEN_LIFETIME);
    wire::json(
        StatusCode::OK,
        json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME.as_secs(),
        }),
    )
}

#[handler]
async fn create(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(create_transfer(req, body, app).await)
}

#[handler]
fn status_query(req: &Request, Path(reference): Path<String>, Data(app): Data<&Arc<App>>) -> Reply {
    answer(transfer_status(req, &reference, app))
}

async fn create_transfer(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    authorize(req, app)?;
    if !wire::is_json(req) {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
            None,
        ));
    }
    let body = wire::json_body(body).await.filter(Value::is_object).ok_or_else(|| {
        error(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "The body must be a JSON object", None)
    })?;
    let order = Order::parse(&body)?;
    let outcome = Outcome::for_account_number(&order.account_number);
    let handle = ids::transfer_id();
    let (created, first_call) = {
        let mut ledger = app.bank();
        let calls = ledger.count_initiate(&order.reference);
        if let Some(earlier) = ledger.by_reference(&order.reference) {
            return if order.repeats(&earlier.details) {
                Ok(wire::json(StatusCode::OK, transfer(earlier, BankTransfer::status(&earlier.phase))))
            } else {
                Err(error(
                    StatusCode::CONFLICT,
                    "DUPLICATE_REFERENCE",
                    &format!("reference '{}' was already used for a different transfer", order.reference),
                    Some("reference"),
                ))
            };
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL_ERROR",
                "The transfer could not be submitted; nothing was debited",
                None,
            ));
        }
        let collection = Collection::new(
            order.reference,
            handle.clone(),
            None,
            shillings(order.cents),
            outcome,
            BankTransfer {
                cents: order.cents,
                bank_code: order.bank.0,
                bank_name: order.bank.1,
                account_number: order.account_number,
                account_name: order.account_name,
                narration: order.narration,
                callback_url: order.callback_url,
                created_at: wire::timestamp(),
            },
        );
        let created = transfer(&collection, "PENDING");
        ledger.record(collection);
        (created, calls == 1)
    };
    // The destination bank stands in for the customer of the other simulators.
    customer::prompt::<BankTransfer>(app, &handle);
    if first_call && outcome.stalls_first_initiate() {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(StatusCode::ACCEPTED, created))
}

fn transfer_status(req: &Request, reference: &str, app: &App) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let mut ledger = app.bank();
    let collection = ledger.by_reference(reference).ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "TRANSFER_NOT_FOUND",
            &format!("No transfer has reference '{reference}'"),
            None,
        )
    })?;
    Ok(wire::json(StatusCode::OK, transfer(collection, BankTransfer::status(&collection.phase))))
}

fn authorize(req: &Request, app: &App) -> Result<(), Reply> {
    let token = bearer(req.header("authorization"));
    if token.is_some_and(|token| app.tokens().accepts(BankTransfer::NAME, token)) {
        return Ok(());
    }
    Err(error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "The access token is missing, invalid or expired",
        None,
    ))
}

/// A transfer request that passed validation.
struct Order {
    reference: String,
    cents: u64,
    bank: (&'static str, &'static str),
    account_number: String,
    account_name: String,
    narration: String,
    callback_url: Option<String>,
}

impl Order {
    fn parse(body: &Value) -> Result<Self, Reply> {
        let reference = required(body, "reference")?;
        let well_formed = reference.len() <= REFERENCE_LIMIT
            && reference.bytes().all(|byte| byte.is_ascii_alphanumeric() || b"-_.".contains(&byte));
        if !well_formed {
            return Err(invalid("reference", "must be 1 to 64 letters, digits, '-', '_' or '.'"));
        }
        let amount = match &body["amount"] {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            Value::Null => return Err(invalid("amount", "is required")),
            _ => return Err(invalid("amount", "must be a string or a number")),
        };
        let cents = wire::hundredths(&amount)
            .filter(|cents| (1..=AMOUNT_LIMIT).contains(cents))
            .ok_or_else(|| invalid("amount", "must be 0.01 to 999999.00 KES with at most 2 decimals"))?;
        if required(body, "currency")? != "KES" {
            return Err(invalid("currency", "must be KES"));
        }
        let code = required(body, "bank_code")?;
        let bank = BANKS.iter().find(|(known, _)| *known == code).copied().ok_or_else(|| {
            error(
                StatusCode::BAD_REQUEST,
                "INVALID_BANK_CODE",
                &format!("Unknown bank code '{code}'"),
                Some("bank_code"),
            )
        })?;
        let account_number = required(body, "account_number")?;
        if !ACCOUNT_NUMBER_LENGTH.contains(&account_number.len())
            || !account_number.bytes().all(|byte| byte.is_ascii_digit())
        {
            return Err(invalid("account_number", "must be 6 to 20 digits"));
        }
        let account_name = required(body, "account_name")?;
        let narration = match &body["narration"] {
            Value::Null => String::new(),
            Value::String(narration) => narration.clone(),
            _ => return Err(invalid("narration", "must be a string")),
        };
        let callback_url = match &body["callback_url"] {
            Value::Null => None,
            Value::String(url) if url.starts_with("https://") || url.starts_with("http://") => {
                Some(url.clone())
            }
            _ => return Err(invalid("callback_url", "must be an http or https URL")),
        };
        Ok(Self {
            reference: reference.to_owned(),
            cents,
            bank,
            account_number: account_number.to_owned(),
            account_name: account_name.to_owned(),
            narration,
            callback_url,
        })
    }

    /// Whether this is the earlier transfer asked for again: the same money to the same account.
    /// Anything else under a used reference is a different transfer.
    fn repeats(&self, earlier: &BankTransfer) -> bool {
        self.cents == earlier.cents
            && self.bank.0 == earlier.bank_code
            && self.account_number == earlier.account_number
    }
}

fn required<'a>(body: &'a Value, field: &str) -> Result<&'a str, Reply> {
    match &body[field] {
        Value::String(value) if !value.trim().is_empty() => Ok(value),
        Value::Null => Err(invalid(field, "is required")),
        _ => Err(invalid(field, "must be a non-empty string")),
    }
}

fn shillings(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

fn invalid(field: &str, rule: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "VALIDATION_ERROR", &format!("{field} {rule}"), Some(field))
}

/// The rail's error body: a stable code to match on, a message, and the field at fault.
fn error(status: StatusCode, code: &str, message: &str, field: Option<&str>) -> Reply {
    let mut error = json!({ "code": code, "message": message });
    if let Some(field) = field {
        error["field"] = json!(field);
    }
    wire::json(status, json!({ "error": error }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Reply {
    wire::json(status, json!({ "error": error, "error_description": description }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shillings_keep_two_decimals() {
        assert_eq!(shillings(500_050), "5000.50");
        assert_eq!(shillings(7), "0.07");
    }
}
