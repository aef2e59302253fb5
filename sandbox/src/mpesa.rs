//! Safaricom M-Pesa Daraja (providers.md §4): one OAuth app whose token serves M-Pesa Express
//! (the STK push and its query, `stk`) and B2C payouts (`b2c`). Every refusal uses Daraja's
//! envelope `{requestId, errorCode, errorMessage}`, whose code starts with the HTTP status.

mod b2c;
mod stk;

use std::{collections::HashMap, sync::Arc, time::Duration};

use chrono::{DateTime, FixedOffset, Utc};
use poem::{Body, Request, Route, get, handler, http::StatusCode, post, web::Data};
use serde_json::{Value, json};

pub use self::{
    b2c::B2cPayment,
    stk::{PASSKEY, SHORTCODE, StkPush},
};
use crate::{
    app::App,
    ids,
    provider::Provider,
    tokens::{self, bearer},
    wire::{self, Reply},
};

/// Daraja's tokens last an hour less a second, and it says so as a string (§4, auth).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3599);

pub fn routes(route: Route) -> Route {
    route
        .at("/oauth/v1/generate", get(issue_token))
        .at("/mpesa/stkpush/v1/processrequest", post(stk::process_request))
        .at("/mpesa/stkpushquery/v1/query", post(stk::query_request))
        .at("/mpesa/b2c/v3/paymentrequest", post(b2c::pay_v3))
        .at("/mpesa/b2c/v1/paymentrequest", post(b2c::pay_v1))
}

/// `GET` with the consumer key and secret as Basic credentials and the grant type in the query.
/// The token belongs to the app, not to one API, so it is issued, counted and accepted under
/// the STK push's name for both flows.
#[handler]
fn issue_token(req: &Request, Data(app): Data<&Arc<App>>) -> Reply {
    app.tokens().count_request(StkPush::NAME);
    if !tokens::basic_matches(req.header("authorization"), &app.config) {
        return error("400.008.01", "Invalid Authentication passed");
    }
    let query = req.params::<HashMap<String, String>>().unwrap_or_default();
    if query.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return error("400.008.02", "Invalid grant type passed");
    }
    let access_token = app.tokens().issue(StkPush::NAME, ids::token(28), TOKEN_LIFETIME);
    wire::json(
        StatusCode::OK,
        json!({ "access_token": access_token, "expires_in": TOKEN_LIFETIME.as_secs().to_string() }),
    )
}

/// The gateway checks the bearer token before the API reads the body.
fn authorize(req: &Request, app: &App) -> Result<(), Reply> {
    let Some(token) = bearer(req.header("authorization")) else {
        return Err(error("404.001.04", "Invalid Authentication Header"));
    };
    if app.tokens().accepts(StkPush::NAME, token) {
        Ok(())
    } else {
        Err(error("404.001.03", "Invalid Access Token"))
    }
}

async fn json_body(body: Body) -> Result<Value, Reply> {
    wire::json_body(body)
        .await
        .filter(Value::is_object)
        .ok_or_else(|| error("400.002.05", "Invalid Request Payload"))
}

/// A non-empty string field.
fn text<'a>(body: &'a Value, field: &str) -> Option<&'a str> {
    body[field].as_str().filter(|value| !value.trim().is_empty())
}

/// A numeric field, which Daraja takes as a JSON number or as a string of digits alike.
fn digits(body: &Value, field: &str) -> Option<String> {
    match &body[field] {
        Value::String(text) if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) => {
            Some(text.clone())
        }
        Value::Number(number) => number.as_u64().map(|number| number.to_string()),
        _ => None,
    }
}

/// `Amount`: whole shillings, at least one.
fn amount(body: &Value) -> Result<u64, Reply> {
    digits(body, "Amount")
        .and_then(|amount| amount.parse().ok())
        .filter(|amount| *amount > 0)
        .ok_or_else(|| invalid("Amount"))
}

/// A Safaricom number in international form without `+`: `2547…` or `2541…`, twelve digits.
fn msisdn(body: &Value, field: &str) -> Result<String, Reply> {
    digits(body, field)
        .filter(|number| number.len() == 12 && (number.starts_with("2547") || number.starts_with("2541")))
        .ok_or_else(|| invalid(field))
}

/// Where Daraja will post a result. The sandbox takes plain http too, for local receivers.
fn url(body: &Value, field: &str) -> Result<String, Reply> {
    text(body, field)
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .map(str::to_owned)
        .ok_or_else(|| invalid(field))
}

fn invalid(field: &str) -> Reply {
    error("400.002.02", &format!("Bad Request - Invalid {field}"))
}

/// Daraja's error envelope (§4, errors). The code's first part is the HTTP status, so a client
/// sees the same status whichever it reads.
fn error(code: &str, message: &str) -> Reply {
    let status = code
        .split('.')
        .next()
        .and_then(|status| status.parse().ok())
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    wire::json(
        status,
        json!({ "requestId": ids::daraja_request_id(), "errorCode": code, "errorMessage": message }),
    )
}

/// Daraja's timestamps and dates are Nairobi time, UTC+3 all year.
fn nairobi_now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&FixedOffset::east_opt(3 * 3600).expect("UTC+3 is a valid offset"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_may_be_numbers_or_digit_strings() {
        let body = json!({ "A": 174379, "B": "174379", "C": "17437x", "D": 1.5, "E": "" });
        assert_eq!(digits(&body, "A").as_deref(), Some("174379"));
        assert_eq!(digits(&body, "B").as_deref(), Some("174379"));
        assert_eq!(digits(&body, "C"), None);
        assert_eq!(digits(&body, "D"), None);
        assert_eq!(digits(&body, "E"), None);
    }

    #[test]
    fn only_safaricom_numbers_in_international_form_pass() {
        let body =
            json!({ "a": 254708374149u64, "b": "254110000000", "c": "0708374149", "d": "255708374149" });
        assert!(msisdn(&body, "a").is_ok());
        assert!(msisdn(&body, "b").is_ok());
        assert!(msisdn(&body, "c").is_err());
        assert!(msisdn(&body, "d").is_err());
    }
}
