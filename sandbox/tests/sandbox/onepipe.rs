use std::time::Duration;

use md5::{Digest, Md5};
use poem::http::StatusCode;
use serde_json::{Value, json};
use ultra_sandbox::SandboxConfig;

use crate::common::{Inbox, Sandbox, config};

const MOBILE: &str = "2348012345678";
/// `MOBILE` in TripleDES under `ultra-sandbox-secret`, as `openssl enc -des-ede3-cbc` makes it
/// with OnePipe's key derivation (see the providers crate's test of the same vector).
const SECURE: &str = "d92HlAlMewuXF0jhRDyF+HHn8XV1LD/BhQECjbEd7/0=";

fn md5_hex(text: &str) -> String {
    Md5::digest(text).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A sandbox whose OnePipe app notifies `inbox`.
async fn start(inbox: &Inbox) -> Sandbox {
    Sandbox::start(SandboxConfig { onepipe_webhook_url: Some(inbox.url("/onepipe")), ..config() }).await
}

/// A "send invoice" of `naira` (whose last two digits are the test number) under
/// `transaction_ref`, for customer `customer_ref`.
fn invoice(request_ref: &str, transaction_ref: &str, naira: u64, customer_ref: &str) -> Value {
    json!({
        "request_ref": request_ref,
        "request_type": "send invoice",
        "auth": { "type": "msisdn", "secure": SECURE, "auth_provider": "PaywithAccount", "route_mode": null },
        "transaction": {
            "mock_mode": "Inspect",
            "transaction_ref": transaction_ref,
            "transaction_desc": "Wallet funding",
            "transaction_ref_parent": null,
            "amount": naira * 100,
            "customer": {
                "customer_ref": customer_ref,
                "firstname": "Ada",
                "surname": "Obi",
                "email": "ada@example.com",
                "mobile_no": MOBILE,
            },
            "meta": { "type": "single_payment", "expires_in": 30, "skip_messaging": true },
            "details": null,
        },
    })
}

/// Posts `body` to `path`, signed for its own `request_ref`.
async fn transact(sandbox: &Sandbox, path: &str, body: &Value) -> (StatusCode, Value) {
    let request_ref = body["request_ref"].as_str().unwrap();
    let answer = sandbox
        .http
        .post(sandbox.url(path))
        .bearer_auth("ultra-sandbox")
        .header("Signature", md5_hex(&format!("{request_ref};ultra-sandbox-secret")))
        .json(body)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn send(sandbox: &Sandbox, body: &Value) -> Value {
    let (status, answer) = transact(sandbox, "/v2/transact", body).await;
    assert_eq!(status, StatusCode::OK);
    answer
}

async fn query(sandbox: &Sandbox, request_ref: &str, transaction_ref: &str) -> Value {
    let mut body = invoice(request_ref, transaction_ref, 1, "anyone");
    body["transaction"] = json!({ "transaction_ref": transaction_ref });
    transact(sandbox, "/v2/transact/query", &body).await.1
}

/// Queries until the invoice is no longer pending.
async fn settled(sandbox: &Sandbox, transaction_ref: &str) -> Value {
    let mut attempt = 0;
    sandbox
        .eventually(|| {
            attempt += 1;
            let request_ref = format!("Q-{transaction_ref}-{attempt}");
            async move {
                let answer = query(sandbox, &request_ref, transaction_ref).await;
                (answer["data"]["provider_response"]["status"] != "Pending").then_some(answer)
            }
        })
        .await
}

fn account(answer: &Value) -> &Value {
    &answer["data"]["provider_response"]["meta"]
}

#[tokio::test]
async fn the_api_key_and_the_signature_are_checked() {
    let sandbox = Sandbox::start(config()).await;
    let body = invoice("R-1", "MPX-AUTH", 2000, "cust-1");
    let no_key = sandbox.http.post(sandbox.url("/v2/transact")).json(&body).send().await.unwrap();
    assert_eq!(no_key.status(), StatusCode::UNAUTHORIZED);
    let unsigned = sandbox
        .http
        .post(sandbox.url("/v2/transact"))
        .bearer_auth("ultra-sandbox")
        .header("Signature", md5_hex("R-1;wrong"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(unsigned.status(), StatusCode::UNAUTHORIZED);
    let refusal: Value = unsigned.json().await.unwrap();
    assert_eq!(refusal["status"], "Failed");
    assert_eq!(refusal["data"]["error"]["message"], "Invalid signature");

    assert_eq!(send(&sandbox, &body).await["status"], "Successful");
    let reused = send(&sandbox, &invoice("R-1", "MPX-AUTH-2", 2000, "cust-1")).await;
    assert_eq!(reused["status"], "Failed");
    assert!(reused["data"]["errors"][0]["message"].as_str().unwrap().contains("request_ref"));
}

#[tokio::test]
async fn auth_secure_must_be_the_encrypted_mobile_number() {
    let sandbox = Sandbox::start(config()).await;
    let mut body = invoice("R-SEC", "MPX-SEC", 2000, "cust-1");
    body["transaction"]["customer"]["mobile_no"] = json!("2348099999999");
    let refused = send(&sandbox, &body).await;
    assert_eq!(refused["status"], "Failed");
    assert!(refused["message"].as_str().unwrap().contains("auth.secure"));
    assert!(sandbox.recorded("MPX-SEC").await.is_none());
}

#[tokio::test]
async fn a_paid_invoice_is_notified_and_queried_as_successful() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    let sent = send(&sandbox, &invoice("R-PAY", "MPX-PAY", 2000, "cust-7")).await;
    assert_eq!(sent["status"], "Successful");
    let meta = account(&sent);
    assert_eq!(meta["virtual_account_number"].as_str().unwrap().len(), 10);
    assert_eq!(meta["virtual_account_bank_code"], "035");
    assert_eq!(meta["virtual_account_name"], "Ada Obi");

    let notification = inbox.next().await;
    assert_eq!(notification.path, "/onepipe");
    let request_ref = notification.body["request_ref"].as_str().unwrap();
    assert_eq!(
        notification.headers.get("signature").unwrap().to_str().unwrap(),
        md5_hex(&format!("{request_ref};ultra-sandbox-secret"))
    );
    let details = &notification.body["details"];
    assert_eq!(notification.body["request_type"], "transaction_notification");
    assert_eq!(details["status"], "Successful");
    assert_eq!(details["transaction_ref"], "MPX-PAY");
    assert_eq!(details["amount"], 200_000);
    assert_eq!(details["customer_ref"], "cust-7");
    assert_eq!(details["meta"]["event_type"], "credit");
    assert_eq!(details["meta"]["payment_id"], meta["payment_id"]);

    let paid = settled(&sandbox, "MPX-PAY").await;
    assert_eq!(paid["status"], "Successful");
    let response = &paid["data"]["provider_response"];
    assert_eq!(response["status"], "Successful");
    assert_eq!(response["transaction_final_amount"], 200_000);
    assert_eq!(response["reference"].as_str().unwrap().len(), 30);
    inbox.stays_empty(Duration::from_millis(300)).await;
    let recorded = sandbox.recorded("MPX-PAY").await.unwrap();
    assert_eq!(recorded["provider"], "onepipe");
    assert_eq!(recorded["status"], "Successful");
    assert_eq!(recorded["callbacksSent"], 1);
}

#[tokio::test]
async fn a_repeated_invoice_is_the_same_invoice_and_a_customer_keeps_their_account() {
    let sandbox = Sandbox::start(config()).await;
    let first = send(&sandbox, &invoice("R-A", "MPX-SAME", 2000, "cust-9")).await;
    let again = send(&sandbox, &invoice("R-B", "MPX-SAME", 2000, "cust-9")).await;
    assert_eq!(first, again);
    let other = send(&sandbox, &invoice("R-C", "MPX-OTHER", 3000, "cust-9")).await;
    assert_eq!(account(&other)["virtual_account_number"], account(&first)["virtual_account_number"]);
    assert_ne!(account(&other)["payment_id"], account(&first)["payment_id"]);
    let different = send(&sandbox, &invoice("R-D", "MPX-SAME", 2500, "cust-9")).await;
    assert_eq!(different["status"], "Failed");
    assert_eq!(sandbox.recorded("MPX-SAME").await.unwrap()["initiateCalls"], 3);
}

#[tokio::test]
async fn an_amount_ending_in_01_expires_unpaid_without_a_notification() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    send(&sandbox, &invoice("R-01", "MPX-01", 2001, "cust-1")).await;
    let expired = settled(&sandbox, "MPX-01").await;
    assert_eq!(expired["data"]["provider_response"]["status"], "Failed");
    assert_eq!(expired["data"]["provider_response"]["reference"], Value::Null);
    inbox.stays_empty(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn an_amount_ending_in_02_is_never_paid() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    send(&sandbox, &invoice("R-02", "MPX-02", 2002, "cust-1")).await;
    inbox.stays_empty(Duration::from_millis(500)).await;
    let pending = query(&sandbox, "Q-02", "MPX-02").await;
    assert_eq!(pending["data"]["provider_response"]["status"], "Pending");
}

#[tokio::test]
async fn a_first_invoice_ending_in_03_fails_unrecorded() {
    let sandbox = Sandbox::start(config()).await;
    let body = invoice("R-03", "MPX-03", 2003, "cust-1");
    let (status, failed) = transact(&sandbox, "/v2/transact", &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(failed["status"], "Failed");
    assert_eq!(query(&sandbox, "Q-03", "MPX-03").await["message"], "Transaction not found");
    // Nothing was recorded, not even the request_ref.
    assert_eq!(send(&sandbox, &body).await["status"], "Successful");
    assert_eq!(settled(&sandbox, "MPX-03").await["data"]["provider_response"]["status"], "Successful");
}

#[tokio::test]
async fn a_first_invoice_ending_in_04_is_recorded_but_answered_too_late() {
    let sandbox = Sandbox::start(config()).await;
    let body = invoice("R-04", "MPX-04", 2004, "cust-1");
    let timed_out = sandbox
        .http
        .post(sandbox.url("/v2/transact"))
        .bearer_auth("ultra-sandbox")
        .header("Signature", md5_hex("R-04;ultra-sandbox-secret"))
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    let retried = send(&sandbox, &invoice("R-04b", "MPX-04", 2004, "cust-1")).await;
    assert_eq!(retried["status"], "Successful");
    assert_eq!(settled(&sandbox, "MPX-04").await["data"]["provider_response"]["status"], "Successful");
    assert_eq!(sandbox.recorded("MPX-04").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn an_amount_ending_in_05_is_paid_without_a_notification() {
    let mut inbox = Inbox::start().await;
    let sandbox = start(&inbox).await;
    send(&sandbox, &invoice("R-05", "MPX-05", 2005, "cust-1")).await;
    assert_eq!(settled(&sandbox, "MPX-05").await["data"]["provider_response"]["status"], "Successful");
    inbox.stays_empty(Duration::from_millis(300)).await;
}
