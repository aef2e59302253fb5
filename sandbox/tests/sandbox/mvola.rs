use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::http::{Method, StatusCode};
use reqwest::RequestBuilder;
use serde_json::{Value, json};

use crate::common::{Inbox, Sandbox, config};

const PREFIX: &str = "/mvola/mm/transactions/type/merchantpay/1.0.0";
const MERCHANT: &str = "0343500004";

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn token(sandbox: &Sandbox) -> String {
    let answer = sandbox
        .http
        .post(sandbox.url("/token"))
        .header("Authorization", basic("ultra-sandbox", "ultra-sandbox-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=EXT_INT_MVOLA_SCOPE")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn headers(request: RequestBuilder, token: &str) -> RequestBuilder {
    request
        .bearer_auth(token)
        .header("Version", "1.0")
        .header("X-CorrelationID", "corr-1")
        .header("Cache-Control", "no-cache")
        .header("UserAccountIdentifier", format!("msisdn;{MERCHANT}"))
        .header("partnerName", "Ultra")
        .header("UserLanguage", "FR")
}

fn order(reference: &str, customer: &str) -> Value {
    json!({
        "amount": "10000",
        "currency": "Ar",
        "descriptionText": "Order 42",
        "requestingOrganisationTransactionReference": reference,
        "requestDate": "2026-11-22T10:00:00.000Z",
        "originalTransactionReference": "",
        "debitParty": [{ "key": "msisdn", "value": customer }],
        "creditParty": [{ "key": "msisdn", "value": MERCHANT }],
        "metadata": [{ "key": "partnerName", "value": "Ultra" }],
    })
}

async fn initiate(
    sandbox: &Sandbox,
    token: &str,
    body: &Value,
    callback: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = headers(sandbox.http.post(sandbox.url(&format!("{PREFIX}/"))), token).json(body);
    if let Some(callback) = callback {
        request = request.header("X-Callback-URL", callback);
    }
    let answer = request.send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn status(sandbox: &Sandbox, token: &str, id: &str) -> Value {
    let answer =
        headers(sandbox.http.get(sandbox.url(&format!("{PREFIX}/status/{id}"))), token).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

async fn final_status(sandbox: &Sandbox, token: &str, id: &str) -> Value {
    sandbox
        .eventually(|| async {
            let status = status(sandbox, token, id).await;
            (status["status"] != "pending").then_some(status)
        })
        .await
}

#[tokio::test]
async fn token_needs_the_configured_client_and_a_form_body() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    assert_eq!(token.split('.').count(), 3, "MVola tokens are JWTs");

    let wrong = sandbox
        .http
        .post(sandbox.url("/token"))
        .header("Authorization", basic("ultra-sandbox", "wrong"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=EXT_INT_MVOLA_SCOPE")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");

    let json_body = sandbox
        .http
        .post(sandbox.url("/token"))
        .header("Authorization", basic("ultra-sandbox", "ultra-sandbox-secret"))
        .json(&json!({ "grant_type": "client_credentials", "scope": "EXT_INT_MVOLA_SCOPE" }))
        .send()
        .await
        .unwrap();
    assert_eq!(json_body.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn token_answer_has_the_documented_shape() {
    let sandbox = Sandbox::start(config()).await;
    let answer = sandbox
        .http
        .post(sandbox.url("/token"))
        .header("Authorization", basic("ultra-sandbox", "ultra-sandbox-secret"))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=EXT_INT_MVOLA_SCOPE")
        .send()
        .await
        .unwrap();
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "EXT_INT_MVOLA_SCOPE");
    assert_eq!(body["expires_in"], 3600);
}

#[tokio::test]
async fn merchant_pay_refuses_an_unknown_token() {
    let sandbox = Sandbox::start(config()).await;
    let (code, body) = initiate(&sandbox, "not-a-token", &order("ref-bad-token", "0341234500"), None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["fault"]["code"], 900901);
}

#[tokio::test]
async fn a_missing_required_header_is_a_business_error() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let answer = sandbox
        .http
        .get(sandbox.url(&format!("{PREFIX}/status/anything")))
        .bearer_auth(&token)
        .header("Version", "1.0")
        .header("X-CorrelationID", "corr-1")
        .header("Cache-Control", "no-cache")
        .header("UserAccountIdentifier", format!("msisdn;{MERCHANT}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["ErrorCode"], "4001");
    assert_eq!(body["ErrorDescription"], "Missing field partnerName");
}

#[tokio::test]
async fn amounts_and_numbers_are_validated() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let mut numeric = order("ref-numeric", "0341234500");
    numeric["amount"] = json!(10000);
    let (code, body) = initiate(&sandbox, &token, &numeric, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body["ErrorDescription"].as_str().unwrap().contains("amount"));

    let international = order("ref-international", "+261341234500");
    let (code, _) = initiate(&sandbox, &token, &international, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);

    let mut other_merchant = order("ref-other-merchant", "0341234500");
    other_merchant["creditParty"] = json!([{ "key": "msisdn", "value": "0340000000" }]);
    let (code, _) = initiate(&sandbox, &token, &other_merchant, None).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(sandbox.recorded("ref-numeric").await.is_none());
}

#[tokio::test]
async fn a_confirmed_payment_is_called_back_by_put_and_then_detailed() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let callback = inbox.url("/mvola/cb");
    let (code, body) = initiate(&sandbox, &token, &order("ref-ok", "0341234500"), Some(&callback)).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(body["status"], "pending");
    assert_eq!(body["notificationMethod"], "callback");
    let id = body["serverCorrelationId"].as_str().unwrap().to_owned();

    let received = inbox.next().await;
    assert_eq!(received.method, Method::PUT);
    assert_eq!(received.path, "/mvola/cb");
    assert_eq!(received.body["transactionStatus"], "completed");
    assert_eq!(received.body["serverCorrelationId"], id.as_str());
    assert_eq!(received.body["metadata"][0], json!({ "key": "XCorrelationId", "value": "corr-1" }));
    assert!(received.body.get("amount").is_none());
    let reference = received.body["transactionReference"].as_str().unwrap().to_owned();
    assert!(reference.len() >= 7 && reference.bytes().all(|byte| byte.is_ascii_digit()));

    let settled = status(&sandbox, &token, &id).await;
    assert_eq!(settled["status"], "completed");
    assert_eq!(settled["objectReference"], reference.as_str());

    let details = headers(sandbox.http.get(sandbox.url(&format!("{PREFIX}/{reference}"))), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(details.status(), StatusCode::OK);
    let details: Value = details.json().await.unwrap();
    assert_eq!(details["transactionStatus"], "completed");
    assert_eq!(details["amount"], "10000");
    assert_eq!(details["currency"], "Ar");
    assert_eq!(details["debitParty"][0]["value"], "0341234500");
    assert_eq!(details["metadata"][2]["value"], "corr-1");

    assert_eq!(sandbox.recorded("ref-ok").await.unwrap()["callbacksSent"], 1);
}

#[tokio::test]
async fn insufficient_funds_fail_with_a_failed_callback() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, body) =
        initiate(&sandbox, &token, &order("ref-poor", "0341234501"), Some(&inbox.url("/cb"))).await;
    let received = inbox.next().await;
    assert_eq!(received.body["transactionStatus"], "failed");
    let settled = final_status(&sandbox, &token, body["serverCorrelationId"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "failed");
    assert_eq!(settled["objectReference"], "");
}

#[tokio::test]
async fn a_customer_who_never_answers_leaves_the_payment_pending() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, body) =
        initiate(&sandbox, &token, &order("ref-away", "0341234502"), Some(&inbox.url("/cb"))).await;
    inbox.stays_empty(Duration::from_millis(600)).await;
    let pending = status(&sandbox, &token, body["serverCorrelationId"].as_str().unwrap()).await;
    assert_eq!(pending["status"], "pending");
}

#[tokio::test]
async fn the_first_initiate_of_03_fails_without_being_recorded() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let body = order("ref-flaky", "0341234503");
    let (code, error) = initiate(&sandbox, &token, &body, None).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(error["ErrorCode"].is_string());
    assert!(sandbox.recorded("ref-flaky").await.is_none());

    let (code, accepted) = initiate(&sandbox, &token, &body, None).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let settled = final_status(&sandbox, &token, accepted["serverCorrelationId"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "completed");
    assert_eq!(sandbox.recorded("ref-flaky").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn a_reused_reference_is_a_conflict() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let body = order("ref-twice", "0341234500");
    assert_eq!(initiate(&sandbox, &token, &body, None).await.0, StatusCode::ACCEPTED);
    let (code, error) = initiate(&sandbox, &token, &body, None).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(error["ErrorDescription"], "Duplicate transaction reference");
    assert_eq!(sandbox.recorded("ref-twice").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn a_stalled_initiate_is_recorded_and_its_retry_is_a_duplicate() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("ref-slow", "0341234504");
    let timed_out = headers(sandbox.http.post(sandbox.url(&format!("{PREFIX}/"))), &token)
        .header("X-Callback-URL", inbox.url("/cb"))
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());

    let (code, _) = initiate(&sandbox, &token, &body, Some(&inbox.url("/cb"))).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(inbox.next().await.body["transactionStatus"], "completed");
    let recorded = sandbox.recorded("ref-slow").await.unwrap();
    assert_eq!(recorded["initiateCalls"], 2);
    assert_eq!(recorded["status"], "completed");
}

#[tokio::test]
async fn polling_only_payments_succeed_without_a_callback() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (_, body) =
        initiate(&sandbox, &token, &order("ref-poll", "0341234505"), Some(&inbox.url("/cb"))).await;
    assert_eq!(body["notificationMethod"], "polling");
    let settled = final_status(&sandbox, &token, body["serverCorrelationId"].as_str().unwrap()).await;
    assert_eq!(settled["status"], "completed");
    inbox.stays_empty(Duration::from_millis(300)).await;
    assert_eq!(sandbox.recorded("ref-poll").await.unwrap()["callbacksSent"], 0);
}

#[tokio::test]
async fn a_refused_callback_is_retried() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    inbox.answer_next_with(&[StatusCode::INTERNAL_SERVER_ERROR]);
    let token = token(&sandbox).await;
    initiate(&sandbox, &token, &order("ref-retry", "0341234500"), Some(&inbox.url("/cb"))).await;
    let first = inbox.next().await;
    let second = inbox.next().await;
    assert_eq!(first.body, second.body);
    assert_eq!(sandbox.recorded("ref-retry").await.unwrap()["callbacksSent"], 2);
}

#[tokio::test]
async fn an_unknown_correlation_id_is_not_found() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let answer = headers(sandbox.http.get(sandbox.url(&format!("{PREFIX}/status/nope"))), &token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    assert!(answer.json::<Value>().await.unwrap()["ErrorCode"].is_string());
}
