//! Driving the Sellapay surface the way its seed's curl examples do: API keys from the ultra
//! surface, `authorize`, and the KES balance the ledger holds.

use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use ultra_domain::ledger::{self, AccountSpec};

use crate::TestApp;

pub struct Keys {
    pub id: String,
    pub key: String,
    pub secret: String,
    pub account: String,
}

pub async fn create_key(app: &TestApp, token: &str, name: &str) -> Keys {
    let response = app
        .client
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(token)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    let data = &body["data"];
    let text = |field: &str| data[field].as_str().unwrap_or_else(|| panic!("no {field}: {body}")).to_owned();
    Keys { id: text("id"), key: text("key"), secret: text("secret"), account: text("account") }
}

/// `curl -X POST -H "X-API-KEY: …" -H "X-API-SECRET: …" …/authorize`, as the seed writes it:
/// no body and no content type.
pub async fn authorize(app: &TestApp, key: Option<&str>, secret: Option<&str>) -> Response {
    let mut request = app.client.post(app.url("/sellapay/api/v1/authorize"));
    if let Some(key) = key {
        request = request.header("X-API-KEY", key);
    }
    if let Some(secret) = secret {
        request = request.header("X-API-SECRET", secret);
    }
    request.send().await.unwrap()
}

pub async fn access_token(app: &TestApp, keys: &Keys) -> String {
    let response = authorize(app, Some(&keys.key), Some(&keys.secret)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

pub async fn get_balance(app: &TestApp, token: &str) -> Response {
    app.client.get(app.url("/sellapay/api/v1/getBalance")).bearer_auth(token).send().await.unwrap()
}

pub async fn balance_kes(app: &TestApp, token: &str) -> f64 {
    get_balance(app, token).await.json::<Value>().await.unwrap()["balance"]["KES"].as_f64().unwrap()
}

/// Credits a merchant's KES balance as an M-Pesa collection would.
pub async fn credit(app: &TestApp, email: &str, minor: i64) {
    let db = app.db.connect().await;
    let merchant_id = ultra_domain::users::find_by_email(&db, email).await.unwrap().unwrap().id;
    let txn = ultra_domain::db::begin_write(&db).await.unwrap();
    let code = ledger::merchant_code(&merchant_id, "KES");
    let clearing = ledger::provider_code("mpesa", "KES", "clearing");
    ledger::transfer(
        &txn,
        "payment.collected",
        &format!("test:credit:{}", ulid::Ulid::new()),
        None,
        AccountSpec::system(&clearing, "KES"),
        AccountSpec::merchant(&code, &merchant_id, "KES"),
        minor,
    )
    .await
    .unwrap();
    txn.commit().await.unwrap();
}

/// `POST {path}` with a bearer token and a JSON body, as the seed's examples send it.
pub async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = app
        .client
        .post(app.url(&format!("/sellapay/api/v1/{path}")))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

pub async fn transaction(app: &TestApp, token: &str, id: &str) -> Value {
    let response = app
        .client
        .get(app.url(&format!("/sellapay/api/v1/transactions/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}
