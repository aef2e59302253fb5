//! Subscriptions: the API, renewals by the schedule (once, however many schedulers run),
//! manual renewals, month-end arithmetic, and failing renewals that retry and go overdue.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::{events, payments};
use ultra_tests::{
    MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp,
    receiver::{Behaviour, Receiver},
    redis_url, start_scheduler, start_worker,
};

async fn configure_mvola(app: &TestApp) {
    let admin = app.admin_token().await;
    let response = app
        .client
        .put(app.url("/api/v1/admin/providers/mvola"))
        .bearer_auth(admin)
        .json(&json!({ "mode": "simulation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn create(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = call(app, token, "POST", "/api/v1/subscriptions", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    created["data"].clone()
}

fn subscription(interval: &str, phone: &str, next_renewal_at: DateTime<Utc>) -> Value {
    json!({
        "label": format!("{interval} plan"),
        "customerPhone": phone,
        "amount": "5000",
        "interval": interval,
        "provider": "mvola",
        "nextRenewalAt": next_renewal_at,
    })
}

/// Reads the subscription until `done` holds, failing after `limit`.
async fn subscription_until(
    app: &TestApp,
    token: &str,
    id: &str,
    limit: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let (status, body) = call(app, token, "GET", &format!("/api/v1/subscriptions/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if done(&body["data"]) {
            return body["data"].clone();
        }
        assert!(Instant::now() < deadline, "subscription never got there: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn renewal_payments(db: &DatabaseConnection, subscription_id: &str) -> Vec<payments::Model> {
    payments::Entity::find()
        .filter(payments::Column::SubscriptionId.eq(subscription_id))
        .all(db)
        .await
        .unwrap()
}

async fn renewed_events(db: &DatabaseConnection, subscription_id: &str) -> Vec<events::Model> {
    events::Entity::find()
        .filter(events::Column::ResourceId.eq(subscription_id))
        .filter(events::Column::EventType.eq("subscription.renewed"))
        .all(db)
        .await
        .unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn time_of(value: &Value) -> DateTime<Utc> {
    value.as_str().expect("a timestamp").parse().unwrap()
}

/// Runs the renewal schedule every second.
async fn renew_every_second(db: &DatabaseConnection) {
    RuntimeConfig::set(db, "schedules", json!({ "renew-subscriptions": "* * * * * *" }), None).await.unwrap();
}

#[tokio::test]
async fn a_due_subscription_is_renewed_once_with_two_schedulers_running() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    RuntimeConfig::set(&db, "webhooks", json!({ "allowPrivateUrls": true }), None).await.unwrap();
    configure_mvola(&app).await;
    renew_every_second(&db).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    let endpoint = json!({ "url": receiver.url(), "secret": "whsec-subscriptions-1", "events": ["subscription.renewed"] });
    let (status, body) = call(&app, &token, "POST", "/api/v1/webhooks/endpoints", Some(endpoint)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let due = Utc::now();
    let created = create(&app, &token, subscription("daily", "0340000000", due)).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let dispatch = [("ULTRA_WEBHOOK_DISPATCH_INTERVAL_MS", "100")];
    let _first = start_scheduler(&app.db, &redis_url(), &app.redis_prefix, &dispatch).await;
    let _second = start_scheduler(&app.db, &redis_url(), &app.redis_prefix, &dispatch).await;
    let renewed =
        subscription_until(&app, &token, &id, Duration::from_secs(30), |s| s["renewalCount"] == 1).await;
    // Several more ticks of both schedulers: nothing more is due, so nothing more is charged.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let charged = renewal_payments(&db, &id).await;
    assert_eq!(charged.len(), 1, "one payment for the period: {charged:?}");
    assert_eq!(charged[0].status, payments::PaymentStatus::Completed);
    assert_eq!(charged[0].amount_minor, 500_000);
    let after = subscription_until(&app, &token, &id, Duration::from_secs(1), |_| true).await;
    assert_eq!(after["renewalCount"], 1);
    assert_eq!(
        time_of(&after["nextRenewalAt"]),
        time_of(&created["nextRenewalAt"]) + chrono::Duration::days(1)
    );
    assert_eq!(after["lastPaymentId"], charged[0].id.as_str());
    assert!(after["renewalPaymentId"].is_null());
    assert!(renewed["lastRenewedAt"].is_string());
    let events = renewed_events(&db, &id).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].payload["payment"]["id"], charged[0].id.as_str());
    assert_eq!(time_of(&events[0].payload["nextRenewalAt"]), time_of(&after["nextRenewalAt"]));
    let delivered = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(delivered.len(), 1, "the merchant's endpoint hears of the renewal once");
    let hook = delivered[0].json();
    assert_eq!(hook["type"], "subscription.renewed", "{hook}");
    assert_eq!(hook["data"]["id"], id.as_str(), "{hook}");
    assert_eq!(hook["data"]["payment"]["id"], charged[0].id.as_str(), "{hook}");

    let (status, listed) = call(&app, &token, "GET", "/api/v1/subscriptions?due=today", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        listed["data"].as_array().unwrap().iter().all(|s| s["id"] != id.as_str()),
        "renewed until tomorrow, so no longer due today: {listed}"
    );
}

#[tokio::test]
async fn concurrent_manual_renewals_start_one_payment() {
    let app = TestApp::spawn().await;
    configure_mvola(&app).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let created =
        create(&app, &token, subscription("monthly", "0340000000", at("2027-01-31T08:00:00Z"))).await;
    let id = created["id"].as_str().unwrap().to_owned();

    let renewals = (0..8).map(|_| {
        let (app, token, id) = (&app, &token, &id);
        async move { call(app, token, "POST", &format!("/api/v1/subscriptions/{id}/renew"), None).await }
    });
    let answers = futures::future::join_all(renewals).await;
    let mut payment_ids = std::collections::BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::ACCEPTED, "{body}");
        payment_ids.insert(body["data"]["payment"]["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(payment_ids.len(), 1, "every caller is shown the one renewal payment");
    let started = answers.iter().filter(|(_, body)| body["data"]["alreadyInProgress"] == false).count();
    assert_eq!(started, 1, "one request started it, the others found it running");
    let db = app.db.connect().await;
    assert_eq!(renewal_payments(&db, &id).await.len(), 1);

    // The worker collects it; the period moves on to the end of February.
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let renewed =
        subscription_until(&app, &token, &id, Duration::from_secs(20), |s| s["renewalCount"] == 1).await;
    assert_eq!(time_of(&renewed["nextRenewalAt"]), at("2027-02-28T08:00:00Z"));
}

#[tokio::test]
async fn renewals_keep_to_month_ends_for_every_interval() {
    let app = TestApp::spawn().await;
    configure_mvola(&app).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    // Each schedule starts in the future and is renewed by hand, so the test needs no clock:
    // the first date, then the periods two renewals move it to.
    let cases = [
        ("monthly", "2027-01-31T08:00:00Z", ["2027-02-28T08:00:00Z", "2027-03-31T08:00:00Z"]),
        ("monthly", "2028-01-31T08:00:00Z", ["2028-02-29T08:00:00Z", "2028-03-31T08:00:00Z"]),
        ("quarterly", "2027-11-30T23:30:00Z", ["2028-02-29T23:30:00Z", "2028-05-30T23:30:00Z"]),
        ("annual", "2028-02-29T12:00:00Z", ["2029-02-28T12:00:00Z", "2030-02-28T12:00:00Z"]),
        ("weekly", "2028-02-26T06:00:00Z", ["2028-03-04T06:00:00Z", "2028-03-11T06:00:00Z"]),
        ("daily", "2027-12-31T21:00:00Z", ["2028-01-01T21:00:00Z", "2028-01-02T21:00:00Z"]),
    ];
    for (interval, start, expected) in cases {
        let created = create(&app, &token, subscription(interval, "0340000000", at(start))).await;
        let id = created["id"].as_str().unwrap().to_owned();
        for (n, want) in expected.iter().enumerate() {
            let (status, body) =
                call(&app, &token, "POST", &format!("/api/v1/subscriptions/{id}/renew"), None).await;
            assert_eq!(status, StatusCode::ACCEPTED, "{body}");
            let renewed = subscription_until(&app, &token, &id, Duration::from_secs(20), |s| {
                s["renewalCount"] == n + 1
            })
            .await;
            assert_eq!(
                time_of(&renewed["nextRenewalAt"]),
                at(want),
                "{interval} from {start}, renewal {}",
                n + 1
            );
        }
    }
}

#[tokio::test]
async fn a_failing_renewal_retries_then_goes_overdue() {
    let app = TestApp::spawn().await;
    configure_mvola(&app).await;
    let db = app.db.connect().await;
    renew_every_second(&db).await;
    RuntimeConfig::set(&db, "subscriptions", json!({ "retryDelaysSeconds": [1, 2] }), None).await.unwrap();
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    // A number ending 01 is declined for funds every time.
    let created = create(&app, &token, subscription("monthly", "0340000001", Utc::now())).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let _scheduler = start_scheduler(&app.db, &redis_url(), &app.redis_prefix, &[]).await;

    let overdue =
        subscription_until(&app, &token, &id, Duration::from_secs(40), |s| s["overdue"] == true).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let charged = renewal_payments(&db, &id).await;
    assert_eq!(charged.len(), 3, "the first attempt and two retries, then no more: {charged:?}");
    assert!(charged.iter().all(|p| p.status == payments::PaymentStatus::Failed));
    let mut created_at: Vec<_> = charged.iter().map(|p| p.created_at).collect();
    created_at.sort();
    assert!(created_at[1] - created_at[0] >= chrono::Duration::milliseconds(900), "the first retry waited");
    assert!(
        created_at[2] - created_at[1] >= chrono::Duration::milliseconds(1900),
        "the second waited longer"
    );
    assert_eq!(overdue["renewalAttempts"], 3);
    assert_eq!(overdue["status"], "active");
    assert_eq!(overdue["renewalCount"], 0);
    assert_eq!(
        time_of(&overdue["nextRenewalAt"]),
        time_of(&created["nextRenewalAt"]),
        "the period is still owed"
    );
    assert!(renewed_events(&db, &id).await.is_empty());

    // Pausing and resuming clears the debt's retries and starts from the next period.
    let (status, paused) = call(
        &app,
        &token,
        "PATCH",
        &format!("/api/v1/subscriptions/{id}"),
        Some(json!({ "status": "paused" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{paused}");
    let (status, resumed) = call(
        &app,
        &token,
        "PATCH",
        &format!("/api/v1/subscriptions/{id}"),
        Some(json!({ "status": "active" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["data"]["overdue"], false);
    assert_eq!(resumed["data"]["renewalAttempts"], 0);
    assert!(time_of(&resumed["data"]["nextRenewalAt"]) > Utc::now(), "{resumed}");
}

#[tokio::test]
async fn the_api_validates_filters_and_keeps_merchants_apart() {
    let app = TestApp::spawn().await;
    configure_mvola(&app).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let now = Utc::now();

    let sample = json!({
        "label": "Gym membership",
        "customerPhone": "0340000000",
        "amount": "25000",
        "description": "Monthly gym access",
        "interval": "monthly",
        "nextRenewalAt": now + chrono::Duration::days(3),
        "metadata": { "plan": "gold" },
    });
    let created = create(&app, &token, sample).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("sub_"));
    assert_eq!(created["provider"], "mvola", "the seed's default");
    assert_eq!(created["currency"], "MGA");
    assert_eq!(created["status"], "active");
    assert_eq!(created["amount"], "25000");
    assert_eq!(created["customerPhone"], "0340000000");
    assert_eq!(created["metadata"]["plan"], "gold");
    assert_eq!(created["overdue"], false);
    let due_today = create(&app, &token, subscription("weekly", "0340000000", now)).await;

    let (_, due) = call(&app, &token, "GET", "/api/v1/subscriptions?due=today", None).await;
    let due_ids: Vec<&str> =
        due["data"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(due_ids, [due_today["id"].as_str().unwrap()]);
    let (_, first) = call(&app, &token, "GET", "/api/v1/subscriptions?pagination=cursor&limit=1", None).await;
    assert_eq!(first["data"][0]["id"], due_today["id"], "newest first");
    let cursor = first["meta"]["nextCursor"].as_str().unwrap();
    let (_, second) = call(
        &app,
        &token,
        "GET",
        &format!("/api/v1/subscriptions?pagination=cursor&limit=1&cursor={cursor}"),
        None,
    )
    .await;
    assert_eq!(second["data"][0]["id"], id.as_str());
    assert_eq!(second["meta"]["hasMore"], false);

    let bad = [
        (
            json!({ "label": "", "customerPhone": "0340000000", "amount": "1", "interval": "daily", "nextRenewalAt": now }),
            "label",
        ),
        (
            json!({ "label": "x", "customerPhone": "0340000000", "amount": "10.50", "interval": "daily", "nextRenewalAt": now }),
            "amount",
        ),
        (
            json!({ "label": "x", "customerPhone": "0340000000", "amount": "0", "interval": "daily", "nextRenewalAt": now }),
            "amount",
        ),
        (
            json!({ "label": "x", "customerPhone": "0340000000", "amount": "1", "currency": "USD", "interval": "daily", "nextRenewalAt": now }),
            "currency",
        ),
        (
            json!({ "label": "x", "customerPhone": "0330000000", "amount": "1", "interval": "daily", "nextRenewalAt": now }),
            "customerPhone",
        ),
        (
            json!({ "label": "x", "customerPhone": "0340000000", "amount": "1", "interval": "hourly", "nextRenewalAt": now }),
            "interval",
        ),
        (
            json!({ "label": "x", "customerPhone": "0340000000", "amount": "1", "interval": "daily", "nextRenewalAt": "2020-01-01T00:00:00Z" }),
            "nextRenewalAt",
        ),
        (
            json!({ "label": "x", "customerPhone": "0330000000", "amount": "1", "interval": "daily", "provider": "airtel", "nextRenewalAt": now }),
            "provider",
        ),
        (
            json!({ "label": "x", "customerPhone": "0340000000", "amount": "1", "interval": "daily", "nextRenewalAt": now, "metadata": [1] }),
            "metadata",
        ),
    ];
    for (body, field) in bad {
        let (status, answer) = call(&app, &token, "POST", "/api/v1/subscriptions", Some(body.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        assert!(answer["error"].as_str().unwrap().contains(field), "{field}: {answer}");
    }

    let path = format!("/api/v1/subscriptions/{id}");
    let (status, empty) = call(&app, &token, "PATCH", &path, Some(json!({}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{empty}");
    let (status, moved) = call(
        &app,
        &token,
        "PATCH",
        &path,
        Some(json!({ "amount": "30000", "interval": "quarterly", "nextRenewalAt": "2027-08-31T10:00:00Z" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{moved}");
    assert_eq!(moved["data"]["amount"], "30000");
    assert_eq!(moved["data"]["interval"], "quarterly");
    let (status, cancelled) =
        call(&app, &token, "PATCH", &path, Some(json!({ "status": "cancelled" }))).await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    let (status, refused) = call(&app, &token, "PATCH", &path, Some(json!({ "status": "active" }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    let (status, refused) = call(&app, &token, "POST", &format!("{path}/renew"), None).await;
    assert_eq!(status, StatusCode::CONFLICT, "a cancelled subscription is not renewed: {refused}");

    // Another merchant sees none of it.
    let other_email = "other-shop@ultra.test";
    app.db.create_user(other_email, Some("other-password-1"), "user", &["--tier", "pro-plus"]);
    let other = app.login(other_email, "other-password-1").await;
    for (method, suffix, body) in [
        ("GET", "", None),
        ("PATCH", "", Some(json!({ "label": "mine now" }))),
        ("DELETE", "", None),
        ("POST", "/renew", None),
    ] {
        let (status, answer) = call(&app, &other, method, &format!("{path}{suffix}"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {suffix}: {answer}");
    }
    let (_, theirs) = call(&app, &other, "GET", "/api/v1/subscriptions", None).await;
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0);
    let (status, _) = call(&app, &other, "GET", "/api/v1/subscriptions?userId=someone", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = app.admin_token().await;
    let merchant_id = created["merchantId"].as_str().unwrap();
    let (_, all) =
        call(&app, &admin, "GET", &format!("/api/v1/subscriptions?userId={merchant_id}"), None).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 2);

    let (status, deleted) = call(&app, &token, "DELETE", &path, None).await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    let (status, _) = call(&app, &token, "GET", &path, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
