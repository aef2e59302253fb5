//! The HTTP side of a delivery: one signed POST, what came back, and how long it took.

use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::{
    Client, StatusCode,
    header::{HeaderMap, RETRY_AFTER},
};
use ultra_domain::webhooks::{
    deliveries::{AttemptOutcome, MAX_RESPONSE_BODY},
    signature,
};
use ultra_outbound::Reach;

/// What one attempt sends.
pub struct Signed<'a> {
    pub url: &'a str,
    /// The event id: the same for every attempt, retry and replay, so receivers can dedupe.
    pub message_id: &'a str,
    pub secret: &'a str,
    pub body: Vec<u8>,
}

/// Two clients, neither following redirects: the guarded one connects only to public
/// addresses, checking every name it resolves; the open one is for installs that allow private
/// URLs.
pub struct WebhookSender {
    guarded: Client,
    open: Client,
}

impl WebhookSender {
    pub fn new() -> reqwest::Result<Self> {
        let build = |reach: Reach| {
            reach
                .client_builder()
                .user_agent(concat!("Ultra-Webhooks/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(30))
                .build()
        };
        Ok(Self { guarded: build(Reach::Public)?, open: build(Reach::Private)? })
    }

    pub async fn send(&self, message: Signed<'_>, timeout: Duration, allow_private: bool) -> AttemptOutcome {
        let started_at = Utc::now();
        let clock = Instant::now();
        let failed = |error: String| AttemptOutcome {
            started_at,
            status_code: None,
            latency: clock.elapsed(),
            error: Some(error),
            response_body: None,
            retry_after: None,
        };
        let reach = Reach::allowing_private(allow_private);
        if let Some(refusal) = reqwest::Url::parse(message.url).ok().and_then(|url| reach.refusal(&url)) {
            return failed(refusal);
        }
        let timestamp = started_at.timestamp();
        let signature = signature::sign(message.secret, message.message_id, timestamp, &message.body);
        let client = if reach == Reach::Private { &self.open } else { &self.guarded };
        let sent = client
            .post(message.url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("webhook-id", message.message_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(message.body)
            .send()
            .await;
        let mut response = match sent {
            Ok(response) => response,
            Err(err) => return failed(describe(&err, timeout)),
        };
        let status = response.status();
        let retry_after = retry_after(status, response.headers());
        let mut body = Vec::new();
        let mut read_error = None;
        while body.len() < MAX_RESPONSE_BODY {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) => break,
                Err(err) => {
                    read_error = Some(describe(&err, timeout));
                    break;
                }
            }
        }
        body.truncate(MAX_RESPONSE_BODY);
        AttemptOutcome {
            started_at,
            status_code: Some(status.as_u16()),
            latency: clock.elapsed(),
            error: read_error.filter(|_| !status.is_success()),
            response_body: (!body.is_empty()).then(|| String::from_utf8_lossy(&body).into_owned()),
            retry_after,
        }
    }
}

/// `Retry-After` in seconds or as an HTTP date, on the answers that use it.
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&Utc) - Utc::now()).to_std().ok()
}

fn describe(err: &reqwest::Error, timeout: Duration) -> String {
    use std::error::Error;
    if err.is_timeout() {
        return format!("no answer within {} ms", timeout.as_millis());
    }
    let mut message =
        if err.is_connect() { "could not connect".to_owned() } else { "request failed".to_owned() };
    let mut source = err.source();
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}
