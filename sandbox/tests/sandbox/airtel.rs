use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use poem::http::{Method, StatusCode};
use reqwest::RequestBuilder;
use serde_json::{Value, json};
use sha2::Sha256;
use ultra_sandbox::SandboxConfig;

use crate::common::{Inbox, Sandbox, config};

const KEY: &str = "callback-key";

/// A sandbox whose Airtel app sends signed callbacks to `inbox`.
async fn start(inbox: &Inbox) -> Sandbox {
    Sandbox::start(SandboxConfig {
        airtel_callback_url: Some(inbox.url("/airtel")),
        airtel_callback_key: Some(KEY.to_owned()),
        ..config()
    })
    .await
}

async fn token(sandbox: &Sandbox) -> String {
    let body = json!({
        "client_id": "ultra-sandbox",
        "client_secret": "ultra-sandbox-secret",
        "grant_type": "client_credentials",
    });
    let answer = sandbox.http.post(sandbox.url("/auth/oauth2/token")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn headers(request: RequestBuilder, token: &str) -> RequestBuilder {
    request.bearer_auth(token).header("Accept", "*/*").header("X-Country", "MG").header("X-Currency", "MGA")
}

fn push(id: &str, msisdn: &str) -> Value {
    json!({
        "reference": "Ultra order",
        "subscriber": { "country": "MG", "currency": "MGA", "msisdn": msisdn },
        "transaction": { "amount": 5000, "country": "MG", "currency": "MGA", "id": id },
    })
}

async fn collect(sandbox: &Sandbox, token: &str, id: &str, msisdn: &str) -> (StatusCode, Value) {
    let request = sandbox.http.post(sandbox.url("/merchant/v1/payments/"));
    let answer = headers(request, token).json(&push(id, msisdn)).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn enquiry(sandbox: &Sandbox, token: &str, id: &str) -> Value {
    let request = sandbox.http.get(sandbox.url(&format!("/standard/v1/payments/{id}")));
    let answer = headers(request, token).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

async fn final_enquiry(sandbox: &Sandbox, token: &str, id: &str) -> Value {
    sandbox
        .eventually(|| async {
            let answer = enquiry(sandbox, token, id).await;
            (answer["data"]["transaction"]["status"] != "TIP").then_some(answer)
        })
        .await
}

async fn refund(sandbox: &Sandbox, token: &str, airtel_money_id: &str) -> Value {
    let request = sandbox.http.post(sandbox.url("/standard/v1/payments/refund"));
    let body = json!({ "transaction": { "airtel_money_id": airtel_money_id } });
    let answer = headers(request, token).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

/// Collects from `msisdn` and waits until it is paid; returns the Airtel Money id.
async fn paid(sandbox: &Sandbox, token: &str, id: &str, msisdn: &str) -> String {
    collect(sandbox, token, id, msisdn).await;
    let settled = final_enquiry(sandbox, token, id).await;
    assert_eq!(settled["data"]["transaction"]["status"], "TS");
    settled["data"]["transaction"]["airtel_money_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn token_needs_the_configured_client() {
    let sandbox = Sandbox::start(config()).await;
    let answer = sandbox
        .http
        .post(sandbox.url("/auth/oauth2/token"))
        .json(&json!({
            "client_id": "ultra-sandbox",
            "client_secret": "ultra-sandbox-secret",
            "grant_type": "client_credentials",
        }))
        .send()
        .await
        .unwrap();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["expires_in"], "180");
    assert_eq!(body["token_type"], "bearer");

    let wrong = sandbox
        .http
        .post(sandbox.url("/auth/oauth2/token"))
        .json(&json!({ "client_id": "ultra-sandbox", "client_secret": "nope", "grant_type": "client_credentials" }))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    assert_eq!(body["error_description"], "Invalid client authentication");
}

#[tokio::test]
async fn routing_headers_are_checked_the_airtel_way() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let no_country = sandbox
        .http
        .post(sandbox.url("/merchant/v1/payments/"))
        .bearer_auth(&token)
        .header("X-Currency", "MGA")
        .json(&push("no-country", "331234500"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_country.status(), StatusCode::BAD_REQUEST);
    assert_eq!(no_country.json::<Value>().await.unwrap()["status_code"], "ROUTER110");

    let no_currency = sandbox
        .http
        .post(sandbox.url("/merchant/v1/payments/"))
        .bearer_auth(&token)
        .header("X-Country", "MG")
        .json(&push("no-currency", "331234500"))
        .send()
        .await
        .unwrap();
    assert_eq!(no_currency.status(), StatusCode::OK);
    let body: Value = no_currency.json().await.unwrap();
    assert_eq!(body["status"]["success"], false);
    assert_eq!(body["status"]["message"], "Invalid/Missing Currency");

    let bad_token =
        headers(sandbox.http.get(sandbox.url("/standard/v1/payments/x")), "nope").send().await.unwrap();
    assert_eq!(bad_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bad_token.json::<Value>().await.unwrap()["error"], "invalid_token");
}

#[tokio::test]
async fn a_malformed_push_fails_inside_http_200() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let (code, body) = collect(&sandbox, &token, "with-prefix", "261331234500").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["status"]["code"], "400");
    assert_eq!(body["status"]["result_code"], "ESB000008");
    assert_eq!(body["status"]["success"], false);
}

#[tokio::test]
async fn a_paid_push_is_called_back_with_a_verifiable_hash() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    let token = token(&sandbox).await;
    let (code, body) = collect(&sandbox, &token, "at-ok", "331234500").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["data"]["transaction"], json!({ "id": "at-ok", "status": "SUCCESS" }));
    assert_eq!(body["status"]["response_code"], "DP00800001006");

    let received = inbox.next().await;
    assert_eq!(received.method, Method::POST);
    assert_eq!(received.path, "/airtel");
    let transaction = &received.body["transaction"];
    assert_eq!(transaction["id"], "at-ok");
    assert_eq!(transaction["status_code"], "TS");
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).unwrap();
    mac.update(serde_json::to_string(transaction).unwrap().as_bytes());
    assert_eq!(received.body["hash"], STANDARD.encode(mac.finalize().into_bytes()));

    let settled = enquiry(&sandbox, &token, "at-ok").await;
    assert_eq!(settled["data"]["transaction"]["status"], "TS");
    assert_eq!(settled["data"]["transaction"]["airtel_money_id"], transaction["airtel_money_id"]);
    assert_eq!(settled["status"]["response_code"], "DP00800001001");
}

#[tokio::test]
async fn insufficient_funds_are_called_back_as_tf() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    let token = token(&sandbox).await;
    collect(&sandbox, &token, "at-poor", "331234501").await;
    let received = inbox.next().await;
    assert_eq!(received.body["transaction"]["status_code"], "TF");
    let settled = final_enquiry(&sandbox, &token, "at-poor").await;
    assert_eq!(settled["data"]["transaction"]["status"], "TF");
    assert_eq!(settled["status"]["response_code"], "DP00800001007");
    assert_eq!(settled["data"]["transaction"]["message"], "Insufficient balance");
    assert!(settled["data"]["transaction"].get("airtel_money_id").is_none());

    let failed_id = received.body["transaction"]["airtel_money_id"].as_str().unwrap();
    let refused = refund(&sandbox, &token, failed_id).await;
    assert_eq!(refused["status"]["success"], false);
    assert_eq!(refused["status"]["response_code"], "DP00800001008");
}

#[tokio::test]
async fn an_unanswered_push_stays_in_progress() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    let token = token(&sandbox).await;
    collect(&sandbox, &token, "at-away", "331234502").await;
    inbox.stays_empty(Duration::from_millis(600)).await;
    let pending = enquiry(&sandbox, &token, "at-away").await;
    assert_eq!(pending["data"]["transaction"]["status"], "TIP");
    assert_eq!(pending["status"]["response_code"], "DP00800001006");
}

#[tokio::test]
async fn the_first_push_of_03_fails_with_500() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let (code, body) = collect(&sandbox, &token, "at-flaky", "331234503").await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body["status"]["success"], false);
    let unknown = enquiry(&sandbox, &token, "at-flaky").await;
    assert_eq!(unknown["status"]["result_code"], "ESB000045");

    let (code, body) = collect(&sandbox, &token, "at-flaky", "331234503").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["status"]["success"], true);
    assert_eq!(final_enquiry(&sandbox, &token, "at-flaky").await["data"]["transaction"]["status"], "TS");
}

#[tokio::test]
async fn a_reused_transaction_id_is_refused() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    collect(&sandbox, &token, "at-twice", "331234500").await;
    let (code, body) = collect(&sandbox, &token, "at-twice", "331234500").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["status"]["result_code"], "ESB000041");
    assert_eq!(body["status"]["message"], "External Transaction ID already exists");
}

#[tokio::test]
async fn a_stalled_push_is_recorded_and_its_retry_is_a_duplicate() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let timed_out = headers(sandbox.http.post(sandbox.url("/merchant/v1/payments/")), &token)
        .timeout(Duration::from_millis(300))
        .json(&push("at-slow", "331234504"))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    let (_, body) = collect(&sandbox, &token, "at-slow", "331234504").await;
    assert_eq!(body["status"]["result_code"], "ESB000041");
    assert_eq!(final_enquiry(&sandbox, &token, "at-slow").await["data"]["transaction"]["status"], "TS");
}

#[tokio::test]
async fn polling_only_pushes_succeed_without_a_callback() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    let token = token(&sandbox).await;
    paid(&sandbox, &token, "at-poll", "331234505").await;
    inbox.stays_empty(Duration::from_millis(300)).await;
    assert_eq!(sandbox.recorded("at-poll").await.unwrap()["callbacksSent"], 0);
}

#[tokio::test]
async fn an_unknown_transaction_is_not_found() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let answer = enquiry(&sandbox, &token, "nope").await;
    assert_eq!(answer["status"]["code"], "404");
    assert_eq!(answer["status"]["response_code"], "DP00800001025");
    let refund = refund(&sandbox, &token, "MP000000.0000.A00000").await;
    assert_eq!(refund["status"]["result_code"], "ESB000045");
}

#[tokio::test]
async fn a_refund_settles_at_once_and_is_never_made_twice() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let id = paid(&sandbox, &token, "at-refund", "331234500").await;
    let first = refund(&sandbox, &token, &id).await;
    assert_eq!(first["data"]["transaction"]["status"], "SUCCESS");
    assert_eq!(first["status"]["success"], true);
    let again = refund(&sandbox, &token, &id).await;
    assert_eq!(again["data"]["transaction"], first["data"]["transaction"]);
    let refunds = &sandbox.recorded("at-refund").await.unwrap()["refunds"];
    assert_eq!(refunds, &json!([{ "status": "SUCCESS", "amount": "5000" }]));
}

#[tokio::test]
async fn the_first_refund_of_07_is_refused() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let id = paid(&sandbox, &token, "at-refund-07", "331234507").await;
    let refused = refund(&sandbox, &token, &id).await;
    assert_eq!(refused["status"]["success"], false);
    assert_eq!(refused["status"]["response_code"], "DP00800001008");
    assert_eq!(refused["status"]["message"], "Refused");
    assert_eq!(sandbox.recorded("at-refund-07").await.unwrap()["refunds"], json!([]));

    let accepted = refund(&sandbox, &token, &id).await;
    assert_eq!(accepted["data"]["transaction"]["status"], "SUCCESS");
}

#[tokio::test]
async fn a_refund_of_08_is_in_progress_until_it_settles() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let id = paid(&sandbox, &token, "at-refund-08", "331234508").await;
    let accepted = refund(&sandbox, &token, &id).await;
    assert_eq!(accepted["data"]["transaction"]["status"], "TIP");
    assert_eq!(accepted["status"]["response_code"], "DP00800001006");
    let refund_id = accepted["data"]["transaction"]["airtel_money_id"].clone();

    let settled = sandbox
        .eventually(|| async {
            let answer = refund(&sandbox, &token, &id).await;
            (answer["data"]["transaction"]["status"] == "SUCCESS").then_some(answer)
        })
        .await;
    assert_eq!(settled["data"]["transaction"]["airtel_money_id"], refund_id);
    let refunds = &sandbox.recorded("at-refund-08").await.unwrap()["refunds"];
    assert_eq!(refunds.as_array().unwrap().len(), 1);
}
