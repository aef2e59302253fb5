//! Login, session and logout on the ultra surface.

use std::time::Duration;

use reqwest::{StatusCode, header::SET_COOKIE};
use serde_json::{Value, json};
use ultra_tests::{ADMIN_EMAIL, ADMIN_PASSWORD, MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp};

async fn session(app: &TestApp, token: &str) -> reqwest::Response {
    app.client.get(app.url("/api/v1/auth/session")).bearer_auth(token).send().await.unwrap()
}

#[tokio::test]
async fn logged_out_token_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    let response = session(&app, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["data"]["user"]["email"], MERCHANT_EMAIL);
    assert_eq!(body["data"]["user"]["role"], "user");

    let logout = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    let cleared = logout.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cleared.starts_with("auth_token=;"), "logout clears the cookie: {cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    let after = session(&app, &token).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    let body: Value = after.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["meta"]["code"], "unauthorized");
}

#[tokio::test]
async fn revocation_reaches_every_replica_at_once() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let on_replica = |token: String| {
        let url = format!("{}/api/v1/auth/session", replica.base);
        let client = app.client.clone();
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    // The replica comes to answer from its session cache…
    let mut cached = false;
    for _ in 0..50 {
        assert_eq!(on_replica(token.clone()).await, StatusCode::OK);
        if replica.cache_hits("sessions").await > 0 {
            cached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(cached, "the replica never answered from its session cache");

    // …and still refuses the token the moment it is revoked elsewhere.
    let logout = app.client.post(app.url("/api/v1/auth/logout")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(on_replica(token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_account_change_reaches_a_replica_that_cached_the_session() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let admin = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let session_on_replica = || async {
        let url = format!("{}/api/v1/auth/session", replica.base);
        let response = app.client.get(url).bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json::<Value>().await.unwrap()["data"]["user"].clone()
    };
    let mut user = session_on_replica().await;
    for _ in 0..50 {
        if replica.cache_hits("sessions").await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        user = session_on_replica().await;
    }
    assert!(replica.cache_hits("sessions").await > 0, "the replica never answered from its session cache");
    let tier = if user["tier"] == "starter" { "enterprise" } else { "starter" };

    let path = format!("/api/v1/admin/users/{}", user["id"].as_str().unwrap());
    let changed = app
        .client
        .patch(app.url(&path))
        .bearer_auth(&admin)
        .json(&json!({ "tier": tier }))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(session_on_replica().await["tier"], tier);
}

#[tokio::test]
async fn cookie_auth_works_and_the_cookie_is_http_only() {
    let app = TestApp::spawn().await;
    let login = app
        .post_json("/api/v1/auth/login", &json!({ "email": MERCHANT_EMAIL, "password": MERCHANT_PASSWORD }))
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let set_cookie = login.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("Max-Age=86400"), "TTL from AUTH_COOKIE_TTL_SECONDS: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let with_cookie =
        app.client.get(app.url("/api/v1/auth/session")).header("Cookie", &cookie).send().await.unwrap();
    assert_eq!(with_cookie.status(), StatusCode::OK);
    let body: Value = with_cookie.json().await.unwrap();
    assert_eq!(body["data"]["user"]["email"], MERCHANT_EMAIL);

    let anonymous = app.client.get(app.url("/api/v1/auth/session")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let forged = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .header("Cookie", "auth_token=not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn eleventh_login_within_a_minute_from_one_ip_is_rate_limited() {
    let app = TestApp::spawn().await;
    for attempt in 1..=10u32 {
        let password = if attempt % 2 == 0 { MERCHANT_PASSWORD } else { "wrong-password" };
        let response = app
            .post_json("/api/v1/auth/login", &json!({ "email": MERCHANT_EMAIL, "password": password }))
            .await;
        assert_ne!(response.status(), StatusCode::TOO_MANY_REQUESTS, "attempt {attempt}");
        assert_eq!(response.headers()["x-ratelimit-limit"], "10");
        assert_eq!(response.headers()["x-ratelimit-remaining"].to_str().unwrap(), (10 - attempt).to_string());
    }
    let eleventh = app
        .post_json("/api/v1/auth/login", &json!({ "email": MERCHANT_EMAIL, "password": MERCHANT_PASSWORD }))
        .await;
    assert_eq!(eleventh.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = eleventh.headers().clone();
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let reset: u64 = headers["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    assert!(reset > now && reset <= now + 61, "reset {reset} is a timestamp within the window");
    let body: Value = eleventh.json().await.unwrap();
    assert_eq!(body["meta"]["code"], "rate_limited");

    // The admin login shares the per-IP budget; other routes are not limited by it.
    let admin = app
        .post_json("/api/v1/admin/auth/login", &json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .await;
    assert_eq!(admin.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.client.get(app.url("/healthz")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let app = TestApp::spawn().await;
    let attempt = |email: &'static str| {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/login");
        async move {
            let response = client
                .post(url)
                .json(&json!({ "email": email, "password": "not-the-password" }))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let mut headers = response.headers().clone();
            for volatile in
                ["x-request-id", "x-process-time", "date", "x-ratelimit-remaining", "x-ratelimit-reset"]
            {
                headers.remove(volatile);
            }
            (status, headers, response.text().await.unwrap())
        }
    };
    let wrong_password = attempt(MERCHANT_EMAIL).await;
    let unknown_email = attempt("nobody@ultra.test").await;
    assert_eq!(wrong_password.0, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_password, unknown_email);
}

#[tokio::test]
async fn passwordless_login_only_when_runtime_config_allows_it() {
    let app = TestApp::spawn().await;
    app.db.create_user("nopass@ultra.test", None, "user", &[]);
    let login = || {
        app.client.post(app.url("/api/v1/auth/login")).json(&json!({ "email": "nopass@ultra.test" })).send()
    };
    let refused = login().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("passwordless login is disabled"), "{body}");

    let db = app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(&db, "passwordlessLogin", json!(true), None)
        .await
        .unwrap();
    // Runtime config reaches running processes within seconds.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let accepted = login().await.unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);

    // An account that has a password still needs it.
    let with_password_account =
        app.post_json("/api/v1/auth/login", &json!({ "email": MERCHANT_EMAIL })).await;
    assert_eq!(with_password_account.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn admin_login_is_for_admins_and_admins_can_act_as_the_primary_merchant() {
    let app = TestApp::spawn().await;
    let merchant_attempt = app
        .post_json(
            "/api/v1/admin/auth/login",
            &json!({ "email": MERCHANT_EMAIL, "password": MERCHANT_PASSWORD }),
        )
        .await;
    assert_eq!(merchant_attempt.status(), StatusCode::FORBIDDEN);

    let admin = app
        .post_json("/api/v1/admin/auth/login", &json!({ "email": ADMIN_EMAIL, "password": ADMIN_PASSWORD }))
        .await;
    assert_eq!(admin.status(), StatusCode::OK);
    let token = admin.json::<Value>().await.unwrap()["data"]["token"].as_str().unwrap().to_owned();

    let plain: Value = session(&app, &token).await.json().await.unwrap();
    assert!(plain["data"]["actingAs"].is_null());
    let as_merchant: Value = app
        .client
        .get(app.url("/api/v1/auth/session"))
        .bearer_auth(&token)
        .header("X-App-Context", "merchant")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_merchant["data"]["user"]["email"], ADMIN_EMAIL);
    assert_eq!(as_merchant["data"]["actingAs"]["email"], MERCHANT_EMAIL);

    // Acting as a merchant, the admin has no admin powers.
    let listing = app
        .client
        .get(app.url("/api/v1/admin/users"))
        .bearer_auth(&token)
        .header("X-App-Context", "merchant")
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn().await;
    let short = ultra_tests::start_api(&app.db, &app.redis_prefix, &[("AUTH_COOKIE_TTL_SECONDS", "2")]).await;
    let login = app
        .client
        .post(format!("{}/api/v1/auth/login", short.base))
        .json(&json!({ "email": MERCHANT_EMAIL, "password": MERCHANT_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::OK);
    assert!(login.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=2"));
    let token = login.json::<Value>().await.unwrap()["data"]["token"].as_str().unwrap().to_owned();
    assert_eq!(session(&app, &token).await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(session(&app, &token).await.status(), StatusCode::UNAUTHORIZED);
}
