//! `GET /api/v1/payments/export`: the CSV a merchant downloads matches the payment list, honours
//! the filters, cannot run formulas in a spreadsheet, and is for Pro+ merchants and their own
//! payments only.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use reqwest::{StatusCode, header};
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::{Value, json};
use ultra_entity::{
    payments::{self, PaymentStatus},
    provider_configs::ProviderMode,
};
use ultra_tests::{MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp, redis_url, start_worker};

const COLUMNS: [&str; 13] = [
    "id",
    "created_at",
    "completed_at",
    "provider",
    "status",
    "amount",
    "currency",
    "refunded_amount",
    "customer_phone",
    "reference",
    "provider_transaction_id",
    "description",
    "failure_reason",
];

/// One CSV row, by column name.
type Row = HashMap<String, String>;

async fn simulate_mvola(app: &TestApp) {
    let response = app
        .client
        .put(app.url("/api/v1/admin/providers/mvola"))
        .bearer_auth(app.admin_token().await)
        .json(&json!({ "mode": "simulation" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

/// Pays and waits for the simulated provider's outcome; the phone's last digits decide it.
async fn pay(app: &TestApp, token: &str, amount: &str, phone: &str, description: &str) -> Value {
    let response = app
        .client
        .post(app.url("/api/v1/payments"))
        .bearer_auth(token)
        .header("Prefer", "wait=5")
        .json(&json!({ "provider": "mvola", "amount": amount, "customerPhone": phone, "description": description }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let body: Value = response.json().await.unwrap();
    body["data"].clone()
}

async fn export(app: &TestApp, token: &str, query: &[(&str, &str)]) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/payments/export"), query).unwrap();
    app.client.get(url).bearer_auth(token).send().await.unwrap()
}

/// Exports and parses the file, checking it is a CSV download with the documented header row.
async fn export_rows(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Vec<Row> {
    let response = export(app, token, query).await;
    assert_eq!(response.status(), StatusCode::OK, "{query:?}");
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    parse(&response.text().await.unwrap())
}

fn parse(text: &str) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let columns = reader.headers().unwrap().clone();
    assert_eq!(columns.iter().collect::<Vec<_>>(), COLUMNS);
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            columns.iter().zip(record.iter()).map(|(c, v)| (c.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

fn ids(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|row| row["id"].as_str()).collect()
}

async fn error_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn merchant_id(app: &TestApp, email: &str) -> String {
    let db = app.db.connect().await;
    ultra_domain::users::find_by_email(&db, email).await.unwrap().unwrap().id
}

#[tokio::test]
async fn the_export_matches_the_payment_list_and_honours_its_filters() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    simulate_mvola(&app).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    let order = pay(&app, &token, "10000", "0340000000", "Order #1234").await;
    let declined = pay(&app, &token, "2500", "0340000001", "=HYPERLINK(\"x\")").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let boundary = Utc::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let later = pay(&app, &token, "700", "0340000000", "+1").await;
    assert_eq!(order["status"], "completed", "{order}");
    assert_eq!(declined["status"], "failed", "{declined}");
    assert_eq!(later["status"], "completed", "{later}");

    let response = export(&app, &token, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let today = Utc::now().format("%Y-%m-%d");
    let merchant = order["merchantId"].as_str().unwrap();
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"payments-{merchant}-{today}.csv\"").as_str()
    );
    let rows = parse(&response.text().await.unwrap());

    let listed = app
        .client
        .get(app.url("/api/v1/payments?per_page=100"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let mut listed = listed["data"].as_array().unwrap().clone();
    listed.reverse();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows.len(), listed.len(), "the list is newest first, the file oldest first");
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    for (row, payment) in rows.iter().zip(&listed) {
        for (column, field) in [
            ("id", "id"),
            ("created_at", "createdAt"),
            ("completed_at", "completedAt"),
            ("provider", "provider"),
            ("status", "status"),
            ("amount", "amount"),
            ("currency", "currency"),
            ("refunded_amount", "refundedAmount"),
            ("customer_phone", "customerPhone"),
            ("reference", "reference"),
            ("provider_transaction_id", "providerTransactionId"),
            ("failure_reason", "failureReason"),
        ] {
            assert_eq!(row[column], text(&payment[field]), "{column} of {payment}");
        }
    }
    assert_eq!(ids(&rows), [&order["id"], &declined["id"], &later["id"]].map(|id| id.as_str().unwrap()));
    assert_eq!(rows[0]["amount"], "10000");
    assert_eq!(rows[0]["currency"], "MGA");
    assert_eq!(rows[0]["description"], "Order #1234");
    assert_eq!(rows[1]["status"], "failed");
    assert_eq!(rows[1]["failure_reason"], "insufficient funds");
    assert_eq!(rows[1]["completed_at"], "");
    assert_eq!(rows[1]["description"], "'=HYPERLINK(\"x\")", "a formula is shown as text");
    assert_eq!(rows[2]["description"], "'+1");
    assert!(!rows[2]["completed_at"].is_empty());

    let failed = export_rows(&app, &token, &[("status", "failed")]).await;
    assert_eq!(ids(&failed), [declined["id"].as_str().unwrap()]);
    let completed = export_rows(&app, &token, &[("status", "completed")]).await;
    assert_eq!(ids(&completed), [order["id"].as_str().unwrap(), later["id"].as_str().unwrap()]);
    let refunded = export_rows(&app, &token, &[("status", "refunded")]).await;
    assert!(refunded.is_empty(), "no payment matches: only the header row");

    let boundary = boundary.to_rfc3339();
    let since = export_rows(&app, &token, &[("from", &boundary)]).await;
    assert_eq!(ids(&since), [later["id"].as_str().unwrap()]);
    let until = export_rows(&app, &token, &[("to", &boundary)]).await;
    assert_eq!(ids(&until), [order["id"].as_str().unwrap(), declined["id"].as_str().unwrap()]);
    let completed_until = export_rows(&app, &token, &[("status", "completed"), ("to", &boundary)]).await;
    assert_eq!(ids(&completed_until), [order["id"].as_str().unwrap()]);
    let created: DateTime<Utc> = order["createdAt"].as_str().unwrap().parse().unwrap();
    let exactly = created.to_rfc3339();
    let instant = export_rows(&app, &token, &[("from", &exactly), ("to", &exactly)]).await;
    assert_eq!(ids(&instant), [order["id"].as_str().unwrap()], "both bounds are inclusive");
}

/// Stores `count` completed payments for the merchant directly, as a busy merchant's history
/// would be, without waiting on the payment rate limit.
async fn store_history(app: &TestApp, merchant: &str, count: usize) -> Vec<String> {
    let db = app.db.connect().await;
    let now = Utc::now();
    let rows: Vec<payments::ActiveModel> = (0..count)
        .map(|n| payments::ActiveModel {
            id: Set(ultra_domain::ids::new_id("pay")),
            merchant_id: Set(merchant.to_owned()),
            provider: Set("mvola".to_owned()),
            mode: Set(ProviderMode::Simulation),
            amount_minor: Set(100 * (n as i64 + 1)),
            currency: Set("MGA".to_owned()),
            status: Set(PaymentStatus::Completed),
            customer_phone: Set("0340000000".to_owned()),
            reference: Set(format!("ULT{}", ulid::Ulid::new())),
            refunded_minor: Set(0),
            expires_at: Set(now),
            completed_at: Set(Some(now)),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        })
        .collect();
    let mut ids: Vec<String> = rows.iter().map(|row| row.id.clone().unwrap()).collect();
    for chunk in rows.chunks(100) {
        payments::Entity::insert_many(chunk.to_vec()).exec(&db).await.unwrap();
    }
    ids.sort();
    ids
}

#[tokio::test]
async fn a_history_longer_than_one_read_is_exported_whole_and_once() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let stored = store_history(&app, &merchant_id(&app, MERCHANT_EMAIL).await, 1_201).await;

    let rows = export_rows(&app, &token, &[]).await;
    assert_eq!(rows.len(), 1_201);
    assert_eq!(ids(&rows), stored, "every payment once, oldest first");
    let total: u64 = rows.iter().map(|row| row["amount"].parse::<u64>().unwrap()).sum();
    assert_eq!(total, (1..=1_201).sum::<u64>(), "amounts are whole Ariary, as the API shows them");
}

#[tokio::test]
async fn export_is_routed_ahead_of_a_payment_id_and_is_never_empty() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    let response = export(&app, &token, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(response.text().await.unwrap(), format!("{}\n", COLUMNS.join(",")));

    let (status, body) = error_of(
        app.client.get(app.url("/api/v1/payments/pay_missing")).bearer_auth(&token).send().await.unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "ids are still served by GET payments/{{id}}");
    assert_eq!(body["error"], "payment not found");
}

#[tokio::test]
async fn only_pro_plus_merchants_export_and_only_their_own_payments() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    simulate_mvola(&app).await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let payment = pay(&app, &token, "5000", "0340000000", "Order #1").await;
    let merchant = merchant_id(&app, MERCHANT_EMAIL).await;

    for (email, tier) in [("starter@ultra.test", "starter"), ("pro@ultra.test", "pro")] {
        app.db.create_user(email, Some("shop-password"), "user", &["--tier", tier]);
        let token = app.login(email, "shop-password").await;
        let (status, body) = error_of(export(&app, &token, &[]).await).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{tier}: {body}");
        assert_eq!(body["success"], false);
        assert_eq!(body["meta"]["code"], "tier_required");
        let message = body["error"].as_str().unwrap();
        assert!(message.contains("Pro+") && message.contains("pro_plus"), "{message}");
        assert!(message.contains(&format!("on {tier}")), "{message}");
    }

    let other =
        app.db.create_user("big@ultra.test", Some("shop-password"), "user", &["--tier", "enterprise"]);
    let other_token = app.login("big@ultra.test", "shop-password").await;
    assert!(
        export_rows(&app, &other_token, &[]).await.is_empty(),
        "another merchant's payments are not theirs"
    );
    let (status, _) = error_of(export(&app, &token, &[("merchantId", &other)]).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "merchantId is an admin filter");

    let admin = app.admin_token().await;
    let (status, body) = error_of(export(&app, &admin, &[]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["meta"]["field"], "merchantId", "{body}");
    let rows = export_rows(&app, &admin, &[("merchantId", &merchant)]).await;
    assert_eq!(ids(&rows), [payment["id"].as_str().unwrap()]);
    assert!(export_rows(&app, &admin, &[("merchantId", &other)]).await.is_empty());
    let (status, _) = error_of(export(&app, &admin, &[("merchantId", "usr_nobody")]).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let acting = app
        .client
        .get(app.url("/api/v1/payments/export"))
        .bearer_auth(&admin)
        .header("X-App-Context", "merchant")
        .send()
        .await
        .unwrap();
    assert_eq!(acting.status(), StatusCode::OK);
    let rows = parse(&acting.text().await.unwrap());
    assert_eq!(ids(&rows), [payment["id"].as_str().unwrap()], "the primary merchant's payments");
}

#[tokio::test]
async fn bad_export_queries_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;

    for (query, field) in [
        (vec![("from", "yesterday")], "from"),
        (vec![("to", "2026-13-01T00:00:00Z")], "to"),
        (vec![("from", "2026-02-01T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")], "from"),
        (vec![("status", "paid")], "status"),
    ] {
        let (status, body) = error_of(export(&app, &token, &query).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert_eq!(body["meta"]["field"], field, "{query:?}: {body}");
    }

    let response = app.client.get(app.url("/api/v1/payments/export")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
