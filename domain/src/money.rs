//! Amounts: parsed once, from the exact text a client sent, into integer minor units.

use std::str::FromStr;

use rust_decimal::{Decimal, prelude::ToPrimitive};

use crate::{DomainError, DomainResult};

/// The largest amount accepted, in major units: far above any mobile-money limit, far below
/// where minor units could overflow.
const MAX_MAJOR: i64 = 1_000_000_000_000;

/// Parses `"10000"` or `"10000.50"` into minor units (cents of the currency). More than two
/// decimals, zero, negative or absurd amounts are refused, naming `field`.
pub fn parse_amount(field: &str, text: &str) -> DomainResult<i64> {
    let invalid = |message: &str| DomainError::validation(field, message);
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(invalid("must be a decimal number such as \"10000\" or \"10000.50\""));
    }
    let amount =
        Decimal::from_str(text).map_err(|_| invalid("must be a decimal number such as \"10000\""))?;
    if amount.scale() > 2 {
        return Err(invalid("must have at most 2 decimals"));
    }
    if amount <= Decimal::ZERO {
        return Err(invalid("must be greater than zero"));
    }
    if amount > Decimal::from(MAX_MAJOR) {
        return Err(invalid("is too large"));
    }
    (amount * Decimal::ONE_HUNDRED).to_i64().ok_or_else(|| invalid("is too large"))
}

/// Minor units back to the decimal text the API shows: `"10000"` or `"10000.50"`.
pub fn format_amount(minor: i64) -> String {
    let (major, cents) = (minor / 100, (minor % 100).abs());
    if cents == 0 { major.to_string() } else { format!("{major}.{cents:02}") }
}

/// Minor units as the JSON number surfaces whose seeds show floats send (`100.0`). Only for
/// output: every amount is computed in minor units first.
pub fn major_number(minor: i64) -> f64 {
    (Decimal::new(minor, 2)).to_f64().unwrap_or_default()
}

/// `minor` converted at `rate` (decimal text: one unit in the other currency), rounded to
/// cents, as a JSON number.
pub fn convert(minor: i64, rate: &str) -> DomainResult<f64> {
    let rate = Decimal::from_str(rate.trim())
        .map_err(|_| DomainError::Internal(format!("exchange rate {rate} is not a decimal number")))?;
    Ok((Decimal::new(minor, 2) * rate).round_dp(2).to_f64().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_at_decimal_rates_to_cents() {
        assert_eq!(convert(5_000_000, "0.0085106").unwrap(), 425.53);
        assert_eq!(convert(5_000_000, "0.007799").unwrap(), 389.95);
        assert_eq!(major_number(10_050), 100.5);
        assert!(convert(100, "one").is_err());
    }

    #[test]
    fn parses_exact_decimals_into_minor_units() {
        assert_eq!(parse_amount("amount", "10000").unwrap(), 1_000_000);
        assert_eq!(parse_amount("amount", "0.1").unwrap(), 10);
        assert_eq!(parse_amount("amount", "19.99").unwrap(), 1999);
        for bad in ["", "1.234", "0", "-5", "1e3", "abc", "1.2.3", "99999999999999", "10.", ".5", "+5"] {
            assert!(parse_amount("amount", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_amount(1_000_000), "10000");
        assert_eq!(format_amount(1_000_050), "10000.50");
        assert_eq!(format_amount(5), "0.05");
    }
}
