//! TikTok's Login Kit and Content Posting API (providers.md §8) under `/tiktok`, which stands for
//! both `https://www.tiktok.com` (the authorize page) and `https://open.tiktokapis.com`, so that
//! an adapter's two base URLs are the same `http://<sandbox>/tiktok`.
//!
//! The client key and secret are the sandbox's client id and secret. The simulated creator
//! consents at once. Refresh tokens rotate (§8): each refresh returns a new one and retires the
//! old, so that a client which keeps only its first refresh token is caught out here. The
//! OAuth endpoints answer with TikTok's flat `{error, error_description, log_id}`; the posting
//! endpoints always carry the `{error: {code, message, log_id}}` envelope, `code: "ok"` on
//! success. Only `PULL_FROM_URL` uploads are simulated. Test markers in a post's title or video
//! URL choose its fate (see `social`).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{
    Body, IntoResponse, Request, Response, Route, get, handler,
    http::StatusCode,
    post,
    web::{Data, Form, Query},
};
use serde_json::{Value, json};

use crate::{
    app::App,
    ids,
    social::{self, Post, Posts, Refusal},
    tokens::bearer,
    wire::{self, Reply},
};

const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The 2026 lifetimes (§8): two hours, and 180 days for the refresh token.
const ACCESS_LIFETIME: Duration = Duration::from_secs(7200);
const REFRESH_LIFETIME: Duration = Duration::from_secs(15_552_000);
/// What `creator_info` offers. TikTok makes an unaudited app's posts private whatever it asks
/// (§8); the sandbox treats every app as audited.
const PRIVACY_LEVELS: [&str; 4] =
    ["PUBLIC_TO_EVERYONE", "MUTUAL_FOLLOW_FRIENDS", "FOLLOWER_OF_CREATOR", "SELF_ONLY"];
const TITLE_LIMIT: usize = 2200;

pub fn routes(route: Route) -> Route {
    route
        .at("/tiktok/v2/auth/authorize/", get(authorize))
        .at("/tiktok/v2/oauth/token/", post(issue_token))
        .at("/tiktok/v2/oauth/revoke/", post(revoke))
        .at("/tiktok/v2/post/publish/creator_info/query/", post(creator_info))
        .at("/tiktok/v2/post/publish/video/init/", post(video_init))
        .at("/tiktok/v2/post/publish/status/fetch/", post(status_fetch))
}

/// Everything TikTok knows about the simulated creator and their posts.
pub struct Creator {
    open_id: String,
    codes: HashMap<String, Grant>,
    access_tokens: HashMap<String, Instant>,
    refresh_tokens: HashMap<String, Session>,
    publishes: HashMap<String, Publish>,
    pub posts: Posts,
}

impl Default for Creator {
    fn default() -> Self {
        Self {
            open_id: format!("-000{}", ids::token(28)),
            codes: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            publishes: HashMap::new(),
            posts: Posts::default(),
        }
    }
}

/// A code, bound to the redirect URI it was sent to and the scopes granted.
struct Grant {
    redirect_uri: String,
    scope: String,
    expires: Instant,
}

/// What a refresh token renews.
struct Session {
    scope: String,
    expires: Instant,
}

/// A post being pulled from its URL: the first status fetch always finds it downloading.
struct Publish {
    video_url: String,
    fetched: bool,
    post_id: String,
}

impl Publish {
    fn status(&self) -> &'static str {
        match self.fetched {
            false => "PROCESSING_DOWNLOAD",
            true if social::media_fails(&self.video_url) => "FAILED",
            true => "PUBLISH_COMPLETE",
        }
    }
}

type Params = HashMap<String, String>;

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
}

/// The authorize page: the creator consents at once and the browser goes back to the app.
#[handler]
fn authorize(Query(params): Query<Params>, Data(app): Data<&Arc<App>>) -> Response {
    let refuse = |message: &'static str| Response::builder().status(StatusCode::BAD_REQUEST).body(message);
    if param(&params, "client_key") != Some(app.config.client_id.as_str()) {
        return refuse("client_key: this app is not registered");
    }
    let Some(redirect_uri) = param(&params, "redirect_uri") else {
        return refuse("redirect_uri is required");
    };
    if param(&params, "response_type") != Some("code") {
        return refuse("response_type must be code");
    }
    let code = ids::token(64);
    let scope = param(&params, "scope").unwrap_or("user.info.basic");
    let grant = Grant {
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        expires: Instant::now() + CODE_LIFETIME,
    };
    app.tiktok().codes.insert(code.clone(), grant);
    let state = param(&params, "state").unwrap_or_default();
    let location =
        social::redirect_with(redirect_uri, &[("code", &code), ("scopes", scope), ("state", state)]);
    Response::builder().status(StatusCode::FOUND).header("Location", location).finish()
}

#[handler]
fn issue_token(form: poem::Result<Form<Params>>, Data(app): Data<&Arc<App>>) -> Reply {
    let Ok(Form(form)) = form else {
        return oauth_error("invalid_request", "The body must be application/x-www-form-urlencoded.");
    };
    if param(&form, "client_key") != Some(app.config.client_id.as_str())
        || param(&form, "client_secret") != Some(app.config.client_secret.as_str())
    {
        return oauth_error("invalid_client", "Client key or secret is incorrect.");
    }
    let mut creator = app.tiktok();
    let scope = match param(&form, "grant_type") {
        Some("authorization_code") => {
            let Some(grant) = param(&form, "code").and_then(|code| creator.codes.remove(code)) else {
                return oauth_error("invalid_grant", "Authorization code is expired.");
            };
            if grant.expires <= Instant::now() {
                return oauth_error("invalid_grant", "Authorization code is expired.");
            }
            if param(&form, "redirect_uri") != Some(grant.redirect_uri.as_str()) {
                return oauth_error(
                    "invalid_request",
                    "The redirect_uri does not match the authorization request.",
                );
            }
            grant.scope
        }
        Some("refresh_token") => {
            let Some(session) =
                param(&form, "refresh_token").and_then(|token| creator.refresh_tokens.remove(token))
            else {
                return oauth_error("invalid_grant", "Refresh token is invalid or expired.");
            };
            if session.expires <= Instant::now() {
                return oauth_error("invalid_grant", "Refresh token is invalid or expired.");
            }
            session.scope
        }
        _ => {
            return oauth_error(
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token.",
            );
        }
    };
    let access_token = format!("act.{}", ids::token(60));
    let refresh_token = format!("rft.{}", ids::token(60));
    creator.access_tokens.insert(access_token.clone(), Instant::now() + ACCESS_LIFETIME);
    let session = Session { scope: scope.clone(), expires: Instant::now() + REFRESH_LIFETIME };
    creator.refresh_tokens.insert(refresh_token.clone(), session);
    wire::json(
        StatusCode::OK,
        json!({
            "open_id": creator.open_id,
            "scope": scope,
            "access_token": access_token,
            "expires_in": ACCESS_LIFETIME.as_secs(),
            "refresh_token": refresh_token,
            "refresh_expires_in": REFRESH_LIFETIME.as_secs(),
            "token_type": "Bearer",
        }),
    )
}

/// Revoking ends the creator's authorization of the app: every access and refresh token goes.
#[handler]
fn revoke(form: poem::Result<Form<Params>>, Data(app): Data<&Arc<App>>) -> Response {
    let Ok(Form(form)) = form else {
        return oauth_error("invalid_request", "The body must be application/x-www-form-urlencoded.")
            .into_response();
    };
    if param(&form, "client_key") != Some(app.config.client_id.as_str())
        || param(&form, "client_secret") != Some(app.config.client_secret.as_str())
    {
        return oauth_error("invalid_client", "Client key or secret is incorrect.").into_response();
    }
    let mut creator = app.tiktok();
    if !param(&form, "token").is_some_and(|token| creator.access_tokens.contains_key(token)) {
        return oauth_error("invalid_request", "The token is invalid.").into_response();
    }
    creator.revoke_all();
    Response::builder().status(StatusCode::OK).finish()
}

#[handler]
fn creator_info(req: &Request, Data(app): Data<&Arc<App>>) -> Reply {
    let creator = app.tiktok();
    if let Err(refusal) = creator.authenticate(req) {
        return refusal;
    }
    ok(json!({
        "creator_avatar_url": "https://p16-sign.tiktokcdn.com/sandbox-avatar.jpeg",
        "creator_username": "ultra.sandbox",
        "creator_nickname": "Ultra Sandbox",
        "privacy_level_options": PRIVACY_LEVELS,
        "comment_disabled": false,
        "duet_disabled": false,
        "stitch_disabled": true,
        "max_video_post_duration_sec": 600,
    }))
}

#[handler]
async fn video_init(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    let Some(body) = wire::json_body(body).await.filter(Value::is_object) else {
        return invalid_params("The request body must be a JSON object.");
    };
    let mut creator = app.tiktok();
    if let Err(refusal) = creator.authenticate(req) {
        return refusal;
    }
    let post_info = &body["post_info"];
    let title = post_info["title"].as_str().unwrap_or_default();
    if title.chars().count() > TITLE_LIMIT {
        return invalid_params("post_info.title is longer than 2200 characters.");
    }
    if !post_info["privacy_level"].as_str().is_some_and(|level| PRIVACY_LEVELS.contains(&level)) {
        return invalid_params(
            "post_info.privacy_level must be one of creator_info's privacy_level_options.",
        );
    }
    let source_info = &body["source_info"];
    if source_info["source"] != "PULL_FROM_URL" {
        return invalid_params("The sandbox only simulates source_info.source PULL_FROM_URL.");
    }
    let Some(video_url) = source_info["video_url"].as_str().filter(|url| url.starts_with("http")) else {
        return invalid_params("source_info.video_url must be a public URL.");
    };
    match creator.posts.screen(title) {
        Err(Refusal::Transient) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "Something went wrong. Please retry.",
            );
        }
        Err(Refusal::Abusive) => {
            return error(
                StatusCode::FORBIDDEN,
                "spam_risk_too_many_posts",
                "The daily post cap from the API is reached for the current user.",
            );
        }
        Ok(()) => {}
    }
    let publish_id = format!("v_pub_url~v2-1.{}", ids::digits(19));
    let post_id = ids::digits(19);
    let mut post = Post::new("tiktok", post_id.clone(), creator.open_id.clone(), title.to_owned());
    post.media_url = Some(video_url.to_owned());
    creator.posts.record(post);
    creator
        .publishes
        .insert(publish_id.clone(), Publish { video_url: video_url.to_owned(), fetched: false, post_id });
    ok(json!({ "publish_id": publish_id }))
}

#[handler]
async fn status_fetch(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    let body = wire::json_body(body).await.unwrap_or_default();
    let mut creator = app.tiktok();
    if let Err(refusal) = creator.authenticate(req) {
        return refusal;
    }
    let Some(publish_id) = body["publish_id"].as_str() else {
        return invalid_params("publish_id is required.");
    };
    let Some(publish) = creator.publishes.get_mut(publish_id) else {
        return invalid_params("publish_id does not exist.");
    };
    let status = publish.status();
    publish.fetched = true;
    let post_id = publish.post_id.clone();
    let mut data = json!({ "status": status });
    match status {
        "PUBLISH_COMPLETE" => {
            // TikTok's own spelling.
            data["publicaly_available_post_id"] = json!([post_id]);
            if let Some(post) = creator.posts.by_id(&post_id) {
                post.published = true;
            }
        }
        "FAILED" => data["fail_reason"] = json!("video_pull_failed"),
        _ => {}
    }
    ok(data)
}

impl Creator {
    /// Ends every access and refresh token issued so far, as removing the app in the creator's
    /// TikTok settings does; answers how many there were.
    pub fn revoke_all(&mut self) -> usize {
        let revoked = self.access_tokens.len() + self.refresh_tokens.len();
        self.access_tokens.clear();
        self.refresh_tokens.clear();
        revoked
    }

    fn authenticate(&self, req: &Request) -> Result<(), Reply> {
        let live = bearer(req.header("authorization"))
            .and_then(|token| self.access_tokens.get(token))
            .is_some_and(|expires| *expires > Instant::now());
        if live {
            Ok(())
        } else {
            Err(error(
                StatusCode::UNAUTHORIZED,
                "access_token_invalid",
                "The access token is invalid or not found in the request.",
            ))
        }
    }
}

fn ok(data: Value) -> Reply {
    wire::json(
        StatusCode::OK,
        json!({ "data": data, "error": { "code": "ok", "message": "", "log_id": log_id() } }),
    )
}

fn invalid_params(message: &str) -> Reply {
    error(StatusCode::BAD_REQUEST, "invalid_params", message)
}

fn error(status: StatusCode, code: &str, message: &str) -> Reply {
    wire::json(
        status,
        json!({ "data": {}, "error": { "code": code, "message": message, "log_id": log_id() } }),
    )
}

fn oauth_error(error: &str, description: &str) -> Reply {
    wire::json(
        StatusCode::BAD_REQUEST,
        json!({ "error": error, "error_description": description, "log_id": log_id() }),
    )
}

/// TikTok's `log_id`: the UTC time to the second and random hex, e.g. `202406190937351D0F...`.
fn log_id() -> String {
    format!("{}{}", chrono::Utc::now().format("%Y%m%d%H%M%S"), ids::hex_token(10).to_ascii_uppercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoking_everything_ends_access_and_refresh_tokens() {
        let mut creator = Creator::default();
        let later = Instant::now() + ACCESS_LIFETIME;
        creator.access_tokens.insert("act.1".to_owned(), later);
        creator.refresh_tokens.insert("rft.1".to_owned(), Session { scope: String::new(), expires: later });
        assert_eq!(creator.revoke_all(), 2);
        assert!(creator.access_tokens.is_empty() && creator.refresh_tokens.is_empty());
    }

    #[test]
    fn a_pulled_video_downloads_before_it_completes_or_fails() {
        let mut publish = Publish {
            video_url: "https://cdn.test/a.mp4".to_owned(),
            fetched: false,
            post_id: String::new(),
        };
        assert_eq!(publish.status(), "PROCESSING_DOWNLOAD");
        publish.fetched = true;
        assert_eq!(publish.status(), "PUBLISH_COMPLETE");
        publish.video_url = "https://cdn.test/fail.mp4".to_owned();
        assert_eq!(publish.status(), "FAILED");
    }
}
