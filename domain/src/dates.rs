//! The range of dates Ultra accepts and computes: years 1970 to 9999.
//!
//! SQLite keeps a timestamp as RFC 3339 text, which sorts as time does only while the year
//! has four digits: year 10000 is written `+10000-…` and sorts before every other date, so a
//! subscription renewing then read as long overdue and was charged on every tick. Dates outside
//! the range are refused where a client sends them and never stored where Ultra computes them.

use chrono::{DateTime, TimeZone, Utc};

use crate::{DomainError, DomainResult};

pub fn earliest() -> DateTime<Utc> {
    DateTime::UNIX_EPOCH
}

pub fn latest() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).single().expect("a valid date")
}

pub fn in_range(at: DateTime<Utc>) -> bool {
    (earliest()..=latest()).contains(&at)
}

/// `at`, or a validation error on `field` when it lies outside years 1970 to 9999.
pub fn check(field: &str, at: DateTime<Utc>) -> DomainResult<DateTime<Utc>> {
    if in_range(at) {
        Ok(at)
    } else {
        Err(DomainError::validation(field, "must be between 1970-01-01 and 9999-12-31 (UTC)"))
    }
}

/// An RFC 3339 date-time a client sent in `field`, in UTC and within the range.
pub fn parse(field: &str, text: &str) -> DomainResult<DateTime<Utc>> {
    let at = DateTime::parse_from_rfc3339(text.trim())
        .map_err(|_| {
            DomainError::validation(field, "must be an RFC 3339 date-time such as 2030-12-31T23:59:59Z")
        })?
        .to_utc();
    check(field, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_four_digit_years_from_the_epoch() {
        assert!(in_range(Utc.with_ymd_and_hms(2026, 12, 7, 0, 0, 0).unwrap()));
        assert!(in_range(latest()));
        assert!(!in_range(latest() + chrono::Duration::seconds(1)));
        assert!(!in_range(earliest() - chrono::Duration::seconds(1)));
        assert!(check("nextRenewalAt", Utc.with_ymd_and_hms(1969, 12, 31, 0, 0, 0).unwrap()).is_err());
        // Four-digit years, but an offset that carries it past the end of 9999 in UTC.
        assert!(parse("expiresAt", "9999-12-31T23:00:00-05:00").is_err());
        assert!(parse("expiresAt", "2030-12-31T23:59:59Z").is_ok());
        assert!(parse("expiresAt", "tomorrow").is_err());
    }
}
