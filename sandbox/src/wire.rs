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

/// `yyyy-MM-ddTHH:mm:ss.SSSZ`, the timestamp format MVola uses.
pub fn timestamp() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}
