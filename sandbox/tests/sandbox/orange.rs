use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Inbox, Sandbox, config};

async fn token(sandbox: &Sandbox) -> String {
    let answer = sandbox
        .http
        .post(sandbox.url("/oauth/v3/token"))
        .header("Authorization", format!("Basic {}", STANDARD.encode("ultra-sandbox:ultra-sandbox-secret")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], "7776000");
    body["access_token"].as_str().unwrap().to_owned()
}

fn order(order_id: &str, amount: u64, inbox: &Inbox) -> Value {
    json!({
        "merchant_key": "0a1b2c3d",
        "currency": "OUV",
        "order_id": order_id,
        "amount": amount,
        "return_url": inbox.url("/back"),
        "cancel_url": inbox.url("/cancel"),
        "notif_url": inbox.url("/orange"),
        "lang": "fr",
        "reference": "Ultra shop",
    })
}

async fn post(sandbox: &Sandbox, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let answer = sandbox
        .http
        .post(sandbox.url(path))
        .bearer_auth(token)
        .header("Accept", "application/json")
        .json(body)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn init(sandbox: &Sandbox, token: &str, body: &Value) -> (StatusCode, Value) {
    post(sandbox, token, "/orange-money-webpay/dev/v1/webpayment", body).await
}

async fn status(sandbox: &Sandbox, token: &str, order_id: &str, amount: u64, pay_token: &str) -> Value {
    let body = json!({ "order_id": order_id, "amount": amount, "pay_token": pay_token });
    let (status, answer) = post(sandbox, token, "/orange-money-webpay/dev/v1/transactionstatus", &body).await;
    assert_eq!(status, StatusCode::CREATED);
    answer
}

async fn open_page(sandbox: &Sandbox, payment_url: &str) -> String {
    let page = sandbox.http.get(payment_url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

#[tokio::test]
async fn token_needs_the_configured_client() {
    let sandbox = Sandbox::start(config()).await;
    token(&sandbox).await;
    let wrong = sandbox
        .http
        .post(sandbox.url("/oauth/v3/token"))
        .header("Authorization", format!("Basic {}", STANDARD.encode("someone:else")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["code"], 41);
    assert_eq!(body["message"], "Invalid credentials");
}

#[tokio::test]
async fn webpayment_needs_a_known_token() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let (status, body) = init(&sandbox, "unknown", &order("om-token", 1000, &inbox)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["code"], 42);
}

#[tokio::test]
async fn a_paid_order_goes_through_the_pay_page_and_notifies() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (code, created) = init(&sandbox, &token, &order("om-ok", 10_000, &inbox)).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(created["status"], 201);
    assert_eq!(created["message"], "OK");
    let pay_token = created["pay_token"].as_str().unwrap();
    let payment_url = created["payment_url"].as_str().unwrap();
    assert_eq!(payment_url, sandbox.url(&format!("/orange/webpay/pay/{pay_token}")));

    let before = status(&sandbox, &token, "om-ok", 10_000, pay_token).await;
    assert_eq!(before["status"], "INITIATED");
    assert!(before.get("txnid").is_none());

    let page = open_page(&sandbox, payment_url).await;
    assert!(page.contains("Ultra shop"));
    let received = inbox.next().await;
    assert_eq!(received.method, Method::POST);
    assert_eq!(received.path, "/orange");
    assert_eq!(received.body["status"], "SUCCESS");
    assert_eq!(received.body["notif_token"], created["notif_token"]);
    let txnid = received.body["txnid"].as_str().unwrap().to_owned();
    assert!(txnid.starts_with("MP"));

    let after = status(&sandbox, &token, "om-ok", 10_000, pay_token).await;
    assert_eq!(after, json!({ "status": "SUCCESS", "order_id": "om-ok", "txnid": txnid }));
    assert!(open_page(&sandbox, payment_url).await.contains(&txnid));
}

#[tokio::test]
async fn nobody_pays_an_order_whose_page_was_never_opened() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, created) = init(&sandbox, &token, &order("om-unopened", 10_000, &inbox)).await;
    inbox.stays_empty(Duration::from_millis(600)).await;
    let pay_token = created["pay_token"].as_str().unwrap();
    assert_eq!(status(&sandbox, &token, "om-unopened", 10_000, pay_token).await["status"], "INITIATED");
}

#[tokio::test]
async fn an_amount_ending_in_01_fails() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, created) = init(&sandbox, &token, &order("om-poor", 10_001, &inbox)).await;
    open_page(&sandbox, created["payment_url"].as_str().unwrap()).await;
    let received = inbox.next().await;
    assert_eq!(received.body["status"], "FAILED");
    assert!(received.body.get("txnid").is_none());
    let pay_token = created["pay_token"].as_str().unwrap();
    assert_eq!(status(&sandbox, &token, "om-poor", 10_001, pay_token).await["status"], "FAILED");
}

#[tokio::test]
async fn an_amount_ending_in_02_leaves_the_order_initiated() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, created) = init(&sandbox, &token, &order("om-away", 10_002, &inbox)).await;
    let page = open_page(&sandbox, created["payment_url"].as_str().unwrap()).await;
    assert!(page.contains("walked away"));
    inbox.stays_empty(Duration::from_millis(600)).await;
    let pay_token = created["pay_token"].as_str().unwrap();
    assert_eq!(status(&sandbox, &token, "om-away", 10_002, pay_token).await["status"], "INITIATED");
}

#[tokio::test]
async fn the_first_init_of_an_amount_ending_in_03_fails_with_500() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("om-flaky", 10_003, &inbox);
    let (code, error) = init(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error["code"].is_number());
    assert!(sandbox.recorded("om-flaky").await.is_none());
    let (code, _) = init(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(sandbox.recorded("om-flaky").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn a_reused_order_id_is_refused() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("om-twice", 10_000, &inbox);
    assert_eq!(init(&sandbox, &token, &body).await.0, StatusCode::CREATED);
    let (code, error) = init(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(error["description"].as_str().unwrap().contains("om-twice"));
}

#[tokio::test]
async fn a_stalled_init_is_recorded_and_its_retry_is_a_duplicate() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("om-slow", 10_004, &inbox);
    let timed_out = sandbox
        .http
        .post(sandbox.url("/orange-money-webpay/dev/v1/webpayment"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    assert_eq!(init(&sandbox, &token, &body).await.0, StatusCode::BAD_REQUEST);
    let recorded = sandbox.recorded("om-slow").await.unwrap();
    assert_eq!(recorded["initiateCalls"], 2);
    assert_eq!(recorded["status"], "INITIATED");
    assert!(recorded["msisdn"].is_null());
}

#[tokio::test]
async fn an_amount_ending_in_05_succeeds_without_notification() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, created) = init(&sandbox, &token, &order("om-poll", 10_005, &inbox)).await;
    open_page(&sandbox, created["payment_url"].as_str().unwrap()).await;
    let pay_token = created["pay_token"].as_str().unwrap();
    let settled = sandbox
        .eventually(|| async {
            let answer = status(&sandbox, &token, "om-poll", 10_005, pay_token).await;
            (answer["status"] == "SUCCESS").then_some(answer)
        })
        .await;
    assert!(settled["txnid"].is_string());
    inbox.stays_empty(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn status_needs_all_three_keys_to_match() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, created) = init(&sandbox, &token, &order("om-keys", 10_000, &inbox)).await;
    let body = json!({ "order_id": "om-keys", "amount": 9_999, "pay_token": created["pay_token"] });
    let (code, error) = post(&sandbox, &token, "/orange-money-webpay/dev/v1/transactionstatus", &body).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(error["code"].is_number());
}

#[tokio::test]
async fn webpayment_fields_are_validated() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;

    let mut missing = order("om-missing", 10_000, &inbox);
    missing.as_object_mut().unwrap().remove("notif_url");
    let (code, error) = init(&sandbox, &token, &missing).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], 23);
    assert!(error["description"].as_str().unwrap().contains("NotifUrl"));

    let mut wrong_key = order("om-key", 10_000, &inbox);
    wrong_key["merchant_key"] = json!("ffffffff");
    assert_eq!(init(&sandbox, &token, &wrong_key).await.0, StatusCode::BAD_REQUEST);

    let mut real_money = order("om-mga", 10_000, &inbox);
    real_money["currency"] = json!("MGA");
    assert_eq!(init(&sandbox, &token, &real_money).await.0, StatusCode::BAD_REQUEST);
    let (code, _) = post(&sandbox, &token, "/orange-money-webpay/mg/v1/webpayment", &real_money).await;
    assert_eq!(code, StatusCode::CREATED);
}
