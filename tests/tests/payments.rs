//! Payments in simulation mode: initiation, collection by a worker, the ledger, the events,
//! expiry, retries, tenancy and validation.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_entity::{events, jobs};
use ultra_tests::{MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp, redis_url, start_scheduler, start_worker};

async fn configure(app: &TestApp, provider: &str, body: Value) {
    let admin = app.admin_token().await;
    let response = app
        .client
        .put(app.url(&format!("/api/v1/admin/providers/{provider}")))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn pay(app: &TestApp, token: &str, body: Value, wait: Option<u64>) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url("/api/v1/payments")).bearer_auth(token).json(&body);
    if let Some(seconds) = wait {
        request = request.header("Prefer", format!("wait={seconds}"));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn get(app: &TestApp, token: &str, path: &str) -> (StatusCode, Value) {
    let response = app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn the_seed_sample_is_collected_and_credits_the_merchant() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    configure(&app, "mvola", json!({ "mode": "simulation" })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    let sample = json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000", "description": "Order #1234" });
    let (status, body) = pay(&app, &token, sample, Some(5)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let payment = &body["data"];
    assert_eq!(payment["status"], "completed", "{body}");
    assert_eq!(payment["amount"], "10000");
    assert_eq!(payment["currency"], "MGA");
    assert_eq!(payment["description"], "Order #1234");
    assert_eq!(payment["job"]["status"], "succeeded");
    let id = payment["id"].as_str().unwrap().to_owned();

    let db = app.db.connect().await;
    let merchant = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap();
    let account = ultra_domain::ledger::find_account(&db, &format!("merchant:{}:MGA:available", merchant.id))
        .await
        .unwrap()
        .expect("the merchant has a ledger account");
    assert_eq!(account.balance_minor, 1_000_000, "10000 MGA in minor units");
    let recorded = events::Entity::find().filter(events::Column::ResourceId.eq(&id)).all(&db).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].event_type, "payment.completed");
    assert_eq!(recorded[0].sequence, 1);

    let (status, fetched) = get(&app, &token, &format!("/api/v1/payments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["data"]["status"], "completed");
    assert!(fetched["data"]["providerTransactionId"].as_str().unwrap().starts_with("SIM-"));
}

#[tokio::test]
async fn test_numbers_decide_the_outcome_and_a_provider_outage_is_retried() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    configure(&app, "airtel", json!({ "mode": "simulation" })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    let (_, declined) = pay(
        &app,
        &token,
        json!({ "provider": "airtel", "amount": "500", "customerPhone": "0331234501" }),
        Some(5),
    )
    .await;
    assert_eq!(declined["data"]["status"], "failed", "{declined}");
    assert_eq!(declined["data"]["failureReason"], "insufficient funds");

    let (_, outage) = pay(
        &app,
        &token,
        json!({ "provider": "airtel", "amount": "500", "customerPhone": "0331234503" }),
        Some(10),
    )
    .await;
    assert_eq!(outage["data"]["status"], "completed", "{outage}");
    let db = app.db.connect().await;
    let job = jobs::Entity::find_by_id(outage["data"]["job"]["id"].as_str().unwrap())
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.attempts, 2, "the outage was retried once");
    let completions = events::Entity::find()
        .filter(events::Column::ResourceId.eq(outage["data"]["id"].as_str().unwrap()))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(completions.len(), 1, "the customer is charged once");
}

#[tokio::test]
async fn an_unconfirmed_payment_expires() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(&db, "paymentExpirySeconds", json!(1), None)
        .await
        .unwrap();
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "schedules",
        json!({ "expire-payments": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let _scheduler = start_scheduler(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    configure(&app, "orange", json!({ "mode": "simulation" })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    // Providers take whole Ariary: cents are refused up front, naming the field.
    let (status, refused) = pay(
        &app,
        &token,
        json!({ "provider": "orange", "amount": "75.50", "customerPhone": "0321234502" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["meta"]["field"], "amount");

    let (_, body) = pay(
        &app,
        &token,
        json!({ "provider": "orange", "amount": "7550", "customerPhone": "0321234502" }),
        None,
    )
    .await;
    assert_eq!(body["data"]["status"], "pending", "{body}");
    assert_eq!(body["data"]["amount"], "7550");
    let id = body["data"]["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, fetched) = get(&app, &token, &format!("/api/v1/payments/{id}")).await;
        if fetched["data"]["status"] == "expired" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", fetched["data"]["status"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let recorded = events::Entity::find().filter(events::Column::ResourceId.eq(&id)).all(&db).await.unwrap();
    assert_eq!(recorded.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(), ["payment.expired"]);
}

#[tokio::test]
async fn bad_payments_are_refused_naming_the_problem() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let (status, body) = pay(
        &app,
        &token,
        json!({ "provider": "mvola", "amount": "100", "customerPhone": "0340000000" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("not configured"), "{body}");

    configure(&app, "mvola", json!({ "mode": "simulation", "enabled": false })).await;
    let (status, body) = pay(
        &app,
        &token,
        json!({ "provider": "mvola", "amount": "100", "customerPhone": "0340000000" }),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("disabled"), "{body}");
    configure(&app, "mvola", json!({ "mode": "simulation", "enabled": true })).await;

    for (body, field) in [
        (json!({ "provider": "mvola", "amount": "1.234", "customerPhone": "0340000000" }), "amount"),
        (json!({ "provider": "mvola", "amount": "0", "customerPhone": "0340000000" }), "amount"),
        (json!({ "provider": "mvola", "amount": "100", "customerPhone": "0330000000" }), "customerPhone"),
        (json!({ "provider": "paypal", "amount": "100", "customerPhone": "0340000000" }), "provider"),
        (
            json!({ "provider": "mvola", "amount": "100", "customerPhone": "0340000000", "metadata": [1] }),
            "metadata",
        ),
        (json!({ "provider": "mvola", "customerPhone": "0340000000" }), "amount"),
    ] {
        let (status, response) = pay(&app, &token, body.clone(), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {response}");
        assert_eq!(response["meta"]["field"], field, "{body}: {response}");
    }
}

#[tokio::test]
async fn merchants_see_only_their_own_payments_and_retries_replay() {
    let app = TestApp::spawn().await;
    configure(&app, "mvola", json!({ "mode": "simulation" })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    app.db.create_user("rival@ultra.test", Some("rival-password"), "user", &[]);
    let rival = app.login("rival@ultra.test", "rival-password").await;

    let body = json!({ "provider": "mvola", "amount": "100", "customerPhone": "0340000000", "metadata": { "order": 7 } });
    let first = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "order-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let first: Value = first.json().await.unwrap();
    let again = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&token)
        .header("Idempotency-Key", "order-7")
        .json(&body)
        .send()
        .await
        .unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["data"]["id"], again["data"]["id"], "a retried request is the same payment");
    let id = first["data"]["id"].as_str().unwrap();
    assert_eq!(first["data"]["metadata"]["order"], 7);

    let (status, _) = get(&app, &rival, &format!("/api/v1/payments/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, listed) = get(&app, &rival, "/api/v1/payments").await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0);
    let (_, mine) = get(&app, &token, "/api/v1/payments?status=pending").await;
    assert_eq!(mine["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine["meta"]["total"], 1);
    let (status, _) = get(&app, &token, "/api/v1/payments?merchantId=someone").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = app.admin_token().await;
    let (_, all) = get(&app, &admin, "/api/v1/payments?pagination=cursor&limit=10").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_thirty_first_payment_in_a_minute_is_rate_limited() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    // Not configured: each request is refused with 400, but still counts.
    for _ in 0..30 {
        let (status, _) = pay(
            &app,
            &token,
            json!({ "provider": "mvola", "amount": "1", "customerPhone": "0340000000" }),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let response = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&token)
        .json(&json!({ "provider": "mvola", "amount": "1", "customerPhone": "0340000000" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
}
