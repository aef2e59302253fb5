//! Meta's login dialog and Graph API for Facebook Pages and Instagram (providers.md §8) under
//! `/meta`, which stands for both `https://www.facebook.com` and `https://graph.facebook.com`, so
//! that an adapter's two base URLs are the same `http://<sandbox>/meta`. Any `v{N}` version
//! prefix is accepted, and none.
//!
//! The app id and secret are the sandbox's client id and secret. The simulated user consents at
//! once and manages one Page with one Instagram business account. Graph takes its parameters
//! from the query string or a form body alike, and the access token from either or from
//! `Authorization: Bearer`. Every refusal is Graph's error envelope; test markers in a post's
//! text or media URL choose its fate (see `social`).

use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use poem::{
    IntoResponse, Request, Response, Route, handler,
    http::{Method, StatusCode},
    web::{Data, Form, Query},
};
use serde_json::json;

use crate::{
    app::App,
    ids,
    social::{self, Post, Posts, Refusal},
    tokens::bearer,
    wire::{self, Reply},
};

/// Login codes are short-lived and good for one exchange.
const CODE_LIFETIME: Duration = Duration::from_secs(600);
const SHORT_LIVED: Duration = Duration::from_secs(3600);
/// About 60 days (§8, long-lived user token).
const LONG_LIVED: Duration = Duration::from_secs(5_184_000);
const CAPTION_LIMIT: usize = 2200;
const HASHTAG_LIMIT: usize = 30;
const PAGE_NAME: &str = "Ultra Sandbox Page";
const PAGE_CATEGORY: &str = "Financial Service";
const USER_NAME: &str = "Ultra Sandbox User";

pub fn routes(route: Route) -> Route {
    route.at("/meta/*path", serve_graph)
}

/// Everything Meta knows about the simulated user and what was posted on their behalf.
pub struct Graph {
    user_id: String,
    page_id: String,
    ig_user_id: String,
    codes: HashMap<String, Grant>,
    tokens: HashMap<String, Token>,
    containers: HashMap<String, Container>,
    pub posts: Posts,
}

impl Default for Graph {
    fn default() -> Self {
        Self {
            user_id: ids::digits(15),
            page_id: ids::digits(15),
            ig_user_id: format!("1784{}", ids::digits(13)),
            codes: HashMap::new(),
            tokens: HashMap::new(),
            containers: HashMap::new(),
            posts: Posts::default(),
        }
    }
}

/// A login code, bound to the redirect URI it was sent to: the exchange must repeat it.
struct Grant {
    redirect_uri: String,
    expires: Instant,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    User,
    Page,
}

struct Token {
    holder: Holder,
    expires: Option<Instant>,
}

/// An Instagram media container: Instagram fetches its media while the client polls, so the
/// first status poll always finds it `IN_PROGRESS`.
struct Container {
    media_url: String,
    caption: String,
    polled: bool,
    published: Option<String>,
}

impl Container {
    fn status_code(&self) -> &'static str {
        match (&self.published, self.polled) {
            (Some(_), _) => "PUBLISHED",
            (None, false) => "IN_PROGRESS",
            (None, true) if social::media_fails(&self.media_url) => "ERROR",
            (None, true) => "FINISHED",
        }
    }
}

/// Graph's refusal: `{"error": {message, type, code, error_subcode, fbtrace_id}}`.
struct GraphError {
    status: StatusCode,
    kind: &'static str,
    code: u32,
    subcode: Option<u32>,
    message: String,
}

impl GraphError {
    fn oauth(code: u32, subcode: Option<u32>, message: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: "OAuthException",
            code,
            subcode,
            message: message.to_owned(),
        }
    }

    fn invalid_parameter(message: &str) -> Self {
        Self { kind: "GraphMethodException", ..Self::oauth(100, None, message) }
    }

    fn bad_token(subcode: u32, message: &str) -> Self {
        Self::oauth(190, Some(subcode), message)
    }

    fn reply(self) -> Reply {
        let mut error = json!({
            "message": self.message,
            "type": self.kind,
            "code": self.code,
            "fbtrace_id": ids::token(11),
        });
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        if self.status.is_server_error() {
            error["is_transient"] = json!(true);
        }
        wire::json(self.status, json!({ "error": error }))
    }
}

impl From<Refusal> for GraphError {
    fn from(refusal: Refusal) -> Self {
        match refusal {
            Refusal::Transient => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                ..Self::oauth(2, None, "An unexpected error has occurred. Please retry your request later.")
            },
            Refusal::Abusive => Self::oauth(
                368,
                None,
                "(#368) The action attempted has been deemed abusive or is otherwise disallowed",
            ),
        }
    }
}

type Params = HashMap<String, String>;

/// Graph addresses nodes by id, so one handler reads the path and dispatches.
#[handler]
fn serve_graph(
    req: &Request,
    Query(query): Query<Params>,
    form: poem::Result<Form<Params>>,
    Data(app): Data<&Arc<App>>,
) -> Response {
    let mut params = query;
    if let Ok(Form(form)) = form {
        params.extend(form);
    }
    if let Some(token) = bearer(req.header("authorization")) {
        params.entry("access_token".to_owned()).or_insert_with(|| token.to_owned());
    }
    let path = req.uri().path().trim_start_matches("/meta");
    let mut segments: Vec<&str> = path.split('/').filter(|segment| !segment.is_empty()).collect();
    if segments.first().is_some_and(|first| is_version(first)) {
        segments.remove(0);
    }
    let method = req.method();
    if method == Method::GET && segments == ["dialog", "oauth"] {
        return dialog(&params, app);
    }
    let result = match (method, segments.as_slice()) {
        (&Method::GET, ["oauth", "access_token"]) => access_token(&params, app),
        (&Method::GET, ["me"]) => me(&params, app),
        (&Method::GET, ["me", "accounts"]) => accounts(&params, app),
        (&Method::DELETE, ["me", "permissions"]) => revoke(&params, app),
        (&Method::GET, [node]) => node_fields(node, &params, app),
        (&Method::POST, [page, "feed"]) => page_post(page, &params, app),
        (&Method::POST, [ig_user, "media"]) => create_container(ig_user, &params, app),
        (&Method::POST, [ig_user, "media_publish"]) => publish_container(ig_user, &params, app),
        _ => Err(GraphError::oauth(2500, None, "Unknown path components")),
    };
    result.unwrap_or_else(GraphError::reply).into_response()
}

fn is_version(segment: &str) -> bool {
    segment.strip_prefix('v').is_some_and(|number| {
        !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit() || byte == b'.')
    })
}

fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params.get(name).map(|value| value.trim()).filter(|value| !value.is_empty())
}

fn required<'a>(params: &'a Params, name: &str) -> Result<&'a str, GraphError> {
    param(params, name)
        .ok_or_else(|| GraphError::oauth(100, None, &format!("(#100) The parameter {name} is required")))
}

/// The login dialog: the user consents at once, so the browser goes straight back to the app.
/// An unknown app gets a page, not a redirect, as Facebook shows one.
fn dialog(params: &Params, app: &App) -> Response {
    let refuse = |message: &'static str| Response::builder().status(StatusCode::BAD_REQUEST).body(message);
    if param(params, "client_id") != Some(app.config.client_id.as_str()) {
        return refuse("Invalid App ID: the app ID does not look like a valid app ID.");
    }
    let Some(redirect_uri) = param(params, "redirect_uri") else {
        return refuse("Invalid redirect_uri: the redirect_uri parameter is required.");
    };
    if param(params, "response_type").is_some_and(|kind| kind != "code") {
        return refuse("Unsupported response_type: the sandbox only issues codes.");
    }
    let code = ids::token(64);
    app.meta().codes.insert(
        code.clone(),
        Grant { redirect_uri: redirect_uri.to_owned(), expires: Instant::now() + CODE_LIFETIME },
    );
    let state = param(params, "state").unwrap_or_default();
    let location = social::redirect_with(redirect_uri, &[("code", &code), ("state", state)]);
    Response::builder().status(StatusCode::FOUND).header("Location", location).finish()
}

/// Code → short-lived user token, or short-lived → long-lived with `fb_exchange_token`. Both
/// need the app secret.
fn access_token(params: &Params, app: &App) -> Result<Reply, GraphError> {
    if required(params, "client_id")? != app.config.client_id {
        return Err(GraphError::oauth(101, None, "Error validating application. Invalid application ID."));
    }
    if required(params, "client_secret")? != app.config.client_secret {
        return Err(GraphError::oauth(1, None, "Error validating client secret."));
    }
    let mut graph = app.meta();
    let lifetime = if param(params, "grant_type") == Some("fb_exchange_token") {
        let short = required(params, "fb_exchange_token")?;
        graph.authenticate(short, Holder::User)?;
        LONG_LIVED
    } else {
        let code = required(params, "code")?;
        let redirect_uri = required(params, "redirect_uri")?;
        let Some(grant) = graph.codes.remove(code) else {
            return Err(GraphError::oauth(100, Some(36009), "This authorization code has been used."));
        };
        if grant.expires <= Instant::now() {
            return Err(GraphError::oauth(100, Some(36007), "This authorization code has expired."));
        }
        if grant.redirect_uri != redirect_uri {
            return Err(GraphError::oauth(
                100,
                Some(36008),
                "Error validating verification code. Please make sure your redirect_uri is identical to the \
                 one you used in the OAuth dialog request",
            ));
        }
        SHORT_LIVED
    };
    let token = format!("EAA{}", ids::token(120));
    graph
        .tokens
        .insert(token.clone(), Token { holder: Holder::User, expires: Some(Instant::now() + lifetime) });
    Ok(wire::json(
        StatusCode::OK,
        json!({ "access_token": token, "token_type": "bearer", "expires_in": lifetime.as_secs() }),
    ))
}

fn me(params: &Params, app: &App) -> Result<Reply, GraphError> {
    let graph = app.meta();
    graph.authenticate(required_token(params)?, Holder::User)?;
    Ok(wire::json(StatusCode::OK, json!({ "id": graph.user_id, "name": USER_NAME })))
}

/// The user's Pages, each with a Page token that does not expire (§8).
fn accounts(params: &Params, app: &App) -> Result<Reply, GraphError> {
    let mut graph = app.meta();
    graph.authenticate(required_token(params)?, Holder::User)?;
    let page_token = format!("EAA{}", ids::token(120));
    graph.tokens.insert(page_token.clone(), Token { holder: Holder::Page, expires: None });
    let page = json!({
        "id": graph.page_id,
        "name": PAGE_NAME,
        "access_token": page_token,
        "category": PAGE_CATEGORY,
        "tasks": ["ADVERTISE", "ANALYZE", "CREATE_CONTENT", "MESSAGING", "MODERATE", "MANAGE"],
    });
    Ok(wire::json(StatusCode::OK, json!({ "data": [page], "paging": { "cursors": {} } })))
}

/// Revoking the app's permissions logs the user out of it everywhere: every token the app
/// holds for them, Page tokens included, stops working.
fn revoke(params: &Params, app: &App) -> Result<Reply, GraphError> {
    let mut graph = app.meta();
    graph.authenticate(required_token(params)?, Holder::User)?;
    graph.revoke_all();
    Ok(wire::json(StatusCode::OK, json!({ "success": true })))
}

/// `GET /{id}`: the Page (with its Instagram account), the Instagram account, or a container.
fn node_fields(node: &str, params: &Params, app: &App) -> Result<Reply, GraphError> {
    let mut graph = app.meta();
    let token = required_token(params)?;
    graph.authenticate_any(token)?;
    let fields = param(params, "fields").unwrap_or_default();
    let wants = |field: &str| fields.split(',').any(|wanted| wanted.trim() == field);
    if node == graph.page_id {
        let mut page = json!({ "id": graph.page_id });
        if fields.is_empty() || wants("name") {
            page["name"] = json!(PAGE_NAME);
        }
        if wants("instagram_business_account") {
            page["instagram_business_account"] = json!({ "id": graph.ig_user_id });
        }
        return Ok(wire::json(StatusCode::OK, page));
    }
    if node == graph.ig_user_id {
        return Ok(wire::json(
            StatusCode::OK,
            json!({ "id": graph.ig_user_id, "username": "ultra.sandbox" }),
        ));
    }
    let container = graph.containers.get_mut(node).ok_or_else(|| unsupported(node))?;
    let status_code = container.status_code();
    container.polled = true;
    let mut answer = json!({ "id": node, "status_code": status_code });
    if status_code == "ERROR" {
        answer["status"] =
            json!("Error: Media download has failed. The media URI doesn't meet our requirements.");
    }
    Ok(wire::json(StatusCode::OK, answer))
}

/// A Page post, as the Page: a user token cannot publish as the Page.
fn page_post(page: &str, params: &Params, app: &App) -> Result<Reply, GraphError> {
    let mut graph = app.meta();
    graph.authenticate(required_token(params)?, Holder::Page)?;
    if page != graph.page_id {
        return Err(unsupported(page));
    }
    let message = param(params, "message").unwrap_or_default().to_owned();
    let link = param(params, "link").map(str::to_owned);
    if message.is_empty() && link.is_none() {
        return Err(GraphError::oauth(100, None, "(#100) Either message or link must be set"));
    }
    graph.posts.screen(&message)?;
    let id = format!("{page}_{}", ids::digits(16));
    let mut post = Post::new("facebook", id.clone(), page.to_owned(), message);
    post.link = link;
    post.published = param(params, "published") != Some("false");
    graph.posts.record(post);
    Ok(wire::json(StatusCode::OK, json!({ "id": id })))
}

fn create_container(ig_user: &str, params: &Params, app: &App) -> Result<Reply, GraphError> {
    let mut graph = app.meta();
    graph.authenticate_any(required_token(params)?)?;
    if ig_user != graph.ig_user_id {
        return Err(unsupported(ig_user));
    }
    let media_type = param(params, "media_type");
    let media_url = match (param(params, "image_url"), param(params, "video_url")) {
        (Some(image), None) if matches!(media_type, None | Some("STORIES")) => image,
        (None, Some(video)) if matches!(media_type, Some("REELS" | "STORIES")) => video,
        (None, Some(_)) => {
            return Err(GraphError::oauth(100, None, "(#100) A video needs media_type REELS or STORIES"));
        }
        _ => {
            return Err(GraphError::oauth(
                100,
                None,
                "(#100) Exactly one of image_url or video_url is required",
            ));
        }
    };
    let caption = param(params, "caption").unwrap_or_default();
    if caption.chars().count() > CAPTION_LIMIT {
        return Err(GraphError::oauth(100, None, "(#100) The caption is longer than 2200 characters"));
    }
    if caption.split_whitespace().filter(|word| word.starts_with('#')).count() > HASHTAG_LIMIT {
        return Err(GraphError::oauth(100, None, "(#100) The caption has more than 30 hashtags"));
    }
    graph.posts.screen(caption)?;
    let id = format!("1790{}", ids::digits(13));
    let container = Container {
        media_url: media_url.to_owned(),
        caption: caption.to_owned(),
        polled: false,
        published: None,
    };
    graph.containers.insert(id.clone(), container);
    Ok(wire::json(StatusCode::OK, json!({ "id": id })))
}

fn publish_container(ig_user: &str, params: &Params, app: &App) -> Result<Reply, GraphError> {
    let mut graph = app.meta();
    graph.authenticate_any(required_token(params)?)?;
    if ig_user != graph.ig_user_id {
        return Err(unsupported(ig_user));
    }
    let creation_id = required(params, "creation_id")?;
    let container = graph.containers.get_mut(creation_id).ok_or_else(|| unsupported(creation_id))?;
    if container.status_code() != "FINISHED" {
        return Err(GraphError::oauth(9007, Some(2_207_027), "Media ID is not available"));
    }
    let media_id = format!("1790{}", ids::digits(13));
    container.published = Some(media_id.clone());
    let mut post = Post::new("instagram", media_id.clone(), ig_user.to_owned(), container.caption.clone());
    post.media_url = Some(container.media_url.clone());
    post.published = true;
    graph.posts.record(post);
    Ok(wire::json(StatusCode::OK, json!({ "id": media_id })))
}

fn required_token(params: &Params) -> Result<&str, GraphError> {
    param(params, "access_token")
        .ok_or_else(|| GraphError::oauth(104, None, "An access token is required to request this resource."))
}

fn unsupported(node: &str) -> GraphError {
    GraphError::invalid_parameter(&format!(
        "Unsupported request. Object with ID '{node}' does not exist, cannot be loaded due to missing \
         permissions, or does not support this operation."
    ))
}

impl Graph {
    /// Ends every token issued so far, user and Page tokens alike, as removing the app in the
    /// user's Facebook settings does; answers how many there were.
    pub fn revoke_all(&mut self) -> usize {
        let revoked = self.tokens.len();
        self.tokens.clear();
        revoked
    }

    fn authenticate(&self, token: &str, holder: Holder) -> Result<(), GraphError> {
        if self.authenticate_any(token)? != holder {
            return Err(match holder {
                Holder::User => {
                    GraphError::oauth(2500, None, "A user access token is required for this request.")
                }
                Holder::Page => GraphError::oauth(
                    200,
                    None,
                    "(#200) A Page access token is required to publish as the Page.",
                ),
            });
        }
        Ok(())
    }

    /// Unknown, revoked and expired tokens are all code 190, told apart by their subcode.
    fn authenticate_any(&self, token: &str) -> Result<Holder, GraphError> {
        let Some(issued) = self.tokens.get(token) else {
            return Err(GraphError::bad_token(
                458,
                "Error validating access token: The user has not authorized the application.",
            ));
        };
        if issued.expires.is_some_and(|expires| expires <= Instant::now()) {
            return Err(GraphError::bad_token(463, "Error validating access token: Session has expired."));
        }
        Ok(issued.holder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_recognised_only_as_versions() {
        assert!(is_version("v19.0"));
        assert!(is_version("v21"));
        assert!(!is_version("v"));
        assert!(!is_version("me"));
        assert!(!is_version("1784123"));
    }

    #[test]
    fn revoking_everything_ends_user_and_page_tokens() {
        let mut graph = Graph::default();
        graph.tokens.insert("user".to_owned(), Token { holder: Holder::User, expires: None });
        graph.tokens.insert("page".to_owned(), Token { holder: Holder::Page, expires: None });
        assert_eq!(graph.revoke_all(), 2);
        assert!(graph.authenticate_any("page").is_err());
        assert_eq!(graph.revoke_all(), 0);
    }

    #[test]
    fn a_container_is_in_progress_until_polled_once() {
        let mut container = Container {
            media_url: "https://cdn.test/a.jpg".to_owned(),
            caption: String::new(),
            polled: false,
            published: None,
        };
        assert_eq!(container.status_code(), "IN_PROGRESS");
        container.polled = true;
        assert_eq!(container.status_code(), "FINISHED");
        container.media_url = "https://cdn.test/fail.jpg".to_owned();
        assert_eq!(container.status_code(), "ERROR");
    }
}
