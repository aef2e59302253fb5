//! Meta's Graph API for Facebook Pages and the Instagram business accounts linked to them,
//! through Facebook Login (providers.md §8).
//!
//! A login yields a user token; each Page the user manages comes with a Page token that does
//! not expire, and that token also publishes to the Page's Instagram account. What lapses, after
//! about 60 days, is the user token, so it is the one a refresh renews and a revoke ends.
//! Tokens travel as the `access_token` parameter, as Graph's own examples send them.

use chrono::{DateTime, Utc};
use reqwest::{Method, Url};
use serde_json::Value;

use super::{
    AccountKind, AccountTokens, Connected, Outgoing, POLL_INTERVAL, POLLS, PostContent, Publication, Target,
    Transcript, endpoint, exchange, expiry, is_video, parse_base,
};
use crate::{
    ProviderError, Settings,
    http::{Answer, Client},
};

const DEFAULT_VERSION: &str = "v21.0";
const SCOPES: &str =
    "pages_show_list,pages_manage_posts,pages_read_engagement,instagram_basic,instagram_content_publish";
/// Graph codes for throttling and passing server trouble: the same call can succeed later.
const TRANSIENT_CODES: [i64; 6] = [1, 2, 4, 17, 32, 341];
/// `me/accounts` pages followed at most, so that a paging loop cannot run forever.
const MAX_LISTING_PAGES: usize = 20;

pub struct Meta {
    client: Client,
    /// `{baseUrl}/{apiVersion}`: every Graph path hangs off it.
    root: Url,
    dialog: Url,
    app_id: String,
    app_secret: String,
}

/// A Page the user manages, with the token that acts as it.
struct Page {
    id: String,
    name: String,
    token: String,
}

impl Meta {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let (root, dialog) = urls(settings)?;
        Ok(Self {
            client,
            root,
            dialog,
            app_id: settings.required("clientId")?,
            app_secret: settings.required("clientSecret")?,
        })
    }

    pub(crate) fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        dialog_url(&self.dialog, &self.app_id, redirect_uri, state)
    }

    pub(crate) async fn connect(
        &self,
        code: &str,
        redirect_uri: &str,
        log: &mut Transcript,
    ) -> Result<Vec<Connected>, ProviderError> {
        let (short, _) = self.user_token(&[("redirect_uri", redirect_uri), ("code", code)], log).await?;
        let (user_token, user_expires) = self.long_lived(&short, log).await?;
        let mut connected = Vec::new();
        for page in self.pages(&user_token, log).await? {
            let tokens = AccountTokens {
                access_token: page.token.clone(),
                access_expires_at: None,
                refresh_token: None,
                refresh_expires_at: None,
                user_token: Some(user_token.clone()),
                user_token_expires_at: user_expires,
                scope: None,
            };
            let instagram = self.instagram_of(&page, log).await?;
            connected.push(Connected {
                kind: AccountKind::FacebookPage,
                external_id: page.id,
                name: page.name,
                tokens: tokens.clone(),
            });
            if let Some((id, username)) = instagram {
                connected.push(Connected {
                    kind: AccountKind::Instagram,
                    external_id: id,
                    name: username,
                    tokens,
                });
            }
        }
        Ok(connected)
    }

    /// Renews the user token. The Page token is kept: it does not expire, and the account's
    /// Page cannot be told apart in `me/accounts` without its id, which a refresh is not given.
    /// Listing the Pages still proves the grant covers some; a user who manages none any more
    /// has to connect again.
    pub(crate) async fn refresh(
        &self,
        tokens: &AccountTokens,
        log: &mut Transcript,
    ) -> Result<AccountTokens, ProviderError> {
        let Some(user_token) = tokens.user_token.as_deref() else {
            return Err(ProviderError::Credentials(
                "no user token to renew: connect the account again".to_owned(),
            ));
        };
        let (user_token, user_expires) = self.long_lived(user_token, log).await?;
        let pages = self.pages(&user_token, log).await?;
        if pages.is_empty() {
            return Err(ProviderError::Credentials("the user no longer manages any Page".to_owned()));
        }
        let access_token = pages
            .into_iter()
            .find(|page| page.token == tokens.access_token)
            .map_or_else(|| tokens.access_token.clone(), |page| page.token);
        Ok(AccountTokens {
            access_token,
            user_token: Some(user_token),
            user_token_expires_at: user_expires,
            ..tokens.clone()
        })
    }

    /// Removing the app's permissions ends every token it holds for the user, Page tokens too.
    pub(crate) async fn revoke(
        &self,
        tokens: &AccountTokens,
        log: &mut Transcript,
    ) -> Result<(), ProviderError> {
        let Some(user_token) = tokens.user_token.as_deref() else {
            return Err(ProviderError::Credentials("no user token to revoke with".to_owned()));
        };
        let request =
            self.request(Method::DELETE, &["me", "permissions"]).query(&[("access_token", user_token)]);
        let answer = self.call(request, log).await?;
        let body = graph(&answer)?;
        if body.get("success").and_then(Value::as_bool) == Some(true) {
            Ok(())
        } else {
            Err(answer.unexpected())
        }
    }

    pub(crate) async fn publish(
        &self,
        target: &Target<'_>,
        content: &PostContent<'_>,
        resume: Option<&str>,
        log: &mut Transcript,
    ) -> Result<Publication, ProviderError> {
        let token = target.tokens.access_token.as_str();
        match target.kind {
            AccountKind::FacebookPage => {
                if resume.is_some() {
                    return Err(ProviderError::Unsupported(
                        "Page posts publish at once: there is nothing to resume".to_owned(),
                    ));
                }
                let mut form = vec![("message", content.text.to_owned())];
                if let Some(link) = content.media_urls.first() {
                    form.push(("link", link.clone()));
                }
                form.push(("access_token", token.to_owned()));
                let request = self.request(Method::POST, &[target.external_id, "feed"]).form(form);
                let answer = self.call(request, log).await?;
                Ok(Publication::Published { post_id: id_of(&answer)? })
            }
            AccountKind::Instagram => {
                let container = match resume {
                    Some(container) => container.to_owned(),
                    None => self.create_container(target.external_id, content, token, log).await?,
                };
                self.finish_container(target.external_id, &container, token, log).await
            }
            AccountKind::Tiktok => Err(ProviderError::Unsupported(
                "TikTok accounts are not published to through Meta".to_owned(),
            )),
        }
    }

    /// Instagram fetches the media from its URL into a container, which is published once
    /// Instagram has it.
    async fn create_container(
        &self,
        ig_user: &str,
        content: &PostContent<'_>,
        token: &str,
        log: &mut Transcript,
    ) -> Result<String, ProviderError> {
        let [media_url] = content.media_urls else {
            return Err(ProviderError::Rejected {
                code: "media_required".to_owned(),
                message: "an Instagram post needs exactly one image or video URL".to_owned(),
            });
        };
        let mut form = if is_video(media_url) {
            vec![("video_url", media_url.clone()), ("media_type", "REELS".to_owned())]
        } else {
            vec![("image_url", media_url.clone())]
        };
        form.push(("caption", content.text.to_owned()));
        form.push(("access_token", token.to_owned()));
        let answer = self.call(self.request(Method::POST, &[ig_user, "media"]).form(form), log).await?;
        id_of(&answer)
    }

    /// Polls the container until Instagram has the media, then publishes it. Once the container
    /// exists, passing trouble answers `Processing` instead of an error, so that the caller
    /// resumes with it rather than creating a second container for the same post.
    async fn finish_container(
        &self,
        ig_user: &str,
        container: &str,
        token: &str,
        log: &mut Transcript,
    ) -> Result<Publication, ProviderError> {
        let processing = || Publication::Processing { handle: container.to_owned() };
        let mut polls = 0;
        loop {
            let request = self
                .request(Method::GET, &[container])
                .query(&[("fields", "status_code,status"), ("access_token", token)]);
            let checked = self.call(request, log).await.and_then(|answer| match graph(&answer) {
                Ok(_) => Ok(answer),
                Err(err) => Err(err),
            });
            let answer = match checked {
                Ok(answer) => answer,
                Err(err) if err.is_transient() => {
                    tracing::warn!(container, error = %err, "Instagram container status unknown; resume later");
                    return Ok(processing());
                }
                Err(err) => return Err(err),
            };
            let status = || answer.str("/status").unwrap_or("no reason given").to_owned();
            match answer.str("/status_code") {
                Some("FINISHED") => break,
                // Published by an earlier call whose answer was lost; Graph names only the container.
                Some("PUBLISHED") => return Ok(Publication::Published { post_id: container.to_owned() }),
                Some("ERROR") => {
                    return Err(ProviderError::Rejected {
                        code: "media_error".to_owned(),
                        message: status(),
                    });
                }
                Some("EXPIRED") => {
                    return Err(ProviderError::Rejected {
                        code: "media_expired".to_owned(),
                        message: status(),
                    });
                }
                _ => {}
            }
            polls += 1;
            if polls >= POLLS {
                return Ok(processing());
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        let form = vec![("creation_id", container.to_owned()), ("access_token", token.to_owned())];
        let request = self.request(Method::POST, &[ig_user, "media_publish"]).form(form);
        match self.call(request, log).await.and_then(|answer| id_of(&answer)) {
            Ok(post_id) => Ok(Publication::Published { post_id }),
            Err(err) if err.is_transient() => {
                tracing::warn!(container, error = %err, "Instagram media_publish unanswered; resume later");
                Ok(processing())
            }
            Err(err) => Err(err),
        }
    }

    /// A user token from `oauth/access_token`, and when it lapses.
    async fn user_token(
        &self,
        grant: &[(&str, &str)],
        log: &mut Transcript,
    ) -> Result<(String, Option<DateTime<Utc>>), ProviderError> {
        let mut query =
            vec![("client_id", self.app_id.as_str()), ("client_secret", self.app_secret.as_str())];
        query.extend_from_slice(grant);
        let answer =
            self.call(self.request(Method::GET, &["oauth", "access_token"]).query(&query), log).await?;
        if !answer.status.is_success() {
            // Here codes 1 and 101 mean our app id or secret is wrong, not that Graph is down.
            let ours = matches!(error_code(&answer), Some(1 | 101)) && answer.status.is_client_error();
            return Err(if ours {
                ProviderError::Credentials(error_message(&answer))
            } else {
                graph_error(&answer)
            });
        }
        let token = answer.str("/access_token").ok_or_else(|| answer.unexpected())?.to_owned();
        Ok((token, expiry(&answer, "expires_in")))
    }

    async fn long_lived(
        &self,
        token: &str,
        log: &mut Transcript,
    ) -> Result<(String, Option<DateTime<Utc>>), ProviderError> {
        self.user_token(&[("grant_type", "fb_exchange_token"), ("fb_exchange_token", token)], log).await
    }

    /// Every Page the user manages that comes with a token to act as it.
    async fn pages(&self, user_token: &str, log: &mut Transcript) -> Result<Vec<Page>, ProviderError> {
        let mut pages = Vec::new();
        let mut request = self
            .request(Method::GET, &["me", "accounts"])
            .query(&[("fields", "id,name,access_token"), ("access_token", user_token)]);
        for _ in 0..MAX_LISTING_PAGES {
            let answer = self.call(request, log).await?;
            let body = graph(&answer)?;
            let listed = body.get("data").and_then(Value::as_array).ok_or_else(|| answer.unexpected())?;
            pages.extend(listed.iter().filter_map(|page| {
                Some(Page {
                    id: page.get("id")?.as_str()?.to_owned(),
                    name: page.get("name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    token: page.get("access_token")?.as_str()?.to_owned(),
                })
            }));
            // Only Graph's own paging links are followed: they carry the user token.
            let next = body
                .pointer("/paging/next")
                .and_then(Value::as_str)
                .and_then(|next| Url::parse(next).ok())
                .filter(|next| next.origin() == self.root.origin());
            let Some(next) = next else { break };
            request = Outgoing::new(Method::GET, next);
        }
        Ok(pages)
    }

    /// The Instagram business account linked to `page`, as its id and username.
    async fn instagram_of(
        &self,
        page: &Page,
        log: &mut Transcript,
    ) -> Result<Option<(String, String)>, ProviderError> {
        let request = self
            .request(Method::GET, &[&page.id])
            .query(&[("fields", "instagram_business_account"), ("access_token", &page.token)]);
        let answer = self.call(request, log).await?;
        let Some(ig_id) = graph(&answer)?.pointer("/instagram_business_account/id").and_then(Value::as_str)
        else {
            return Ok(None);
        };
        let request = self
            .request(Method::GET, &[ig_id])
            .query(&[("fields", "username"), ("access_token", &page.token)]);
        let profile = self.call(request, log).await?;
        let username = graph(&profile)?.get("username").and_then(Value::as_str).unwrap_or(ig_id);
        Ok(Some((ig_id.to_owned(), username.to_owned())))
    }

    fn request(&self, method: Method, segments: &[&str]) -> Outgoing {
        Outgoing::new(method, endpoint(&self.root, segments))
    }

    async fn call(&self, request: Outgoing, log: &mut Transcript) -> Result<Answer, ProviderError> {
        exchange(&self.client, request, log).await
    }
}

/// The login dialog's URL from the settings alone; the secret is checked too, so that a
/// configuration missing it fails before the user consents rather than after.
pub(super) fn authorize_url(
    settings: &Settings,
    redirect_uri: &str,
    state: &str,
) -> Result<String, ProviderError> {
    let (_, dialog) = urls(settings)?;
    let app_id = settings.required("clientId")?;
    settings.required("clientSecret")?;
    Ok(dialog_url(&dialog, &app_id, redirect_uri, state))
}

/// `{baseUrl}/{apiVersion}`, under which every Graph path hangs, and the login dialog.
fn urls(settings: &Settings) -> Result<(Url, Url), ProviderError> {
    let base = settings.base_url()?;
    let auth =
        settings.optional("authUrl").map_or_else(|| base.clone(), |url| url.trim_end_matches('/').to_owned());
    let version = settings.optional("apiVersion").unwrap_or_else(|| DEFAULT_VERSION.to_owned());
    let version = version.trim_matches('/');
    Ok((
        endpoint(&parse_base("baseUrl", &base)?, &[version]),
        endpoint(&parse_base("authUrl", &auth)?, &[version, "dialog", "oauth"]),
    ))
}

fn dialog_url(dialog: &Url, app_id: &str, redirect_uri: &str, state: &str) -> String {
    let mut url = dialog.clone();
    url.query_pairs_mut()
        .append_pair("client_id", app_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("state", state)
        .append_pair("response_type", "code")
        .append_pair("scope", SCOPES);
    url.into()
}

/// The answer's body when Graph accepted the call.
fn graph(answer: &Answer) -> Result<&Value, ProviderError> {
    if answer.status.is_success() { Ok(&answer.body) } else { Err(graph_error(answer)) }
}

fn id_of(answer: &Answer) -> Result<String, ProviderError> {
    let body = graph(answer)?;
    body.get("id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| answer.unexpected())
}

fn error_code(answer: &Answer) -> Option<i64> {
    answer.body.pointer("/error/code").and_then(Value::as_i64)
}

fn error_message(answer: &Answer) -> String {
    answer.str("/error/message").unwrap_or("no message").to_owned()
}

/// Sorts Graph's `{"error": {message, type, code, error_subcode, is_transient}}`.
fn graph_error(answer: &Answer) -> ProviderError {
    let code = error_code(answer);
    let subcode = answer.body.pointer("/error/error_subcode").and_then(Value::as_i64);
    let transient = answer.body.pointer("/error/is_transient").and_then(Value::as_bool) == Some(true);
    let message = error_message(answer);
    if matches!(code, Some(190 | 102)) || matches!(subcode, Some(458 | 463)) {
        return ProviderError::Credentials(message);
    }
    if answer.is_unavailable() || transient || code.is_some_and(|code| TRANSIENT_CODES.contains(&code)) {
        return ProviderError::Unavailable(message);
    }
    match code {
        Some(code) if answer.status.is_client_error() => {
            ProviderError::Rejected { code: code.to_string(), message }
        }
        _ => answer.unexpected(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;

    fn answer(status: u16, body: Value) -> Answer {
        Answer { status: StatusCode::from_u16(status).unwrap(), body }
    }

    fn meta(settings: &[(&str, &str)]) -> Result<Meta, ProviderError> {
        let client =
            Client { http: reqwest::Client::new(), tokens: Arc::default(), reach: crate::Reach::Private };
        let settings = Settings(settings.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect());
        Meta::new(client, &settings)
    }

    #[test]
    fn graph_errors_are_sorted_by_what_the_caller_can_do() {
        let error = |status, body: Value| graph_error(&answer(status, json!({ "error": body })));
        assert!(
            matches!(error(400, json!({ "code": 190, "message": "expired" })), ProviderError::Credentials(m) if m == "expired")
        );
        assert!(matches!(
            error(400, json!({ "code": 100, "error_subcode": 463 })),
            ProviderError::Credentials(_)
        ));
        assert!(matches!(
            error(500, json!({ "code": 2, "is_transient": true })),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(error(400, json!({ "code": 4 })), ProviderError::Unavailable(_)));
        assert!(matches!(
            error(400, json!({ "code": 17, "is_transient": false })),
            ProviderError::Unavailable(_)
        ));
        assert!(matches!(
            error(400, json!({ "code": 368, "message": "abusive" })),
            ProviderError::Rejected { code, .. } if code == "368"
        ));
    }

    #[test]
    fn the_dialog_url_carries_the_app_and_the_scopes() {
        let meta = meta(&[
            ("baseUrl", "https://graph.facebook.com/"),
            ("authUrl", "https://www.facebook.com"),
            ("clientId", "app 1"),
            ("clientSecret", "secret"),
        ])
        .unwrap();
        let url = meta.authorize_url("https://ultra.test/cb?x=1", "s&1");
        assert!(url.starts_with("https://www.facebook.com/v21.0/dialog/oauth?client_id=app+1&"), "{url}");
        let url = Url::parse(&url).unwrap();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert!(pairs.contains(&("redirect_uri".to_owned(), "https://ultra.test/cb?x=1".to_owned())));
        assert!(pairs.contains(&("state".to_owned(), "s&1".to_owned())));
        assert!(pairs.contains(&("scope".to_owned(), SCOPES.to_owned())));
        assert_eq!(meta.root.as_str(), "https://graph.facebook.com/v21.0");
    }

    #[test]
    fn missing_settings_are_configuration_errors() {
        assert!(matches!(meta(&[("baseUrl", "https://graph.test")]), Err(ProviderError::Configuration(_))));
        let sandbox = meta(&[
            ("baseUrl", "http://127.0.0.1:9/meta"),
            ("clientId", "id"),
            ("clientSecret", "secret"),
            ("apiVersion", "v19.0"),
        ])
        .unwrap();
        assert_eq!(sandbox.dialog.as_str(), "http://127.0.0.1:9/meta/v19.0/dialog/oauth");
    }
}
