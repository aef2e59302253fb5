//! The Pro+ onboarding wizard: each step turns complete as the merchant's data appears (and
//! back when it goes), UAT confirmation names whatever is missing, is recorded once however
//! many confirmations race, and the wizard is for Pro+ merchants only.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, Actor, AuditEvent},
    onboarding::UAT_CONFIRMED,
    runtime_config::RuntimeConfig,
};
use ultra_entity::audit_logs;
use ultra_tests::{MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp, redis_url, start_worker};

/// Confirmations sent at once.
const CONCURRENT: usize = 16;

const PREREQUISITES: [&str; 4] =
    ["providerCredentials", "webhookEndpoint", "firstPaymentLink", "completedPayment"];

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(&format!("/api/v1{path}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} is not JSON: {text}")))
}

async fn wizard(app: &TestApp, token: &str) -> Value {
    let (status, body) = call(app, Method::GET, "/merchant/onboarding", Some(token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

async fn confirm(app: &TestApp, token: &str) -> (StatusCode, Value) {
    call(app, Method::POST, "/merchant/onboarding/uat/confirm", Some(token), None).await
}

/// Asserts a 409 that names exactly the `missing` prerequisites.
fn assert_missing(status: StatusCode, body: &Value, missing: &[&str]) {
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["meta"]["code"], "uat_prerequisites_missing", "{body}");
    let message = body["error"].as_str().unwrap();
    for prerequisite in PREREQUISITES {
        assert_eq!(
            message.contains(prerequisite),
            missing.contains(&prerequisite),
            "{prerequisite}: {message}"
        );
    }
}

fn step_flags(wizard: &Value) -> [bool; 4] {
    let steps = &wizard["steps"];
    ["providerCredentials", "webhookEndpoint", "firstPaymentLink", "uat"]
        .map(|step| steps[step]["completed"].as_bool().unwrap_or_else(|| panic!("{step} in {wizard}")))
}

async fn confirmations(db: &DatabaseConnection, merchant_id: &str) -> Vec<audit_logs::Model> {
    audit_logs::Entity::find()
        .filter(audit_logs::Column::Action.eq(UAT_CONFIRMED))
        .filter(audit_logs::Column::EntityId.eq(merchant_id))
        .all(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn steps_follow_the_merchants_data_and_uat_is_confirmed_once() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    RuntimeConfig::set(&db, "webhooks", json!({ "allowPrivateUrls": true }), None).await.unwrap();
    let configured = Instant::now();
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant_id = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap().id;

    let start = wizard(&app, &token).await;
    assert_eq!(start["merchantId"], merchant_id.as_str());
    assert_eq!(step_flags(&start), [false; 4], "{start}");
    assert_eq!(start["completedSteps"], 0);
    assert_eq!(start["totalSteps"], 4);
    assert_eq!(start["progressPercent"], 0);
    assert_eq!(start["nextStep"], "providerCredentials");
    assert_eq!(start["completed"], false);
    assert_eq!(start["steps"]["uat"]["missing"], json!(PREREQUISITES), "{start}");
    let (status, body) = confirm(&app, &token).await;
    assert_missing(status, &body, &PREREQUISITES);

    // Step 1: a provider configuration of the merchant's own, enabled; a disabled one is not.
    let (status, body) = call(
        &app,
        Method::PUT,
        "/merchant/providers/airtel",
        Some(&token),
        Some(json!({ "enabled": false })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(step_flags(&wizard(&app, &token).await), [false; 4]);
    let (status, body) = call(
        &app,
        Method::PUT,
        "/merchant/providers/mvola",
        Some(&token),
        Some(json!({ "mode": "simulation" })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let one = wizard(&app, &token).await;
    assert_eq!(step_flags(&one), [true, false, false, false], "{one}");
    assert_eq!(one["steps"]["providerCredentials"]["enabledProviders"], json!(["mvola"]));
    assert_eq!((one["completedSteps"].clone(), one["progressPercent"].clone()), (json!(1), json!(25)));
    assert_eq!(one["nextStep"], "webhookEndpoint");

    // Step 2: an active webhook endpoint (the API reads runtime config through a 2 s cache).
    tokio::time::sleep(Duration::from_millis(2100).saturating_sub(configured.elapsed())).await;
    let endpoint = json!({ "url": "http://127.0.0.1:9/hooks", "secret": "a plain passphrase of 32 chars!!",
                           "events": ["payment.completed"] });
    let (status, body) = call(&app, Method::POST, "/webhooks/endpoints", Some(&token), Some(endpoint)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let endpoint_path = format!("/webhooks/endpoints/{}", body["data"]["id"].as_str().unwrap());
    let two = wizard(&app, &token).await;
    assert_eq!(step_flags(&two), [true, true, false, false], "{two}");
    assert_eq!(two["steps"]["webhookEndpoint"]["activeEndpoints"], 1);
    for (active, expected) in [(false, [true, false, false, false]), (true, [true, true, false, false])] {
        let body = json!({ "isActive": active });
        let (status, reply) = call(&app, Method::PATCH, &endpoint_path, Some(&token), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        assert_eq!(step_flags(&wizard(&app, &token).await), expected, "endpoint active: {active}");
    }

    // Step 3: a payment link.
    let link = json!({ "title": "UAT check", "amount": "1000" });
    let (status, body) = call(&app, Method::POST, "/payment-links", Some(&token), Some(link)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let three = wizard(&app, &token).await;
    assert_eq!(step_flags(&three), [true, true, true, false], "{three}");
    assert_eq!(three["steps"]["firstPaymentLink"]["paymentLinks"], 1);
    let first_at: chrono::DateTime<chrono::Utc> =
        three["steps"]["firstPaymentLink"]["firstCreatedAt"].as_str().unwrap().parse().unwrap();
    let created_at: chrono::DateTime<chrono::Utc> =
        body["data"]["createdAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(first_at, created_at);
    assert_eq!(three["steps"]["uat"]["signalsPresent"], false);
    let (status, body) = confirm(&app, &token).await;
    assert_missing(status, &body, &["completedPayment"]);
    assert!(confirmations(&db, &merchant_id).await.is_empty(), "a refused confirmation records nothing");

    // The UAT signal: a payment completes (simulation mode, through the worker).
    let payment = json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" });
    let response = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(&token)
        .header("Prefer", "wait=10")
        .json(&payment)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let paid: Value = response.json().await.unwrap();
    assert_eq!(paid["data"]["status"], "completed", "{paid}");
    let tested = wizard(&app, &token).await;
    assert_eq!(step_flags(&tested), [true, true, true, false], "signals alone do not finish UAT: {tested}");
    let uat = &tested["steps"]["uat"];
    assert_eq!((uat["signalsPresent"].clone(), uat["completedPayments"].clone()), (json!(true), json!(1)));
    assert_eq!((uat["confirmed"].clone(), uat["missing"].clone()), (json!(false), json!([])));
    assert_eq!(tested["nextStep"], "uat");

    // Concurrent confirmations: every one succeeds, one records. Reading the wizard as many
    // times at once first opens as many connections, so the confirmations leave together.
    futures::future::join_all((0..CONCURRENT).map(|_| wizard(&app, &token))).await;
    let answers = futures::future::join_all((0..CONCURRENT).map(|_| confirm(&app, &token))).await;
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let fresh = answers.iter().filter(|(_, body)| body["data"]["alreadyConfirmed"] == false).count();
    assert_eq!(fresh, 1, "{answers:?}");
    let confirmed_at = &answers[0].1["data"]["confirmedAt"];
    assert!(answers.iter().all(|(_, body)| &body["data"]["confirmedAt"] == confirmed_at), "{answers:?}");
    let rows = confirmations(&db, &merchant_id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].entity_type, "merchant");
    assert_eq!(rows[0].actor_id.as_deref(), Some(merchant_id.as_str()));
    assert_eq!(rows[0].details.as_ref().unwrap()["completedPayments"], 1);

    let (status, again) = confirm(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["data"]["alreadyConfirmed"], true);
    assert_eq!(&again["data"]["confirmedAt"], confirmed_at);
    let done = wizard(&app, &token).await;
    assert_eq!(step_flags(&done), [true; 4], "{done}");
    assert_eq!((done["completedSteps"].clone(), done["progressPercent"].clone()), (json!(4), json!(100)));
    assert_eq!((done["nextStep"].clone(), done["completed"].clone()), (Value::Null, json!(true)));
    assert_eq!(done["steps"]["uat"]["confirmedBy"], merchant_id.as_str());
    assert_eq!(&done["steps"]["uat"]["confirmedAt"], confirmed_at);

    // The database itself admits one confirmation per merchant, and nothing else is limited.
    let event = |action| AuditEvent {
        action,
        entity_type: "merchant",
        entity_id: Some(merchant_id.as_str()),
        details: None,
    };
    assert!(audit::record(&db, &Actor::default(), event(UAT_CONFIRMED)).await.is_err());
    for _ in 0..2 {
        audit::record(&db, &Actor::default(), event("merchant.noted")).await.unwrap();
    }
    assert_eq!(confirmations(&db, &merchant_id).await.len(), 1);
}

#[tokio::test]
async fn the_wizard_is_for_pro_plus_merchants() {
    let app = TestApp::spawn().await;
    for (email, tier) in [("starter@ultra.test", "starter"), ("pro@ultra.test", "pro")] {
        app.db.create_user(email, Some("merchant-password-3"), "user", &["--tier", tier]);
        let token = app.login(email, "merchant-password-3").await;
        for (method, path) in
            [(Method::GET, "/merchant/onboarding"), (Method::POST, "/merchant/onboarding/uat/confirm")]
        {
            let (status, body) = call(&app, method, path, Some(&token), None).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{tier} {path}: {body}");
            assert_eq!(body["meta"]["code"], "tier_required", "{body}");
        }
    }
    for (method, path) in
        [(Method::GET, "/merchant/onboarding"), (Method::POST, "/merchant/onboarding/uat/confirm")]
    {
        let (status, body) = call(&app, method, path, None, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }

    // An admin has no wizard of their own, but sees the primary merchant's when acting as it.
    let admin = app.admin_token().await;
    let (status, body) = call(&app, Method::GET, "/merchant/onboarding", Some(&admin), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let response = app
        .client
        .get(app.url("/api/v1/merchant/onboarding"))
        .bearer_auth(&admin)
        .header("X-App-Context", "merchant")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let db = app.db.connect().await;
    let merchant = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap();
    assert_eq!(body["data"]["merchantId"], merchant.id.as_str());
}
