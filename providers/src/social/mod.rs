//! Publishing to social platforms on a merchant's behalf: Meta (Facebook Pages and the Instagram
//! business accounts behind them) and TikTok (providers.md §8).
//!
//! Unlike the payment adapters these act for an end user who granted access through the
//! platform's OAuth dialog, so every call takes that user's tokens and the caller stores them.
//! Each call also hands back a [`Transcript`] of its HTTP exchanges, with secrets blanked out,
//! since a merchant asking why a post failed needs to see what the platform actually said.

mod meta;
mod tiktok;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::{Method, RequestBuilder, Url};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub use self::{meta::Meta, tiktok::Tiktok};
use crate::{
    ProviderError, Settings,
    http::{Answer, Client},
};

/// How long to wait between two status polls of media the platform is still fetching.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Status polls within one publish call: with [`POLL_INTERVAL`] this holds a call under ten
/// seconds, after which the caller is told to come back rather than keep a worker waiting.
const POLLS: u32 = 9;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Platform {
    Meta,
    Tiktok,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meta => "meta",
            Self::Tiktok => "tiktok",
        }
    }
}

/// One Meta grant covers a Page and the Instagram account linked to it, which publish through
/// different endpoints, so the account kind and not the platform decides how to post.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    FacebookPage,
    Instagram,
    Tiktok,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FacebookPage => "facebook_page",
            Self::Instagram => "instagram",
            Self::Tiktok => "tiktok",
        }
    }

    pub fn platform(self) -> Platform {
        match self {
            Self::FacebookPage | Self::Instagram => Platform::Meta,
            Self::Tiktok => Platform::Tiktok,
        }
    }
}

/// Everything needed to act for one connected account; stored encrypted by the caller.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AccountTokens {
    /// Meta: the Page token, which also publishes to the Page's Instagram account; TikTok: the
    /// access token.
    pub access_token: String,
    /// `None` when the token does not lapse on its own, as Meta Page tokens do not.
    pub access_expires_at: Option<DateTime<Utc>>,
    /// TikTok only. It rotates: the one a refresh returns replaces the one it used.
    pub refresh_token: Option<String>,
    pub refresh_expires_at: Option<DateTime<Utc>>,
    /// Meta only: the long-lived user token, which is what lapses, gets renewed and is revoked.
    pub user_token: Option<String>,
    pub user_token_expires_at: Option<DateTime<Utc>>,
    pub scope: Option<String>,
}

/// An account a grant can publish to.
#[derive(Clone, Debug, PartialEq)]
pub struct Connected {
    pub kind: AccountKind,
    pub external_id: String,
    pub name: String,
    pub tokens: AccountTokens,
}

/// Where a post goes.
#[derive(Clone, Copy, Debug)]
pub struct Target<'a> {
    pub kind: AccountKind,
    pub external_id: &'a str,
    pub tokens: &'a AccountTokens,
}

#[derive(Clone, Copy, Debug)]
pub struct PostContent<'a> {
    pub text: &'a str,
    pub media_urls: &'a [String],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Publication {
    Published {
        post_id: String,
    },
    /// The platform is still fetching/processing media: call publish again later with
    /// `resume = Some(handle)`, so that the media is not submitted twice.
    Processing {
        handle: String,
    },
}

/// Every HTTP exchange a call made, for the caller's publish/connection log. Secrets
/// (access_token, client_secret, refresh_token, code, fb_exchange_token, Authorization header)
/// are replaced by "[redacted]" in both the URL query and the bodies, since the log is shown
/// to people who must not be able to act as the account.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Transcript(pub Vec<Exchange>);

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Exchange {
    pub method: String,
    pub url: String,
    pub request: Value,
    /// `None` when no answer came (timeout, connection error); `response` then holds the error
    /// text as a string.
    pub status: Option<u16>,
    pub response: Value,
}

/// A social adapter of either platform, so a job can hold one without caring which.
pub enum SocialAdapter {
    Meta(Meta),
    Tiktok(Tiktok),
}

impl SocialAdapter {
    pub fn platform(&self) -> Platform {
        match self {
            Self::Meta(_) => Platform::Meta,
            Self::Tiktok(_) => Platform::Tiktok,
        }
    }

    /// The URL to send the user's browser to.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        match self {
            Self::Meta(a) => a.authorize_url(redirect_uri, state),
            Self::Tiktok(a) => a.authorize_url(redirect_uri, state),
        }
    }

    /// Code -> tokens -> the accounts this grant can publish to.
    pub async fn connect(
        &self,
        code: &str,
        redirect_uri: &str,
        log: &mut Transcript,
    ) -> Result<Vec<Connected>, ProviderError> {
        match self {
            Self::Meta(a) => a.connect(code, redirect_uri, log).await,
            Self::Tiktok(a) => a.connect(code, redirect_uri, log).await,
        }
    }

    /// New tokens for an account before its old ones lapse.
    pub async fn refresh(
        &self,
        kind: AccountKind,
        tokens: &AccountTokens,
        log: &mut Transcript,
    ) -> Result<AccountTokens, ProviderError> {
        self.check_kind(kind)?;
        match self {
            Self::Meta(a) => a.refresh(tokens, log).await,
            Self::Tiktok(a) => a.refresh(tokens, log).await,
        }
    }

    /// Ends the app's authorization at the platform.
    pub async fn revoke(&self, tokens: &AccountTokens, log: &mut Transcript) -> Result<(), ProviderError> {
        match self {
            Self::Meta(a) => a.revoke(tokens, log).await,
            Self::Tiktok(a) => a.revoke(tokens, log).await,
        }
    }

    /// Publishes (or resumes publishing) one post to the target.
    pub async fn publish(
        &self,
        target: &Target<'_>,
        content: &PostContent<'_>,
        resume: Option<&str>,
        log: &mut Transcript,
    ) -> Result<Publication, ProviderError> {
        self.check_kind(target.kind)?;
        match self {
            Self::Meta(a) => a.publish(target, content, resume, log).await,
            Self::Tiktok(a) => a.publish(target, content, resume, log).await,
        }
    }

    fn check_kind(&self, kind: AccountKind) -> Result<(), ProviderError> {
        if kind.platform() == self.platform() {
            return Ok(());
        }
        Err(ProviderError::Unsupported(format!(
            "a {} account cannot be reached through {}",
            kind.as_str(),
            self.platform().as_str()
        )))
    }
}

/// The URL to send the user's browser to, from the settings alone: sending a browser away
/// needs no HTTP client, so the API, which never calls platforms, can build it.
pub fn authorize_url(
    platform: Platform,
    settings: &Settings,
    redirect_uri: &str,
    state: &str,
) -> Result<String, ProviderError> {
    match platform {
        Platform::Meta => meta::authorize_url(settings, redirect_uri, state),
        Platform::Tiktok => tiktok::authorize_url(settings, redirect_uri, state),
    }
}

/// A base URL from the settings, checked once so that building endpoints from it cannot fail.
fn parse_base(name: &str, text: &str) -> Result<Url, ProviderError> {
    let url = Url::parse(text).map_err(|err| ProviderError::Configuration(format!("{name}: {err}")))?;
    if url.cannot_be_a_base() || !matches!(url.scheme(), "http" | "https") {
        return Err(ProviderError::Configuration(format!("{name} must be an http(s) URL")));
    }
    Ok(url)
}

/// `root` with `segments` appended, each percent-encoded, so that an id from the caller can
/// only ever name a node and never add a path or a query.
fn endpoint(root: &Url, segments: &[&str]) -> Url {
    let mut url = root.clone();
    url.path_segments_mut().expect("base URLs are checked by parse_base").pop_if_empty().extend(segments);
    url
}

/// Whether media is a video, from its URL's extension: the platforms must be told before they
/// fetch it, and the URL is all there is to go by.
fn is_video(url: &str) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    path.ends_with(".mp4") || path.ends_with(".mov")
}

fn expiry(answer: &Answer, field: &str) -> Option<DateTime<Utc>> {
    let lifetime = crate::http::seconds(answer.body.get(field))?;
    Some(Utc::now() + chrono::Duration::seconds(i64::try_from(lifetime.as_secs()).ok()?))
}

enum Body {
    Empty,
    Form(Vec<(&'static str, String)>),
    Json(Value),
}

/// A request kept apart from reqwest's builder until it is sent, so that what was sent can be
/// recorded: a built request no longer shows its form or JSON body.
struct Outgoing {
    method: Method,
    url: Url,
    bearer: Option<String>,
    body: Body,
}

impl Outgoing {
    fn new(method: Method, url: Url) -> Self {
        Self { method, url, bearer: None, body: Body::Empty }
    }

    fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.url.query_pairs_mut().extend_pairs(pairs);
        self
    }

    fn form(mut self, pairs: Vec<(&'static str, String)>) -> Self {
        self.body = Body::Form(pairs);
        self
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Body::Json(body);
        self
    }

    fn bearer(mut self, token: &str) -> Self {
        self.bearer = Some(token.to_owned());
        self
    }
}

/// Sends `outgoing` and records the exchange in `log` whatever happens, the failures most of all.
async fn exchange(
    client: &Client,
    outgoing: Outgoing,
    log: &mut Transcript,
) -> Result<Answer, ProviderError> {
    let Outgoing { method, url, bearer, body } = outgoing;
    client.check_reach(&url)?;
    let mut secrets: Vec<String> = bearer.iter().cloned().collect();
    secrets
        .extend(url.query_pairs().filter(|(name, _)| is_request_secret(name)).map(|(_, v)| v.into_owned()));
    let mut request = client.http.request(method.clone(), url.clone());
    if let Some(token) = &bearer {
        request = request.bearer_auth(token);
    }
    let sent = match body {
        Body::Empty => Value::Null,
        Body::Form(pairs) => {
            request = request.form(&pairs);
            secrets.extend(pairs.iter().filter(|(name, _)| is_request_secret(name)).map(|(_, v)| v.clone()));
            Value::Object(
                pairs.into_iter().map(|(name, value)| (name.to_owned(), Value::String(value))).collect(),
            )
        }
        Body::Json(body) => {
            request = request.json(&body);
            body
        }
    };
    let result = send(request).await;
    secrets.retain(|secret| !secret.is_empty());
    let (status, response) = match &result {
        Ok(answer) => {
            (Some(answer.status.as_u16()), redact(answer.body.clone(), is_response_secret, &secrets))
        }
        Err((_, text)) => (None, Value::String(scrub(text, &secrets))),
    };
    log.0.push(Exchange {
        method: method.as_str().to_owned(),
        url: redact_url(url.as_str(), &secrets),
        request: redact(sent, is_request_secret, &secrets),
        status,
        response,
    });
    result.map_err(|(err, _)| err)
}

/// Like [`Client::send`], but a failure's text never carries the URL: its query may hold a token.
async fn send(request: RequestBuilder) -> Result<Answer, (ProviderError, String)> {
    let failed = |err: reqwest::Error| {
        let err = err.without_url();
        let text = err.to_string();
        let error =
            if err.is_timeout() { ProviderError::Timeout } else { ProviderError::Unavailable(text.clone()) };
        (error, text)
    };
    let response = request.send().await.map_err(failed)?;
    let status = response.status();
    let text = response.text().await.map_err(failed)?;
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok(Answer { status, body })
}

const REDACTED: &str = "[redacted]";

/// Names that carry a secret in what we send. `code` is one there (a login code can be
/// exchanged for tokens) but not in answers, where it is an error code worth reading.
fn is_request_secret(name: &str) -> bool {
    is_response_secret(name) || matches!(name, "code" | "fb_exchange_token")
}

fn is_response_secret(name: &str) -> bool {
    matches!(name, "access_token" | "client_secret" | "refresh_token" | "token" | "input_token")
}

/// `url` with the values of secret query parameters, and any secret seen in the call, blanked.
fn redact_url(url: &str, secrets: &[String]) -> String {
    let Some((address, query)) = url.split_once('?') else {
        return scrub(url, secrets);
    };
    let (query, fragment) = query.split_once('#').map_or((query, None), |(q, f)| (q, Some(f)));
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| {
            let name = pair.split_once('=').map_or(pair, |(name, _)| name);
            if is_request_secret(name) { format!("{name}={REDACTED}") } else { pair.to_owned() }
        })
        .collect();
    let mut redacted = format!("{address}?{}", pairs.join("&"));
    if let Some(fragment) = fragment {
        redacted = format!("{redacted}#{fragment}");
    }
    scrub(&redacted, secrets)
}

/// `value` with every field named by `secret` blanked, URLs in strings redacted (Graph's paging
/// links carry the token) and any secret seen in the call scrubbed wherever it was echoed.
fn redact(value: Value, secret: fn(&str) -> bool, secrets: &[String]) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(name, value)| {
                    let value = if secret(&name) {
                        Value::String(REDACTED.to_owned())
                    } else {
                        redact(value, secret, secrets)
                    };
                    (name, value)
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => {
            Value::Array(items.into_iter().map(|item| redact(item, secret, secrets)).collect())
        }
        Value::String(text) if text.starts_with("http") => Value::String(redact_url(&text, secrets)),
        Value::String(text) => Value::String(scrub(&text, secrets)),
        other => other,
    }
}

fn scrub(text: &str, secrets: &[String]) -> String {
    secrets.iter().fold(text.to_owned(), |text, secret| text.replace(secret.as_str(), REDACTED))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn secrets_are_blanked_in_urls_and_bodies() {
        let secrets = vec!["tok-1".to_owned()];
        assert_eq!(
            redact_url("https://graph.test/v21.0/me?access_token=tok-1&fields=id&code=c%201", &secrets),
            "https://graph.test/v21.0/me?access_token=[redacted]&fields=id&code=[redacted]"
        );
        let body = json!({
            "data": [{ "id": "1", "access_token": "page-token" }],
            "paging": { "next": "https://graph.test/me/accounts?access_token=tok-2&after=x" },
            "echo": "bad token tok-1",
            "error": { "code": 190 },
        });
        assert_eq!(
            redact(body, is_response_secret, &secrets),
            json!({
                "data": [{ "id": "1", "access_token": "[redacted]" }],
                "paging": { "next": "https://graph.test/me/accounts?access_token=[redacted]&after=x" },
                "echo": "bad token [redacted]",
                "error": { "code": 190 },
            })
        );
    }

    #[test]
    fn the_consent_url_needs_no_adapter_but_the_same_settings() {
        let settings = |pairs: &[(&str, &str)]| {
            Settings(pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect())
        };
        let full =
            settings(&[("baseUrl", "http://127.0.0.1:9/meta"), ("clientId", "id"), ("clientSecret", "s")]);
        let providers = crate::Providers::new(Duration::from_secs(1), crate::Reach::Private);
        for platform in [Platform::Meta, Platform::Tiktok] {
            let adapter = providers.social(platform, full.clone()).unwrap();
            assert_eq!(
                authorize_url(platform, &full, "https://ultra.test/cb", "st").unwrap(),
                adapter.authorize_url("https://ultra.test/cb", "st")
            );
            let no_secret = settings(&[("baseUrl", "http://127.0.0.1:9/meta"), ("clientId", "id")]);
            assert!(matches!(
                authorize_url(platform, &no_secret, "https://ultra.test/cb", "st"),
                Err(ProviderError::Configuration(_))
            ));
        }
    }

    #[test]
    fn videos_are_told_by_their_extension() {
        assert!(is_video("https://cdn.test/clip.MP4?sig=1"));
        assert!(is_video("https://cdn.test/clip.mov#t=2"));
        assert!(!is_video("https://cdn.test/photo.jpg?name=x.mp4"));
    }

    #[test]
    fn endpoints_keep_the_base_path_and_encode_ids() {
        let root = parse_base("baseUrl", "http://127.0.0.1:9/meta").unwrap();
        assert_eq!(
            endpoint(&root, &["v21.0", "1/feed?x"]).as_str(),
            "http://127.0.0.1:9/meta/v21.0/1%2Ffeed%3Fx"
        );
        assert!(parse_base("baseUrl", "mailto:a@b.test").is_err());
    }
}
