//! Request and response plumbing shared by the simulators. Each simulator must answer in its
//! provider's own error shapes, never poem's generic ones, so answers are built by hand here.

use chrono::{SecondsFormat, Utc};
use poem::{Body, IntoResponse, Request, Response, http::StatusCode};
use serde_json::Value;

/// A JSON answer, rendered only when it leaves the handler: a refusal travels up through
/// `Err` and stays cheap to move.
pub struct Reply {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        Response::builder().status(self.status).content_type("application/json").body(self.body.to_string())
    }
}

pub fn json(status: StatusCode, body: Value) -> Reply {
    Reply { status, body }
}

/// Flattens a handler's refusal and its answer into one reply.
pub fn answer(result: Result<Reply, Reply>) -> Reply {
    result.unwrap_or_else(|refusal| refusal)
}

/// A header's value; an empty one counts as missing.
pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.header(name).map(str::trim).filter(|value| !value.is_empty())
}

pub fn is_json(req: &Request) -> bool {
    header(req, "content-type")
        .is_some_and(|value| value.to_ascii_lowercase().starts_with("application/json"))
}

/// The request body as JSON, or `None` when it is not valid JSON.
pub async fn json_body(body: Body) -> Option<Value> {
    let bytes = body.into_vec().await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An amount with at most two decimals, read from its exact text (never through a float), in
/// hundredths: cents, kobo.
pub fn hundredths(text: &str) -> Option<u64> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, "00"));
    let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) || fraction.len() > 2 {
        return None;
    }
    let fraction: u64 = format!("{fraction:0<2}").parse().ok()?;
    whole.parse::<u64>().ok()?.checked_mul(100)?.checked_add(fraction)
}

/// `yyyy-MM-ddTHH:mm:ss.SSSZ`, the timestamp format MVola uses.
pub fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_exactly_in_hundredths() {
        assert_eq!(hundredths("5000"), Some(500_000));
        assert_eq!(hundredths("5000.5"), Some(500_050));
        assert_eq!(hundredths("0.01"), Some(1));
        assert_eq!(hundredths("5000.505"), None);
        assert_eq!(hundredths("5000."), None);
        assert_eq!(hundredths(".5"), None);
        assert_eq!(hundredths("-5"), None);
        assert_eq!(hundredths("5e3"), None);
    }
}
