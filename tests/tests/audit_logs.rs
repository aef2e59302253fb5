//! The audit trail: mutations on every surface write a row naming the action, the entity, who
//! acted, from where and in which request; admins list it with the seed's filters and export it
//! as CSV.

use std::{collections::HashMap, time::Duration};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_tests::{
    MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp, redis_url,
    sellapay::{self, access_token, create_key},
    start_worker,
};

/// Sends a request with its own `X-Request-ID`, so that its audit row can be found.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    request_id: &str,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).header("X-Request-ID", request_id);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Every audit row, through the admin API, as an admin browsing it would read them.
async fn all_audit_rows(app: &TestApp, admin: &str) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/api/v1/admin/audit-logs?pagination=cursor&limit=100&cursor={cursor}");
        let (status, page) = send(app, Method::GET, &path, Some(admin), None, "audit-read").await;
        assert_eq!(status, StatusCode::OK, "{page}");
        rows.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["meta"]["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return rows,
        }
    }
}

#[tokio::test]
async fn mutations_on_every_surface_write_who_what_where_and_which_request() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    RuntimeConfig::set(&db, "webhooks", json!({ "allowPrivateUrls": true }), None).await.unwrap();
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let admin = app.admin_token().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant_id = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap().id;
    let admin_id =
        ultra_domain::users::find_by_email(&db, ultra_tests::ADMIN_EMAIL).await.unwrap().unwrap().id;

    // (request id, who, expected action, expected entity type), filled as the requests go.
    let mut expected: Vec<(String, String, &str, &str)> = Vec::new();
    let mut step = async |method: Method,
                          path: &str,
                          token: Option<&str>,
                          body: Option<Value>,
                          actor: &str,
                          action: &'static str,
                          entity: &'static str|
           -> Value {
        let request_id = format!("audit-{}", expected.len());
        let (status, answer) = send(&app, method.clone(), path, token, body, &request_id).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        expected.push((request_id, actor.to_owned(), action, entity));
        answer
    };

    step(
        Method::PUT,
        "/api/v1/admin/providers/mvola",
        Some(&admin),
        Some(json!({ "mode": "simulation" })),
        &admin_id,
        "provider_config.updated",
        "provider_config",
    )
    .await;
    step(
        Method::PUT,
        "/api/v1/admin/providers/mpesa",
        Some(&admin),
        Some(json!({ "mode": "simulation" })),
        &admin_id,
        "provider_config.updated",
        "provider_config",
    )
    .await;
    let payment = step(
        Method::POST,
        "/api/v1/payments",
        Some(&merchant),
        Some(json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000" })),
        &merchant_id,
        "payment.created",
        "payment",
    )
    .await;
    let payment_id = payment["data"]["id"].as_str().unwrap().to_owned();
    let link = step(
        Method::POST,
        "/api/v1/payment-links",
        Some(&merchant),
        Some(json!({ "title": "Audit link", "amount": "1000" })),
        &merchant_id,
        "payment_link.created",
        "payment_link",
    )
    .await;
    let link_path = format!("/api/v1/payment-links/{}", link["data"]["id"].as_str().unwrap());
    step(
        Method::PATCH,
        &link_path,
        Some(&merchant),
        Some(json!({ "title": "Renamed" })),
        &merchant_id,
        "payment_link.updated",
        "payment_link",
    )
    .await;
    step(
        Method::DELETE,
        &link_path,
        Some(&merchant),
        None,
        &merchant_id,
        "payment_link.deleted",
        "payment_link",
    )
    .await;
    let subscription = step(
        Method::POST,
        "/api/v1/subscriptions",
        Some(&merchant),
        Some(json!({
            "label": "Audit plan", "customerPhone": "0340000000", "amount": "2000",
            "interval": "monthly", "nextRenewalAt": "2031-01-31T00:00:00Z",
        })),
        &merchant_id,
        "subscription.created",
        "subscription",
    )
    .await;
    let subscription_path = format!("/api/v1/subscriptions/{}", subscription["data"]["id"].as_str().unwrap());
    step(
        Method::PATCH,
        &subscription_path,
        Some(&merchant),
        Some(json!({ "status": "paused" })),
        &merchant_id,
        "subscription.updated",
        "subscription",
    )
    .await;
    step(
        Method::DELETE,
        &subscription_path,
        Some(&merchant),
        None,
        &merchant_id,
        "subscription.deleted",
        "subscription",
    )
    .await;
    let endpoint = step(
        Method::POST,
        "/api/v1/webhooks/endpoints",
        Some(&merchant),
        Some(json!({ "url": "http://127.0.0.1:9/hooks", "secret": "whsec-audit-secret-1", "events": ["payment.completed"] })),
        &merchant_id,
        "webhook_endpoint.created",
        "webhook_endpoint",
    )
    .await;
    let endpoint_path = format!("/api/v1/webhooks/endpoints/{}", endpoint["data"]["id"].as_str().unwrap());
    step(
        Method::DELETE,
        &endpoint_path,
        Some(&merchant),
        None,
        &merchant_id,
        "webhook_endpoint.deleted",
        "webhook_endpoint",
    )
    .await;
    step(
        Method::POST,
        "/api/v1/exports",
        Some(&merchant),
        Some(json!({ "kind": "payments" })),
        &merchant_id,
        "export.created",
        "export",
    )
    .await;

    // Sellapay, with credentials the merchant created.
    let keys = create_key(&app, &merchant, "audit").await;
    let bearer = access_token(&app, &keys).await;
    step(
        Method::POST,
        "/sellapay/api/v1/requestStkPush",
        Some(&bearer),
        Some(json!({ "phone": "712345678", "amount": 100, "reference": "AUDIT-1" })),
        &merchant_id,
        "payment.created",
        "payment",
    )
    .await;
    sellapay::credit(&app, MERCHANT_EMAIL, 100_000).await;
    step(
        Method::POST,
        "/sellapay/api/v1/sendFundsToMobile",
        Some(&bearer),
        Some(json!({ "phone": "712345678", "amount": 100 })),
        &merchant_id,
        "payout.created",
        "payout",
    )
    .await;

    // Maxtera: a customer registers and logs in.
    let registered = step(
        Method::POST,
        "/maxtera/api/v1/auth/register/",
        None,
        Some(json!({ "email": "ada@example.ng", "password": "strong-pass-1", "phone": "08012345678" })),
        "",
        "maxtera.register",
        "user",
    )
    .await;
    assert!(registered["user_id"].is_i64(), "{registered}");
    step(
        Method::POST,
        "/maxtera/api/v1/auth/login/",
        None,
        Some(json!({ "email": "ada@example.ng", "password": "strong-pass-1" })),
        "",
        "maxtera.login",
        "user",
    )
    .await;

    // The worker completes the payment on the provider's word: the platform's own act.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let rows = all_audit_rows(&app, &admin).await;
        let completed =
            rows.iter().any(|r| r["action"] == "payment.completed" && r["entityId"] == payment_id.as_str());
        if completed || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_request: HashMap<&str, Vec<&Value>> = rows.iter().fold(HashMap::new(), |mut map, row| {
        if let Some(id) = row["requestId"].as_str() {
            map.entry(id).or_default().push(row);
        }
        map
    });
    let customer_id = rows
        .iter()
        .find(|r| r["action"] == "maxtera.register")
        .and_then(|r| r["userId"].as_str())
        .expect("the registration names its customer")
        .to_owned();
    for (request_id, actor, action, entity) in &expected {
        let found = by_request
            .get(request_id.as_str())
            .unwrap_or_else(|| panic!("no audit row for {request_id} ({action})"));
        let row = found
            .iter()
            .find(|r| r["action"] == *action)
            .unwrap_or_else(|| panic!("{request_id}: no {action} among {found:?}"));
        assert_eq!(row["entityType"], *entity, "{row}");
        let actor = if actor.is_empty() { customer_id.as_str() } else { actor.as_str() };
        assert_eq!(row["userId"], actor, "{row}");
        assert_eq!(row["ip"], "127.0.0.1", "{row}");
        assert!(row["entityId"].is_string(), "{row}");
        assert!(row["createdAt"].is_string(), "{row}");
    }
    let completed = rows
        .iter()
        .find(|r| r["action"] == "payment.completed" && r["entityId"] == payment_id.as_str())
        .expect("the completion is in the trail");
    assert!(completed["userId"].is_null(), "no user completed it: {completed}");
}

#[tokio::test]
async fn admins_filter_the_trail_and_export_it_and_no_one_else_can() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let db = app.db.connect().await;
    let merchant_id = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap().id;
    let admin_id =
        ultra_domain::users::find_by_email(&db, ultra_tests::ADMIN_EMAIL).await.unwrap().unwrap().id;
    for n in 0..3 {
        let body = json!({ "email": format!("user{n}@ultra.test"), "name": format!("User {n}"), "password": "long-password-1" });
        let (status, created) =
            send(&app, Method::POST, "/api/v1/admin/users", Some(&admin), Some(body), "make-user").await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
    }
    let (status, _) = send(&app, Method::POST, "/api/v1/auth/logout", Some(&merchant), None, "leave").await;
    assert!(status.is_success());

    let (_, created) = send(
        &app,
        Method::GET,
        &format!("/api/v1/admin/audit-logs?action=user.created&userId={admin_id}&per_page=2"),
        Some(&admin),
        None,
        "r",
    )
    .await;
    assert_eq!(created["data"].as_array().unwrap().len(), 2);
    assert_eq!(created["meta"]["total"], 3);
    assert!(
        created["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["action"] == "user.created" && r["entityType"] == "user")
    );
    let (_, by_merchant) = send(
        &app,
        Method::GET,
        &format!("/api/v1/admin/audit-logs?userId={merchant_id}"),
        Some(&admin),
        None,
        "r",
    )
    .await;
    let actions: Vec<&str> =
        by_merchant["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"auth.logout"), "{by_merchant}");
    assert!(actions.iter().all(|a| *a != "user.created"), "only what the merchant did: {actions:?}");
    let (_, users) =
        send(&app, Method::GET, "/api/v1/admin/audit-logs?entityType=user", Some(&admin), None, "r").await;
    assert!(users["data"].as_array().unwrap().iter().all(|r| r["entityType"] == "user"));
    let (_, future) = send(
        &app,
        Method::GET,
        "/api/v1/admin/audit-logs?from=2999-01-01T00:00:00Z",
        Some(&admin),
        None,
        "r",
    )
    .await;
    assert_eq!(future["data"].as_array().unwrap().len(), 0);

    let response = app
        .client
        .get(app.url(&format!("/api/v1/admin/audit-logs/export?action=user.created&userId={admin_id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let text = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    assert_eq!(&header[2], "action");
    let exported: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(exported.len(), 3, "{text}");
    assert!(exported.iter().all(|r| &r[2] == "user.created" && &r[3] == "user"));

    for (path, bad) in [
        ("/api/v1/admin/audit-logs?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z", "from"),
        ("/api/v1/admin/audit-logs?action=", "action"),
        ("/api/v1/admin/audit-logs/export?from=yesterday", "from"),
    ] {
        let (status, answer) = send(&app, Method::GET, path, Some(&admin), None, "r").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(bad), "{path}: {answer}");
    }
    let fresh = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    for path in ["/api/v1/admin/audit-logs", "/api/v1/admin/audit-logs/export"] {
        let (status, _) = send(&app, Method::GET, path, Some(&fresh), None, "r").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        let (status, _) = send(&app, Method::GET, path, None, None, "r").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}
