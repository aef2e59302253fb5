use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Inbox, Sandbox, config};

const TRANSFERS: &str = "/bank/v1/transfers";

async fn token(sandbox: &Sandbox) -> String {
    let answer = sandbox
        .http
        .post(sandbox.url("/bank/oauth/token"))
        .header("Authorization", format!("Basic {}", STANDARD.encode("ultra-sandbox:ultra-sandbox-secret")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    body["access_token"].as_str().unwrap().to_owned()
}

/// A transfer of KES 5,000 to Equity Bank account `01234567{digits}`, the last two digits
/// being the test number.
fn order(reference: &str, digits: &str, inbox: &Inbox) -> Value {
    json!({
        "reference": reference,
        "amount": "5000.00",
        "currency": "KES",
        "bank_code": "015",
        "account_number": format!("01234567{digits}"),
        "account_name": "John Doe",
        "narration": "Payout 42",
        "callback_url": inbox.url("/bank"),
    })
}

async fn create(sandbox: &Sandbox, token: &str, body: &Value) -> (StatusCode, Value) {
    let answer =
        sandbox.http.post(sandbox.url(TRANSFERS)).bearer_auth(token).json(body).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn status(sandbox: &Sandbox, token: &str, reference: &str) -> (StatusCode, Value) {
    let url = sandbox.url(&format!("{TRANSFERS}/{reference}"));
    let answer = sandbox.http.get(url).bearer_auth(token).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn final_status(sandbox: &Sandbox, token: &str, reference: &str) -> Value {
    sandbox
        .eventually(|| async {
            let (_, transfer) = status(sandbox, token, reference).await;
            (transfer["status"] != "PROCESSING").then_some(transfer)
        })
        .await
}

#[tokio::test]
async fn token_needs_the_configured_client_and_the_grant_type() {
    let sandbox = Sandbox::start(config()).await;
    token(&sandbox).await;
    let request = |credentials: &str, body: &'static str| {
        sandbox
            .http
            .post(sandbox.url("/bank/oauth/token"))
            .header("Authorization", format!("Basic {}", STANDARD.encode(credentials)))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let wrong = request("ultra-sandbox:wrong", "grant_type=client_credentials").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.json::<Value>().await.unwrap()["error"], "invalid_client");
    let no_grant = request("ultra-sandbox:ultra-sandbox-secret", "").await.unwrap();
    assert_eq!(no_grant.status(), StatusCode::BAD_REQUEST);
    assert_eq!(no_grant.json::<Value>().await.unwrap()["error"], "unsupported_grant_type");

    let stats: Value =
        sandbox.http.get(sandbox.url("/_sandbox/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["tokenRequests"]["bank"], 3);
}

#[tokio::test]
async fn transfers_need_a_bank_token() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let (code, body) = create(&sandbox, "not-a-token", &order("BT-TOKEN", "00", &inbox)).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "UNAUTHORIZED");
    let (code, _) = status(&sandbox, "not-a-token", "BT-TOKEN").await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    assert!(sandbox.recorded("BT-TOKEN").await.is_none());
}

#[tokio::test]
async fn a_transfer_is_pending_then_processing_then_completed_and_called_back() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (code, created) = create(&sandbox, &token, &order("BT-OK", "00", &inbox)).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["reference"], "BT-OK");
    assert_eq!(created["amount"], "5000.00");
    assert_eq!(created["currency"], "KES");
    assert_eq!(created["bank_code"], "015");
    assert_eq!(created["bank_name"], "Equity Bank");
    assert_eq!(created["account_number"], "0123456700");
    assert!(created["transfer_id"].as_str().unwrap().starts_with("TRF"));
    assert!(created.get("rail_reference").is_none());

    let (code, processing) = status(&sandbox, &token, "BT-OK").await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(processing["status"], "PROCESSING");

    let received = inbox.next().await;
    assert_eq!(received.method, Method::POST);
    assert_eq!(received.path, "/bank");
    assert_eq!(received.body["event"], "transfer.completed");
    let data = &received.body["data"];
    assert_eq!(data["status"], "COMPLETED");
    assert_eq!(data["transfer_id"], created["transfer_id"]);
    let rail_reference = data["rail_reference"].as_str().unwrap();
    assert!(rail_reference.len() == 12 && rail_reference.bytes().all(|byte| byte.is_ascii_digit()));

    let (_, completed) = status(&sandbox, &token, "BT-OK").await;
    assert_eq!(&completed, data);

    let recorded = sandbox.recorded("BT-OK").await.unwrap();
    assert_eq!(recorded["provider"], "bank");
    assert_eq!(recorded["handle"], created["transfer_id"]);
    assert_eq!(recorded["amount"], "5000.00");
    assert_eq!(recorded["status"], "COMPLETED");
    assert_eq!(recorded["callbacksSent"], 1);
}

#[tokio::test]
async fn the_same_reference_returns_the_same_transfer() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("BT-TWICE", "00", &inbox);
    let (code, first) = create(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::ACCEPTED);
    let (code, again) = create(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::OK, "a replay, not a new transfer");
    assert_eq!(again["transfer_id"], first["transfer_id"]);

    assert_eq!(inbox.next().await.body["data"]["status"], "COMPLETED");
    let (code, settled) = create(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(settled["status"], "COMPLETED");
    assert_eq!(settled["transfer_id"], first["transfer_id"]);
    inbox.stays_empty(Duration::from_millis(300)).await;

    let list: Vec<Value> = sandbox
        .http
        .get(sandbox.url("/_sandbox/transactions?reference=BT-TWICE"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 1, "paid once");
    assert_eq!(list[0]["initiateCalls"], 3);
}

#[tokio::test]
async fn a_reference_reused_for_another_transfer_is_a_conflict() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    assert_eq!(create(&sandbox, &token, &order("BT-OTHER", "00", &inbox)).await.0, StatusCode::ACCEPTED);
    let mut other = order("BT-OTHER", "00", &inbox);
    other["amount"] = json!("5000.01");
    let (code, error) = create(&sandbox, &token, &other).await;
    assert_eq!(code, StatusCode::CONFLICT);
    assert_eq!(error["error"]["code"], "DUPLICATE_REFERENCE");
    assert_eq!(error["error"]["field"], "reference");
}

#[tokio::test]
async fn an_account_ending_in_01_is_closed() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    create(&sandbox, &token, &order("BT-CLOSED", "01", &inbox)).await;
    let received = inbox.next().await;
    assert_eq!(received.body["event"], "transfer.failed");
    let failed = final_status(&sandbox, &token, "BT-CLOSED").await;
    assert_eq!(failed["status"], "FAILED");
    assert_eq!(failed["failure_reason"]["code"], "ACCOUNT_INVALID");
    assert!(failed.get("rail_reference").is_none());
    assert_eq!(received.body["data"], failed);
}

#[tokio::test]
async fn an_account_ending_in_02_stays_processing() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    create(&sandbox, &token, &order("BT-AWAY", "02", &inbox)).await;
    inbox.stays_empty(Duration::from_millis(600)).await;
    assert_eq!(status(&sandbox, &token, "BT-AWAY").await.1["status"], "PROCESSING");
}

#[tokio::test]
async fn the_first_transfer_of_03_fails_with_500_and_records_nothing() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("BT-FLAKY", "03", &inbox);
    let (code, error) = create(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["error"]["code"], "INTERNAL_ERROR");
    assert_eq!(status(&sandbox, &token, "BT-FLAKY").await.0, StatusCode::NOT_FOUND);
    assert_eq!(create(&sandbox, &token, &body).await.0, StatusCode::ACCEPTED);
    assert_eq!(final_status(&sandbox, &token, "BT-FLAKY").await["status"], "COMPLETED");
    assert_eq!(sandbox.recorded("BT-FLAKY").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn a_stalled_transfer_retried_by_reference_is_the_same_transfer() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = order("BT-SLOW", "04", &inbox);
    let timed_out = sandbox
        .http
        .post(sandbox.url(TRANSFERS))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    let (code, retried) = create(&sandbox, &token, &body).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(inbox.next().await.body["data"]["transfer_id"], retried["transfer_id"]);
    inbox.stays_empty(Duration::from_millis(300)).await;
    let recorded = sandbox.recorded("BT-SLOW").await.unwrap();
    assert_eq!(recorded["initiateCalls"], 2);
    assert_eq!(recorded["status"], "COMPLETED");
}

#[tokio::test]
async fn an_account_ending_in_05_completes_without_a_callback() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    create(&sandbox, &token, &order("BT-POLL", "05", &inbox)).await;
    let completed = final_status(&sandbox, &token, "BT-POLL").await;
    assert_eq!(completed["status"], "COMPLETED");
    inbox.stays_empty(Duration::from_millis(300)).await;
    assert_eq!(sandbox.recorded("BT-POLL").await.unwrap()["callbacksSent"], 0);
}

#[tokio::test]
async fn every_bank_code_sellapay_lists_is_accepted_and_others_are_not() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let banks = [
        ("001", "KCB Group Limited"),
        ("002", "Barclays Bank"),
        ("006", "Co-operative Bank"),
        ("007", "Standard Chartered"),
        ("008", "Citibank Kenya"),
        ("011", "Diamond Trust Bank"),
        ("014", "National Bank of Kenya"),
        ("015", "Equity Bank"),
        ("031", "Housing Finance"),
        ("032", "Consolidated Bank Kenya"),
    ];
    for (code, name) in banks {
        let mut body = order(&format!("BT-BANK-{code}"), "00", &inbox);
        body["bank_code"] = json!(code);
        let (status, created) = create(&sandbox, &token, &body).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{code}");
        assert_eq!(created["bank_name"], name);
    }
    let mut unknown = order("BT-BANK-999", "00", &inbox);
    unknown["bank_code"] = json!("999");
    let (status, error) = create(&sandbox, &token, &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"]["code"], "INVALID_BANK_CODE");
    assert_eq!(error["error"]["field"], "bank_code");
    assert!(sandbox.recorded("BT-BANK-999").await.is_none());
}

#[tokio::test]
async fn transfer_fields_are_validated() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let cases = [
        ("amount", json!("10.555")),
        ("amount", json!("1000000.00")),
        ("amount", json!("0")),
        ("currency", json!("USD")),
        ("account_number", json!("12AB5678")),
        ("account_name", Value::Null),
        ("reference", json!("has spaces")),
        ("callback_url", json!("bank.example/cb")),
    ];
    for (field, value) in cases {
        let mut body = order("BT-FIELDS", "00", &inbox);
        body[field] = value;
        let (status, error) = create(&sandbox, &token, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(error["error"]["code"], "VALIDATION_ERROR", "{field}");
        assert_eq!(error["error"]["field"], field);
    }

    let text = sandbox
        .http
        .post(sandbox.url(TRANSFERS))
        .bearer_auth(&token)
        .header("Content-Type", "text/plain")
        .body(order("BT-FIELDS", "00", &inbox).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(sandbox.recorded("BT-FIELDS").await.is_none());

    let mut numeric = order("BT-NUMERIC", "00", &inbox);
    numeric["amount"] = json!(2500.5);
    let (status, created) = create(&sandbox, &token, &numeric).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(created["amount"], "2500.50");
}

#[tokio::test]
async fn an_unknown_reference_is_not_found() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let (code, error) = status(&sandbox, &token, "BT-NOPE").await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "TRANSFER_NOT_FOUND");
}
