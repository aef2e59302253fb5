//! What requests get while a dependency fails: a database that ends every connection, a Redis
//! that stops. Nothing a client sends gets a 500 for it: a request either goes through, or is
//! told to retry (503 with `Retry-After`) when nothing it asked for took effect.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::payments as payment_rows;
use ultra_tests::{
    MERCHANT_EMAIL, MERCHANT_PASSWORD, OwnRedis, TestApp, TestDb, start_api, start_scheduler, start_worker,
};

fn on_sqlite() -> bool {
    std::env::var("ULTRA_TEST_DB").as_deref() == Ok("sqlite")
}

async fn simulate(app: &TestApp, provider: &str) {
    let admin = app.admin_token().await;
    let response = app
        .client
        .put(app.url(&format!("/api/v1/admin/providers/{provider}")))
        .bearer_auth(admin)
        .json(&json!({ "mode": "simulation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// One request of the mix: a payment with or without a key, or a list.
async fn request(
    app: &TestApp,
    token: &str,
    phase: &str,
    index: usize,
) -> (StatusCode, Option<String>, Value) {
    let response = match index % 3 {
        0 => app.client.get(app.url("/api/v1/payments?per_page=5")).bearer_auth(token).send().await,
        kind => {
            let mut request = app
                .client
                .post(app.url("/api/v1/payments"))
                .bearer_auth(token)
                .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }));
            if kind == 2 {
                request = request.header("Idempotency-Key", format!("{phase}-{index}"));
            }
            request.send().await
        }
    }
    .unwrap();
    let status = response.status();
    let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
    (status, retry_after, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn requests_after_postgres_ends_every_connection_go_through_or_are_told_to_retry() {
    if on_sqlite() {
        // An embedded database has no connections to end.
        return;
    }
    let app = TestApp::spawn().await;
    simulate(&app, "mvola").await;
    let rule = json!({ "limit": 1000, "windowSeconds": 60 });
    let limits = json!({ "pro_plus": { "payments": rule, "requests": rule } });
    RuntimeConfig::set(&app.db.connect().await, "rateLimits", limits, None).await.unwrap();
    // The API caches runtime config for two seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    // Fill the API's pool with connections that will all be ended.
    let warm: Vec<_> = (0..30).map(|i| request(&app, &token, "warm", i)).collect();
    for (status, _, body) in futures::future::join_all(warm).await {
        assert!(status.is_success(), "{status} {body}");
    }
    let db = app.db.connect().await;
    let ended = db
        .execute_unprepared(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    assert!(ended.rows_affected() > 0);
    let before = payment_rows::Entity::find().count(&db).await.unwrap();

    let started = Instant::now();
    let answers = futures::future::join_all((0..60).map(|i| request(&app, &token, "cut", i))).await;
    let took = started.elapsed();
    let mut accepted = 0;
    for (index, (status, retry_after, body)) in answers.iter().enumerate() {
        match *status {
            StatusCode::OK => {}
            StatusCode::ACCEPTED => accepted += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(body["meta"]["code"], "database_unavailable", "{body}");
                assert_eq!(retry_after.as_deref(), Some("1"), "{body}");
                // Told to retry, so it had changed nothing: retrying goes through.
                let (again, _, body) = request(&app, &token, "cut", index).await;
                assert!(again.is_success(), "{again} {body}");
                if again == StatusCode::ACCEPTED {
                    accepted += 1;
                }
            }
            other => panic!("request {index} got {other}: {body}"),
        }
    }
    let after = payment_rows::Entity::find().count(&db).await.unwrap();
    assert_eq!(after - before, accepted, "every accepted payment was written, and only those");
    assert!(took < Duration::from_secs(10), "answered in {took:?}");
}

#[tokio::test]
async fn payments_are_taken_while_redis_is_down_and_collected_once_it_is_back() {
    let mut redis = OwnRedis::start().await;
    let db = TestDb::seeded().await;
    let prefix = format!("test:{}:", ulid::Ulid::new().to_string().to_lowercase());
    let api = start_api(&db, &prefix, &[("REDIS_URL", redis.url.as_str())]).await;
    let app = TestApp { db, api, redis_prefix: prefix.clone(), client: reqwest::Client::new() };
    simulate(&app, "mvola").await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let _worker = start_worker(&app.db, &redis.url, &prefix, &[]).await;
    let _scheduler = start_scheduler(&app.db, &redis.url, &prefix, &[]).await;

    redis.stop();
    let mut taken = Vec::new();
    for (index, wait) in [(1, None), (2, None), (4, Some(2))] {
        let started = Instant::now();
        let mut request = app
            .client
            .post(app.url("/api/v1/payments"))
            .bearer_auth(&token)
            .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }));
        if index == 2 {
            request = request.header("Idempotency-Key", "during-the-outage");
        }
        if let Some(seconds) = wait {
            request = request.header("Prefer", format!("wait={seconds}"));
        }
        let response = request.send().await.unwrap();
        let took = started.elapsed();
        assert_eq!(response.status(), StatusCode::ACCEPTED);
        let limit = Duration::from_secs(wait.unwrap_or(0)) + Duration::from_millis(1500);
        assert!(took < limit, "answered in {took:?} with Redis down");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["status"], "pending", "no worker can take the job yet: {body}");
        taken.push(body["data"]["id"].as_str().unwrap().to_owned());
    }
    let (status, _, body) = request(&app, &token, "down", 0).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Logins are limited per client IP against guessing; with no Redis to count them they
    // are refused, and told when to come back.
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": MERCHANT_EMAIL, "password": MERCHANT_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(response.json::<Value>().await.unwrap()["meta"]["code"], "rate_limit_unavailable");

    // Redis comes back empty: the relay pushes the jobs it never carried, and every payment
    // taken meanwhile is collected.
    redis.restart().await;
    let back = Instant::now();
    for id in &taken {
        loop {
            let (_, payment) = get(&app, &token, &format!("/api/v1/payments/{id}")).await;
            if payment["data"]["status"] == "completed" {
                break;
            }
            assert!(back.elapsed() < Duration::from_secs(30), "payment {id} stayed {payment}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let response = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({ "email": MERCHANT_EMAIL, "password": MERCHANT_PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}
