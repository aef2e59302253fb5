//! `Idempotency-Key` on mutations, shown on `POST /api/v1/admin/users`.

use reqwest::StatusCode;
use serde_json::{Value, json};
use ultra_entity::idempotency_keys::{self, IdempotencyState};
use ultra_tests::TestApp;

async fn create_user(app: &TestApp, token: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/admin/users"))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn users_with_email(app: &TestApp, token: &str, email: &str) -> usize {
    let body: Value = app
        .client
        .get(app.url(&format!("/api/v1/admin/users?search={email}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["data"].as_array().unwrap().iter().filter(|u| u["email"] == email).count()
}

#[tokio::test]
async fn replay_returns_the_stored_response_byte_for_byte() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let body = json!({ "email": "replay@ultra.test", "name": "Replay", "password": "password-123" });

    let first = create_user(&app, &token, "key-replay-1", &body).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first_bytes = first.bytes().await.unwrap();

    let second = create_user(&app, &token, "key-replay-1", &body).await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.bytes().await.unwrap(), first_bytes);
    assert_eq!(users_with_email(&app, &token, "replay@ultra.test").await, 1);

    // The same body re-sent with other key order and spacing is the same request.
    let reordered = app
        .client
        .post(app.url("/api/v1/admin/users"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "key-replay-1")
        .header("Content-Type", "application/json")
        .body(r#"{ "password" : "password-123", "name":"Replay", "email":"replay@ultra.test" }"#)
        .send()
        .await
        .unwrap();
    assert_eq!(reordered.status(), StatusCode::CREATED);
    assert_eq!(reordered.bytes().await.unwrap(), first_bytes);
}

#[tokio::test]
async fn a_different_body_with_the_same_key_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let first =
        create_user(&app, &token, "key-diff", &json!({ "email": "one@ultra.test", "name": "One" })).await;
    assert_eq!(first.status(), StatusCode::CREATED);

    let other =
        create_user(&app, &token, "key-diff", &json!({ "email": "two@ultra.test", "name": "Two" })).await;
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = other.json().await.unwrap();
    assert_eq!(body["meta"]["code"], "idempotency_key_reused");
    assert_eq!(users_with_email(&app, &token, "two@ultra.test").await, 0);
}

#[tokio::test]
async fn keys_are_private_to_each_caller() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    app.db.create_user("second-admin@ultra.test", Some("password-456"), "admin", &[]);
    let other_admin = app.login("second-admin@ultra.test", "password-456").await;

    let mine =
        create_user(&app, &admin, "shared-key", &json!({ "email": "a1@ultra.test", "name": "A" })).await;
    assert_eq!(mine.status(), StatusCode::CREATED);
    let theirs =
        create_user(&app, &other_admin, "shared-key", &json!({ "email": "a2@ultra.test", "name": "B" }))
            .await;
    assert_eq!(theirs.status(), StatusCode::CREATED, "another caller's key does not collide");
}

#[tokio::test]
async fn twenty_concurrent_requests_with_one_key_create_one_effect() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let body = json!({ "email": "race@ultra.test", "name": "Race", "password": "password-123" });

    let mut tasks = Vec::new();
    for _ in 0..20 {
        let client = app.client.clone();
        let url = app.url("/api/v1/admin/users");
        let (token, body) = (token.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "race-key")
                .json(&body)
                .send()
                .await
                .unwrap();
            (response.status(), response.bytes().await.unwrap())
        }));
    }
    let mut created = Vec::new();
    for task in tasks {
        let (status, bytes) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created.push(bytes),
            StatusCode::CONFLICT => {
                let body: Value = serde_json::from_slice(&bytes).unwrap();
                assert_eq!(body["meta"]["code"], "idempotency_in_flight", "{body}");
            }
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&bytes)),
        }
    }
    assert!(!created.is_empty());
    assert!(created.iter().all(|bytes| *bytes == created[0]), "every success is the one stored response");
    assert_eq!(users_with_email(&app, &token, "race@ultra.test").await, 1);

    // Once the first finished, a retry replays it.
    let retry = create_user(&app, &token, "race-key", &body).await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(retry.bytes().await.unwrap(), created[0]);
}

#[tokio::test]
async fn a_failed_request_releases_its_key() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let taken = json!({ "email": ultra_tests::MERCHANT_EMAIL, "name": "Dup" });
    let conflict = create_user(&app, &token, "key-release", &taken).await;
    assert_eq!(conflict.status(), StatusCode::CONFLICT);
    let body: Value = conflict.json().await.unwrap();
    assert_eq!(body["meta"]["code"], "email_taken");
    let again = create_user(&app, &token, "key-release", &taken).await;
    assert_eq!(again.status(), StatusCode::CONFLICT, "the effect runs again rather than replaying nothing");
}

#[tokio::test]
async fn a_key_is_replayed_only_for_its_endpoints_ttl() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "idempotencyTtl",
        json!({ "defaultSeconds": 86400, "endpoints": { "POST /api/v1/admin/users": 1 } }),
        None,
    )
    .await
    .unwrap();
    // Runtime config reaches running processes within seconds.
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let token = app.admin_token().await;

    let first =
        create_user(&app, &token, "short-lived", &json!({ "email": "ttl1@ultra.test", "name": "T1" })).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after_expiry =
        create_user(&app, &token, "short-lived", &json!({ "email": "ttl2@ultra.test", "name": "T2" })).await;
    assert_eq!(after_expiry.status(), StatusCode::CREATED, "an expired key is a new request");
    assert_eq!(users_with_email(&app, &token, "ttl2@ultra.test").await, 1);
}

/// What a request that died mid-way leaves behind: its claim on the key, committed apart from
/// its effect, which rolled back with its connection.
async fn dead_claim(app: &TestApp, scope: &str, key: &str, endpoint: &str, body: &Value) {
    use sea_orm::{ActiveModelTrait, Set};
    use sha2::{Digest, Sha256};
    let now = chrono::Utc::now();
    idempotency_keys::ActiveModel {
        scope: Set(scope.to_owned()),
        key: Set(key.to_owned()),
        endpoint: Set(endpoint.to_owned()),
        request_hash: Set(hex::encode(Sha256::digest(serde_json::to_vec(body).unwrap()))),
        state: Set(IdempotencyState::InFlight),
        locked_at: Set(now),
        claim_token: Set(Some("a-request-that-died".to_owned())),
        expires_at: Set(now + chrono::Duration::hours(1)),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(&app.db.connect().await)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_dead_requests_claim_is_taken_over_within_seconds() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let admin = ultra_domain::users::find_by_email(&app.db.connect().await, ultra_tests::ADMIN_EMAIL)
        .await
        .unwrap()
        .unwrap();
    let body = json!({ "email": "crashed@ultra.test", "name": "Crashed", "password": "password-123" });
    dead_claim(&app, &admin.id, "key-of-a-crash", "POST /api/v1/admin/users", &body).await;
    let died = std::time::Instant::now();

    // The claim is fresh: for now it may still be a live request.
    let early = create_user(&app, &token, "key-of-a-crash", &body).await;
    assert_eq!(early.status(), StatusCode::CONFLICT);
    assert_eq!(early.json::<Value>().await.unwrap()["meta"]["code"], "idempotency_in_flight");
    let created = loop {
        let response = create_user(&app, &token, "key-of-a-crash", &body).await;
        if response.status() == StatusCode::CREATED {
            break died.elapsed();
        }
        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert!(died.elapsed() < std::time::Duration::from_secs(10), "the dead claim was never taken over");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(created >= std::time::Duration::from_secs(4), "taken over only once stale: {created:?}");
    assert!(created < std::time::Duration::from_secs(7), "taken over within seconds: {created:?}");
    assert_eq!(users_with_email(&app, &token, "crashed@ultra.test").await, 1);
    let replay = create_user(&app, &token, "key-of-a-crash", &body).await;
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
}

/// A live request slower than the stale time keeps its claim: it refreshes it while it runs.
#[tokio::test]
async fn a_slow_live_request_keeps_its_claim() {
    if std::env::var("ULTRA_TEST_DB").as_deref() == Ok("sqlite") {
        // SQLite locks the whole file: no lock can stall one request's effect and not its claim.
        return;
    }
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let body = json!({ "email": "slow@ultra.test", "name": "Slow", "password": "password-123" });
    let db = app.db.connect().await;
    let hold = db.begin().await.unwrap();
    // New users cannot be written until this transaction ends; reads go on.
    hold.execute_unprepared("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE").await.unwrap();
    let first = {
        let request = app
            .client
            .post(app.url("/api/v1/admin/users"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "key-slow")
            .json(&body);
        tokio::spawn(async move { request.send().await.unwrap().status() })
    };
    // Only once the first request holds the key may the others knock.
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while idempotency_keys::Entity::find()
        .filter(idempotency_keys::Column::Key.eq("key-slow"))
        .one(&db)
        .await
        .unwrap()
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "the first request never claimed its key");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(8) {
        let response = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            create_user(&app, &token, "key-slow", &body),
        )
        .await
        .expect("a request that takes the claim over blocks behind the lock");
        assert_eq!(response.status(), StatusCode::CONFLICT, "a live claim is never taken over");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    hold.rollback().await.unwrap();
    assert_eq!(first.await.unwrap(), StatusCode::CREATED);
    assert_eq!(users_with_email(&app, &token, "slow@ultra.test").await, 1);
}

/// With `Prefer: wait`, the first call answered `completed` while the stored response said
/// `pending`, so a retry of the same key answered otherwise than the first call. The answer
/// given after the wait is the one stored and replayed.
#[tokio::test]
async fn a_retry_replays_what_a_waited_payment_answered() {
    let app = TestApp::spawn().await;
    app.configure_provider("mvola", &json!({ "mode": "simulation" })).await;
    let _worker = ultra_tests::start_worker(&app.db, &ultra_tests::redis_url(), &app.redis_prefix, &[]).await;
    let merchant = app.login(ultra_tests::MERCHANT_EMAIL, ultra_tests::MERCHANT_PASSWORD).await;
    let pay = || {
        app.client
            .post(app.url("/api/v1/payments"))
            .bearer_auth(&merchant)
            .header("Idempotency-Key", "waited-payment-1")
            .header("Prefer", "wait=10")
            .json(&json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" }))
            .send()
    };
    let first = pay().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first = first.text().await.unwrap();
    let answered: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(answered["data"]["status"], "completed", "{answered}");

    let retry = pay().await.unwrap();
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.text().await.unwrap(), first, "the retry answered otherwise than the first call");
}
