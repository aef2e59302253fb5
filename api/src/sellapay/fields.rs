//! Reading Sellapay request fields, and the seed's error bodies for what is wrong with them.

use poem::http::StatusCode;
use serde_json::{Value, json};
use ultra_domain::{
    DomainError,
    money::{major_number, parse_amount},
    msisdn,
    provider_configs::Provider,
};

use ultra_entity::provider_configs as provider_configs_rows;

use crate::{
    AppState,
    http::error::{ApiError, ApiResult},
};

/// The seed's validation error: `{error, message, details: {field, reason}}`.
pub fn invalid(field: &str, message: &str, reason: &str) -> ApiError {
    ApiError::with_body(
        StatusCode::BAD_REQUEST,
        "validation_error",
        json!({ "error": "Validation error", "message": message, "details": { "field": field, "reason": reason } }),
    )
}

/// Amounts arrive as JSON numbers (`100`, `100.0`) or decimal strings, and are read from
/// their text into minor units.
pub fn amount_minor(value: &Value) -> ApiResult<i64> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        Value::Null => return Err(invalid("amount", "Invalid amount", "Amount is required")),
        _ => return Err(invalid("amount", "Invalid amount", "Amount must be a number")),
    };
    parse_amount("amount", &text).map_err(|err| match err {
        DomainError::Validation { message, .. } => {
            invalid("amount", "Invalid amount", &format!("Amount {message}"))
        }
        other => other.into(),
    })
}

/// An amount M-Pesa can carry: it takes whole shillings only.
pub fn whole_shillings(value: &Value) -> ApiResult<i64> {
    let minor = amount_minor(value)?;
    if minor % 100 != 0 {
        return Err(invalid(
            "amount",
            "Invalid amount",
            "Amount must be a whole number of shillings: M-Pesa carries no cents",
        ));
    }
    Ok(minor)
}

/// A Safaricom number in the seed's local form (`712345678`), as `254712345678`.
pub fn phone(value: &Value) -> ApiResult<String> {
    let raw = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Null => return Err(invalid("phone", "Invalid phone number format", "Phone is required")),
        _ => return Err(invalid("phone", "Invalid phone number format", "Phone must be a string of digits")),
    };
    msisdn::kenyan("phone", &raw).map_err(|err| match err {
        DomainError::Validation { message, .. } => invalid("phone", "Invalid phone number format", &message),
        other => other.into(),
    })
}

/// An optional text field, trimmed, refused past `max` characters.
pub fn optional_text(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(text) if text.chars().count() > max => Err(invalid(
            field,
            &format!("Invalid {field}"),
            &format!("{field} must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

/// What the ledger refusing an overdraft looks like on this surface.
pub fn sellapay_error(err: DomainError) -> ApiError {
    match err {
        DomainError::InsufficientFunds { required, available } => ApiError::with_body(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
            json!({
                "error": "Insufficient balance",
                "message": "Your account balance is too low",
                "required": major_number(required),
                "available": major_number(available),
            }),
        ),
        other => other.into(),
    }
}

/// The configuration a rail runs on for this merchant; a rail the operator has not set up, or
/// has disabled, is the seed's 503: retry later.
pub async fn require_rail(
    state: &AppState,
    provider: Provider,
    merchant_id: &str,
    what: &str,
) -> ApiResult<provider_configs_rows::Model> {
    let config = state.caches.provider_config(&state.db, provider, merchant_id).await?;
    if let Some(config) = config.filter(|c| c.enabled) {
        return Ok(config);
    }
    Err(ApiError::with_body(
        StatusCode::SERVICE_UNAVAILABLE,
        "rail_unavailable",
        json!({ "error": "Service unavailable", "message": format!("{what} are not available for this account"),
                "details": { "provider": provider.name() } }),
    ))
}
