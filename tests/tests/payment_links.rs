//! Payment links: the merchant's CRUD with its rules and tenancy, the public view and payment,
//! the use limit under concurrent payers, expiry and its schedule, and the hosted checkout page
//! driven in a headless Chromium.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chrono::Utc;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_entity::{
    audit_logs, events, jobs,
    payment_links::{self, PaymentLinkStatus},
    payments::{self, PaymentStatus},
};
use ultra_tests::{
    LiveWorld, MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp, free_port, redis_url, start_scheduler,
    start_worker,
};

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

async fn configure(app: &TestApp, provider: &str, body: Value) {
    let admin = app.admin_token().await;
    let path = format!("/api/v1/admin/providers/{provider}");
    let (status, reply) = call(app, Method::PUT, &path, Some(&admin), Some(body)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
}

async fn create_link(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, reply) = call(app, Method::POST, "/api/v1/payment-links", Some(token), Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    reply["data"].clone()
}

async fn pay(app: &TestApp, link: &str, provider: &str, phone: &str) -> (StatusCode, Value) {
    let body = json!({ "provider": provider, "customerPhone": phone });
    call(app, Method::POST, &format!("/api/v1/public/payment-links/{link}/pay"), None, Some(body)).await
}

/// Asserts a 400 that names `field`.
fn assert_refused_field(status: StatusCode, reply: &Value, field: &str) {
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["meta"]["code"], "validation_error", "{reply}");
    assert_eq!(reply["meta"]["field"], field, "{reply}");
}

async fn audit_actions(db: &DatabaseConnection, entity_id: &str) -> Vec<String> {
    audit_logs::Entity::find()
        .filter(audit_logs::Column::EntityId.eq(entity_id))
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect()
}

async fn stored_link(db: &DatabaseConnection, id: &str) -> payment_links::Model {
    payment_links::Entity::find_by_id(id).one(db).await.unwrap().expect("the link exists")
}

/// Waits until `done` holds, failing with `what` after `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn merchants_create_list_update_and_delete_their_own_links_only() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let db = app.db.connect().await;

    let (status, _) = call(&app, Method::GET, "/api/v1/payment-links", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let plain = create_link(&app, &token, json!({ "title": "Coffee beans 1 kg", "amount": "25000" })).await;
    let id = plain["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("plink_"), "{plain}");
    assert_eq!(plain["status"], "active");
    assert_eq!(plain["amount"], "25000");
    assert_eq!(plain["currency"], "MGA");
    assert_eq!(plain["usesCount"], 0);
    assert!(plain["maxUses"].is_null() && plain["remainingUses"].is_null() && plain["providers"].is_null());
    assert_eq!(plain["url"], format!("{}/pay/{id}", app.api.base));

    let expires = (Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let limited = create_link(
        &app,
        &token,
        json!({ "title": "Workshop seat", "amount": "150000.00", "currency": "MGA", "maxUses": 2,
                "expiresAt": expires, "providers": ["mvola", "airtel"], "metadata": { "event": "w-42" } }),
    )
    .await;
    let limited_id = limited["id"].as_str().unwrap().to_owned();
    assert_eq!(limited["amount"], "150000");
    assert_eq!(limited["maxUses"], 2);
    assert_eq!(limited["remainingUses"], 2);
    assert_eq!(limited["providers"], json!(["mvola", "airtel"]));
    assert_eq!(limited["metadata"], json!({ "event": "w-42" }));

    // Every rule names its field.
    let past = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let invalid = [
        (json!({ "amount": "100" }), "title"),
        (json!({ "title": "   ", "amount": "100" }), "title"),
        (json!({ "title": "x".repeat(256), "amount": "100" }), "title"),
        (json!({ "title": "t" }), "amount"),
        (json!({ "title": "t", "amount": "10.50" }), "amount"),
        (json!({ "title": "t", "amount": "ten" }), "amount"),
        (json!({ "title": "t", "amount": "0" }), "amount"),
        (json!({ "title": "t", "amount": "100", "currency": "KES" }), "currency"),
        (json!({ "title": "t", "amount": "100", "maxUses": 0 }), "maxUses"),
        (json!({ "title": "t", "amount": "100", "maxUses": 1.5 }), "maxUses"),
        (json!({ "title": "t", "amount": "100", "expiresAt": past }), "expiresAt"),
        (json!({ "title": "t", "amount": "100", "expiresAt": "tomorrow" }), "expiresAt"),
        (json!({ "title": "t", "amount": "100", "providers": [] }), "providers"),
        (json!({ "title": "t", "amount": "100", "providers": ["mvola", "mvola"] }), "providers"),
        (json!({ "title": "t", "amount": "100", "providers": ["mpesa"] }), "providers[0]"),
        (json!({ "title": "t", "amount": "100", "metadata": "note" }), "metadata"),
        (json!({ "title": "t", "amount": "100", "metadata": { "blob": "x".repeat(9000) } }), "metadata"),
    ];
    for (body, field) in invalid {
        let (status, reply) =
            call(&app, Method::POST, "/api/v1/payment-links", Some(&token), Some(body)).await;
        assert_refused_field(status, &reply, field);
    }

    // Idempotent creation replays the first answer.
    let send_keyed = || {
        app.client
            .post(app.url("/api/v1/payment-links"))
            .bearer_auth(&token)
            .header("Idempotency-Key", "link-once")
            .json(&json!({ "title": "Gift card", "amount": "5000" }))
            .send()
    };
    let first: Value = send_keyed().await.unwrap().json().await.unwrap();
    let again = send_keyed().await.unwrap();
    assert_eq!(again.headers()["Idempotent-Replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first["data"]["id"], again["data"]["id"]);
    let gift_id = first["data"]["id"].as_str().unwrap().to_owned();

    let (status, listed) = call(&app, Method::GET, "/api/v1/payment-links", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["meta"]["total"], 3);
    assert_eq!(listed["data"][0]["id"], gift_id.as_str(), "newest first");
    let (_, first_page) =
        call(&app, Method::GET, "/api/v1/payment-links?pagination=cursor&limit=2", Some(&token), None).await;
    assert_eq!(first_page["data"].as_array().unwrap().len(), 2);
    assert_eq!(first_page["meta"]["hasMore"], true);
    let cursor = first_page["meta"]["nextCursor"].as_str().unwrap();
    let (_, second_page) = call(
        &app,
        Method::GET,
        &format!("/api/v1/payment-links?pagination=cursor&limit=2&cursor={cursor}"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(second_page["data"][0]["id"], id.as_str());
    assert_eq!(second_page["meta"]["hasMore"], false);

    // PATCH: the seed's fields and the status rules.
    let path = format!("/api/v1/payment-links/{limited_id}");
    let patch = |body: Value| call(&app, Method::PATCH, &path, Some(&token), Some(body));
    let (status, reply) = patch(json!({})).await;
    assert_refused_field(status, &reply, "body");
    let (status, reply) = patch(json!({ "status": "depleted" })).await;
    assert_refused_field(status, &reply, "status");
    let (status, reply) = patch(json!({ "maxUses": 0 })).await;
    assert_refused_field(status, &reply, "maxUses");
    let (status, reply) = patch(json!({ "expiresAt": past })).await;
    assert_refused_field(status, &reply, "expiresAt");
    let (status, reply) = patch(json!({ "amount": "99.99" })).await;
    assert_refused_field(status, &reply, "amount");
    let (status, reply) = patch(json!({ "title": "Workshop seat (May)", "amount": "120000" })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["title"], "Workshop seat (May)");
    assert_eq!(reply["data"]["amount"], "120000");
    let (_, reply) = patch(json!({ "status": "disabled" })).await;
    assert_eq!(reply["data"]["status"], "disabled");
    let (_, disabled) =
        call(&app, Method::GET, "/api/v1/payment-links?status=disabled", Some(&token), None).await;
    assert_eq!(disabled["meta"]["total"], 1);
    assert_eq!(disabled["data"][0]["id"], limited_id.as_str());
    let (_, reply) = patch(json!({ "status": "active", "maxUses": null, "expiresAt": null })).await;
    assert_eq!(reply["data"]["status"], "active");
    assert!(reply["data"]["maxUses"].is_null() && reply["data"]["expiresAt"].is_null(), "{reply}");
    let (_, reply) = patch(json!({ "maxUses": 5 })).await;
    assert_eq!(reply["data"]["remainingUses"], 5);

    // Another merchant sees none of it; an admin sees all and may narrow by merchant.
    let merchant_id = plain["merchantId"].as_str().unwrap().to_owned();
    app.db.create_user("other-shop@ultra.test", Some("other-password-1"), "user", &[]);
    let other = app.login("other-shop@ultra.test", "other-password-1").await;
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let body = (method == Method::PATCH).then(|| json!({ "title": "mine now" }));
        let (status, reply) = call(&app, method.clone(), &path, Some(&other), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {reply}");
    }
    let (_, theirs) = call(&app, Method::GET, "/api/v1/payment-links", Some(&other), None).await;
    assert_eq!(theirs["meta"]["total"], 0);
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/payment-links?merchantId={merchant_id}"),
        Some(&other),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let admin = app.admin_token().await;
    let (_, all) = call(
        &app,
        Method::GET,
        &format!("/api/v1/payment-links?merchantId={merchant_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(all["meta"]["total"], 3);

    let (status, reply) = call(&app, Method::DELETE, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["deleted"], true);
    let (status, _) = call(&app, Method::GET, &path, Some(&token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        call(&app, Method::GET, &format!("/api/v1/public/payment-links/{limited_id}"), None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut actions = audit_actions(&db, &limited_id).await;
    actions.sort();
    assert_eq!(
        actions,
        [
            "payment_link.created",
            "payment_link.deleted",
            "payment_link.updated",
            "payment_link.updated",
            "payment_link.updated",
            "payment_link.updated",
        ],
        "one row per mutation, none for refused requests"
    );
    assert_eq!(audit_actions(&db, &gift_id).await, ["payment_link.created"], "a replay writes nothing");
}

#[tokio::test]
async fn the_public_view_offers_enabled_providers_and_nothing_private() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    configure(&app, "mvola", json!({ "mode": "simulation" })).await;
    configure(&app, "airtel", json!({ "mode": "simulation", "enabled": false })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let db = app.db.connect().await;
    let set_limit = |limit: u32| {
        let value = json!({ "limit": limit, "windowSeconds": 60 });
        ultra_domain::runtime_config::RuntimeConfig::set(&db, "checkoutRateLimit", value, None)
    };
    // Room for following a payment below; the limit itself is tested at the end.
    set_limit(1000).await.unwrap();

    let link = create_link(
        &app,
        &token,
        json!({ "title": "Concert ticket", "amount": "30000", "metadata": { "internal": "row B" } }),
    )
    .await;
    let id = link["id"].as_str().unwrap();
    let public = format!("/api/v1/public/payment-links/{id}");
    let (status, view) = call(&app, Method::GET, &public, None, None).await;
    assert_eq!(status, StatusCode::OK, "{view}");
    let view = &view["data"];
    let mut keys: Vec<&str> = view.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "amount",
            "currency",
            "expiresAt",
            "id",
            "payable",
            "payment",
            "providers",
            "status",
            "title",
            "unavailable"
        ],
        "only what the page needs: {view}"
    );
    assert_eq!(view["providers"], json!(["mvola"]), "airtel is disabled and orange not configured");
    assert_eq!(view["payable"], true);

    let (status, reply) = pay(&app, id, "orange", "0321234500").await;
    assert_refused_field(status, &reply, "provider");
    let (status, reply) = pay(&app, id, "airtel", "0331234500").await;
    assert_refused_field(status, &reply, "provider");
    let (status, reply) = pay(&app, id, "mvola", "0331234500").await;
    assert_refused_field(status, &reply, "customerPhone");
    let (status, reply) = pay(&app, id, "mvola", "12").await;
    assert_refused_field(status, &reply, "customerPhone");
    let (status, reply) = pay(&app, id, "paypal", "0341234500").await;
    assert_refused_field(status, &reply, "provider");
    let (status, reply) = pay(&app, "plink_nope", "mvola", "0341234500").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    for odd in
        ["/api/v1/public/payment-links/%00", &format!("{public}?payment=%00"), "/api/v1/payment-links/%00"]
    {
        let (status, reply) = call(&app, Method::GET, odd, Some(&token), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{odd}: {reply}");
    }

    let (status, started) = pay(&app, id, "mvola", "+261 34 12 345 00").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let payment_id = started["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(started["data"]["customerPhone"], "034*****00");
    assert_eq!(started["data"]["amount"], "30000");
    assert!(started["data"].get("metadata").is_none(), "{started}");
    let followed = format!("{public}?payment={payment_id}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let payment = loop {
        let (_, view) = call(&app, Method::GET, &followed, None, None).await;
        let payment = view["data"]["payment"].clone();
        if payment["status"] == "completed" {
            break payment;
        }
        assert!(Instant::now() < deadline, "the payment stayed {payment}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(payment["reference"].as_str().map(str::is_empty), Some(false), "{payment}");
    assert_eq!(payment["customerPhone"], "034*****00");

    let (_, merchant_view) =
        call(&app, Method::GET, &format!("/api/v1/payments/{payment_id}"), Some(&token), None).await;
    assert_eq!(merchant_view["data"]["paymentLinkId"], id);
    assert_eq!(merchant_view["data"]["description"], "Concert ticket");
    assert_eq!(merchant_view["data"]["customerPhone"], "0341234500", "the merchant sees the whole number");

    // A payment is shown only on its own link.
    let other =
        create_link(&app, &token, json!({ "title": "Other", "amount": "100", "providers": ["airtel"] }))
            .await;
    let other_id = other["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        Method::GET,
        &format!("/api/v1/public/payment-links/{other_id}?payment={payment_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, closed) =
        call(&app, Method::GET, &format!("/api/v1/public/payment-links/{other_id}"), None, None).await;
    assert_eq!(closed["data"]["payable"], false);
    assert_eq!(closed["data"]["unavailable"]["code"], "payment_link_unavailable");

    let (_, _) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/payment-links/{id}"),
        Some(&token),
        Some(json!({ "status": "disabled" })),
    )
    .await;
    let (status, refused) = pay(&app, id, "mvola", "0341234500").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["meta"]["code"], "payment_link_disabled");
    let (_, view) = call(&app, Method::GET, &public, None, None).await;
    assert_eq!(view["data"]["status"], "disabled");
    assert_eq!(view["data"]["unavailable"]["code"], "payment_link_disabled");

    // The public operations are limited per client IP.
    set_limit(3).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let mut limited = None;
    for _ in 0..5 {
        let response = app.client.get(app.url(&public)).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("the view is rate limited");
    assert!(limited.headers().contains_key("Retry-After"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["meta"]["code"], "rate_limited");
}

#[tokio::test]
async fn three_uses_take_exactly_three_of_ten_concurrent_payers() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    configure(&app, "mvola", json!({ "mode": "simulation" })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let db = app.db.connect().await;

    let link =
        create_link(&app, &token, json!({ "title": "Limited print", "amount": "40000", "maxUses": 3 })).await;
    let id = link["id"].as_str().unwrap().to_owned();

    let payers = (0..10).map(|n| {
        let phone = format!("0341{n:04}00");
        let app = &app;
        let id = id.clone();
        async move { pay(app, &id, "mvola", &phone).await }
    });
    let answers = futures::future::join_all(payers).await;
    let accepted = answers.iter().filter(|(status, _)| *status == StatusCode::ACCEPTED).count();
    let refused: Vec<&Value> =
        answers.iter().filter(|(status, _)| *status == StatusCode::CONFLICT).map(|(_, body)| body).collect();
    assert_eq!(accepted, 3, "{answers:?}");
    assert_eq!(refused.len(), 7, "{answers:?}");
    assert!(refused.iter().all(|body| body["meta"]["code"] == "payment_link_depleted"), "{refused:?}");

    let completed = || async {
        payments::Entity::find()
            .filter(payments::Column::PaymentLinkId.eq(id.as_str()))
            .filter(payments::Column::Status.eq(PaymentStatus::Completed))
            .count(&db)
            .await
            .unwrap()
    };
    eventually(Duration::from_secs(30), "three payments completing", || async { completed().await == 3 })
        .await;
    let started = payments::Entity::find()
        .filter(payments::Column::PaymentLinkId.eq(id.as_str()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(started, 3, "refused payers started no payment");
    let (_, listed) = call(
        &app,
        Method::GET,
        &format!("/api/v1/payments?paymentLinkId={id}&status=completed"),
        Some(&token),
        None,
    )
    .await;
    assert_eq!(listed["meta"]["total"], 3, "{listed}");

    let (_, link) = call(&app, Method::GET, &format!("/api/v1/payment-links/{id}"), Some(&token), None).await;
    let link = &link["data"];
    assert_eq!(link["status"], "depleted", "{link}");
    assert_eq!(link["usesCount"], 3);
    assert_eq!(link["reservedCount"], 0);
    assert_eq!(link["remainingUses"], 0);
    assert_eq!(stored_link(&db, &id).await.status, PaymentLinkStatus::Depleted);

    let (status, fourth) = pay(&app, &id, "mvola", "0349999900").await;
    assert_eq!(status, StatusCode::CONFLICT, "{fourth}");
    assert_eq!(fourth["meta"]["code"], "payment_link_depleted");
    assert!(fourth["error"].as_str().unwrap().contains("all 3 of its uses are paid"), "{fourth}");

    let paid_events = events::Entity::find()
        .filter(events::Column::EventType.eq("payment_link.paid"))
        .filter(events::Column::ResourceId.eq(id.as_str()))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(paid_events, 3);

    // Re-opening a depleted link takes a larger limit, and the limit never drops below the paid.
    let path = format!("/api/v1/payment-links/{id}");
    let (status, reply) =
        call(&app, Method::PATCH, &path, Some(&token), Some(json!({ "status": "active" }))).await;
    assert_refused_field(status, &reply, "maxUses");
    let (status, reply) = call(&app, Method::PATCH, &path, Some(&token), Some(json!({ "maxUses": 2 }))).await;
    assert_refused_field(status, &reply, "maxUses");
    let (status, reply) =
        call(&app, Method::PATCH, &path, Some(&token), Some(json!({ "maxUses": 4, "status": "active" })))
            .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "active");
    assert_eq!(reply["data"]["remainingUses"], 1);
    let (status, reply) = pay(&app, &id, "mvola", "0349999900").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

#[tokio::test]
async fn an_expired_link_refuses_payers_and_the_schedule_flips_it() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    ultra_domain::runtime_config::RuntimeConfig::set(
        &db,
        "schedules",
        json!({ "expire-payment-links": "* * * * * *" }),
        None,
    )
    .await
    .unwrap();
    configure(&app, "mvola", json!({ "mode": "simulation" })).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    let expires = Utc::now() + chrono::Duration::seconds(2);
    let link =
        create_link(&app, &token, json!({ "title": "Early bird", "amount": "1000", "expiresAt": expires }))
            .await;
    let id = link["id"].as_str().unwrap().to_owned();
    let (status, reply) = pay(&app, &id, "mvola", "0341234500").await;
    assert_eq!(status, StatusCode::ACCEPTED, "payable before its expiry: {reply}");
    let wait = (expires - Utc::now()).to_std().unwrap_or_default() + Duration::from_millis(200);
    tokio::time::sleep(wait).await;

    // Refused at the expiry itself, before any schedule has run.
    assert_eq!(stored_link(&db, &id).await.status, PaymentLinkStatus::Active);
    let (status, refused) = pay(&app, &id, "mvola", "0341234500").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["meta"]["code"], "payment_link_expired");
    let (_, view) = call(&app, Method::GET, &format!("/api/v1/payment-links/{id}"), Some(&token), None).await;
    assert_eq!(view["data"]["status"], "expired");
    let (_, expired) =
        call(&app, Method::GET, "/api/v1/payment-links?status=expired", Some(&token), None).await;
    assert_eq!(expired["meta"]["total"], 1);
    let (_, active) =
        call(&app, Method::GET, "/api/v1/payment-links?status=active", Some(&token), None).await;
    assert_eq!(active["meta"]["total"], 0);

    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let _scheduler = start_scheduler(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    eventually(Duration::from_secs(20), "the schedule flipping the link", || async {
        stored_link(&db, &id).await.status == PaymentLinkStatus::Expired
    })
    .await;
    let runs = jobs::Entity::find()
        .filter(jobs::Column::Kind.eq("payment_links.expire"))
        .filter(jobs::Column::Status.eq(jobs::JobStatus::Succeeded))
        .count(&db)
        .await
        .unwrap();
    assert!(runs >= 1);

    // Re-opening an expired link takes a future expiry in the same request.
    let path = format!("/api/v1/payment-links/{id}");
    let (status, reply) =
        call(&app, Method::PATCH, &path, Some(&token), Some(json!({ "status": "active" }))).await;
    assert_refused_field(status, &reply, "expiresAt");
    let later = (Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (_, reply) =
        call(&app, Method::PATCH, &path, Some(&token), Some(json!({ "expiresAt": later }))).await;
    assert_eq!(reply["data"]["status"], "expired", "a new expiry alone does not re-open it");
    let (status, reply) = call(
        &app,
        Method::PATCH,
        &path,
        Some(&token),
        Some(json!({ "status": "active", "expiresAt": later })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["data"]["status"], "active");
    let (status, reply) = pay(&app, &id, "mvola", "0341234500").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
}

/// A chromedriver of the test's own, stopped when dropped.
struct ChromeDriver {
    child: Child,
    url: String,
}

impl ChromeDriver {
    async fn start() -> Self {
        let binary = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        let port = free_port();
        let child = Command::new(&binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start {binary} ({err}): install Debian's chromium and chromium-driver")
            });
        let driver = Self { child, url: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        eventually(Duration::from_secs(20), "chromedriver answering", || {
            let status = client.get(format!("{}/status", driver.url)).send();
            async move { status.await.is_ok_and(|response| response.status().is_success()) }
        })
        .await;
        driver
    }

    async fn browser(&self) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            json!({ "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=420,860"] }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `test-artifacts` under the cargo target folder.
fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").join("target")
    });
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("artifact folder");
    dir.join(name)
}

async fn save_screenshot(browser: &Client, name: &str) {
    let path = artifact(name);
    std::fs::write(&path, browser.screenshot().await.unwrap()).unwrap();
    println!("checkout screenshot: {}", path.display());
}

async fn wait_for_state(browser: &Client, state: &str) {
    browser
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Css(&format!("main[data-state={state}]")))
        .await
        .unwrap_or_else(|err| panic!("the page never reached {state}: {err}"));
}

async fn text_of(browser: &Client, css: &str) -> String {
    browser.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

/// Chooses `provider`, types `phone` and presses Pay, as a payer would.
async fn pay_on_page(browser: &Client, provider: &str, phone: &str) {
    browser
        .find(Locator::Css(&format!("input[name=provider][value={provider}]")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let field = browser.find(Locator::Id("phone")).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(phone).await.unwrap();
    browser.find(Locator::Id("pay")).await.unwrap().click().await.unwrap();
}

#[tokio::test]
async fn the_checkout_page_takes_a_payer_from_choice_to_paid() {
    let world = LiveWorld::start_with(&["mvola", "orange"]).await;
    let app = &world.app;
    let link = create_link(
        app,
        &world.merchant,
        json!({ "title": "Vanilla <b>pods</b> & \"spice\"", "amount": "12500", "providers": ["orange", "mvola"] }),
    )
    .await;
    let id = link["id"].as_str().unwrap().to_owned();
    let page = app.client.get(link["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(page.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'none'"));

    let driver = ChromeDriver::start().await;
    let browser = driver.browser().await;
    browser.goto(link["url"].as_str().unwrap()).await.unwrap();
    wait_for_state(&browser, "form").await;
    assert_eq!(
        text_of(&browser, "#title").await,
        "Vanilla <b>pods</b> & \"spice\"",
        "shown as text, not markup"
    );
    assert_eq!(text_of(&browser, "#amount").await, "12\u{202f}500 MGA");
    let choices = browser.find_all(Locator::Css("input[name=provider]")).await.unwrap();
    assert_eq!(choices.len(), 2);
    save_screenshot(&browser, "checkout-form.png").await;

    // A declined number shows why, and the payer can try again.
    pay_on_page(&browser, "mvola", "0340000001").await;
    wait_for_state(&browser, "failed").await;
    assert_eq!(text_of(&browser, "#status-title").await, "Payment failed");
    browser.find(Locator::Id("again")).await.unwrap().click().await.unwrap();
    wait_for_state(&browser, "form").await;

    pay_on_page(&browser, "mvola", "034 00 000 00").await;
    wait_for_state(&browser, "completed").await;
    assert_eq!(text_of(&browser, "#status-title").await, "Payment received");
    assert!(text_of(&browser, "#status-text").await.contains("paid with MVola"));
    save_screenshot(&browser, "checkout.png").await;

    // The page remembers the payment: reloading shows its outcome again.
    let current = browser.current_url().await.unwrap();
    let payment_id =
        current.query_pairs().find(|(key, _)| key == "payment").expect("payment in the URL").1.into_owned();
    browser.refresh().await.unwrap();
    wait_for_state(&browser, "completed").await;
    browser.close().await.unwrap();

    let payment = world.payment(&payment_id).await;
    assert_eq!(payment["status"], "completed", "{payment}");
    assert_eq!(payment["paymentLinkId"], id.as_str());
    let (_, link) =
        call(app, Method::GET, &format!("/api/v1/payment-links/{id}"), Some(&world.merchant), None).await;
    assert_eq!(link["data"]["usesCount"], 1, "{link}");
    assert_eq!(world.sandbox_transactions(payment["reference"].as_str().unwrap()).await.len(), 1);

    // An unknown link says so.
    let browser = driver.browser().await;
    browser.goto(&format!("{}/pay/plink_unknown", app.api.base)).await.unwrap();
    wait_for_state(&browser, "missing").await;
    assert_eq!(text_of(&browser, "#message").await, "This payment link does not exist.");
    browser.close().await.unwrap();
}
