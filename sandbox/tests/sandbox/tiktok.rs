use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{Sandbox, config};

const REDIRECT_URI: &str = "https://app.test/tiktok/callback";
const CLIENT: &str = "client_key=ultra-sandbox&client_secret=ultra-sandbox-secret";

/// Sends the creator through the authorize page and returns the code the app receives.
async fn consent(sandbox: &Sandbox) -> String {
    let browser = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = sandbox.url(&format!(
        "/tiktok/v2/auth/authorize/?client_key=ultra-sandbox&scope=user.info.basic,video.publish&\
         response_type=code&redirect_uri={REDIRECT_URI}&state=xyz"
    ));
    let answer = browser.get(url).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location = answer.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT_URI) && location.ends_with("&state=xyz"), "{location}");
    let (_, query) = location.split_once('?').unwrap();
    query.split('&').find_map(|pair| pair.strip_prefix("code=")).unwrap().to_owned()
}

async fn form(sandbox: &Sandbox, path: &str, body: &str) -> (StatusCode, String) {
    let answer = sandbox
        .http
        .post(sandbox.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (answer.status(), answer.text().await.unwrap())
}

async fn token(sandbox: &Sandbox, body: &str) -> (StatusCode, Value) {
    let (status, text) = form(sandbox, "/tiktok/v2/oauth/token/", &format!("{CLIENT}&{body}")).await;
    (status, serde_json::from_str(&text).unwrap())
}

async fn exchange(sandbox: &Sandbox, code: &str) -> (StatusCode, Value) {
    token(sandbox, &format!("grant_type=authorization_code&code={code}&redirect_uri={REDIRECT_URI}")).await
}

async fn authorized(sandbox: &Sandbox) -> Value {
    let code = consent(sandbox).await;
    let (status, tokens) = exchange(sandbox, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

async fn api(sandbox: &Sandbox, path: &str, access_token: &str, body: Value) -> (StatusCode, Value) {
    let answer =
        sandbox.http.post(sandbox.url(path)).bearer_auth(access_token).json(&body).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn init(sandbox: &Sandbox, access_token: &str, title: &str, video_url: &str) -> (StatusCode, Value) {
    let body = json!({
        "post_info": { "title": title, "privacy_level": "SELF_ONLY", "disable_comment": false },
        "source_info": { "source": "PULL_FROM_URL", "video_url": video_url },
    });
    api(sandbox, "/tiktok/v2/post/publish/video/init/", access_token, body).await
}

async fn fetch_status(sandbox: &Sandbox, access_token: &str, publish_id: &Value) -> Value {
    let body = json!({ "publish_id": publish_id });
    let (status, answer) = api(sandbox, "/tiktok/v2/post/publish/status/fetch/", access_token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["data"].clone()
}

#[tokio::test]
async fn a_code_is_exchanged_once_for_tokens() {
    let sandbox = Sandbox::start(config()).await;
    let code = consent(&sandbox).await;
    let (status, tokens) = exchange(&sandbox, &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "user.info.basic,video.publish");
    assert!(tokens["open_id"].is_string() && tokens["refresh_expires_in"].is_u64());
    let (status, reused) = exchange(&sandbox, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reused["error"], "invalid_grant");
}

#[tokio::test]
async fn refreshing_rotates_the_refresh_token() {
    let sandbox = Sandbox::start(config()).await;
    let first = authorized(&sandbox).await;
    let refresh =
        |token: &Value| format!("grant_type=refresh_token&refresh_token={}", token.as_str().unwrap());
    let (status, second) = token(&sandbox, &refresh(&first["refresh_token"])).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["open_id"], first["open_id"]);
    let (status, stale) = token(&sandbox, &refresh(&first["refresh_token"])).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(stale["error"], "invalid_grant");
    assert_eq!(token(&sandbox, &refresh(&second["refresh_token"])).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_pulled_video_goes_through_download_to_publish_complete() {
    let sandbox = Sandbox::start(config()).await;
    let access = authorized(&sandbox).await["access_token"].as_str().unwrap().to_owned();
    let (status, info) =
        api(&sandbox, "/tiktok/v2/post/publish/creator_info/query/", &access, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert!(info["data"]["privacy_level_options"].as_array().unwrap().contains(&json!("SELF_ONLY")));
    let (status, started) = init(&sandbox, &access, "Pay with Ultra", "https://cdn.test/a.mp4").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert_eq!(started["error"]["code"], "ok");
    assert!(started["error"]["log_id"].is_string());
    let publish_id = &started["data"]["publish_id"];
    assert_eq!(fetch_status(&sandbox, &access, publish_id).await["status"], "PROCESSING_DOWNLOAD");
    let done = fetch_status(&sandbox, &access, publish_id).await;
    assert_eq!(done["status"], "PUBLISH_COMPLETE");
    let answer = sandbox.http.get(sandbox.url("/_sandbox/posts?network=tiktok")).send().await.unwrap();
    let recorded: Value = answer.json().await.unwrap();
    assert_eq!(recorded[0]["id"], done["publicaly_available_post_id"][0]);
    assert_eq!(recorded[0]["text"], "Pay with Ultra");
    assert_eq!(recorded[0]["published"], true);
}

#[tokio::test]
async fn an_unfetchable_video_fails_with_its_reason() {
    let sandbox = Sandbox::start(config()).await;
    let access = authorized(&sandbox).await["access_token"].as_str().unwrap().to_owned();
    let (_, started) = init(&sandbox, &access, "broken", "https://cdn.test/fail.mp4").await;
    let publish_id = &started["data"]["publish_id"];
    fetch_status(&sandbox, &access, publish_id).await;
    let failed = fetch_status(&sandbox, &access, publish_id).await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["fail_reason"], "video_pull_failed");
}

#[tokio::test]
async fn the_500_once_marker_fails_the_first_init_only() {
    let sandbox = Sandbox::start(config()).await;
    let access = authorized(&sandbox).await["access_token"].as_str().unwrap().to_owned();
    let title = "again #sandbox-500-once";
    let (status, failed) = init(&sandbox, &access, title, "https://cdn.test/a.mp4").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed["error"]["code"], "internal_error");
    assert_eq!(init(&sandbox, &access, title, "https://cdn.test/a.mp4").await.0, StatusCode::OK);
    let (status, refused) = init(&sandbox, &access, "#sandbox-fail", "https://cdn.test/a.mp4").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(refused["error"]["code"], "spam_risk_too_many_posts");
}

#[tokio::test]
async fn a_revoked_token_is_invalid() {
    let sandbox = Sandbox::start(config()).await;
    let tokens = authorized(&sandbox).await;
    let access = tokens["access_token"].as_str().unwrap();
    let (status, _) = form(&sandbox, "/tiktok/v2/oauth/revoke/", &format!("{CLIENT}&token={access}")).await;
    assert_eq!(status, StatusCode::OK);
    let (status, refused) =
        api(&sandbox, "/tiktok/v2/post/publish/creator_info/query/", access, json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(refused["error"]["code"], "access_token_invalid");
    let refresh =
        format!("grant_type=refresh_token&refresh_token={}", tokens["refresh_token"].as_str().unwrap());
    assert_eq!(token(&sandbox, &refresh).await.0, StatusCode::BAD_REQUEST);
}
