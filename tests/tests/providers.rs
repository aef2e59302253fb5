//! Provider configurations: the merchant's own and the global ones, secrets sealed and masked.

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::{provider_configs, secrets::SecretBox};
use ultra_entity::{audit_logs, provider_configs as rows};
use ultra_tests::{ENCRYPTION_KEY, MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp};

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

fn mvola(secret: &str) -> Value {
    json!({
        "mode": "live",
        "baseUrl": "https://devapi.mvola.mg",
        "consumerKey": "key-123",
        "consumerSecret": secret,
        "merchantMsisdn": "0343500004",
        "partnerName": "Shop",
    })
}

#[tokio::test]
async fn merchant_configs_keep_secrets_sealed_and_masked() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let path = "/api/v1/merchant/providers/mvola";

    let (status, body) =
        call(&app, reqwest::Method::PUT, path, &token, Some(mvola("super-secret-value-9876"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["scope"], "merchant");
    assert_eq!(body["data"]["mode"], "live");
    assert_eq!(body["data"]["enabled"], true);
    assert_eq!(body["data"]["config"]["consumerSecret"], "****9876");
    assert_eq!(body["data"]["config"]["consumerKey"], "key-123");

    let db = app.db.connect().await;
    let row =
        rows::Entity::find().filter(rows::Column::Provider.eq("mvola")).one(&db).await.unwrap().unwrap();
    let sealed = row.sealed_secrets.clone().unwrap();
    assert!(!sealed.contains("super-secret"), "stored encrypted: {sealed}");
    let sealer = SecretBox::from_base64(ENCRYPTION_KEY).unwrap();
    assert_eq!(provider_configs::reveal(&sealer, &row).unwrap()["consumerSecret"], "super-secret-value-9876");

    // What GET returned, sent back with a change elsewhere, keeps the secret.
    let (_, got) = call(&app, reqwest::Method::GET, path, &token, None).await;
    let mut edited = got["data"]["config"].clone();
    edited["consumerKey"] = json!("key-456");
    edited["mode"] = json!("live");
    let (status, body) = call(&app, reqwest::Method::PUT, path, &token, Some(edited)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let row = rows::Entity::find_by_id(row.id).one(&db).await.unwrap().unwrap();
    assert_eq!(provider_configs::reveal(&sealer, &row).unwrap()["consumerSecret"], "super-secret-value-9876");
    assert_eq!(row.settings["consumerKey"], "key-456");

    let (status, body) = call(&app, reqwest::Method::GET, "/api/v1/merchant/providers", &token, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert!(!body.to_string().contains("super-secret"), "no response carries the secret");

    let updates = audit_logs::Entity::find()
        .filter(audit_logs::Column::Action.eq("provider_config.updated"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(updates.len(), 2);

    let (status, _) = call(&app, reqwest::Method::DELETE, path, &token, None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, reqwest::Method::DELETE, path, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(&app, reqwest::Method::GET, path, &token, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_configs_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let put = |path: &'static str, body: Value| {
        let (app, token) = (&app, token.clone());
        async move { call(app, reqwest::Method::PUT, path, &token, Some(body)).await }
    };
    let cases = [
        ("/api/v1/merchant/providers/mvola", json!({ "consumerSecret": "****1234" }), "consumerSecret"),
        ("/api/v1/merchant/providers/mvola", json!({ "clientId": "x" }), "clientId"),
        ("/api/v1/merchant/providers/mvola", json!({ "favouriteColour": "blue" }), "favouriteColour"),
        (
            "/api/v1/merchant/providers/mvola",
            json!({ "mode": "live", "baseUrl": "https://x.mg" }),
            "consumerKey",
        ),
        ("/api/v1/merchant/providers/mvola", json!({ "baseUrl": "ftp://x.mg" }), "baseUrl"),
        ("/api/v1/merchant/providers/mvola", json!({ "merchantMsisdn": "+261343500004" }), "merchantMsisdn"),
        ("/api/v1/merchant/providers/airtel", json!({ "country": "madagascar" }), "country"),
        ("/api/v1/merchant/providers/orange", json!({ "mode": "sometimes" }), "mode"),
        ("/api/v1/merchant/providers/paypal", json!({}), "name"),
    ];
    for (path, body, field) in cases {
        let (status, response) = put(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {response}");
        assert_eq!(response["meta"]["field"], field, "{path} {body}: {response}");
    }
}

#[tokio::test]
async fn global_configs_are_for_admins_and_merchants_see_only_their_own() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let admin = app.admin_token().await;
    app.db.create_user("rival@ultra.test", Some("rival-password"), "user", &[]);
    let rival = app.login("rival@ultra.test", "rival-password").await;

    let global = json!({ "mode": "simulation", "clientId": "global-client", "clientSecret": "global-secret-abcd1234" });
    let (status, body) =
        call(&app, reqwest::Method::PUT, "/api/v1/admin/providers/airtel", &admin, Some(global.clone()))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["scope"], "global");
    assert_eq!(body["data"]["config"]["clientSecret"], "****1234");
    let (status, _) =
        call(&app, reqwest::Method::PUT, "/api/v1/admin/providers/airtel", &merchant, Some(global)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, listed) = call(&app, reqwest::Method::GET, "/api/v1/admin/providers", &admin, None).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);

    let own = json!({ "clientId": "merchant-client", "clientSecret": "merchant-secret-5678" });
    let (status, _) =
        call(&app, reqwest::Method::PUT, "/api/v1/merchant/providers/airtel", &merchant, Some(own)).await;
    assert_eq!(status, StatusCode::OK);
    let (_, theirs) = call(&app, reqwest::Method::GET, "/api/v1/merchant/providers", &rival, None).await;
    assert_eq!(theirs["data"].as_array().unwrap().len(), 0, "another merchant's config is invisible");
    let (status, _) =
        call(&app, reqwest::Method::GET, "/api/v1/merchant/providers/airtel", &rival, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) =
        call(&app, reqwest::Method::DELETE, "/api/v1/merchant/providers/airtel", &rival, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let db = app.db.connect().await;
    let merchant_id = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap().id;
    let (status, body) = call(
        &app,
        reqwest::Method::GET,
        &format!("/api/v1/admin/providers/airtel?userId={merchant_id}"),
        &admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["data"]["config"]["clientId"], "merchant-client");
    assert_eq!(body["data"]["userId"], merchant_id.as_str());
    let (_, body) = call(&app, reqwest::Method::GET, "/api/v1/admin/providers/airtel", &admin, None).await;
    assert_eq!(body["data"]["config"]["clientId"], "global-client");

    // An admin acting as the primary merchant manages that merchant's configs.
    let as_merchant = app
        .client
        .get(app.url("/api/v1/merchant/providers"))
        .bearer_auth(&admin)
        .header("X-App-Context", "merchant")
        .send()
        .await
        .unwrap();
    let body: Value = as_merchant.json().await.unwrap();
    assert_eq!(body["data"][0]["config"]["clientId"], "merchant-client");
    let (status, _) = call(&app, reqwest::Method::GET, "/api/v1/merchant/providers", &admin, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an admin is not a merchant without X-App-Context");
}

#[tokio::test]
async fn a_disabled_provider_is_refused_at_once_by_a_replica_that_cached_its_config() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let admin = app.admin_token().await;
    let global = json!({ "mode": "simulation" });
    let (status, body) =
        call(&app, reqwest::Method::PUT, "/api/v1/admin/providers/mvola", &admin, Some(global)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let pay_on_replica = || async {
        let body = json!({ "provider": "mvola", "amount": "1000", "customerPhone": "0340000000" });
        let url = format!("{}/api/v1/payments", replica.base);
        let response = app.client.post(url).bearer_auth(&token).json(&body).send().await.unwrap();
        let status = response.status();
        (status, response.json::<Value>().await.unwrap())
    };
    for _ in 0..50 {
        let (status, body) = pay_on_replica().await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        if replica.cache_hits("provider_configs").await > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(replica.cache_hits("provider_configs").await > 0, "the replica never used its config cache");

    let disabled = json!({ "mode": "simulation", "enabled": false });
    let (status, body) =
        call(&app, reqwest::Method::PUT, "/api/v1/merchant/providers/mvola", &token, Some(disabled)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = pay_on_replica().await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].to_string().contains("disabled"), "{body}");

    let (status, body) =
        call(&app, reqwest::Method::DELETE, "/api/v1/merchant/providers/mvola", &token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(pay_on_replica().await.0, StatusCode::ACCEPTED, "the global config applies again");
}
