//! What every adapter does with HTTP: send, read the body whatever it is, and sort failures
//! into the errors a job knows how to handle.

use std::{future::Future, sync::Arc, time::Duration};

use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;

use ultra_outbound::Reach;

use crate::{ProviderError, tokens::TokenCache};

#[derive(Clone)]
pub(crate) struct Client {
    pub http: reqwest::Client,
    pub tokens: Arc<TokenCache>,
    pub reach: Reach,
}

/// A provider's answer: its status and its body, JSON when it parses, else the raw text.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

impl Answer {
    pub fn str(&self, pointer: &str) -> Option<&str> {
        self.body.pointer(pointer).and_then(Value::as_str)
    }

    /// 429 and 5xx: the provider is struggling, not refusing.
    pub fn is_unavailable(&self) -> bool {
        self.status == StatusCode::TOO_MANY_REQUESTS || self.status.is_server_error()
    }

    pub fn unavailable(&self) -> ProviderError {
        ProviderError::Unavailable(format!("HTTP {}", self.status.as_u16()))
    }

    pub fn unexpected(&self) -> ProviderError {
        let mut body = self.body.to_string();
        body.truncate(300);
        ProviderError::Protocol(format!("HTTP {}: {body}", self.status.as_u16()))
    }
}

impl Client {
    pub async fn send(&self, request: RequestBuilder) -> Result<Answer, ProviderError> {
        let request = request.build().map_err(classify)?;
        self.check_reach(request.url())?;
        let response = self.http.execute(request).await.map_err(classify)?;
        let status = response.status();
        let text = response.text().await.map_err(classify)?;
        let body = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok(Answer { status, body })
    }

    /// Refuses a URL whose host is an IP literal outside the reach; names are checked on every
    /// address they resolve to, by the client itself.
    pub fn check_reach(&self, url: &reqwest::Url) -> Result<(), ProviderError> {
        match self.reach.refusal(url) {
            Some(refusal) => Err(ProviderError::Configuration(format!("its URL is refused: {refusal}"))),
            None => Ok(()),
        }
    }

    /// Runs `call` with a cached bearer token; on a 401 the token is dropped and the call
    /// made once more with a fresh one, since providers revoke tokens before their expiry.
    pub async fn authorized<T, TF, C, CF>(
        &self,
        cache_key: &str,
        fetch: T,
        call: C,
    ) -> Result<Answer, ProviderError>
    where
        T: Fn() -> TF,
        TF: Future<Output = Result<(String, Duration), ProviderError>>,
        C: Fn(String) -> CF,
        CF: Future<Output = Result<Answer, ProviderError>>,
    {
        self.authorized_unless(cache_key, fetch, call, |answer| answer.status == StatusCode::UNAUTHORIZED)
            .await
    }

    /// [`Client::authorized`] for providers that say "stale token" otherwise than by a 401.
    pub async fn authorized_unless<T, TF, C, CF>(
        &self,
        cache_key: &str,
        fetch: T,
        call: C,
        stale: impl Fn(&Answer) -> bool,
    ) -> Result<Answer, ProviderError>
    where
        T: Fn() -> TF,
        TF: Future<Output = Result<(String, Duration), ProviderError>>,
        C: Fn(String) -> CF,
        CF: Future<Output = Result<Answer, ProviderError>>,
    {
        let token = self.tokens.get(cache_key, &fetch).await?;
        let answer = call(token).await?;
        if !stale(&answer) {
            return Ok(answer);
        }
        self.tokens.forget(cache_key).await;
        let token = self.tokens.get(cache_key, &fetch).await?;
        call(token).await
    }
}

fn classify(err: reqwest::Error) -> ProviderError {
    if err.is_timeout() { ProviderError::Timeout } else { ProviderError::Unavailable(err.to_string()) }
}

/// `expires_in` as a number or, as Airtel and Orange send it, a string of digits.
pub(crate) fn seconds(value: Option<&Value>) -> Option<Duration> {
    let secs = match value? {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// Reads a token endpoint's answer: the token and its lifetime, or why there is none.
pub(crate) fn token_answer(
    answer: Answer,
    default_ttl: Duration,
) -> Result<(String, Duration), ProviderError> {
    if answer.is_unavailable() {
        return Err(answer.unavailable());
    }
    if answer.status.is_client_error() {
        let reason = answer
            .str("/error_description")
            .or_else(|| answer.str("/message"))
            .or_else(|| answer.str("/error"))
            .unwrap_or("refused")
            .to_owned();
        return Err(ProviderError::Credentials(reason));
    }
    let token = answer.str("/access_token").ok_or_else(|| answer.unexpected())?.to_owned();
    let ttl = seconds(answer.body.get("expires_in")).unwrap_or(default_ttl);
    Ok((token, ttl))
}
