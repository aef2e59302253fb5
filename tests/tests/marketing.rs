//! Social publishing end to end: the API, a live worker and schedulers against the sandbox's
//! Meta Graph and TikTok, as a merchant's dashboard and browser would drive them.

use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode, redirect::Policy};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use ultra_entity::{jobs, social_accounts, social_oauth_states, social_posts};
use ultra_tests::{LiveWorld, TestApp, redis_url, start_scheduler};

const DASHBOARD: &str = "https://dashboard.example.com";
const LANDING: &str = "https://dashboard.example.com/marketing/connected";
const IMAGE: &str = "https://cdn.example.com/launch.jpg";
const VIDEO: &str = "https://cdn.example.com/launch.mp4";

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} is not JSON: {text}")))
}

async fn eventually<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A world with Meta and TikTok configured against the sandbox and the dashboard's origin set.
async fn world() -> LiveWorld {
    let world = LiveWorld::start_with(&["meta", "tiktok"]).await;
    let (status, reply) = call(
        &world.app,
        Method::PATCH,
        "/api/v1/admin/config",
        Some(&world.admin),
        Some(json!({ "marketing": { "frontendUrl": DASHBOARD } })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    world
}

/// The merchant's browser: it keeps the cookie `connect` sets, which binds each connection to
/// the browser that started it. Every test shares it; the cookies are named after their
/// connections, so they never meet.
fn browser() -> reqwest::Client {
    static BROWSER: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        reqwest::Client::builder().redirect(Policy::none()).cookie_store(true).build().expect("client")
    });
    BROWSER.clone()
}

/// Where a 302 sends the browser.
async fn follow(url: &str) -> (StatusCode, String) {
    follow_in(&browser(), url).await
}

async fn follow_in(browser: &reqwest::Client, url: &str) -> (StatusCode, String) {
    let response = browser.get(url).send().await.expect("browser request");
    let status = response.status();
    let location = response.headers().get("location").map(|v| v.to_str().unwrap().to_owned());
    (status, location.unwrap_or_default())
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url).expect("url").query_pairs().into_owned().collect()
}

/// Starts a connection in the merchant's browser and follows the platform's consent: the
/// callback URL the platform sends the browser to.
async fn consent(world: &LiveWorld, platform: &str) -> String {
    let response = browser()
        .post(world.app.url("/api/v1/marketing/accounts/connect"))
        .bearer_auth(&world.merchant)
        .json(&json!({ "platform": platform, "redirectUri": LANDING }))
        .send()
        .await
        .expect("connect");
    let status = response.status();
    let reply: Value = response.json().await.expect("connect body");
    assert_eq!(status, StatusCode::OK, "{reply}");
    let authorization = reply["data"]["authorizationUrl"].as_str().unwrap().to_owned();
    assert!(authorization.starts_with(&format!("{}/{platform}/", world.sandbox.base)), "{authorization}");
    assert_eq!(query_of(&authorization)["state"], reply["data"]["state"].as_str().unwrap());
    let (status, callback) = follow(&authorization).await;
    assert_eq!(status, StatusCode::FOUND, "the platform's consent redirects: {callback}");
    assert!(
        callback.starts_with(&world.app.url(&format!("/api/v1/marketing/oauth/{platform}/callback"))),
        "{callback}"
    );
    callback
}

/// A whole connection: the ids of the accounts it gave.
async fn connect(world: &LiveWorld, platform: &str) -> Vec<String> {
    let callback = consent(world, platform).await;
    let (status, landing) = follow(&callback).await;
    assert_eq!(status, StatusCode::FOUND, "{landing}");
    assert!(landing.starts_with(LANDING), "{landing}");
    let outcome = query_of(&landing);
    assert_eq!(outcome["status"], "connected", "{landing}");
    assert_eq!(outcome["platform"], platform);
    outcome["accounts"].split(',').map(str::to_owned).collect()
}

async fn accounts(world: &LiveWorld) -> Vec<Value> {
    let (status, reply) =
        call(&world.app, Method::GET, "/api/v1/marketing/accounts", Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["data"].as_array().unwrap().clone()
}

async fn account_of_type(world: &LiveWorld, kind: &str) -> Value {
    accounts(world)
        .await
        .into_iter()
        .find(|a| a["accountType"] == kind)
        .unwrap_or_else(|| panic!("no {kind} account"))
}

async fn create_post(world: &LiveWorld, body: Value) -> Value {
    let (status, reply) =
        call(&world.app, Method::POST, "/api/v1/marketing/posts", Some(&world.merchant), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    reply["data"].clone()
}

async fn post(world: &LiveWorld, id: &str) -> Value {
    let (status, reply) =
        call(&world.app, Method::GET, &format!("/api/v1/marketing/posts/{id}"), Some(&world.merchant), None)
            .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["data"].clone()
}

/// A post's publish logs as an admin reads them, with the platform exchanges merchants do not
/// see.
async fn admin_logs(world: &LiveWorld, id: &str) -> Vec<Value> {
    let path = format!("/api/v1/admin/marketing/posts/{id}/logs");
    let (status, reply) = call(&world.app, Method::GET, &path, Some(&world.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    reply["data"].as_array().unwrap().clone()
}

async fn finished_post(world: &LiveWorld, id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let current = post(world, id).await;
        if matches!(current["status"].as_str(), Some("published" | "failed")) {
            return current;
        }
        assert!(tokio::time::Instant::now() < deadline, "the post never finished: {current}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish(world: &LiveWorld, id: &str) -> Value {
    let path = format!("/api/v1/marketing/posts/{id}/publish");
    let (status, reply) = call(&world.app, Method::POST, &path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    assert_eq!(reply["data"]["post"]["status"], "publishing");
    reply["data"].clone()
}

async fn sandbox_posts(world: &LiveWorld, network: &str) -> Vec<Value> {
    let url = format!("{}/_sandbox/posts?network={network}", world.sandbox.base);
    let body: Value = world.app.client.get(url).send().await.unwrap().json().await.unwrap();
    body.as_array().cloned().unwrap_or_default()
}

async fn revoke_at_platform(world: &LiveWorld, platform: &str) {
    let url = format!("{}/_sandbox/social/{platform}/revoke", world.sandbox.base);
    let response = world.app.client.post(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn oauth_round_trips_connect_both_platforms_and_states_are_signed_single_use_and_expiring() {
    let world = world().await;
    let db = world.app.db.connect().await;

    let meta = connect(&world, "meta").await;
    assert_eq!(meta.len(), 2, "a Page and its Instagram account: {meta:?}");
    let tiktok = connect(&world, "tiktok").await;
    assert_eq!(tiktok.len(), 1);
    let listed = accounts(&world).await;
    assert_eq!(listed.len(), 3);
    let mut types: Vec<&str> = listed.iter().map(|a| a["accountType"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(types, ["facebook_page", "instagram", "tiktok"]);
    for account in &listed {
        assert_eq!(account["status"], "active", "{account}");
        let text = account.to_string();
        for token_prefix in ["EAA", "act.", "rft."] {
            assert!(!text.contains(token_prefix), "a token leaked into the view: {text}");
        }
    }
    let page = listed.iter().find(|a| a["accountType"] == "facebook_page").unwrap();
    let expires = chrono::DateTime::parse_from_rfc3339(page["tokenExpiresAt"].as_str().unwrap()).unwrap();
    assert!(expires > Utc::now() + chrono::Duration::days(50), "Meta's long-lived user token: {expires}");
    let tiktok_account = listed.iter().find(|a| a["accountType"] == "tiktok").unwrap();
    let expires =
        chrono::DateTime::parse_from_rfc3339(tiktok_account["tokenExpiresAt"].as_str().unwrap()).unwrap();
    assert!(expires < Utc::now() + chrono::Duration::hours(3), "TikTok's two-hour access token: {expires}");
    for row in social_accounts::Entity::find().all(&db).await.unwrap() {
        assert!(row.sealed_tokens.starts_with("v1:"), "tokens are sealed");
        for token_prefix in ["EAA", "act.", "rft."] {
            assert!(!row.sealed_tokens.contains(token_prefix), "a token is stored in clear");
        }
    }

    // Connecting the same Page again renews it rather than adding another.
    assert_eq!(connect(&world, "meta").await.len(), 2);
    assert_eq!(accounts(&world).await.len(), 3);

    // A replayed callback: the state is spent.
    let callback = consent(&world, "tiktok").await;
    let (status, _) = follow(&callback).await;
    assert_eq!(status, StatusCode::FOUND);
    let replay = browser().get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    let body: Value = replay.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert!(body["error"].as_str().unwrap().contains("already been used"), "{body}");

    // A forged state, a state for the other platform, and none at all.
    let callback = consent(&world, "meta").await;
    let state = query_of(&callback)["state"].clone();
    let code = query_of(&callback)["code"].clone();
    let (id, mac) = state.split_once('.').unwrap();
    let flipped = if mac.starts_with('0') { '1' } else { '0' };
    let forged_mac = format!("{id}.{flipped}{}", &mac[1..]);
    let made_up = "oauth_01JZZZZZZZZZZZZZZZZZZZZZZZ.00112233445566778899".to_owned();
    for (platform, state) in [("meta", forged_mac), ("meta", made_up), ("tiktok", state.clone())] {
        let mut url =
            reqwest::Url::parse(&world.app.url(&format!("/api/v1/marketing/oauth/{platform}/callback")))
                .unwrap();
        url.query_pairs_mut().append_pair("code", &code).append_pair("state", &state);
        let response = browser().get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{platform} {state}");
        let body: Value = response.json().await.unwrap();
        assert!(body["error"].as_str().unwrap().starts_with("state"), "{body}");
    }
    let url = world.app.url("/api/v1/marketing/oauth/meta/callback");
    let response = browser().get(format!("{url}?code={code}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    // The genuine state still works after those were refused.
    let (status, landing) = follow(&callback).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(query_of(&landing)["status"], "connected", "{landing}");

    // An expired state.
    let callback = consent(&world, "tiktok").await;
    let state = query_of(&callback)["state"].clone();
    let (id, _) = state.split_once('.').unwrap();
    social_oauth_states::Entity::update_many()
        .col_expr(
            social_oauth_states::Column::ExpiresAt,
            Expr::value(Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(social_oauth_states::Column::Id.eq(id))
        .exec(&db)
        .await
        .unwrap();
    let response = browser().get(&callback).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("expired"), "{body}");

    // The user refusing consent lands on the dashboard with the platform's reason.
    let callback = consent(&world, "meta").await;
    let state = query_of(&callback)["state"].clone();
    let denied = format!(
        "{}?error=access_denied&error_description=Permissions+error&state={}",
        world.app.url("/api/v1/marketing/oauth/meta/callback"),
        state
    );
    let (status, landing) = follow(&denied).await;
    assert_eq!(status, StatusCode::FOUND);
    let outcome = query_of(&landing);
    assert_eq!(outcome["status"], "denied");
    assert_eq!(outcome["error"], "Permissions error");

    // A code the platform refuses ends the connection `failed`, with the platform's reason.
    let callback = consent(&world, "tiktok").await;
    let mut forged = reqwest::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "code" { "not-a-code".to_owned() } else { v.into_owned() };
            (k.into_owned(), value)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, landing) = follow(forged.as_str()).await;
    assert_eq!(status, StatusCode::FOUND);
    let outcome = query_of(&landing);
    assert_eq!(outcome["status"], "failed", "{landing}");
    assert!(outcome["error"].contains("TikTok refused the connection"), "{landing}");

    // Only the dashboard's origin is a landing place.
    for bad in ["https://evil.example.com/cb", "javascript:alert(1)", "/relative"] {
        let (status, reply) = call(
            &world.app,
            Method::POST,
            "/api/v1/marketing/accounts/connect",
            Some(&world.merchant),
            Some(json!({ "platform": "meta", "redirectUri": bad })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {reply}");
        assert!(reply["error"].as_str().unwrap().starts_with("redirectUri"), "{reply}");
    }
    // A platform without a configured app cannot be connected.
    let response = world
        .app
        .client
        .delete(world.app.url("/api/v1/admin/providers/tiktok"))
        .bearer_auth(&world.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let (status, reply) = call(
        &world.app,
        Method::POST,
        "/api/v1/marketing/accounts/connect",
        Some(&world.merchant),
        Some(json!({ "platform": "tiktok", "redirectUri": LANDING })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert_eq!(reply["meta"]["code"], "platform_not_configured", "{reply}");

    // Another merchant sees none of these accounts.
    let other = world.app.db.create_user("other@ultra.test", Some("other-password-1"), "user", &[]);
    assert!(!other.is_empty());
    let token = world.app.login("other@ultra.test", "other-password-1").await;
    let (_, theirs) = call(&world.app, Method::GET, "/api/v1/marketing/accounts", Some(&token), None).await;
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0);
    let path = format!("/api/v1/marketing/accounts/{}/refresh", meta[0]);
    let (status, _) = call(&world.app, Method::POST, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_scheduled_post_is_published_once_at_its_time_with_two_schedulers() {
    let world = world().await;
    let db = world.app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "schedules",
        json!({ "publish-social-posts": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    connect(&world, "meta").await;
    let page = account_of_type(&world, "facebook_page").await;
    let at = Utc::now() + chrono::Duration::seconds(4);
    let text = format!("Grand opening at {}", at.timestamp_millis());
    let created = create_post(
        &world,
        json!({ "socialAccountId": page["id"], "content": text, "mediaUrls": [IMAGE], "scheduledAt": at }),
    )
    .await;
    assert_eq!(created["status"], "scheduled");
    let id = created["id"].as_str().unwrap().to_owned();

    let _first = start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await;
    let _second = start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(post(&world, &id).await["status"], "scheduled", "not before its time");

    let done = finished_post(&world, &id).await;
    assert_eq!(done["status"], "published", "{done}");
    let published_at = chrono::DateTime::parse_from_rfc3339(done["publishedAt"].as_str().unwrap()).unwrap();
    assert!(published_at >= at, "published at {published_at}, scheduled for {at}");
    assert!(published_at < at + chrono::Duration::seconds(10), "published late: {published_at}");
    // Ticks of both schedulers go on; nothing publishes it again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let on_page: Vec<Value> =
        sandbox_posts(&world, "facebook").await.into_iter().filter(|p| p["text"] == text.as_str()).collect();
    assert_eq!(on_page.len(), 1, "{on_page:?}");
    assert_eq!(on_page[0]["id"], done["platformPostId"]);
    assert_eq!(on_page[0]["link"], IMAGE);
    let done = post(&world, &id).await;
    let logs = done["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1, "{logs:?}");
    assert_eq!(logs[0]["outcome"], "published");
    assert!(logs[0]["exchanges"].is_null(), "the platform's answers are for admins: {}", logs[0]);
    let logs = admin_logs(&world, &id).await;
    let exchange = &logs[0]["exchanges"][0];
    assert_eq!(exchange["method"], "POST");
    assert!(exchange["url"].as_str().unwrap().ends_with("/feed"), "{exchange}");
    assert_eq!(exchange["status"], 200);
    assert!(!logs[0].to_string().contains("EAA"), "the log holds no token: {}", logs[0]);
    let publish_jobs = jobs::Entity::find()
        .filter(jobs::Column::Kind.eq("social.publish"))
        .filter(jobs::Column::ResourceId.eq(id.as_str()))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(publish_jobs.len(), 1);
}

#[tokio::test]
async fn a_platform_500_is_retried_and_media_posts_go_through_processing() {
    let world = world().await;
    connect(&world, "meta").await;
    connect(&world, "tiktok").await;
    let page = account_of_type(&world, "facebook_page").await;
    let instagram = account_of_type(&world, "instagram").await;
    let tiktok = account_of_type(&world, "tiktok").await;

    let flaky = create_post(
        &world,
        json!({ "socialAccountId": page["id"], "content": "Doors open #sandbox-500-once" }),
    )
    .await;
    let id = flaky["id"].as_str().unwrap();
    let accepted = publish(&world, id).await;
    assert_eq!(accepted["job"]["kind"], "social.publish");
    let done = finished_post(&world, id).await;
    assert_eq!(done["status"], "published", "{done}");
    assert_eq!(done["attempts"], 2);
    let logs = done["logs"].as_array().unwrap();
    assert_eq!(
        logs.iter().map(|l| l["outcome"].as_str().unwrap()).collect::<Vec<_>>(),
        ["retrying", "published"]
    );
    assert!(logs[0]["error"].as_str().unwrap().contains("unavailable"), "{}", logs[0]);
    assert!(
        !logs[0].to_string().contains("unexpected error"),
        "the platform's words reached the merchant: {}",
        logs[0]
    );
    let logs = admin_logs(&world, id).await;
    assert_eq!(logs[0]["exchanges"][0]["status"], 500);
    assert!(logs[0]["exchanges"][0]["response"].to_string().contains("unexpected error"), "{}", logs[0]);
    let on_page = sandbox_posts(&world, "facebook").await;
    assert_eq!(on_page.iter().filter(|p| p["text"] == "Doors open #sandbox-500-once").count(), 1);

    let photo = create_post(
        &world,
        json!({ "socialAccountId": instagram["id"], "content": "New arrivals #shop", "mediaUrls": [IMAGE] }),
    )
    .await;
    let photo_id = photo["id"].as_str().unwrap();
    publish(&world, photo_id).await;
    let done = finished_post(&world, photo_id).await;
    assert_eq!(done["status"], "published", "{done}");
    let logs = admin_logs(&world, photo_id).await;
    let urls: Vec<&str> =
        logs[0]["exchanges"].as_array().unwrap().iter().map(|e| e["url"].as_str().unwrap()).collect();
    assert!(
        urls.iter().any(|u| u.ends_with("/media")) && urls.iter().any(|u| u.ends_with("/media_publish")),
        "{urls:?}"
    );
    let on_instagram = sandbox_posts(&world, "instagram").await;
    assert!(
        on_instagram.iter().any(|p| p["id"] == done["platformPostId"] && p["published"] == true),
        "{on_instagram:?}"
    );

    let clip = create_post(
        &world,
        json!({ "socialAccountId": tiktok["id"], "content": "Behind the scenes", "mediaUrls": [VIDEO] }),
    )
    .await;
    let clip_id = clip["id"].as_str().unwrap();
    publish(&world, clip_id).await;
    let done = finished_post(&world, clip_id).await;
    assert_eq!(done["status"], "published", "{done}");
    let on_tiktok = sandbox_posts(&world, "tiktok").await;
    assert!(
        on_tiktok.iter().any(|p| p["id"] == done["platformPostId"] && p["published"] == true),
        "{on_tiktok:?}"
    );

    // Media the platform cannot fetch fails the post for good, with the platform's reason.
    let broken = create_post(&world, json!({ "socialAccountId": instagram["id"], "content": "Oops", "mediaUrls": ["https://cdn.example.com/fail.jpg"] })).await;
    let broken_id = broken["id"].as_str().unwrap();
    publish(&world, broken_id).await;
    let done = finished_post(&world, broken_id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["error"].as_str().unwrap().contains("refused the post"), "{done}");
    let last = done["logs"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["outcome"], "failed");
    assert!(last["error"].as_str().unwrap().contains("Media download has failed"), "{last}");
}

#[tokio::test]
async fn posts_through_revoked_accounts_fail_with_a_clear_log_entry() {
    let world = world().await;
    let db = world.app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "schedules",
        json!({ "publish-social-posts": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    connect(&world, "meta").await;
    let page = account_of_type(&world, "facebook_page").await;
    let instagram = account_of_type(&world, "instagram").await;

    // Suspended by an admin while a post waits for its time.
    let at = Utc::now() + chrono::Duration::seconds(3);
    let scheduled = create_post(
        &world,
        json!({ "socialAccountId": page["id"], "content": "Weekend sale", "scheduledAt": at }),
    )
    .await;
    let path = format!("/api/v1/admin/marketing/accounts/{}", page["id"].as_str().unwrap());
    let (status, reply) =
        call(&world.app, Method::PATCH, &path, Some(&world.admin), Some(json!({ "status": "revoked" })))
            .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "revoked");
    let _scheduler = start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await;
    let done = finished_post(&world, scheduled["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    let logs = done["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["outcome"], "failed");
    assert!(logs[0]["error"].as_str().unwrap().contains("is revoked"), "{}", logs[0]);
    assert!(sandbox_posts(&world, "facebook").await.is_empty(), "nothing reached the platform");
    // New posts through it are refused at once.
    let (status, reply) = call(
        &world.app,
        Method::POST,
        "/api/v1/marketing/posts",
        Some(&world.merchant),
        Some(json!({ "socialAccountId": page["id"], "content": "More" })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");

    // Revoked at the platform: the token is refused, the post fails and the account expires.
    let draft = create_post(
        &world,
        json!({ "socialAccountId": instagram["id"], "content": "Still here?", "mediaUrls": [IMAGE] }),
    )
    .await;
    revoke_at_platform(&world, "meta").await;
    publish(&world, draft["id"].as_str().unwrap()).await;
    let done = finished_post(&world, draft["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "failed", "{done}");
    let last = done["logs"].as_array().unwrap().last().unwrap().clone();
    let error = last["error"].as_str().unwrap();
    assert!(error.contains("refused the account's token") && error.contains("reconnect"), "{last}");
    let logs = admin_logs(&world, draft["id"].as_str().unwrap()).await;
    let last = logs.last().unwrap();
    assert_eq!(last["exchanges"][0]["response"]["error"]["code"], 190, "{last}");
    assert_eq!(account_of_type(&world, "instagram").await["status"], "expired");
    // An admin cannot bring an expired account back; its owner connects it again.
    let path = format!("/api/v1/admin/marketing/accounts/{}", instagram["id"].as_str().unwrap());
    let (status, _) =
        call(&world.app, Method::PATCH, &path, Some(&world.admin), Some(json!({ "status": "active" }))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    connect(&world, "meta").await;
    assert_eq!(account_of_type(&world, "instagram").await["status"], "active");
    let suspended = account_of_type(&world, "facebook_page").await;
    assert_eq!(
        suspended["status"], "revoked",
        "reconnecting does not lift an admin's suspension: {suspended}"
    );
    assert!(suspended["suspendedAt"].is_string());

    // The admin's view of the log, and the totals.
    let path = format!("/api/v1/admin/marketing/posts/{}/logs", draft["id"].as_str().unwrap());
    let (status, reply) = call(&world.app, Method::GET, &path, Some(&world.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"][0]["outcome"], "failed");
    let (status, stats) =
        call(&world.app, Method::GET, "/api/v1/admin/marketing/stats", Some(&world.admin), None).await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["data"]["posts"]["byStatus"]["failed"], 2, "{stats}");
    assert_eq!(stats["data"]["posts"]["total"], 2);
    assert_eq!(stats["data"]["accounts"]["byStatus"]["revoked"], 1, "{stats}");
    assert_eq!(stats["data"]["accounts"]["byStatus"]["active"], 1, "{stats}");
    assert_eq!(stats["data"]["logEntries"]["byOutcome"]["failed"], 2, "{stats}");

    // A post whose publish job died without settling it (a worker lost on its last attempt) is
    // failed by the schedule rather than left publishing.
    let stuck = create_post(
        &world,
        json!({ "socialAccountId": instagram["id"], "content": "Lost", "mediaUrls": [IMAGE] }),
    )
    .await;
    let stuck_id = stuck["id"].as_str().unwrap();
    let dead_job =
        jobs::Entity::find().filter(jobs::Column::Kind.eq("social.connect")).one(&db).await.unwrap().unwrap();
    jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(jobs::JobStatus::Dead))
        .col_expr(jobs::Column::LastError, Expr::value(Some("worker lost".to_owned())))
        .filter(jobs::Column::Id.eq(dead_job.id.as_str()))
        .exec(&db)
        .await
        .unwrap();
    social_posts::Entity::update_many()
        .col_expr(social_posts::Column::Status, Expr::value(social_posts::SocialPostStatus::Publishing))
        .col_expr(social_posts::Column::PublishJobId, Expr::value(Some(dead_job.id.clone())))
        .filter(social_posts::Column::Id.eq(stuck_id))
        .exec(&db)
        .await
        .unwrap();
    let done = finished_post(&world, stuck_id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["error"].as_str().unwrap().contains("worker lost"), "{done}");
    assert_eq!(done["logs"][0]["outcome"], "failed");
}

#[tokio::test]
async fn tokens_are_renewed_on_request_and_by_schedule_and_a_refused_renewal_expires_the_account() {
    let world = world().await;
    let db = world.app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "schedules",
        json!({ "refresh-social-tokens": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    connect(&world, "tiktok").await;
    let account = account_of_type(&world, "tiktok").await;
    let id = account["id"].as_str().unwrap().to_owned();

    let path = format!("/api/v1/marketing/accounts/{id}/refresh");
    let (status, reply) = call(&world.app, Method::POST, &path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let job = reply["data"]["job"]["statusUrl"].as_str().unwrap().to_owned();
    let response = world
        .app
        .client
        .get(world.app.url(&job))
        .bearer_auth(&world.merchant)
        .header("Prefer", "wait=10")
        .send()
        .await
        .unwrap();
    let finished: Value = response.json().await.unwrap();
    assert_eq!(finished["data"]["status"], "succeeded", "{finished}");
    let renewed = account_of_type(&world, "tiktok").await;
    assert_ne!(renewed["lastRefreshedAt"], account["lastRefreshedAt"]);

    // The schedule renews a token about to lapse, with the rotated refresh token.
    social_accounts::Entity::update_many()
        .col_expr(
            social_accounts::Column::TokenExpiresAt,
            Expr::value(Some(Utc::now() + chrono::Duration::minutes(5))),
        )
        .filter(social_accounts::Column::Id.eq(id.as_str()))
        .exec(&db)
        .await
        .unwrap();
    let _scheduler = start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await;
    eventually(Duration::from_secs(20), "the schedule to renew the token", || async {
        let row = social_accounts::Entity::find_by_id(id.as_str()).one(&db).await.unwrap().unwrap();
        row.token_expires_at.is_some_and(|at| at > Utc::now() + chrono::Duration::hours(1))
    })
    .await;
    let video =
        create_post(&world, json!({ "socialAccountId": id, "content": "Fresh token", "mediaUrls": [VIDEO] }))
            .await;
    publish(&world, video["id"].as_str().unwrap()).await;
    assert_eq!(finished_post(&world, video["id"].as_str().unwrap()).await["status"], "published");

    // Revoked at TikTok: the next renewal is refused and the account expires.
    revoke_at_platform(&world, "tiktok").await;
    let (status, reply) = call(&world.app, Method::POST, &path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    eventually(Duration::from_secs(20), "the account to expire", || async {
        account_of_type(&world, "tiktok").await["status"] == "expired"
    })
    .await;
    let expired = account_of_type(&world, "tiktok").await;
    assert!(expired["lastError"].as_str().unwrap().contains("refused to renew"), "{expired}");
    let (status, reply) = call(&world.app, Method::POST, &path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");

    // Disconnecting revokes the grant at the platform and keeps the posts listed.
    connect(&world, "tiktok").await;
    let path = format!("/api/v1/marketing/accounts/{id}");
    let (status, reply) = call(&world.app, Method::DELETE, &path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["account"]["status"], "revoked");
    let job = reply["data"]["job"]["statusUrl"].as_str().unwrap().to_owned();
    let response = world
        .app
        .client
        .get(world.app.url(&job))
        .bearer_auth(&world.merchant)
        .header("Prefer", "wait=10")
        .send()
        .await
        .unwrap();
    let finished: Value = response.json().await.unwrap();
    assert_eq!(finished["data"]["result"]["revoked"], true, "{finished}");
    let (_, listed) =
        call(&world.app, Method::GET, "/api/v1/marketing/posts", Some(&world.merchant), None).await;
    assert_eq!(listed["meta"]["total"], 1);
}

#[tokio::test]
async fn content_media_and_state_rules_are_4xx_naming_the_problem() {
    let world = world().await;
    connect(&world, "meta").await;
    connect(&world, "tiktok").await;
    let page = account_of_type(&world, "facebook_page").await["id"].clone();
    let instagram = account_of_type(&world, "instagram").await["id"].clone();
    let tiktok = account_of_type(&world, "tiktok").await["id"].clone();
    let tags = (0..31).map(|i| format!("#tag{i}")).collect::<Vec<_>>().join(" ");
    let past = Utc::now() - chrono::Duration::minutes(1);
    let cases = [
        (json!({ "socialAccountId": page, "content": "" }), "content"),
        (json!({ "socialAccountId": page, "content": "x".repeat(2201) }), "content"),
        (json!({ "socialAccountId": page, "content": "hi", "mediaUrls": vec![IMAGE; 11] }), "mediaUrls"),
        (
            json!({ "socialAccountId": page, "content": "hi", "mediaUrls": ["http://cdn.example.com/a.jpg"] }),
            "mediaUrls[0]",
        ),
        (
            json!({ "socialAccountId": page, "content": "hi", "mediaUrls": [IMAGE, "https://192.168.1.10/a.jpg"] }),
            "mediaUrls[1]",
        ),
        (json!({ "socialAccountId": page, "content": "hi", "mediaUrls": ["not a url"] }), "mediaUrls[0]"),
        (json!({ "socialAccountId": page, "content": "hi", "mediaUrls": [IMAGE, VIDEO] }), "mediaUrls"),
        (json!({ "socialAccountId": instagram, "content": "no picture" }), "mediaUrls"),
        (json!({ "socialAccountId": instagram, "content": tags, "mediaUrls": [IMAGE] }), "content"),
        (json!({ "socialAccountId": tiktok, "content": "a photo", "mediaUrls": [IMAGE] }), "mediaUrls"),
        (json!({ "socialAccountId": page, "content": "hi", "scheduledAt": past }), "scheduledAt"),
        (json!({ "socialAccountId": page, "content": "hi", "scheduledAt": "tomorrow" }), "scheduledAt"),
        (json!({ "socialAccountId": "sacc_nope", "content": "hi" }), "socialAccountId"),
        (json!({ "content": "hi" }), "socialAccountId"),
        (json!({ "socialAccountId": page, "content": 7 }), "content"),
    ];
    for (body, field) in cases {
        let (status, reply) = call(
            &world.app,
            Method::POST,
            "/api/v1/marketing/posts",
            Some(&world.merchant),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(
            error.starts_with(&format!("{field}:")) || error.starts_with(&format!("{field} ")),
            "{field}: {reply}"
        );
    }

    // A retried create with the same Idempotency-Key makes one post.
    let body = json!({ "socialAccountId": page, "content": "Once only" });
    let mut ids = Vec::new();
    for _ in 0..2 {
        let response = world
            .app
            .client
            .post(world.app.url("/api/v1/marketing/posts"))
            .bearer_auth(&world.merchant)
            .header("Idempotency-Key", "post-once-only")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let reply: Value = response.json().await.unwrap();
        ids.push(reply["data"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids[0], ids[1]);
    let (_, once) =
        call(&world.app, Method::GET, "/api/v1/marketing/posts?status=draft", Some(&world.merchant), None)
            .await;
    assert_eq!(once["data"].as_array().unwrap().iter().filter(|p| p["content"] == "Once only").count(), 1);

    // Only drafts and scheduled posts change; cancel takes only scheduled ones.
    let draft = create_post(&world, json!({ "socialAccountId": page, "content": "Draft" })).await;
    let id = draft["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/marketing/posts/{id}");
    let later = Utc::now() + chrono::Duration::hours(1);
    let (status, reply) = call(
        &world.app,
        Method::PATCH,
        &path,
        Some(&world.merchant),
        Some(json!({ "content": "Edited", "scheduledAt": later })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "scheduled");
    let (status, reply) = call(
        &world.app,
        Method::PATCH,
        &path,
        Some(&world.merchant),
        Some(json!({ "mediaUrls": ["ftp://x.example.com/a"] })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let cancel = format!("{path}/cancel");
    let (status, reply) = call(&world.app, Method::POST, &cancel, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "draft");
    assert_eq!(reply["data"]["scheduledAt"], Value::Null);
    let (status, _) = call(&world.app, Method::POST, &cancel, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A time schedules it again; null unschedules it, keeping what was not sent.
    let (_, reply) =
        call(&world.app, Method::PATCH, &path, Some(&world.merchant), Some(json!({ "scheduledAt": later })))
            .await;
    assert_eq!(reply["data"]["status"], "scheduled", "{reply}");
    let (status, reply) =
        call(&world.app, Method::PATCH, &path, Some(&world.merchant), Some(json!({ "scheduledAt": null })))
            .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "draft");
    assert_eq!(reply["data"]["content"], "Edited");
    publish(&world, &id).await;
    let (status, _) =
        call(&world.app, Method::POST, &format!("{path}/publish"), Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "published once");
    assert_eq!(finished_post(&world, &id).await["status"], "published");
    let (status, reply) =
        call(&world.app, Method::PATCH, &path, Some(&world.merchant), Some(json!({ "content": "Too late" })))
            .await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let (status, _) = call(&world.app, Method::DELETE, &path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let other_draft = create_post(&world, json!({ "socialAccountId": page, "content": "Bin me" })).await;
    let other_path = format!("/api/v1/marketing/posts/{}", other_draft["id"].as_str().unwrap());
    let (status, _) = call(&world.app, Method::DELETE, &other_path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&world.app, Method::GET, &other_path, Some(&world.merchant), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Filters; another merchant sees nothing; admin routes are super-admin only.
    let (_, published) = call(
        &world.app,
        Method::GET,
        "/api/v1/marketing/posts?status=published&platform=meta",
        Some(&world.merchant),
        None,
    )
    .await;
    assert_eq!(published["meta"]["total"], 1);
    let (status, reply) =
        call(&world.app, Method::GET, "/api/v1/marketing/posts?status=gone", Some(&world.merchant), None)
            .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    world.app.db.create_user("rival@ultra.test", Some("rival-password-1"), "user", &[]);
    let rival = world.app.login("rival@ultra.test", "rival-password-1").await;
    let (status, _) = call(&world.app, Method::GET, &path, Some(&rival), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, reply) = call(
        &world.app,
        Method::POST,
        "/api/v1/marketing/posts",
        Some(&rival),
        Some(json!({ "socialAccountId": page, "content": "mine now" })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    for admin_path in
        ["/api/v1/admin/marketing/accounts", "/api/v1/admin/marketing/posts", "/api/v1/admin/marketing/stats"]
    {
        let (status, _) = call(&world.app, Method::GET, admin_path, Some(&world.merchant), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{admin_path}");
        let (status, _) = call(&world.app, Method::GET, admin_path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{admin_path}");
    }
    let merchant_id = published["data"][0]["userId"].as_str().unwrap().to_owned();
    let (_, listed) = call(
        &world.app,
        Method::GET,
        &format!("/api/v1/admin/marketing/accounts?platform=tiktok&userId={merchant_id}&status=active"),
        Some(&world.admin),
        None,
    )
    .await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
    let (_, listed) = call(
        &world.app,
        Method::GET,
        "/api/v1/admin/marketing/posts?status=published",
        Some(&world.admin),
        None,
    )
    .await;
    assert_eq!(listed["meta"]["total"], 1, "{listed}");
}
