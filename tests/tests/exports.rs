//! CSV exports: the files a worker builds (`POST exports`) and the streamed subscription export.
//! A large export completes whole and exactly once while the API keeps answering, survives its
//! worker being killed, is the same file the streamed export gives, goes to its owner only, and
//! is deleted when it expires.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use reqwest::{StatusCode, header};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, TransactionTrait,
    sea_query::Expr,
};
use serde_json::{Value, json};
use ultra_entity::{
    export_chunks, exports,
    payments::{self, PaymentStatus},
    provider_configs::ProviderMode,
    subscriptions::{self, SubscriptionInterval, SubscriptionStatus},
};
use ultra_tests::{
    MERCHANT_EMAIL, MERCHANT_PASSWORD, Process, TestApp, redis_url, start_scheduler, start_worker,
};

const PAYMENT_COLUMNS: [&str; 13] = [
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

const SUBSCRIPTION_COLUMNS: [&str; 15] = [
    "id",
    "created_at",
    "label",
    "status",
    "overdue",
    "amount",
    "currency",
    "interval",
    "provider",
    "customer_phone",
    "description",
    "next_renewal_at",
    "last_renewed_at",
    "renewal_count",
    "last_payment_id",
];

/// One CSV row, by column name.
type Row = HashMap<String, String>;

/// The instant the n-th stored row was created: whole seconds, so that both databases give
/// back exactly what was stored.
fn created(n: usize) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::seconds(n as i64)
}

/// What the file must say about the n-th stored payment, by column.
fn expected_payment(id: &str, n: usize, reference_prefix: &str) -> Row {
    let status = ["completed", "failed", "pending", "refunded"][n % 4];
    let amount = if n.is_multiple_of(7) { format!("{}.50", n + 1) } else { format!("{}", n + 1) };
    let description = match n % 5 {
        0 => "=SUM(A1:A9)".to_owned(),
        1 => format!("Order #{n}, \"gift\""),
        _ => String::new(),
    };
    let cells = [
        ("id", id.to_owned()),
        ("created_at", created(n).to_rfc3339()),
        (
            "completed_at",
            if status == "completed" {
                (created(n) + chrono::Duration::seconds(5)).to_rfc3339()
            } else {
                String::new()
            },
        ),
        ("provider", "mvola".to_owned()),
        ("status", status.to_owned()),
        ("amount", amount.clone()),
        ("currency", "MGA".to_owned()),
        ("refunded_amount", if status == "refunded" { amount } else { "0".to_owned() }),
        ("customer_phone", format!("0340{n:06}")),
        ("reference", format!("{reference_prefix}{n:08}")),
        ("provider_transaction_id", if status == "completed" { format!("MP{n}") } else { String::new() }),
        ("description", if n.is_multiple_of(5) { format!("'{description}") } else { description }),
        ("failure_reason", if status == "failed" { "insufficient funds".to_owned() } else { String::new() }),
    ];
    cells.into_iter().map(|(column, value)| (column.to_owned(), value)).collect()
}

/// Stores `count` payments for `merchant` directly, a thousand to a statement, in one
/// transaction; returns their ids in order of `n`.
async fn store_payments(app: &TestApp, merchant: &str, count: usize, reference_prefix: &str) -> Vec<String> {
    let db = app.db.connect().await;
    let txn = db.begin().await.unwrap();
    let mut ids = Vec::with_capacity(count);
    for start in (0..count).step_by(1000) {
        let rows: Vec<payments::ActiveModel> = (start..count.min(start + 1000))
            .map(|n| {
                let id = ultra_domain::ids::new_id("pay");
                ids.push(id.clone());
                let status = [
                    PaymentStatus::Completed,
                    PaymentStatus::Failed,
                    PaymentStatus::Pending,
                    PaymentStatus::Refunded,
                ][n % 4];
                let amount = 100 * (n as i64 + 1) + if n.is_multiple_of(7) { 50 } else { 0 };
                let description = match n % 5 {
                    0 => Some("=SUM(A1:A9)".to_owned()),
                    1 => Some(format!("Order #{n}, \"gift\"")),
                    _ => None,
                };
                let completed = status == PaymentStatus::Completed;
                payments::ActiveModel {
                    id: Set(id),
                    merchant_id: Set(merchant.to_owned()),
                    provider: Set("mvola".to_owned()),
                    mode: Set(ProviderMode::Simulation),
                    amount_minor: Set(amount),
                    currency: Set("MGA".to_owned()),
                    status: Set(status),
                    customer_phone: Set(format!("0340{n:06}")),
                    description: Set(description),
                    reference: Set(format!("{reference_prefix}{n:08}")),
                    provider_transaction_id: Set(completed.then(|| format!("MP{n}"))),
                    failure_reason: Set(
                        (status == PaymentStatus::Failed).then(|| "insufficient funds".to_owned())
                    ),
                    refunded_minor: Set(if status == PaymentStatus::Refunded { amount } else { 0 }),
                    expires_at: Set(created(n) + chrono::Duration::minutes(15)),
                    completed_at: Set(completed.then(|| created(n) + chrono::Duration::seconds(5))),
                    created_at: Set(created(n)),
                    updated_at: Set(created(n)),
                    ..Default::default()
                }
            })
            .collect();
        payments::Entity::insert_many(rows).exec(&txn).await.unwrap();
    }
    txn.commit().await.unwrap();
    ids
}

async fn merchant_id(app: &TestApp, email: &str) -> String {
    let db = app.db.connect().await;
    ultra_domain::users::find_by_email(&db, email).await.unwrap().unwrap().id
}

/// Creates a merchant on `tier` and logs in as them.
async fn merchant_on(app: &TestApp, email: &str, tier: &str) -> (String, String) {
    let id = app.db.create_user(email, Some("shop-password"), "user", &["--tier", tier]);
    (id, app.login(email, "shop-password").await)
}

async fn answer(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn request_export(app: &TestApp, token: &str, body: Value) -> (StatusCode, Value) {
    answer(app.client.post(app.url("/api/v1/exports")).bearer_auth(token).json(&body).send().await.unwrap())
        .await
}

/// Starts an export that must be accepted, returning its view.
async fn start_export(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, answer) = request_export(app, token, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    answer["data"].clone()
}

async fn get(app: &TestApp, token: &str, path: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(token).send().await.unwrap()
}

async fn export_view(app: &TestApp, token: &str, id: &str) -> Value {
    let (status, body) = answer(get(app, token, &format!("/api/v1/exports/{id}")).await).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["data"].clone()
}

/// Follows the export until it ends, returning every `rowsWritten` seen and the final view.
async fn until_finished(app: &TestApp, token: &str, id: &str, worker: &Process) -> (Vec<i64>, Value) {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut progress = Vec::new();
    loop {
        let view = export_view(app, token, id).await;
        progress.push(view["rowsWritten"].as_i64().unwrap());
        if view["status"] == "completed" || view["status"] == "failed" {
            return (progress, view);
        }
        assert!(Instant::now() < deadline, "export {id} stayed {view}\nworker log:\n{}", worker.log_text());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn download(app: &TestApp, token: &str, id: &str) -> reqwest::Response {
    get(app, token, &format!("/api/v1/exports/{id}/download")).await
}

fn parse(text: &str, columns: &[&str]) -> Vec<Row> {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), columns);
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            header.iter().zip(record.iter()).map(|(c, v)| (c.to_owned(), v.to_owned())).collect()
        })
        .collect()
}

fn ids(rows: &[Row]) -> Vec<&str> {
    rows.iter().map(|row| row["id"].as_str()).collect()
}

/// Times requests to `paths` one after another until `stop`, returning the slowest answer
/// and how many were sent; every answer must be a 200.
fn watch_responsiveness(
    base: String,
    token: String,
    paths: &'static [&'static str],
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Duration, usize)> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let (mut slowest, mut sent) = (Duration::ZERO, 0);
        while !stop.load(Ordering::Relaxed) {
            for path in paths {
                let began = Instant::now();
                let response = client
                    .get(format!("{base}{path}"))
                    .bearer_auth(&token)
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                response.bytes().await.unwrap();
                slowest = slowest.max(began.elapsed());
                sent += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (slowest, sent)
    })
}

#[tokio::test]
async fn an_export_of_100k_payments_is_whole_and_the_api_stays_responsive_while_it_runs() {
    const COUNT: usize = 100_000;
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant = merchant_id(&app, MERCHANT_EMAIL).await;
    let stored = store_payments(&app, &merchant, COUNT, "ULTA").await;
    let (other, other_token) = merchant_on(&app, "big@ultra.test", "enterprise").await;
    store_payments(&app, &other, 50, "ULTB").await;
    let worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;

    let accepted = start_export(&app, &token, json!({ "kind": "payments" })).await;
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["kind"], "payments");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["filters"], json!({ "merchantId": merchant }));
    assert_eq!(accepted["job"]["kind"], "exports.build");
    let job_id = accepted["job"]["id"].as_str().unwrap();
    assert_eq!(accepted["job"]["statusUrl"], format!("/api/v1/jobs/{job_id}"));
    assert!(accepted["downloadUrl"].is_null());

    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_responsiveness(
        app.api.base.clone(),
        token.clone(),
        &["/healthz", "/api/v1/payments?per_page=1"],
        Arc::clone(&stop),
    );
    let began = Instant::now();
    let (progress, finished) = until_finished(&app, &token, &id, &worker).await;
    let took = began.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (slowest, sent) = watcher.await.unwrap();
    println!("100,000 payments exported in {took:?}; slowest API answer meanwhile {slowest:?} of {sent}");
    assert_eq!(finished["status"], "completed", "{finished}");
    assert!(sent >= 4, "the API was asked while the export ran ({sent} requests)");
    assert!(slowest < Duration::from_secs(2), "an API answer took {slowest:?} during the export");

    assert_eq!(finished["rowsWritten"], COUNT);
    assert!(progress.windows(2).all(|pair| pair[0] <= pair[1]), "progress never goes back: {progress:?}");
    assert!(
        progress.iter().any(|rows| *rows > 0 && *rows < COUNT as i64),
        "progress was visible while the export ran: {progress:?}"
    );
    assert!(finished["startedAt"].is_string() && finished["completedAt"].is_string());
    assert_eq!(finished["downloadUrl"], format!("/api/v1/exports/{id}/download"));

    let response = download(&app, &token, &id).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let filename = format!("payments-{merchant}-{}.csv", Utc::now().format("%Y-%m-%d"));
    assert_eq!(finished["filename"], filename.as_str());
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"{filename}\"").as_str()
    );
    let text = response.text().await.unwrap();
    assert_eq!(finished["bytesWritten"], text.len());
    let rows = parse(&text, &PAYMENT_COLUMNS);
    assert_eq!(rows.len(), COUNT);
    let mut expected_ids = stored.clone();
    expected_ids.sort();
    assert_eq!(ids(&rows), expected_ids, "every payment of the merchant once, oldest first, no one else's");
    let by_id: HashMap<&str, &Row> = rows.iter().map(|row| (row["id"].as_str(), row)).collect();
    for n in (0..COUNT).step_by(997).chain([1, 5, 6, COUNT - 1]) {
        assert_eq!(by_id[stored[n].as_str()], &expected_payment(&stored[n], n, "ULTA"), "payment {n}");
    }

    let job = answer(get(&app, &token, &format!("/api/v1/jobs/{job_id}")).await).await.1;
    assert_eq!(job["data"]["status"], "succeeded", "{job}");
    assert_eq!(job["data"]["result"]["rows"], COUNT);

    for (who, token) in [("another merchant", &other_token), ("an admin", &app.admin_token().await)] {
        let (status, body) = answer(get(&app, token, &format!("/api/v1/exports/{id}")).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{who}: {body}");
        let (status, body) = answer(download(&app, token, &id).await).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{who} cannot download it: {body}");
        assert_eq!(body["error"], "export not found");
    }
    let listed = answer(get(&app, &token, "/api/v1/exports").await).await.1;
    assert_eq!(listed["data"][0]["id"], id.as_str());
    assert_eq!(listed["meta"]["total"], 1);
    let theirs = answer(get(&app, &other_token, "/api/v1/exports").await).await.1;
    assert_eq!(theirs["data"], json!([]), "{theirs}");
}

#[tokio::test]
async fn a_worker_killed_mid_export_leaves_one_whole_file_from_the_rerun() {
    const COUNT: usize = 60_000;
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant = merchant_id(&app, MERCHANT_EMAIL).await;
    let mut stored = store_payments(&app, &merchant, COUNT, "ULTK").await;
    let mut victim = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;

    let id =
        start_export(&app, &token, json!({ "kind": "payments" })).await["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = export_view(&app, &token, &id).await;
        assert_ne!(view["status"], "completed", "the export finished before the worker could be killed");
        if view["rowsWritten"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no chunk written: {view}\n{}", victim.log_text());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    victim.signal("KILL");
    assert!(victim.exited_within(Duration::from_secs(5)).await);
    let view = export_view(&app, &token, &id).await;
    assert_eq!(view["status"], "running", "killed mid-export: {view}");
    assert!(view["rowsWritten"].as_i64().unwrap() < COUNT as i64);

    let survivor = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let (_, finished) = until_finished(&app, &token, &id, &survivor).await;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert_eq!(finished["rowsWritten"], COUNT);
    let text = download(&app, &token, &id).await.text().await.unwrap();
    assert_eq!(finished["bytesWritten"], text.len());
    let rows = parse(&text, &PAYMENT_COLUMNS);
    stored.sort();
    assert_eq!(ids(&rows), stored, "each payment once: the rerun started the file over");
    let db = app.db.connect().await;
    let chunks = export_chunks::Entity::find()
        .filter(export_chunks::Column::ExportId.eq(id.as_str()))
        .all(&db)
        .await
        .unwrap();
    let seqs: Vec<i32> = chunks.iter().map(|chunk| chunk.seq).collect();
    assert_eq!(seqs, (0..chunks.len() as i32).collect::<Vec<_>>(), "chunks of one run, in order");
    assert!(chunks.len() > 1, "the file spans chunks: {}", chunks.len());
}

#[tokio::test]
async fn exports_are_for_pro_plus_merchants_and_the_audit_trail_for_admins() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant = merchant_id(&app, MERCHANT_EMAIL).await;
    let admin = app.admin_token().await;

    for tier in ["starter", "pro"] {
        let (_, starter) = merchant_on(&app, &format!("{tier}@ultra.test"), tier).await;
        for kind in ["payments", "subscriptions"] {
            let (status, body) = request_export(&app, &starter, json!({ "kind": kind })).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{tier} {kind}: {body}");
            assert_eq!(body["meta"]["code"], "tier_required");
            assert!(body["error"].as_str().unwrap().contains(&format!("on {tier}")), "{body}");
        }
    }
    let (status, body) = request_export(&app, &token, json!({ "kind": "audit_logs" })).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a merchant cannot export the audit trail: {body}");
    let (status, _) =
        request_export(&app, &token, json!({ "kind": "payments", "filters": { "merchantId": merchant } }))
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "merchantId is an admin filter");
    let (status, body) = request_export(&app, &admin, json!({ "kind": "payments" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["meta"]["field"], "filters.merchantId");
    let (status, _) = request_export(
        &app,
        &admin,
        json!({ "kind": "subscriptions", "filters": { "merchantId": "usr_x" } }),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let response =
        app.client.post(app.url("/api/v1/exports")).json(&json!({ "kind": "payments" })).send().await;
    assert_eq!(response.unwrap().status(), StatusCode::UNAUTHORIZED);

    // No worker yet: the export waits, and cannot be downloaded.
    let queued =
        start_export(&app, &token, json!({ "kind": "payments", "filters": { "status": "completed" } })).await;
    let id = queued["id"].as_str().unwrap();
    let (status, body) = answer(download(&app, &token, id).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["meta"]["code"], "export_not_ready");
    assert_eq!(export_view(&app, &token, id).await["status"], "queued");

    let worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let admin_export = start_export(
        &app,
        &admin,
        json!({ "kind": "payments", "filters": { "merchantId": merchant, "from": "2026-01-01T00:00:00Z" } }),
    )
    .await;
    let trail = start_export(
        &app,
        &admin,
        json!({ "kind": "audit_logs", "filters": { "action": "export.created", "entityType": "export" } }),
    )
    .await;
    assert_eq!(trail["filters"], json!({ "action": "export.created", "entityType": "export" }));
    let trail_id = trail["id"].as_str().unwrap();
    let (_, finished) = until_finished(&app, &admin, trail_id, &worker).await;
    assert_eq!(finished["status"], "completed", "{finished}");
    assert!(finished["filename"].as_str().unwrap().starts_with("audit-logs-"));
    let rows = parse(
        &download(&app, &admin, trail_id).await.text().await.unwrap(),
        &["id", "created_at", "action", "entity_type", "entity_id", "user_id", "ip", "request_id", "details"],
    );
    let exported: Vec<&str> = rows.iter().map(|row| row["entity_id"].as_str()).collect();
    let created = [id, admin_export["id"].as_str().unwrap(), trail_id];
    assert_eq!(exported, created, "every export created so far, its own request included");
    assert!(rows.iter().all(|row| row["action"] == "export.created" && row["entity_type"] == "export"));
    let details: Value = serde_json::from_str(&rows[0]["details"]).unwrap();
    assert_eq!(details["kind"], "payments");
    assert_eq!(details["filters"]["status"], "completed");

    let (_, done) = until_finished(&app, &token, id, &worker).await;
    assert_eq!(done["status"], "completed");
    assert_eq!(parse(&download(&app, &token, id).await.text().await.unwrap(), &PAYMENT_COLUMNS).len(), 0);
}

#[tokio::test]
async fn bad_export_requests_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let admin = app.admin_token().await;

    for (who, body, field) in [
        (&token, json!({ "kind": "invoices" }), "kind"),
        (&token, json!({ "filters": {} }), "kind"),
        (&token, json!({ "kind": "payments", "filters": { "status": "paid" } }), "filters.status"),
        (&token, json!({ "kind": "subscriptions", "filters": { "status": "completed" } }), "filters.status"),
        (&token, json!({ "kind": "payments", "filters": { "from": "yesterday" } }), "filters.from"),
        (&token, json!({ "kind": "payments", "filters": { "to": "2026-13-01T00:00:00Z" } }), "filters.to"),
        (
            &token,
            json!({ "kind": "payments", "filters": { "from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z" } }),
            "filters.from",
        ),
        (&token, json!({ "kind": "payments", "filters": { "overdue": true } }), "filters.overdue"),
        (&token, json!({ "kind": "subscriptions", "filters": { "overdue": "yes" } }), "filters.overdue"),
        (&token, json!({ "kind": "payments", "filters": { "action": "auth.login" } }), "filters.action"),
        (&token, json!({ "kind": "payments", "filters": "completed" }), "filters"),
        (&admin, json!({ "kind": "audit_logs", "filters": { "merchantId": "usr_1" } }), "filters.merchantId"),
        (&admin, json!({ "kind": "audit_logs", "filters": { "status": "active" } }), "filters.status"),
        (&admin, json!({ "kind": "audit_logs", "filters": { "action": "a".repeat(101) } }), "filters.action"),
        (&admin, json!({ "kind": "audit_logs", "filters": { "userId": "" } }), "filters.userId"),
    ] {
        let (status, answer) = request_export(&app, who, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
        assert_eq!(answer["meta"]["field"], field, "{body}: {answer}");
    }
    let (status, _) = answer(get(&app, &token, "/api/v1/exports/exp_missing").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = answer(download(&app, &token, "exp_missing").await).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_export_that_cannot_be_built_ends_failed_and_three_at_most_wait_per_user() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(
            start_export(&app, &token, json!({ "kind": "payments" })).await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let (status, body) = request_export(&app, &token, json!({ "kind": "payments" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["meta"]["code"], "exports_in_progress");

    // Filters no worker can read, as an older or newer version might have stored them.
    let db = app.db.connect().await;
    exports::Entity::update_many()
        .col_expr(exports::Column::Filters, Expr::value(json!({ "merchantId": 42 })))
        .filter(exports::Column::Id.eq(waiting[0].as_str()))
        .exec(&db)
        .await
        .unwrap();
    let worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let (_, failed) = until_finished(&app, &token, &waiting[0], &worker).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["error"], "the file could not be built; ask for a new export");
    assert!(failed["downloadUrl"].is_null());
    let (status, body) = answer(download(&app, &token, &waiting[0]).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["meta"]["code"], "export_failed");
    // The export is marked failed inside the handler; the job's own end is recorded just after.
    let job_path = format!("/api/v1/jobs/{}", failed["jobId"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let job = answer(get(&app, &token, &job_path).await).await.1;
        if job["data"]["status"] != "running" || Instant::now() > deadline {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job["data"]["status"], "failed", "not retried: {job}");

    for id in &waiting[1..] {
        assert_eq!(until_finished(&app, &token, id, &worker).await.1["status"], "completed");
    }
    start_export(&app, &token, json!({ "kind": "payments" })).await;
}

/// Stores a subscription for `merchant`; `n` spaces out creation times.
async fn store_subscription(
    app: &TestApp,
    merchant: &str,
    n: usize,
    status: SubscriptionStatus,
    overdue: bool,
) -> String {
    let db = app.db.connect().await;
    let id = ultra_domain::ids::new_id("sub");
    subscriptions::Entity::insert(subscriptions::ActiveModel {
        id: Set(id.clone()),
        merchant_id: Set(merchant.to_owned()),
        label: Set(format!("Plan {n}")),
        customer_phone: Set("0340000000".to_owned()),
        amount_minor: Set(500_000 + n as i64),
        currency: Set("MGA".to_owned()),
        description: Set((n == 0).then(|| "@gold".to_owned())),
        interval: Set(SubscriptionInterval::Monthly),
        provider: Set("mvola".to_owned()),
        status: Set(status),
        next_renewal_at: Set(created(n) + chrono::Duration::days(30)),
        anchor_day: Set(1),
        overdue: Set(overdue),
        renewal_attempts: Set(0),
        retry_at: Set(None),
        renewal_payment_id: Set(None),
        last_payment_id: Set(None),
        last_renewed_at: Set(None),
        renewal_count: Set(n as i32),
        metadata: Set(None),
        created_at: Set(created(n)),
        updated_at: Set(created(n)),
    })
    .exec_without_returning(&db)
    .await
    .unwrap();
    id
}

async fn stream_subscriptions(app: &TestApp, token: &str, query: &[(&str, &str)]) -> reqwest::Response {
    let url = reqwest::Url::parse_with_params(&app.url("/api/v1/subscriptions/export"), query).unwrap();
    app.client.get(url).bearer_auth(token).send().await.unwrap()
}

async fn streamed_ids(app: &TestApp, token: &str, query: &[(&str, &str)]) -> Vec<String> {
    let response = stream_subscriptions(app, token, query).await;
    assert_eq!(response.status(), StatusCode::OK, "{query:?}");
    let rows = parse(&response.text().await.unwrap(), &SUBSCRIPTION_COLUMNS);
    rows.into_iter().map(|row| row["id"].clone()).collect()
}

#[tokio::test]
async fn the_subscription_export_honours_its_filters_and_the_async_file_is_the_same() {
    use SubscriptionStatus::{Active, Cancelled, Paused};
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant = merchant_id(&app, MERCHANT_EMAIL).await;
    let (other, other_token) = merchant_on(&app, "big@ultra.test", "enterprise").await;
    let mut subs = Vec::new();
    for (n, (status, overdue)) in
        [(Active, false), (Active, true), (Paused, false), (Cancelled, false), (Active, false)]
            .into_iter()
            .enumerate()
    {
        subs.push(store_subscription(&app, &merchant, n, status, overdue).await);
    }
    store_subscription(&app, &other, 9, Active, true).await;

    let response = stream_subscriptions(&app, &token, &[]).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    assert_eq!(
        response.headers()[header::CONTENT_DISPOSITION],
        format!("attachment; filename=\"subscriptions-{merchant}-{}.csv\"", Utc::now().format("%Y-%m-%d"))
            .as_str()
    );
    let whole = response.text().await.unwrap();
    let rows = parse(&whole, &SUBSCRIPTION_COLUMNS);
    assert_eq!(
        ids(&rows),
        subs.iter().map(String::as_str).collect::<Vec<_>>(),
        "the merchant's own, oldest first"
    );
    let first = &rows[0];
    assert_eq!(first["created_at"], created(0).to_rfc3339());
    assert_eq!(first["label"], "Plan 0");
    assert_eq!(first["status"], "active");
    assert_eq!(first["overdue"], "false");
    assert_eq!(first["amount"], "5000");
    assert_eq!(first["interval"], "monthly");
    assert_eq!(first["description"], "'@gold", "a formula is shown as text");
    assert_eq!(first["next_renewal_at"], (created(0) + chrono::Duration::days(30)).to_rfc3339());
    assert_eq!(first["last_renewed_at"], "");
    assert_eq!(rows[1]["overdue"], "true");
    assert_eq!(rows[3]["renewal_count"], "3");

    let pick = |indexes: &[usize]| indexes.iter().map(|i| subs[*i].clone()).collect::<Vec<_>>();
    assert_eq!(streamed_ids(&app, &token, &[("status", "active")]).await, pick(&[0, 1, 4]));
    assert_eq!(streamed_ids(&app, &token, &[("status", "paused")]).await, pick(&[2]));
    assert_eq!(streamed_ids(&app, &token, &[("overdue", "true")]).await, pick(&[1]));
    assert_eq!(streamed_ids(&app, &token, &[("overdue", "false")]).await, pick(&[0, 2, 3, 4]));
    assert_eq!(
        streamed_ids(&app, &token, &[("status", "active"), ("overdue", "false")]).await,
        pick(&[0, 4])
    );
    let (from, to) = (created(1).to_rfc3339(), created(3).to_rfc3339());
    assert_eq!(streamed_ids(&app, &token, &[("from", &from), ("to", &to)]).await, pick(&[1, 2, 3]));
    assert_eq!(streamed_ids(&app, &token, &[("from", &to)]).await, pick(&[3, 4]));
    assert_eq!(streamed_ids(&app, &other_token, &[]).await.len(), 1, "theirs alone");

    let admin = app.admin_token().await;
    let (status, body) = answer(stream_subscriptions(&app, &admin, &[]).await).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["meta"]["field"], "merchantId");
    assert_eq!(
        streamed_ids(&app, &admin, &[("merchantId", &merchant), ("status", "cancelled")]).await,
        pick(&[3])
    );
    let (_, starter) = merchant_on(&app, "small@ultra.test", "starter").await;
    let (status, body) = answer(stream_subscriptions(&app, &starter, &[]).await).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["meta"]["code"], "tier_required");
    for (query, field) in [
        (vec![("overdue", "yes")], "overdue"),
        (vec![("status", "overdue")], "status"),
        (vec![("from", "2026-02-01T00:00:00Z"), ("to", "2026-01-01T00:00:00Z")], "from"),
    ] {
        let (status, body) = answer(stream_subscriptions(&app, &token, &query).await).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
        assert_eq!(body["meta"]["field"], field, "{query:?}: {body}");
    }
    let response = app.client.get(app.url("/api/v1/subscriptions/export")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The worker writes the same bytes the streamed exports send, for subscriptions and payments.
    store_payments(&app, &merchant, 1_234, "ULTS").await;
    let worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let boundary = created(600).to_rfc3339();
    for (kind, path, filters, query) in [
        (
            "subscriptions",
            "/api/v1/subscriptions/export",
            json!({ "status": "active" }),
            vec![("status", "active")],
        ),
        ("subscriptions", "/api/v1/subscriptions/export", json!({}), vec![]),
        (
            "payments",
            "/api/v1/payments/export",
            json!({ "status": "completed" }),
            vec![("status", "completed")],
        ),
        ("payments", "/api/v1/payments/export", json!({ "to": boundary }), vec![("to", boundary.as_str())]),
    ] {
        let url = reqwest::Url::parse_with_params(&app.url(path), &query).unwrap();
        let streamed = app.client.get(url).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
        let id = start_export(&app, &token, json!({ "kind": kind, "filters": filters })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, finished) = until_finished(&app, &token, &id, &worker).await;
        assert_eq!(finished["status"], "completed", "{finished}");
        let built = download(&app, &token, &id).await.text().await.unwrap();
        assert_eq!(built, streamed, "{kind} {filters}");
    }
}

#[tokio::test]
async fn expired_exports_are_purged_with_their_files() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant = merchant_id(&app, MERCHANT_EMAIL).await;
    store_payments(&app, &merchant, 20, "ULTE").await;
    let worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let mut made = Vec::new();
    for _ in 0..2 {
        let id = start_export(&app, &token, json!({ "kind": "payments" })).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, finished) = until_finished(&app, &token, &id, &worker).await;
        assert_eq!(finished["status"], "completed");
        made.push(id);
    }
    let (expired, kept) = (&made[0], &made[1]);
    let db = app.db.connect().await;
    exports::Entity::update_many()
        .col_expr(exports::Column::ExpiresAt, Expr::value(Utc::now() - chrono::Duration::minutes(1)))
        .filter(exports::Column::Id.eq(expired.as_str()))
        .exec(&db)
        .await
        .unwrap();
    let (status, _) = answer(download(&app, &token, expired).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an expired export is gone at once for its owner");

    let every_second = json!({ "purge-expired-exports": "* * * * * *" });
    ultra_domain::runtime_config::RuntimeConfig::set(&db, "schedules", every_second, None).await.unwrap();
    let _scheduler = start_scheduler(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let chunks_of = |id: String| {
        let db = db.clone();
        async move {
            export_chunks::Entity::find()
                .filter(export_chunks::Column::ExportId.eq(id))
                .count(&db)
                .await
                .unwrap()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while exports::Entity::find_by_id(expired.as_str()).one(&db).await.unwrap().is_some() {
        assert!(Instant::now() < deadline, "the expired export was not purged\n{}", worker.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(chunks_of(expired.clone()).await, 0, "its file went with it");
    assert_eq!(chunks_of(kept.clone()).await, 1, "an unexpired export keeps its file");
    assert_eq!(download(&app, &token, kept).await.status(), StatusCode::OK);
}
