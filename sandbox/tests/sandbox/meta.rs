use poem::http::StatusCode;
use serde_json::Value;

use crate::common::{Sandbox, config};

const REDIRECT_URI: &str = "https://app.test/meta/callback";

/// A client that shows redirects instead of following them, as a test of a login dialog must.
fn browser() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of `name` in the query of `url`.
fn query_value(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| pair.strip_prefix(&format!("{name}=")).map(str::to_owned))
}

/// Sends the user through the login dialog and returns the code the app receives.
async fn consent(sandbox: &Sandbox) -> String {
    let url = sandbox.url(&format!(
        "/meta/v19.0/dialog/oauth?client_id=ultra-sandbox&redirect_uri={REDIRECT_URI}&state=s%201&\
         scope=pages_manage_posts&response_type=code"
    ));
    let answer = browser().get(url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(REDIRECT_URI), "{location}");
    assert_eq!(query_value(&location, "state").as_deref(), Some("s%201"));
    query_value(&location, "code").unwrap()
}

async fn get(sandbox: &Sandbox, path: &str) -> (StatusCode, Value) {
    let answer = sandbox.http.get(sandbox.url(path)).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn post(sandbox: &Sandbox, path: &str, form: &str) -> (StatusCode, Value) {
    let answer = sandbox
        .http
        .post(sandbox.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned())
        .send()
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn exchange(sandbox: &Sandbox, code: &str, secret: &str) -> (StatusCode, Value) {
    get(
        sandbox,
        &format!(
            "/meta/v19.0/oauth/access_token?client_id=ultra-sandbox&redirect_uri={REDIRECT_URI}&\
             client_secret={secret}&code={code}"
        ),
    )
    .await
}

/// A long-lived user token, through the whole login.
async fn user_token(sandbox: &Sandbox) -> String {
    let code = consent(sandbox).await;
    let (status, short) = exchange(sandbox, &code, "ultra-sandbox-secret").await;
    assert_eq!(status, StatusCode::OK, "{short}");
    let (status, long) = get(
        sandbox,
        &format!(
            "/meta/v19.0/oauth/access_token?grant_type=fb_exchange_token&client_id=ultra-sandbox&\
             client_secret=ultra-sandbox-secret&fb_exchange_token={}",
            short["access_token"].as_str().unwrap()
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{long}");
    assert_eq!(long["token_type"], "bearer");
    assert_eq!(long["expires_in"], 5_184_000);
    long["access_token"].as_str().unwrap().to_owned()
}

/// The Page's id and token, and its Instagram account's id.
async fn page(sandbox: &Sandbox, user_token: &str) -> (String, String, String) {
    let (status, accounts) =
        get(sandbox, &format!("/meta/v19.0/me/accounts?access_token={user_token}")).await;
    assert_eq!(status, StatusCode::OK, "{accounts}");
    let page = &accounts["data"][0];
    let page_id = page["id"].as_str().unwrap().to_owned();
    let page_token = page["access_token"].as_str().unwrap().to_owned();
    let (_, fields) = get(
        sandbox,
        &format!("/meta/v19.0/{page_id}?fields=instagram_business_account&access_token={page_token}"),
    )
    .await;
    let ig_user_id = fields["instagram_business_account"]["id"].as_str().unwrap().to_owned();
    (page_id, page_token, ig_user_id)
}

#[tokio::test]
async fn a_login_code_is_exchanged_once_for_a_short_then_a_long_token() {
    let sandbox = Sandbox::start(config()).await;
    let code = consent(&sandbox).await;
    let (status, refused) = exchange(&sandbox, &code, "wrong").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["type"], "OAuthException");
    assert_eq!(refused["error"]["code"], 1);
    let (status, short) = exchange(&sandbox, &code, "ultra-sandbox-secret").await;
    assert_eq!(status, StatusCode::OK, "{short}");
    assert_eq!(short["token_type"], "bearer");
    let (status, reused) = exchange(&sandbox, &code, "ultra-sandbox-secret").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"]["error_subcode"], 36009);
    assert!(reused["error"]["fbtrace_id"].is_string());
    user_token(&sandbox).await;
}

#[tokio::test]
async fn the_exchange_must_repeat_the_dialog_redirect_uri() {
    let sandbox = Sandbox::start(config()).await;
    let code = consent(&sandbox).await;
    let (status, refused) = get(
        &sandbox,
        &format!(
            "/meta/v19.0/oauth/access_token?client_id=ultra-sandbox&redirect_uri=https://evil.test/&\
             client_secret=ultra-sandbox-secret&code={code}"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["error_subcode"], 36008);
}

#[tokio::test]
async fn a_page_post_is_published_with_the_page_token_only() {
    let sandbox = Sandbox::start(config()).await;
    let user = user_token(&sandbox).await;
    let (page_id, page_token, _) = page(&sandbox, &user).await;
    let feed = format!("/meta/v19.0/{page_id}/feed");
    let (status, refused) = post(&sandbox, &feed, &format!("message=hello&access_token={user}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], 200);
    let (status, posted) = post(
        &sandbox,
        &feed,
        &format!(
            "message=Pay%20with%20Ultra&link=https://ultra.test&published=true&access_token={page_token}"
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{posted}");
    let id = posted["id"].as_str().unwrap();
    assert!(id.starts_with(&format!("{page_id}_")), "{id}");
    let (_, recorded) = get(&sandbox, "/_sandbox/posts?network=facebook").await;
    assert_eq!(recorded[0]["id"], id);
    assert_eq!(recorded[0]["text"], "Pay with Ultra");
    assert_eq!(recorded[0]["link"], "https://ultra.test");
    assert_eq!(recorded[0]["published"], true);
}

#[tokio::test]
async fn an_instagram_container_is_published_once_finished() {
    let sandbox = Sandbox::start(config()).await;
    let user = user_token(&sandbox).await;
    let (_, page_token, ig) = page(&sandbox, &user).await;
    let (status, container) = post(
        &sandbox,
        &format!("/meta/v19.0/{ig}/media"),
        &format!("image_url=https://cdn.test/a.jpg&caption=New%20%23ultra&access_token={page_token}"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{container}");
    let container = container["id"].as_str().unwrap();
    let publish = format!("/meta/v19.0/{ig}/media_publish");
    let publish_form = format!("creation_id={container}&access_token={page_token}");
    let (status, early) = post(&sandbox, &publish, &publish_form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(early["error"]["code"], 9007);
    let status_path = format!("/meta/v19.0/{container}?fields=status_code&access_token={page_token}");
    assert_eq!(get(&sandbox, &status_path).await.1["status_code"], "IN_PROGRESS");
    assert_eq!(get(&sandbox, &status_path).await.1["status_code"], "FINISHED");
    let (status, media) = post(&sandbox, &publish, &publish_form).await;
    assert_eq!(status, StatusCode::OK, "{media}");
    assert_eq!(get(&sandbox, &status_path).await.1["status_code"], "PUBLISHED");
    let (_, recorded) = get(&sandbox, "/_sandbox/posts?network=instagram").await;
    assert_eq!(recorded[0]["id"], media["id"]);
    assert_eq!(recorded[0]["text"], "New #ultra");
    assert_eq!(recorded[0]["mediaUrl"], "https://cdn.test/a.jpg");
}

#[tokio::test]
async fn unfetchable_media_ends_the_container_in_error() {
    let sandbox = Sandbox::start(config()).await;
    let user = user_token(&sandbox).await;
    let (_, page_token, ig) = page(&sandbox, &user).await;
    let form = format!("video_url=https://cdn.test/fail.mp4&media_type=REELS&access_token={page_token}");
    let (_, container) = post(&sandbox, &format!("/meta/v19.0/{ig}/media"), &form).await;
    let status_path = format!(
        "/meta/v19.0/{}?fields=status_code&access_token={page_token}",
        container["id"].as_str().unwrap()
    );
    get(&sandbox, &status_path).await;
    assert_eq!(get(&sandbox, &status_path).await.1["status_code"], "ERROR");
}

#[tokio::test]
async fn captions_over_the_limits_are_refused() {
    let sandbox = Sandbox::start(config()).await;
    let user = user_token(&sandbox).await;
    let (_, page_token, ig) = page(&sandbox, &user).await;
    let media = format!("/meta/v19.0/{ig}/media");
    let long = "a".repeat(2201);
    let hashtags: Vec<String> = (0..31).map(|n| format!("%23tag{n}")).collect();
    for caption in [long, hashtags.join("%20")] {
        let form = format!("image_url=https://cdn.test/a.jpg&caption={caption}&access_token={page_token}");
        let (status, refused) = post(&sandbox, &media, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(refused["error"]["code"], 100);
    }
}

#[tokio::test]
async fn the_500_once_marker_fails_the_first_post_only() {
    let sandbox = Sandbox::start(config()).await;
    let user = user_token(&sandbox).await;
    let (page_id, page_token, _) = page(&sandbox, &user).await;
    let feed = format!("/meta/v19.0/{page_id}/feed");
    let form = format!("message=retry%20me%20%23sandbox-500-once&access_token={page_token}");
    let (status, failed) = post(&sandbox, &feed, &form).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed["error"]["is_transient"], true);
    assert_eq!(post(&sandbox, &feed, &form).await.0, StatusCode::OK);
    let form = format!("message=nope%20%23sandbox-fail&access_token={page_token}");
    let (status, refused) = post(&sandbox, &feed, &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], 368);
}

#[tokio::test]
async fn revoked_permissions_invalidate_every_token() {
    let sandbox = Sandbox::start(config()).await;
    let user = user_token(&sandbox).await;
    let (page_id, page_token, _) = page(&sandbox, &user).await;
    let answer = sandbox
        .http
        .delete(sandbox.url(&format!("/meta/v19.0/me/permissions?access_token={user}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.json::<Value>().await.unwrap(), serde_json::json!({ "success": true }));
    let (status, refused) = get(&sandbox, &format!("/meta/v19.0/me/accounts?access_token={user}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["code"], 190);
    let (_, refused) = post(
        &sandbox,
        &format!("/meta/v19.0/{page_id}/feed"),
        &format!("message=hi&access_token={page_token}"),
    )
    .await;
    assert_eq!(refused["error"]["code"], 190);
    let (_, unknown) = get(&sandbox, "/meta/v19.0/me?access_token=EAAnever").await;
    assert_eq!(unknown["error"]["code"], 190);
}
