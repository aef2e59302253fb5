//! TikTok's Login Kit and Content Posting API (providers.md §8): direct posts of a video TikTok
//! pulls from a public URL.
//!
//! Access tokens last hours and refresh tokens rotate, so the refresh token a refresh returns
//! must replace the stored one: the old one is refused from then on. The OAuth endpoints answer
//! errors flat (`{error, error_description}`), the posting endpoints inside an envelope
//! (`{error: {code, message, log_id}}`) whose `code` is `"ok"` on success.

use reqwest::{Method, StatusCode, Url};
use serde_json::{Value, json};

use super::{
    AccountKind, AccountTokens, Connected, Outgoing, POLL_INTERVAL, POLLS, PostContent, Publication, Target,
    Transcript, endpoint, exchange, expiry, is_video, parse_base,
};
use crate::{
    ProviderError, Settings,
    http::{Answer, Client},
};

const SCOPES: &str = "user.info.basic,video.publish,video.upload";
/// Privacy levels by preference; an unaudited app is only offered `SELF_ONLY`.
const PREFERRED_PRIVACY: [&str; 2] = ["PUBLIC_TO_EVERYONE", "SELF_ONLY"];

pub struct Tiktok {
    client: Client,
    root: Url,
    authorize: Url,
    client_key: String,
    client_secret: String,
}

impl Tiktok {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let (root, authorize) = urls(settings)?;
        Ok(Self {
            client,
            root,
            authorize,
            client_key: settings.required("clientId")?,
            client_secret: settings.required("clientSecret")?,
        })
    }

    pub(crate) fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        authorize_page(&self.authorize, &self.client_key, redirect_uri, state)
    }

    pub(crate) async fn connect(
        &self,
        code: &str,
        redirect_uri: &str,
        log: &mut Transcript,
    ) -> Result<Vec<Connected>, ProviderError> {
        let grant = vec![
            ("code", code.to_owned()),
            ("grant_type", "authorization_code".to_owned()),
            ("redirect_uri", redirect_uri.to_owned()),
        ];
        let answer = self.token(grant, log).await?;
        let open_id = answer.str("/open_id").ok_or_else(|| answer.unexpected())?.to_owned();
        let tokens = tokens_from(&answer, None)?;
        // The name only labels the account; a creator whose details cannot be read yet is still
        // connected.
        let name = match self.creator_info(&tokens.access_token, log).await {
            Ok(info) => info.get("creator_username").and_then(Value::as_str).map(str::to_owned),
            Err(err) => {
                tracing::warn!(error = %err, "TikTok creator_info failed; naming the account by its open_id");
                None
            }
        };
        let name = name.filter(|name| !name.is_empty()).unwrap_or_else(|| open_id.clone());
        Ok(vec![Connected { kind: AccountKind::Tiktok, external_id: open_id, name, tokens }])
    }

    pub(crate) async fn refresh(
        &self,
        tokens: &AccountTokens,
        log: &mut Transcript,
    ) -> Result<AccountTokens, ProviderError> {
        let Some(refresh_token) = tokens.refresh_token.as_deref() else {
            return Err(ProviderError::Credentials("no refresh token: connect the account again".to_owned()));
        };
        let grant =
            vec![("grant_type", "refresh_token".to_owned()), ("refresh_token", refresh_token.to_owned())];
        let answer = self.token(grant, log).await?;
        let mut renewed = tokens_from(&answer, Some(tokens))?;
        if renewed.scope.is_none() {
            renewed.scope.clone_from(&tokens.scope);
        }
        Ok(renewed)
    }

    /// Revoking ends the creator's whole authorization of the app, refresh tokens included.
    pub(crate) async fn revoke(
        &self,
        tokens: &AccountTokens,
        log: &mut Transcript,
    ) -> Result<(), ProviderError> {
        let form = vec![
            ("client_key", self.client_key.clone()),
            ("client_secret", self.client_secret.clone()),
            ("token", tokens.access_token.clone()),
        ];
        let answer =
            self.call(self.request(Method::POST, &["v2", "oauth", "revoke", ""]).form(form), log).await?;
        oauth_check(&answer)
    }

    pub(crate) async fn publish(
        &self,
        target: &Target<'_>,
        content: &PostContent<'_>,
        resume: Option<&str>,
        log: &mut Transcript,
    ) -> Result<Publication, ProviderError> {
        let [video_url] = content.media_urls else {
            return Err(video_required());
        };
        if !is_video(video_url) {
            return Err(video_required());
        }
        let token = target.tokens.access_token.as_str();
        let publish_id = match resume {
            Some(publish_id) => publish_id.to_owned(),
            None => self.init(content.text, video_url, token, log).await?,
        };
        self.await_publish(&publish_id, token, log).await
    }

    /// Starts a direct post that TikTok pulls from `video_url`, at the most public privacy
    /// level the creator is offered: TikTok refuses any level `creator_info` did not list.
    async fn init(
        &self,
        title: &str,
        video_url: &str,
        token: &str,
        log: &mut Transcript,
    ) -> Result<String, ProviderError> {
        let info = self.creator_info(token, log).await?;
        let offered: Vec<&str> = info
            .get("privacy_level_options")
            .and_then(Value::as_array)
            .map(|options| options.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let privacy = PREFERRED_PRIVACY
            .into_iter()
            .find(|level| offered.contains(level))
            .or_else(|| offered.first().copied())
            .ok_or_else(|| ProviderError::Protocol("creator_info offered no privacy level".to_owned()))?;
        let body = json!({
            "post_info": {
                "title": title,
                "privacy_level": privacy,
                "disable_duet": false,
                "disable_comment": false,
                "disable_stitch": false,
            },
            "source_info": { "source": "PULL_FROM_URL", "video_url": video_url },
        });
        let request = self
            .request(Method::POST, &["v2", "post", "publish", "video", "init", ""])
            .bearer(token)
            .json(body);
        let answer = self.call(request, log).await?;
        let data = posting(&answer)?;
        data.get("publish_id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| answer.unexpected())
    }

    /// Polls the post until TikTok has it. Once the post exists, passing trouble answers
    /// `Processing` instead of an error, so that the caller resumes with it rather than posting
    /// the video a second time.
    async fn await_publish(
        &self,
        publish_id: &str,
        token: &str,
        log: &mut Transcript,
    ) -> Result<Publication, ProviderError> {
        let processing = || Publication::Processing { handle: publish_id.to_owned() };
        for poll in 1..=POLLS {
            let request = self
                .request(Method::POST, &["v2", "post", "publish", "status", "fetch", ""])
                .bearer(token)
                .json(json!({ "publish_id": publish_id }));
            let answer = match self.call(request, log).await {
                Ok(answer) => answer,
                Err(err) if err.is_transient() => return Ok(later(processing(), &err)),
                Err(err) => return Err(err),
            };
            let data = match posting(&answer) {
                Ok(data) => data,
                Err(err) if err.is_transient() => return Ok(later(processing(), &err)),
                Err(err) => return Err(err),
            };
            match data.get("status").and_then(Value::as_str) {
                Some("PUBLISH_COMPLETE") => {
                    // TikTok's own spelling; the ids only appear once the post passed moderation.
                    let post_id = data
                        .pointer("/publicaly_available_post_id/0")
                        .and_then(|id| match id {
                            Value::String(id) => Some(id.clone()),
                            Value::Number(id) => Some(id.to_string()),
                            _ => None,
                        })
                        .unwrap_or_else(|| publish_id.to_owned());
                    return Ok(Publication::Published { post_id });
                }
                Some("FAILED") => {
                    let reason = data.get("fail_reason").and_then(Value::as_str).filter(|r| !r.is_empty());
                    return Err(ProviderError::Rejected {
                        code: reason.unwrap_or("failed").to_owned(),
                        message: format!(
                            "TikTok could not publish the video: {}",
                            reason.unwrap_or("no reason given")
                        ),
                    });
                }
                _ => {}
            }
            if poll < POLLS {
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        Ok(processing())
    }

    /// What the creator may post: privacy levels on offer, and their username.
    async fn creator_info(&self, token: &str, log: &mut Transcript) -> Result<Value, ProviderError> {
        let request = self
            .request(Method::POST, &["v2", "post", "publish", "creator_info", "query", ""])
            .bearer(token)
            .json(json!({}));
        let answer = self.call(request, log).await?;
        posting(&answer).cloned()
    }

    async fn token(
        &self,
        grant: Vec<(&'static str, String)>,
        log: &mut Transcript,
    ) -> Result<Answer, ProviderError> {
        let mut form =
            vec![("client_key", self.client_key.clone()), ("client_secret", self.client_secret.clone())];
        form.extend(grant);
        let answer =
            self.call(self.request(Method::POST, &["v2", "oauth", "token", ""]).form(form), log).await?;
        oauth_check(&answer)?;
        Ok(answer)
    }

    fn request(&self, method: Method, segments: &[&str]) -> Outgoing {
        Outgoing::new(method, endpoint(&self.root, segments))
    }

    async fn call(&self, request: Outgoing, log: &mut Transcript) -> Result<Answer, ProviderError> {
        exchange(&self.client, request, log).await
    }
}

/// The authorize page's URL from the settings alone; the secret is checked too, so that a
/// configuration missing it fails before the creator consents rather than after.
pub(super) fn authorize_url(
    settings: &Settings,
    redirect_uri: &str,
    state: &str,
) -> Result<String, ProviderError> {
    let (_, authorize) = urls(settings)?;
    let client_key = settings.required("clientId")?;
    settings.required("clientSecret")?;
    Ok(authorize_page(&authorize, &client_key, redirect_uri, state))
}

/// The open API's root and the authorize page, whose trailing slash TikTok requires.
fn urls(settings: &Settings) -> Result<(Url, Url), ProviderError> {
    let base = settings.base_url()?;
    let auth =
        settings.optional("authUrl").map_or_else(|| base.clone(), |url| url.trim_end_matches('/').to_owned());
    Ok((
        parse_base("baseUrl", &base)?,
        endpoint(&parse_base("authUrl", &auth)?, &["v2", "auth", "authorize", ""]),
    ))
}

fn authorize_page(authorize: &Url, client_key: &str, redirect_uri: &str, state: &str) -> String {
    let mut url = authorize.clone();
    url.query_pairs_mut()
        .append_pair("client_key", client_key)
        .append_pair("scope", SCOPES)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state);
    url.into()
}

fn later(processing: Publication, err: &ProviderError) -> Publication {
    tracing::warn!(error = %err, "TikTok post status unknown; resume later");
    processing
}

fn video_required() -> ProviderError {
    ProviderError::Rejected {
        code: "video_required".to_owned(),
        message: "a TikTok post needs exactly one video URL (.mp4 or .mov)".to_owned(),
    }
}

/// The tokens in a token endpoint's answer; `previous` supplies what a refresh left unsaid.
fn tokens_from(answer: &Answer, previous: Option<&AccountTokens>) -> Result<AccountTokens, ProviderError> {
    let access_token = answer.str("/access_token").ok_or_else(|| answer.unexpected())?.to_owned();
    let (refresh_token, refresh_expires_at) = match answer.str("/refresh_token") {
        Some(token) => (Some(token.to_owned()), expiry(answer, "refresh_expires_in")),
        None => previous.map_or((None, None), |old| (old.refresh_token.clone(), old.refresh_expires_at)),
    };
    Ok(AccountTokens {
        access_token,
        access_expires_at: expiry(answer, "expires_in"),
        refresh_token,
        refresh_expires_at,
        user_token: None,
        user_token_expires_at: None,
        scope: answer.str("/scope").map(str::to_owned),
    })
}

/// Sorts the OAuth endpoints' flat `{error, error_description}`, which may come with any status.
fn oauth_check(answer: &Answer) -> Result<(), ProviderError> {
    if answer.is_unavailable() {
        return Err(ProviderError::Unavailable(
            answer
                .str("/error_description")
                .map_or_else(|| format!("HTTP {}", answer.status.as_u16()), str::to_owned),
        ));
    }
    let error = answer.str("/error").filter(|error| !error.is_empty());
    let message = || answer.str("/error_description").or(error).unwrap_or("refused").to_owned();
    match error {
        Some("invalid_grant" | "invalid_client") => Err(ProviderError::Credentials(message())),
        Some(code) => Err(ProviderError::Rejected { code: code.to_owned(), message: message() }),
        None if answer.status == StatusCode::UNAUTHORIZED => Err(ProviderError::Credentials(message())),
        None if answer.status.is_success() => Ok(()),
        None => Err(answer.unexpected()),
    }
}

/// The `data` of a posting endpoint's answer, when its envelope says `ok`.
fn posting(answer: &Answer) -> Result<&Value, ProviderError> {
    let code = answer.str("/error/code");
    if code == Some("ok") && answer.status.is_success() {
        return Ok(answer.body.get("data").unwrap_or(&Value::Null));
    }
    let message =
        answer.str("/error/message").filter(|m| !m.is_empty()).or(code).unwrap_or("no message").to_owned();
    if answer.status == StatusCode::UNAUTHORIZED
        || matches!(code, Some("access_token_invalid" | "scope_not_authorized"))
    {
        return Err(ProviderError::Credentials(message));
    }
    if answer.is_unavailable() || matches!(code, Some("rate_limit_exceeded" | "internal_error")) {
        return Err(ProviderError::Unavailable(message));
    }
    match code {
        Some(code) => Err(ProviderError::Rejected { code: code.to_owned(), message }),
        None => Err(answer.unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn answer(status: u16, body: Value) -> Answer {
        Answer { status: StatusCode::from_u16(status).unwrap(), body }
    }

    #[test]
    fn the_authorize_url_keeps_tiktoks_trailing_slash() {
        let client =
            Client { http: reqwest::Client::new(), tokens: Arc::default(), reach: crate::Reach::Private };
        let settings = Settings(
            [
                ("baseUrl", "https://open.tiktokapis.com"),
                ("authUrl", "https://www.tiktok.com/"),
                ("clientId", "key"),
                ("clientSecret", "secret"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        );
        let tiktok = Tiktok::new(client, &settings).unwrap();
        assert_eq!(
            tiktok.authorize_url("https://ultra.test/cb", "s1"),
            "https://www.tiktok.com/v2/auth/authorize/?client_key=key&scope=user.info.basic%2Cvideo.publish%2C\
             video.upload&response_type=code&redirect_uri=https%3A%2F%2Fultra.test%2Fcb&state=s1"
        );
        assert_eq!(
            endpoint(&tiktok.root, &["v2", "oauth", "token", ""]).as_str(),
            "https://open.tiktokapis.com/v2/oauth/token/"
        );
    }

    #[test]
    fn oauth_and_posting_errors_are_sorted() {
        let oauth =
            |error: &str| oauth_check(&answer(400, json!({ "error": error, "error_description": "d" })));
        assert!(matches!(oauth("invalid_grant"), Err(ProviderError::Credentials(_))));
        assert!(matches!(oauth("invalid_client"), Err(ProviderError::Credentials(_))));
        assert!(
            matches!(oauth("invalid_request"), Err(ProviderError::Rejected { code, .. }) if code == "invalid_request")
        );
        assert!(oauth_check(&answer(200, Value::Null)).is_ok());

        let post = |status, code: &str| {
            posting(&answer(status, json!({ "error": { "code": code, "message": "m" } }))).err()
        };
        assert!(posting(&answer(200, json!({ "data": { "a": 1 }, "error": { "code": "ok" } }))).is_ok());
        assert!(matches!(post(401, "access_token_invalid"), Some(ProviderError::Credentials(_))));
        assert!(matches!(post(403, "scope_not_authorized"), Some(ProviderError::Credentials(_))));
        assert!(matches!(post(429, "rate_limit_exceeded"), Some(ProviderError::Unavailable(_))));
        assert!(matches!(post(500, "internal_error"), Some(ProviderError::Unavailable(_))));
        assert!(matches!(
            post(403, "spam_risk_too_many_posts"),
            Some(ProviderError::Rejected { code, .. }) if code == "spam_risk_too_many_posts"
        ));
    }

    #[test]
    fn a_refresh_keeps_what_the_answer_leaves_out() {
        let old = AccountTokens {
            access_token: "a1".to_owned(),
            access_expires_at: None,
            refresh_token: Some("r1".to_owned()),
            refresh_expires_at: None,
            user_token: None,
            user_token_expires_at: None,
            scope: Some("video.publish".to_owned()),
        };
        let rotated = tokens_from(
            &answer(200, json!({ "access_token": "a2", "expires_in": 7200, "refresh_token": "r2" })),
            Some(&old),
        )
        .unwrap();
        assert_eq!(rotated.refresh_token.as_deref(), Some("r2"));
        assert!(rotated.access_expires_at.is_some());
        let kept = tokens_from(&answer(200, json!({ "access_token": "a3" })), Some(&old)).unwrap();
        assert_eq!(kept.refresh_token.as_deref(), Some("r1"));
    }
}
