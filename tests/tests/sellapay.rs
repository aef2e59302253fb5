//! The Sellapay surface's credentials and balance, driven the way the seed's curl examples
//! drive it: API keys from the ultra surface, `authorize`, `getBalance`, its error bodies, its
//! rate limits and its headers.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_tests::{
    MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp, redis_url,
    sellapay::{access_token, authorize, balance_kes, create_key, credit, get_balance, post},
    start_worker,
};

const TOKEN_REJECTED: &str =
    r#"{"error":"Invalid or expired access token","message":"Please re-authorize to get a new token"}"#;

async fn body_of(response: Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn keys_authorize_and_the_balance_reads_the_ledger_in_four_currencies() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let keys = create_key(&app, &merchant, "shop backend").await;
    assert!(keys.key.starts_with("spk_") && keys.secret.starts_with("sps_"));
    assert_eq!(keys.account.len(), 50);

    // The secret is shown once: the list has the key, never the secret.
    let listed: Value = app
        .client
        .get(app.url("/api/v1/api-keys"))
        .bearer_auth(&merchant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["key"], keys.key.as_str());
    assert!(!listed.to_string().contains(&keys.secret), "{listed}");

    let response = authorize(&app, Some(&keys.key), Some(&keys.secret)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers().contains_key("x-request-id") && response.headers().contains_key("x-process-time")
    );
    let body = body_of(response).await;
    assert_eq!(body["message"], "User authorized");
    assert_eq!(body["account"], keys.account.as_str());
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_owned();

    // 50,000 KES in the merchant's ledger reads as the seed's example does.
    credit(&app, MERCHANT_EMAIL, 5_000_000).await;

    let response = get_balance(&app, &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = body_of(response).await;
    assert_eq!(body["message"], "Balance retrieved");
    assert_eq!(body["balance"], json!({ "KES": 50000.0, "USD": 425.53, "EUR": 389.95, "GBP": 338.45 }));
    assert_eq!(body["primary_currency"], "KES");
    let now = chrono::Utc::now().timestamp();
    assert!((body["timestamp"].as_i64().unwrap() - now).abs() < 60, "{body}");
}

#[tokio::test]
async fn bad_credentials_and_tokens_get_the_seeds_bodies() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let keys = create_key(&app, &merchant, "pos").await;

    for (key, secret) in [(None, Some(keys.secret.as_str())), (Some(keys.key.as_str()), None), (None, None)] {
        let response = authorize(&app, key, secret).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(body_of(response).await, json!({ "error": "Missing API key or secret code" }));
    }
    let unauthorized = json!({ "error": "Unauthorized", "message": "Invalid API key or secret code" });
    for (key, secret) in [(keys.key.as_str(), "sps_wrong"), ("spk_unknown", keys.secret.as_str())] {
        let response = authorize(&app, Some(key), Some(secret)).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_of(response).await, unauthorized);
    }

    // No token, a forged one, and an ultra login token all get the seed's 401.
    let rejected: Value = serde_json::from_str(TOKEN_REJECTED).unwrap();
    let no_token = app.client.get(app.url("/sellapay/api/v1/getBalance")).send().await.unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_of(no_token).await, rejected);
    for token in ["not-a-jwt", merchant.as_str()] {
        let response = get_balance(&app, token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(body_of(response).await, rejected);
    }

    // A Sellapay token opens nothing on the ultra surface.
    let token = access_token(&app, &keys).await;
    let ultra = app.client.get(app.url("/api/v1/payments")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ultra.status(), StatusCode::UNAUTHORIZED);

    // Revoking the key ends its tokens and its authorizations.
    assert_eq!(get_balance(&app, &token).await.status(), StatusCode::OK);
    let revoked = app
        .client
        .delete(app.url(&format!("/api/v1/api-keys/{}", keys.id)))
        .bearer_auth(&merchant)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(body_of(revoked).await["data"]["revokedAt"].is_string());
    assert_eq!(body_of(get_balance(&app, &token).await).await, rejected);
    assert_eq!(authorize(&app, Some(&keys.key), Some(&keys.secret)).await.status(), StatusCode::UNAUTHORIZED);

    // Another merchant cannot see or revoke the key; an unknown route answers in Sellapay's shape.
    app.db.create_user("other@ultra.test", Some("other-password-1"), "user", &[]);
    let other = app.login("other@ultra.test", "other-password-1").await;
    let response = app
        .client
        .delete(app.url(&format!("/api/v1/api-keys/{}", keys.id)))
        .bearer_auth(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let missing = app.client.get(app.url("/sellapay/api/v1/nothingHere")).send().await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body = body_of(missing).await;
    assert_eq!(body["error"], "Not found", "{body}");
    assert!(body["message"].is_string() && body["details"].is_object(), "{body}");
}

#[tokio::test]
async fn authorize_is_limited_per_ip_and_everything_else_per_token() {
    let app = TestApp::spawn().await;
    let db = app.db.connect().await;
    RuntimeConfig::set(
        &db,
        "sellapay",
        json!({ "tokenRateLimit": { "limit": 3, "windowSeconds": 60 } }),
        None,
    )
    .await
    .unwrap();
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let keys = create_key(&app, &merchant, "load").await;
    // The API caches runtime config for two seconds.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;

    let first = access_token(&app, &keys).await;
    let second = access_token(&app, &keys).await;
    for n in 1..=3 {
        let response = get_balance(&app, &first).await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
        assert_eq!(response.headers()["x-ratelimit-limit"], "3");
        assert_eq!(response.headers()["x-ratelimit-remaining"], (3 - n).to_string().as_str());
        assert!(response.headers().contains_key("x-ratelimit-reset"));
    }
    let limited = get_balance(&app, &first).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body = body_of(limited).await;
    assert_eq!(body["error"], "Too many requests", "{body}");
    assert_eq!(get_balance(&app, &second).await.status(), StatusCode::OK, "another token has its own count");

    // authorize: 10 per minute per IP, counting the two above.
    let mut statuses = Vec::new();
    for _ in 0..9 {
        statuses.push(authorize(&app, Some(&keys.key), Some(&keys.secret)).await.status());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 8, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}

/// The seed's curl example for `sendFundsToSellapay`, fifty times at once against a balance
/// that covers ten: exactly ten go through, the rest are refused with the seed's 402, and the
/// money adds up on both sides.
#[tokio::test]
async fn concurrent_transfers_never_overdraw_and_the_ledger_balances() {
    let app = TestApp::spawn().await;
    let _worker = start_worker(&app.db, &redis_url(), &app.redis_prefix, &[]).await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    app.db.create_user("payee@ultra.test", Some("payee-password-1"), "user", &[]);
    let payee = app.login("payee@ultra.test", "payee-password-1").await;
    let sender_keys = create_key(&app, &merchant, "payouts").await;
    let payee_keys = create_key(&app, &payee, "receiving").await;
    credit(&app, MERCHANT_EMAIL, 1_000_000).await;
    let token = access_token(&app, &sender_keys).await;
    let payee_token = access_token(&app, &payee_keys).await;

    let send = |amount: Value| {
        let request = app
            .client
            .post(app.url("/sellapay/api/v1/sendFundsToSellapay"))
            .bearer_auth(&token)
            .header("Content-Type", "application/json")
            .json(&json!({ "account": payee_keys.account, "amount": amount }));
        async move {
            let response = request.send().await.unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let outcomes = futures::future::join_all((0..50).map(|_| send(json!(1000)))).await;
    let accepted: Vec<&Value> =
        outcomes.iter().filter(|(status, _)| *status == StatusCode::OK).map(|(_, body)| body).collect();
    let refused: Vec<&Value> = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::PAYMENT_REQUIRED)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(accepted.len(), 10, "{outcomes:?}");
    assert_eq!(refused.len(), 40, "{outcomes:?}");
    for body in &accepted {
        assert_eq!(body["message"], "Funds sent successfully");
        assert_eq!(body["status"], "completed", "{body}");
        assert_eq!(body["amount"], 1000.0);
        assert_eq!(body["recipient_account"], payee_keys.account.as_str());
        let id = body["transaction_id"].as_str().unwrap();
        let parts: Vec<&str> = id.split('-').collect();
        assert!(parts.len() == 3 && parts[0] == "TXN" && parts[2].len() == 5, "{id}");
    }
    let refusal = refused[0];
    assert_eq!(
        *refusal,
        json!({ "error": "Insufficient balance", "message": "Your account balance is too low",
                "required": 1000.0, "available": 0.0 })
    );
    assert_eq!(balance_kes(&app, &token).await, 0.0);
    assert_eq!(balance_kes(&app, &payee_token).await, 10_000.0);

    // Each transfer can be polled by its id; the list pages with ?page&limit.
    let id = accepted[0]["transaction_id"].as_str().unwrap();
    let found: Value = app
        .client
        .get(app.url(&format!("/sellapay/api/v1/transactions/{id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["transaction_id"], id);
    assert_eq!(found["status"], "completed");
    let page: Value = app
        .client
        .get(app.url("/sellapay/api/v1/transactions?page=2&limit=4"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 10, "only accepted transfers are transactions: {page}");
    assert_eq!(page["transactions"].as_array().unwrap().len(), 4);
    let other = app
        .client
        .get(app.url(&format!("/sellapay/api/v1/transactions/{id}")))
        .bearer_auth(&payee_token)
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::NOT_FOUND, "another account's transaction is not found");

    // The seed's validation errors, and an unknown recipient.
    for (body, field) in [
        (json!({ "account": payee_keys.account, "amount": 10.123 }), "amount"),
        (json!({ "account": payee_keys.account, "amount": -5 }), "amount"),
        (json!({ "account": payee_keys.account, "amount": "ten" }), "amount"),
        (json!({ "account": sender_keys.account, "amount": 1 }), "account"),
    ] {
        let response = post(&app, &token, "sendFundsToSellapay", &body).await;
        assert_eq!(response.0, StatusCode::BAD_REQUEST, "{body}: {}", response.1);
        assert_eq!(response.1["error"], "Validation error");
        assert_eq!(response.1["details"]["field"], field, "{}", response.1);
    }
    let unknown =
        post(&app, &token, "sendFundsToSellapay", &json!({ "account": "nobody", "amount": 1 })).await;
    assert_eq!(unknown.0, StatusCode::NOT_FOUND, "{}", unknown.1);
}

/// A token past its hour gets the seed's 401, word for word.
#[tokio::test]
async fn an_expired_token_gets_the_seeds_401() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let keys = create_key(&app, &merchant, "short-lived").await;
    let db = app.db.connect().await;
    let user = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap();
    let signer = ultra_domain::auth_tokens::TokenSigner::new(ultra_tests::JWT_SECRET).unwrap();
    let issued = ultra_domain::auth_tokens::issue(
        &db,
        &signer,
        ultra_domain::auth_tokens::TokenRequest {
            user: &user,
            name: "sellapay:short-lived",
            ttl: std::time::Duration::from_secs(2),
            custom_claims: Some(
                json!({ "scope": ultra_domain::auth_tokens::SELLAPAY_SCOPE, "apiKey": keys.id }),
            ),
            created_by: None,
        },
    )
    .await
    .unwrap();
    // Expiry is in whole seconds, so a two-second token is valid for one to two seconds.
    assert_eq!(get_balance(&app, &issued.jwt).await.status(), StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let response = get_balance(&app, &issued.jwt).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body_of(response).await, serde_json::from_str::<Value>(TOKEN_REJECTED).unwrap());
}
