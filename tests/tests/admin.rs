//! Administration: users, tokens, runtime config and SLA tiers. Who may call what, the rules of
//! changing and deleting accounts, tokens shown once and revoked on every replica, config
//! changes validated key by key and reaching a running API process, and the tier table that
//! both `GET admin/tiers` shows and the feature gates enforce.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, header::HeaderMap};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_entity::audit_logs;
use ultra_tests::{MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp};

/// How long an API process may serve runtime config it read before a change.
const CONFIG_CACHE_AGE: Duration = Duration::from_secs(2);

struct Answer {
    status: StatusCode,
    body: Value,
    headers: HeaderMap,
}

async fn call(
    app: &TestApp,
    base: &str,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut request = app.client.request(method, format!("{base}/api/v1{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)) }
}

async fn get(app: &TestApp, token: &str, path: &str) -> Answer {
    call(app, &app.api.base, Method::GET, path, Some(token), None).await
}

async fn send(app: &TestApp, token: &str, method: Method, path: &str, body: Value) -> Answer {
    call(app, &app.api.base, method, path, Some(token), Some(body)).await
}

/// Asserts a 400 that names `field`.
fn names_field(answer: &Answer, field: &str) {
    assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{field}: {}", answer.body);
    assert_eq!(answer.body["meta"]["field"], field, "{}", answer.body);
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<audit_logs::Model> {
    audit_logs::Entity::find()
        .filter(audit_logs::Column::Action.eq(action))
        .all(&app.db.connect().await)
        .await
        .unwrap()
}

/// Creates an account through the CLI and logs in as it.
async fn account(app: &TestApp, email: &str, role: &str, extra: &[&str]) -> (String, String) {
    let id = app.db.create_user(email, Some("account-password-1"), role, extra);
    (id, app.login(email, "account-password-1").await)
}

/// Configures MVola in simulation mode, so that payments can be created.
async fn simulate_mvola(app: &TestApp, admin: &str) {
    let answer =
        send(app, admin, Method::PUT, "/admin/providers/mvola", json!({ "mode": "simulation" })).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

fn payment() -> Value {
    json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" })
}

#[tokio::test]
async fn admin_routes_refuse_anonymous_callers_and_merchants_and_config_needs_a_super_admin() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let super_admin = app.admin_token().await;
    let (_, admin) = account(&app, "plain-admin@ultra.test", "admin", &[]).await;
    let routes = [
        (Method::GET, "/admin/users", None),
        (Method::POST, "/admin/users", Some(json!({ "email": "x@ultra.test", "name": "X" }))),
        (Method::PATCH, "/admin/users/usr_x", Some(json!({ "name": "X" }))),
        (Method::DELETE, "/admin/users/usr_x", None),
        (Method::GET, "/admin/tokens", None),
        (Method::POST, "/admin/tokens", Some(json!({ "userId": "usr_x" }))),
        (Method::GET, "/admin/tokens/tok_x", None),
        (Method::POST, "/admin/tokens/tok_x/revoke", None),
        (Method::GET, "/admin/config", None),
        (Method::PATCH, "/admin/config", Some(json!({ "passwordlessLogin": true }))),
        (Method::GET, "/admin/tiers", None),
    ];
    for (method, path, body) in routes {
        let base = &app.api.base;
        let anonymous = call(&app, base, method.clone(), path, None, body.clone()).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", anonymous.body);
        let refused = call(&app, base, method.clone(), path, Some(&merchant), body.clone()).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{method} {path}: {}", refused.body);
        assert_eq!(refused.body["success"], false);
        let by_admin = call(&app, base, method.clone(), path, Some(&admin), body.clone()).await;
        if path == "/admin/config" {
            assert_eq!(by_admin.status, StatusCode::FORBIDDEN, "{method} {path} is for super-admins");
            assert!(by_admin.body["error"].as_str().unwrap().contains("super-admin"), "{}", by_admin.body);
            let by_super_admin = call(&app, base, method.clone(), path, Some(&super_admin), body).await;
            assert_eq!(by_super_admin.status, StatusCode::OK, "{method} {path}: {}", by_super_admin.body);
        } else {
            assert_ne!(by_admin.status, StatusCode::FORBIDDEN, "{method} {path}: {}", by_admin.body);
            assert_ne!(by_admin.status, StatusCode::UNAUTHORIZED, "{method} {path}: {}", by_admin.body);
        }
    }
    // An admin acting as the primary merchant is a merchant for the length of the request.
    let acting = app
        .client
        .get(app.url("/api/v1/admin/users"))
        .bearer_auth(&super_admin)
        .header("X-App-Context", "merchant")
        .send()
        .await
        .unwrap();
    assert_eq!(acting.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_are_found_changed_and_protected_by_the_admin_rules() {
    let app = TestApp::spawn().await;
    let super_admin = app.admin_token().await;
    let root_id = app.db.create_user("root2@ultra.test", None, "admin", &["--super-admin"]);
    let (admin_id, admin) = account(&app, "plain-admin@ultra.test", "admin", &[]).await;
    let created = send(
        &app,
        &admin,
        Method::POST,
        "/admin/users",
        json!({ "email": "Newshop@Ultra.test", "name": "New Shop", "password": "new-shop-password" }),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let shop = created.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["data"]["tier"], "starter");
    assert_eq!(created.body["data"]["role"], "user");

    // Search by name or email, filter by role, in pages.
    let found = get(&app, &admin, "/admin/users?search=new%20shop&role=user").await;
    assert_eq!(found.body["data"].as_array().unwrap().len(), 1, "{}", found.body);
    assert_eq!(found.body["data"][0]["email"], "newshop@ultra.test");
    let admins = get(&app, &admin, "/admin/users?role=admin&page=1&per_page=2").await;
    assert_eq!(admins.body["meta"]["total"], 3, "{}", admins.body);
    assert_eq!(admins.body["data"].as_array().unwrap().len(), 2);
    names_field(&get(&app, &admin, "/admin/users?per_page=101").await, "per_page");

    // A plain admin changes a merchant's tier, and every list shows it.
    let path = format!("/admin/users/{shop}");
    let changed =
        send(&app, &admin, Method::PATCH, &path, json!({ "tier": "pro_plus", "phone": "0340000001" })).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["data"]["tier"], "pro_plus");
    let listed = get(&app, &admin, "/admin/users?search=newshop").await;
    assert_eq!(listed.body["data"][0]["tier"], "pro_plus");
    assert_eq!(listed.body["data"][0]["phone"], "0340000001");
    let cleared = send(&app, &admin, Method::PATCH, &path, json!({ "phone": null })).await;
    assert_eq!(cleared.body["data"]["phone"], Value::Null, "{}", cleared.body);
    let updates = audit_rows(&app, "user.updated").await;
    let tier_change =
        updates.iter().find(|row| row.details.as_ref().unwrap()["changes"].get("tier").is_some());
    let tier_change = tier_change.expect("the tier change is audited");
    assert_eq!(tier_change.entity_id.as_deref(), Some(shop.as_str()));
    assert_eq!(tier_change.actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(
        tier_change.details.as_ref().unwrap()["changes"]["tier"],
        json!({ "from": "starter", "to": "pro_plus" })
    );

    // Bad values name their field; another account's email is a conflict.
    names_field(&send(&app, &admin, Method::PATCH, &path, json!({ "email": "not-an-email" })).await, "email");
    names_field(&send(&app, &admin, Method::PATCH, &path, json!({ "name": "" })).await, "name");
    names_field(&send(&app, &admin, Method::PATCH, &path, json!({ "tier": "platinum" })).await, "tier");
    names_field(&send(&app, &admin, Method::PATCH, &path, json!({})).await, "body");
    let taken =
        send(&app, &admin, Method::PATCH, &path, json!({ "email": MERCHANT_EMAIL.to_uppercase() })).await;
    assert_eq!(taken.status, StatusCode::CONFLICT, "{}", taken.body);
    assert_eq!(taken.body["meta"]["code"], "email_taken");
    let unknown = send(&app, &admin, Method::PATCH, "/admin/users/usr_nobody", json!({ "name": "N" })).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Admin roles and super-admins are a super-admin's to change.
    let promote = json!({ "role": "admin" });
    let refused = send(&app, &admin, Method::PATCH, &path, promote.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let root_path = format!("/admin/users/{root_id}");
    let refused = send(&app, &admin, Method::PATCH, &root_path, json!({ "name": "Renamed" })).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = send(
        &app,
        &admin,
        Method::POST,
        "/admin/users",
        json!({ "email": "a2@ultra.test", "name": "A", "role": "admin" }),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let promoted = send(&app, &super_admin, Method::PATCH, &path, promote).await;
    assert_eq!(promoted.status, StatusCode::OK, "{}", promoted.body);
    assert_eq!(promoted.body["data"]["role"], "admin");

    // No admin takes away its own admin role; a super-admin demotes another, who then stops
    // being a super-admin too.
    let own = format!("/admin/users/{admin_id}");
    let refused = send(&app, &admin, Method::PATCH, &own, json!({ "role": "user" })).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["meta"]["code"], "cannot_demote_self");
    let session = get(&app, &super_admin, "/auth/session").await;
    let super_admin_id = session.body["data"]["user"]["id"].as_str().unwrap().to_owned();
    let refused = send(
        &app,
        &super_admin,
        Method::PATCH,
        &format!("/admin/users/{super_admin_id}"),
        json!({ "role": "user" }),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    let renamed = send(
        &app,
        &super_admin,
        Method::PATCH,
        &format!("/admin/users/{super_admin_id}"),
        json!({ "name": "Root" }),
    )
    .await;
    assert_eq!(renamed.status, StatusCode::OK, "{}", renamed.body);
    let demoted = send(&app, &super_admin, Method::PATCH, &root_path, json!({ "role": "user" })).await;
    assert_eq!(demoted.status, StatusCode::OK, "{}", demoted.body);
    assert_eq!(demoted.body["data"]["isSuperAdmin"], false);

    // A demoted admin loses admin access on its next request.
    let demote = send(&app, &super_admin, Method::PATCH, &own, json!({ "role": "user" })).await;
    assert_eq!(demote.status, StatusCode::OK, "{}", demote.body);
    assert_eq!(get(&app, &admin, "/admin/users").await.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deleting_a_user_keeps_payment_history_and_revokes_the_users_tokens() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let super_admin = app.admin_token().await;
    let (admin_id, admin) = account(&app, "plain-admin@ultra.test", "admin", &[]).await;
    simulate_mvola(&app, &super_admin).await;

    // The merchant has paid in: its account stays.
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let paid = send(&app, &merchant, Method::POST, "/payments", payment()).await;
    assert_eq!(paid.status, StatusCode::ACCEPTED, "{}", paid.body);
    let merchant_id =
        get(&app, &merchant, "/auth/session").await.body["data"]["user"]["id"].as_str().unwrap().to_owned();
    let refused =
        call(&app, &app.api.base, Method::DELETE, &format!("/admin/users/{merchant_id}"), Some(&admin), None)
            .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert_eq!(refused.body["meta"]["code"], "user_has_payment_history");
    assert!(refused.body["error"].as_str().unwrap().contains("1 payment"), "{}", refused.body);
    assert_eq!(get(&app, &merchant, "/auth/session").await.status, StatusCode::OK);

    // A merchant that never moved money goes, with what it set up, and its tokens stop
    // working on every replica at once.
    let (shop_id, shop) = account(&app, "empty-shop@ultra.test", "user", &[]).await;
    let endpoint = send(
        &app,
        &shop,
        Method::POST,
        "/webhooks/endpoints",
        json!({ "url": "https://8.8.8.8/hooks", "secret": "whsec-secret-of-the-shop", "events": ["payment.completed"] }),
    )
    .await;
    assert_eq!(endpoint.status, StatusCode::CREATED, "{}", endpoint.body);
    let on_replica = |token: String| {
        let url = format!("{}/api/v1/auth/session", replica.base);
        let client = app.client.clone();
        async move { client.get(url).bearer_auth(token).send().await.unwrap().status() }
    };
    assert_eq!(on_replica(shop.clone()).await, StatusCode::OK);
    let deleted =
        call(&app, &app.api.base, Method::DELETE, &format!("/admin/users/{shop_id}"), Some(&admin), None)
            .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(deleted.body["data"]["deleted"], true);
    assert_eq!(on_replica(shop).await, StatusCode::UNAUTHORIZED);
    let gone = get(&app, &admin, "/admin/users?search=empty-shop").await;
    assert_eq!(gone.body["data"], json!([]));
    let tokens = get(&app, &admin, &format!("/admin/tokens?userId={shop_id}")).await;
    assert_eq!(tokens.body["data"], json!([]));
    let again =
        call(&app, &app.api.base, Method::DELETE, &format!("/admin/users/{shop_id}"), Some(&admin), None)
            .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let audited = audit_rows(&app, "user.deleted").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].entity_id.as_deref(), Some(shop_id.as_str()));
    assert_eq!(audited[0].actor_id.as_deref(), Some(admin_id.as_str()));
    assert_eq!(audited[0].details.as_ref().unwrap()["tokensRevoked"], 1);

    // Nobody deletes themself; admins are deleted by super-admins only.
    let own =
        call(&app, &app.api.base, Method::DELETE, &format!("/admin/users/{admin_id}"), Some(&admin), None)
            .await;
    assert_eq!(own.status, StatusCode::CONFLICT, "{}", own.body);
    assert_eq!(own.body["meta"]["code"], "cannot_delete_self");
    let (other_admin_id, _) = account(&app, "other-admin@ultra.test", "admin", &[]).await;
    let path = format!("/admin/users/{other_admin_id}");
    let refused = call(&app, &app.api.base, Method::DELETE, &path, Some(&admin), None).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let removed = call(&app, &app.api.base, Method::DELETE, &path, Some(&super_admin), None).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
}

#[tokio::test]
async fn a_token_is_shown_once_listed_by_status_and_revoked_on_every_replica() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let super_admin = app.admin_token().await;
    let (_, admin) = account(&app, "plain-admin@ultra.test", "admin", &[]).await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant_id =
        get(&app, &merchant, "/auth/session").await.body["data"]["user"]["id"].as_str().unwrap().to_owned();

    let issued = send(
        &app,
        &admin,
        Method::POST,
        "/admin/tokens",
        json!({ "userId": merchant_id, "name": "warehouse sync", "ttl": 3600, "customClaims": { "team": "ops" } }),
    )
    .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let jwt = issued.body["data"]["token"].as_str().unwrap().to_owned();
    let id = issued.body["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(issued.body["data"]["status"], "active");
    assert_eq!(issued.body["data"]["tokenType"], "Bearer");
    assert_eq!(issued.body["data"]["customClaims"], json!({ "team": "ops" }));
    let expires_at: chrono::DateTime<chrono::Utc> =
        issued.body["data"]["expiresAt"].as_str().unwrap().parse().unwrap();
    let expires_in = expires_at - chrono::Utc::now();
    assert!((3590..=3600).contains(&expires_in.num_seconds()), "{expires_in}");

    // The token works as the merchant, on any replica.
    let session = call(&app, &replica.base, Method::GET, "/auth/session", Some(&jwt), None).await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.body);
    assert_eq!(session.body["data"]["user"]["id"], merchant_id.as_str());
    assert_eq!(session.body["data"]["token"]["name"], "warehouse sync");

    // Nothing shows it again.
    let shown = get(&app, &admin, &format!("/admin/tokens/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body["data"].get("token").is_none(), "{}", shown.body);
    let listed = get(&app, &admin, &format!("/admin/tokens?userId={merchant_id}&status=active")).await;
    let rows = listed.body["data"].as_array().unwrap();
    assert!(rows.iter().any(|row| row["id"] == id.as_str()), "{}", listed.body);
    assert!(rows.iter().all(|row| row["userId"] == merchant_id.as_str() && row["status"] == "active"));
    assert!(!listed.body.to_string().contains(&jwt) && !shown.body.to_string().contains(&jwt));

    // Revoked, it is refused by the other replica on its next request.
    let revoked =
        call(&app, &app.api.base, Method::POST, &format!("/admin/tokens/{id}/revoke"), Some(&admin), None)
            .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.body);
    assert_eq!(revoked.body["data"]["status"], "revoked");
    let refused = call(&app, &replica.base, Method::GET, "/auth/session", Some(&jwt), None).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{}", refused.body);
    let again =
        call(&app, &app.api.base, Method::POST, &format!("/admin/tokens/{id}/revoke"), Some(&admin), None)
            .await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body["data"]["revokedAt"], revoked.body["data"]["revokedAt"]);
    assert_eq!(audit_rows(&app, "token.created").await.len(), 1);
    assert_eq!(audit_rows(&app, "token.revoked").await.len(), 1, "a second revocation changes nothing");

    // Statuses filter as a client sees them: a token past its expiry is expired.
    let short =
        send(&app, &admin, Method::POST, "/admin/tokens", json!({ "userId": merchant_id, "ttl": 1 })).await;
    let short_id = short.body["data"]["id"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let ids = |answer: &Answer| -> Vec<String> {
        answer.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let for_merchant = format!("/admin/tokens?userId={merchant_id}");
    assert_eq!(ids(&get(&app, &admin, &format!("{for_merchant}&status=expired")).await), [short_id.as_str()]);
    assert_eq!(ids(&get(&app, &admin, &format!("{for_merchant}&status=revoked")).await), [id.as_str()]);
    let active = ids(&get(&app, &admin, &format!("{for_merchant}&status=active")).await);
    assert!(!active.contains(&id) && !active.contains(&short_id), "{active:?}");
    let page = get(&app, &admin, &format!("{for_merchant}&page=1&per_page=1")).await;
    assert_eq!(page.body["meta"]["perPage"], 1);
    assert!(page.body["meta"]["total"].as_u64().unwrap() >= 3, "the login session is a token too");
    names_field(&get(&app, &admin, "/admin/tokens?status=stale").await, "status");

    // What a token may claim is checked.
    for reserved in ["sub", "exp", "iat", "jti", "scope"] {
        let answer = send(
            &app,
            &admin,
            Method::POST,
            "/admin/tokens",
            json!({ "userId": merchant_id, "customClaims": { reserved: "x" } }),
        )
        .await;
        names_field(&answer, &format!("customClaims.{reserved}"));
    }
    let cases = [
        ("ttl", json!({ "userId": merchant_id, "ttl": 0 })),
        ("ttl", json!({ "userId": merchant_id, "ttl": 31_536_001 })),
        ("name", json!({ "userId": merchant_id, "name": "" })),
        ("customClaims", json!({ "userId": merchant_id, "customClaims": [1] })),
        ("userId", json!({})),
    ];
    for (field, body) in cases {
        names_field(&send(&app, &admin, Method::POST, "/admin/tokens", body).await, field);
    }
    let unknown = send(&app, &admin, Method::POST, "/admin/tokens", json!({ "userId": "usr_nobody" })).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, &admin, "/admin/tokens/tok_nothing").await.status, StatusCode::NOT_FOUND);

    // A token for an admin carries an admin's power: only a super-admin issues one.
    let admin_id =
        get(&app, &admin, "/auth/session").await.body["data"]["user"]["id"].as_str().unwrap().to_owned();
    let for_admin = json!({ "userId": admin_id });
    let refused = send(&app, &admin, Method::POST, "/admin/tokens", for_admin.clone()).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let issued = send(&app, &super_admin, Method::POST, "/admin/tokens", for_admin).await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
}

#[tokio::test]
async fn config_is_read_whole_and_patched_key_by_key() {
    let app = TestApp::spawn().await;
    let super_admin = app.admin_token().await;
    let config = get(&app, &super_admin, "/admin/config").await;
    assert_eq!(config.status, StatusCode::OK);
    let data = &config.body["data"];
    for tier in ["starter", "pro", "pro_plus", "enterprise"] {
        assert_eq!(
            data["rateLimits"][tier]["payments"],
            json!({ "limit": 30, "windowSeconds": 60 }),
            "{data}"
        );
        assert!(data["rateLimits"][tier]["requests"]["limit"].as_u64().unwrap() >= 1200);
    }
    assert_eq!(data["webhooks"]["maxAttempts"], 12);
    assert_eq!(data["paymentExpirySeconds"], 900);
    assert_eq!(data["passwordlessLogin"], false);
    assert_eq!(data["primaryMerchantId"], Value::Null);
    assert_eq!(data["sellapay"]["fxRates"]["USD"], "0.0085106");
    assert_eq!(data["sellapay"]["waitSeconds"], 5);
    assert_eq!(data["maxtera"]["waitSeconds"], 5);
    assert_eq!(data["refunds"]["recheckSeconds"], 10);
    assert_eq!(data["idempotencyTtl"]["defaultSeconds"], 86_400);
    assert_eq!(data["schedules"], json!({}));

    // Unknown keys and bad values are refused, naming the key; nothing is stored.
    let cases = [
        ("bogus", json!({ "bogus": 1 })),
        ("webhooks.maxAttempt", json!({ "webhooks": { "maxAttempt": 3 } })),
        ("webhooks.maxAttempts", json!({ "webhooks": { "maxAttempts": 0 } })),
        ("webhooks.maxAttempts", json!({ "webhooks": { "maxAttempts": "three" } })),
        ("webhooks", json!({ "webhooks": [] })),
        ("rateLimits.pro.payments.limit", json!({ "rateLimits": { "pro": { "payments": { "limit": 0 } } } })),
        ("rateLimits.gold", json!({ "rateLimits": { "gold": { "payments": { "limit": 5 } } } })),
        ("schedules.poll-refunds", json!({ "schedules": { "poll-refunds": "every minute" } })),
        ("schedules.make-coffee", json!({ "schedules": { "make-coffee": "0 * * * * *" } })),
        ("sellapay.fxRates.USD", json!({ "sellapay": { "fxRates": { "USD": "-0.5" } } })),
        ("subscriptions.retryDelaysSeconds", json!({ "subscriptions": { "retryDelaysSeconds": [] } })),
        ("primaryMerchantId", json!({ "primaryMerchantId": "usr_nobody" })),
        ("passwordlessLogin", json!({ "passwordlessLogin": "yes" })),
        ("paymentExpirySeconds", json!({ "paymentExpirySeconds": null })),
        ("body", json!([{ "webhooks": {} }])),
    ];
    for (field, patch) in cases {
        names_field(&send(&app, &super_admin, Method::PATCH, "/admin/config", patch).await, field);
    }
    assert!(audit_rows(&app, "config.updated").await.is_empty());

    // A nested object merges key by key; a map entry is added beside the others.
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let merchant_id =
        get(&app, &merchant, "/auth/session").await.body["data"]["user"]["id"].as_str().unwrap().to_owned();
    let patch = json!({
        "webhooks": { "maxAttempts": 5 },
        "sellapay": { "fxRates": { "NGN": "11.2" } },
        "schedules": { "poll-refunds": "*/5 * * * * *" },
        "primaryMerchantId": merchant_id,
    });
    let patched = send(&app, &super_admin, Method::PATCH, "/admin/config", patch).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let data = &patched.body["data"];
    assert_eq!(data["webhooks"]["maxAttempts"], 5);
    assert_eq!(data["webhooks"]["backoffBaseSeconds"], 60, "siblings keep their values");
    assert_eq!(data["sellapay"]["fxRates"]["USD"], "0.0085106");
    assert_eq!(data["sellapay"]["fxRates"]["NGN"], "11.2");
    assert_eq!(get(&app, &super_admin, "/admin/config").await.body["data"], *data);
    let removed = send(
        &app,
        &super_admin,
        Method::PATCH,
        "/admin/config",
        json!({ "schedules": { "poll-refunds": null } }),
    )
    .await;
    assert_eq!(removed.body["data"]["schedules"], json!({}), "{}", removed.body);

    let audited = audit_rows(&app, "config.updated").await;
    assert_eq!(audited.len(), 2);
    let first = audited
        .iter()
        .find(|row| row.details.as_ref().unwrap()["keys"].as_array().unwrap().len() == 4)
        .unwrap();
    let details = first.details.as_ref().unwrap();
    assert_eq!(details["keys"], json!(["primaryMerchantId", "schedules", "sellapay", "webhooks"]));
    assert_eq!(details["changes"]["webhooks.maxAttempts"], json!({ "from": 12, "to": 5 }));
}

#[tokio::test]
async fn a_tier_rate_limit_change_reaches_another_running_api_process() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let super_admin = app.admin_token().await;
    simulate_mvola(&app, &super_admin).await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let pay_on_replica =
        || call(&app, &replica.base, Method::POST, "/payments", Some(&merchant), Some(payment()));

    let first = pay_on_replica().await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.headers["x-ratelimit-limit"], "30", "the replica has read the Pro+ limit");

    let lowered =
        json!({ "rateLimits": { "pro_plus": { "payments": { "limit": 2, "windowSeconds": 60 } } } });
    let patched = send(&app, &super_admin, Method::PATCH, "/admin/config", lowered).await;
    assert_eq!(patched.status, StatusCode::OK, "{}", patched.body);
    let changed_at = Instant::now();
    tokio::time::sleep(CONFIG_CACHE_AGE + Duration::from_millis(200)).await;

    let second = pay_on_replica().await;
    assert_eq!(second.status, StatusCode::ACCEPTED, "{}", second.body);
    assert_eq!(second.headers["x-ratelimit-limit"], "2");
    assert_eq!(second.headers["x-ratelimit-remaining"], "0");
    let third = pay_on_replica().await;
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS, "{}", third.body);
    assert!(third.headers.contains_key("retry-after"));
    assert!(changed_at.elapsed() < Duration::from_secs(5), "{:?}", changed_at.elapsed());

    // Another tier's merchants keep their own limit.
    let (_, starter) = account(&app, "starter@ultra.test", "user", &["--tier", "starter"]).await;
    let theirs = call(&app, &replica.base, Method::POST, "/payments", Some(&starter), Some(payment())).await;
    assert_eq!(theirs.status, StatusCode::ACCEPTED, "{}", theirs.body);
    assert_eq!(theirs.headers["x-ratelimit-limit"], "30");
}

#[tokio::test]
async fn tiers_are_listed_from_the_table_that_gates_exports_and_bulk_replay() {
    let app = TestApp::spawn().await;
    let super_admin = app.admin_token().await;
    let (_, admin) = account(&app, "plain-admin@ultra.test", "admin", &[]).await;
    let matrix = get(&app, &admin, "/admin/tiers").await;
    assert_eq!(matrix.status, StatusCode::OK, "{}", matrix.body);
    let tiers = matrix.body["data"]["tiers"].as_array().unwrap().clone();
    let names: Vec<&str> = tiers.iter().map(|tier| tier["tier"].as_str().unwrap()).collect();
    assert_eq!(names, ["starter", "pro", "pro_plus", "enterprise"]);
    assert_eq!(tiers[2]["label"], "Pro+");
    for tier in &tiers {
        for flag in ["csvExports", "dlqBulkReplay", "onboardingWizard"] {
            assert!(tier["features"][flag].is_boolean(), "{tier}");
        }
        assert_eq!(tier["rateLimits"]["payments"], json!({ "limit": 30, "windowSeconds": 60 }));
        assert!(tier["rateLimits"]["requests"]["limit"].as_u64().unwrap() > 0);
    }
    assert_eq!(tiers[0]["features"]["csvExports"], false);
    assert_eq!(tiers[2]["features"]["csvExports"], true);
    let features = matrix.body["data"]["features"].as_array().unwrap();
    assert!(
        features.iter().any(|f| f["key"] == "dlqBulkReplay" && f["minimumTier"] == "pro_plus"),
        "{features:?}"
    );

    // Every tier gets exactly what the table says.
    for tier in &tiers {
        let name = tier["tier"].as_str().unwrap();
        let cli_tier = name.replace('_', "-");
        let (merchant_id, merchant) =
            account(&app, &format!("{name}-shop@ultra.test"), "user", &["--tier", &cli_tier]).await;
        let (_, tier_admin) =
            account(&app, &format!("{name}-admin@ultra.test"), "admin", &["--tier", &cli_tier]).await;
        let exports = tier["features"]["csvExports"].as_bool().unwrap();
        for path in ["/payments/export", "/subscriptions/export"] {
            let answer = get(&app, &merchant, path).await;
            let expected = if exports { StatusCode::OK } else { StatusCode::FORBIDDEN };
            assert_eq!(answer.status, expected, "{name} {path}: {}", answer.body);
        }
        let queued = send(&app, &merchant, Method::POST, "/exports", json!({ "kind": "payments" })).await;
        if exports {
            assert_eq!(queued.status, StatusCode::ACCEPTED, "{name}: {}", queued.body);
        } else {
            assert_eq!(queued.status, StatusCode::FORBIDDEN, "{name}: {}", queued.body);
            assert_eq!(queued.body["meta"]["code"], "tier_required");
            assert!(
                queued.body["error"].as_str().unwrap().contains(&format!("on {name}")),
                "{}",
                queued.body
            );
        }
        // Admins export any merchant's data whatever its tier.
        let on_behalf = get(&app, &super_admin, &format!("/payments/export?merchantId={merchant_id}")).await;
        assert_eq!(on_behalf.status, StatusCode::OK, "{name}");

        let dry_run = json!({ "ids": ["whd_nothing"], "dryRun": true });
        let replay =
            send(&app, &tier_admin, Method::POST, "/webhooks/dlq/bulk-replay", dry_run.clone()).await;
        if tier["features"]["dlqBulkReplay"].as_bool().unwrap() {
            assert_eq!(replay.status, StatusCode::OK, "{name}: {}", replay.body);
            assert_eq!(replay.body["data"]["results"][0]["code"], "not_found");
        } else {
            assert_eq!(replay.status, StatusCode::FORBIDDEN, "{name}: {}", replay.body);
            assert_eq!(replay.body["meta"]["code"], "tier_required");
        }
        let by_merchant = send(&app, &merchant, Method::POST, "/webhooks/dlq/bulk-replay", dry_run).await;
        assert_eq!(by_merchant.status, StatusCode::FORBIDDEN, "bulk replay is for admins");
    }

    // The limits shown are runtime config's.
    let raised =
        json!({ "rateLimits": { "starter": { "requests": { "limit": 1500, "windowSeconds": 60 } } } });
    assert_eq!(send(&app, &super_admin, Method::PATCH, "/admin/config", raised).await.status, StatusCode::OK);
    let shown = get(&app, &admin, "/admin/tiers").await;
    assert_eq!(shown.body["data"]["tiers"][0]["rateLimits"]["requests"]["limit"], 1500, "{}", shown.body);
}
