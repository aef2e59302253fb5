//! Reading Maxtera request fields: amounts in naira as numbers or strings, within the limits
//! runtime config sets.

use serde_json::Value;
use ultra_domain::{money::parse_amount, runtime_config::AmountLimits};

use crate::http::error::{ApiError, ApiResult};

/// A naira amount in kobo, between `limits` (whole naira).
pub fn naira(field: &str, value: Option<&Value>, limits: AmountLimits) -> ApiResult<i64> {
    let text = match value {
        Some(Value::Number(number)) => number.to_string(),
        Some(Value::String(text)) => text.trim().to_owned(),
        None | Some(Value::Null) => return Err(ApiError::validation(field, "This field is required.")),
        Some(_) => return Err(ApiError::validation(field, "A valid number is required.")),
    };
    let minor = parse_amount(field, &text)?;
    let (min, max) = (limits.min as i64 * 100, limits.max as i64 * 100);
    if !(min..=max).contains(&minor) {
        return Err(ApiError::validation(
            field,
            format!("Amount must be between ₦{} and ₦{}.", limits.min, limits.max),
        ));
    }
    Ok(minor)
}

/// A required text field, trimmed.
pub fn required(field: &str, value: Option<String>) -> ApiResult<String> {
    value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::validation(field, "This field is required."))
}
