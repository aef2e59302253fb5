use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use poem::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{Inbox, Sandbox, config};

const SHORTCODE: &str = "174379";
const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
const TIMESTAMP: &str = "20260717120000";

/// Safaricom's sandbox test number with its last two digits, the test number, replaced.
fn phone(digits: &str) -> String {
    format!("2547083741{digits}")
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

fn password(shortcode: &str, passkey: &str) -> String {
    STANDARD.encode(format!("{shortcode}{passkey}{TIMESTAMP}"))
}

async fn token(sandbox: &Sandbox) -> String {
    let answer = sandbox
        .http
        .get(sandbox.url("/oauth/v1/generate?grant_type=client_credentials"))
        .header("Authorization", basic("ultra-sandbox", "ultra-sandbox-secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

fn stk_body(account_reference: &str, msisdn: &str, callback: &str) -> Value {
    json!({
        "BusinessShortCode": SHORTCODE,
        "Password": password(SHORTCODE, PASSKEY),
        "Timestamp": TIMESTAMP,
        "TransactionType": "CustomerPayBillOnline",
        "Amount": 10,
        "PartyA": msisdn.parse::<u64>().unwrap(),
        "PartyB": SHORTCODE,
        "PhoneNumber": msisdn,
        "CallBackURL": callback,
        "AccountReference": account_reference,
        "TransactionDesc": "Order 42",
    })
}

async fn post(sandbox: &Sandbox, token: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    let answer = sandbox.http.post(sandbox.url(path)).bearer_auth(token).json(body).send().await.unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn push(sandbox: &Sandbox, token: &str, body: &Value) -> (StatusCode, Value) {
    post(sandbox, token, "/mpesa/stkpush/v1/processrequest", body).await
}

/// Pushes and returns the `CheckoutRequestID`.
async fn pushed(sandbox: &Sandbox, token: &str, body: &Value) -> String {
    let (status, answer) = push(sandbox, token, body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    answer["CheckoutRequestID"].as_str().unwrap().to_owned()
}

async fn query(sandbox: &Sandbox, token: &str, checkout_request_id: &str) -> (StatusCode, Value) {
    let body = json!({
        "BusinessShortCode": SHORTCODE,
        "Password": password(SHORTCODE, PASSKEY),
        "Timestamp": TIMESTAMP,
        "CheckoutRequestID": checkout_request_id,
    });
    post(sandbox, token, "/mpesa/stkpushquery/v1/query", &body).await
}

/// Queries until Daraja stops answering "being processed".
async fn final_query(sandbox: &Sandbox, token: &str, checkout_request_id: &str) -> Value {
    sandbox
        .eventually(|| async {
            let (status, answer) = query(sandbox, token, checkout_request_id).await;
            (status == StatusCode::OK).then_some(answer)
        })
        .await
}

fn b2c_body(originator: &str, msisdn: &str, inbox: &Inbox) -> Value {
    json!({
        "OriginatorConversationID": originator,
        "InitiatorName": "testapi",
        "SecurityCredential": "EsJocK7+NjqZPC3I3EO+TbvS+xVb9TymWwaKABoaZr/Z/n0UysSs..",
        "CommandID": "BusinessPayment",
        "Amount": 250,
        "PartyA": 600996,
        "PartyB": msisdn,
        "Remarks": "Payout 42",
        "QueueTimeOutURL": inbox.url("/b2c/timeout"),
        "ResultURL": inbox.url("/b2c/result"),
        "Occasion": "",
    })
}

async fn pay(sandbox: &Sandbox, token: &str, body: &Value) -> (StatusCode, Value) {
    post(sandbox, token, "/mpesa/b2c/v3/paymentrequest", body).await
}

fn parameter<'a>(result: &'a Value, key: &str) -> &'a Value {
    let parameters = result["ResultParameters"]["ResultParameter"].as_array().unwrap();
    &parameters.iter().find(|parameter| parameter["Key"] == key).unwrap()["Value"]
}

#[tokio::test]
async fn token_needs_basic_consumer_credentials_and_the_grant_type() {
    let sandbox = Sandbox::start(config()).await;
    let generate = |query: &'static str, authorization: Option<String>| {
        let mut request = sandbox.http.get(sandbox.url(&format!("/oauth/v1/generate{query}")));
        if let Some(authorization) = authorization {
            request = request.header("Authorization", authorization);
        }
        async move {
            let answer = request.send().await.unwrap();
            (answer.status(), answer.json::<Value>().await.unwrap())
        }
    };
    let good = Some(basic("ultra-sandbox", "ultra-sandbox-secret"));

    let (status, body) = generate("?grant_type=client_credentials", good.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["expires_in"], "3599", "Daraja's lifetime is a string");
    assert!(!body["access_token"].as_str().unwrap().is_empty());

    let wrong = Some(basic("ultra-sandbox", "wrong"));
    for authorization in [wrong, None] {
        let (status, body) = generate("?grant_type=client_credentials", authorization).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["errorCode"], "400.008.01");
        assert_eq!(body["errorMessage"], "Invalid Authentication passed");
        assert!(body["requestId"].is_string());
    }

    let (status, body) = generate("?grant_type=password", good).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorCode"], "400.008.02");
    assert_eq!(body["errorMessage"], "Invalid grant type passed");

    let stats: Value =
        sandbox.http.get(sandbox.url("/_sandbox/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["tokenRequests"]["mpesa"], 4);
}

#[tokio::test]
async fn apis_refuse_a_missing_or_unknown_token() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let body = stk_body("INV-TOKEN", &phone("00"), &inbox.url("/stk"));
    let bare = sandbox.http.post(sandbox.url("/mpesa/stkpush/v1/processrequest")).json(&body).send().await;
    let bare = bare.unwrap();
    assert_eq!(bare.status(), StatusCode::NOT_FOUND);
    assert_eq!(bare.json::<Value>().await.unwrap()["errorCode"], "404.001.04");

    let (status, error) = push(&sandbox, "not-a-token", &body).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["errorCode"], "404.001.03");
    assert_eq!(error["errorMessage"], "Invalid Access Token");

    let (status, error) = pay(&sandbox, "not-a-token", &b2c_body("b2c-token", &phone("00"), &inbox)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["errorCode"], "404.001.03");
    assert!(sandbox.recorded("INV-TOKEN").await.is_none());
}

#[tokio::test]
async fn a_wrong_password_or_shortcode_is_refused_with_http_500() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;

    let mut wrong_passkey = stk_body("INV-PASS", &phone("00"), &inbox.url("/stk"));
    wrong_passkey["Password"] = json!(password(SHORTCODE, "not-the-passkey"));
    let (status, error) = push(&sandbox, &token, &wrong_passkey).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorCode"], "500.001.1001");
    assert_eq!(error["errorMessage"], "[MerchantValidate] - Wrong credentials");

    let mut other_timestamp = stk_body("INV-PASS", &phone("00"), &inbox.url("/stk"));
    other_timestamp["Timestamp"] = json!("20260717120001");
    let (status, error) = push(&sandbox, &token, &other_timestamp).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorMessage"], "[MerchantValidate] - Wrong credentials");

    let mut other_shortcode = stk_body("INV-PASS", &phone("00"), &inbox.url("/stk"));
    other_shortcode["BusinessShortCode"] = json!(600_000);
    other_shortcode["Password"] = json!(password("600000", PASSKEY));
    let (status, error) = push(&sandbox, &token, &other_shortcode).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorMessage"], "Merchant does not exist");
    assert!(sandbox.recorded("INV-PASS").await.is_none());

    let id = pushed(&sandbox, &token, &stk_body("INV-PASS", &phone("00"), &inbox.url("/stk"))).await;
    let body = json!({
        "BusinessShortCode": SHORTCODE,
        "Password": password(SHORTCODE, "not-the-passkey"),
        "Timestamp": TIMESTAMP,
        "CheckoutRequestID": id,
    });
    let (status, error) = post(&sandbox, &token, "/mpesa/stkpushquery/v1/query", &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorMessage"], "[MerchantValidate] - Wrong credentials");
}

#[tokio::test]
async fn push_fields_are_validated_with_daraja_messages() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let cases = [
        ("PhoneNumber", json!("0708374100"), "Bad Request - Invalid PhoneNumber"),
        ("Amount", json!(1.5), "Bad Request - Invalid Amount"),
        ("Amount", json!(0), "Bad Request - Invalid Amount"),
        ("Timestamp", json!("2026-07-17 12:00"), "Bad Request - Invalid Timestamp"),
        ("TransactionType", json!("PayBill"), "Bad Request - Invalid TransactionType"),
        ("AccountReference", json!("THIRTEEN-CHAR"), "Bad Request - Invalid AccountReference"),
        ("CallBackURL", json!("callback.example"), "Bad Request - Invalid CallBackURL"),
    ];
    for (field, value, message) in cases {
        let mut body = stk_body("INV-FIELDS", &phone("00"), &inbox.url("/stk"));
        body[field] = value;
        let (status, error) = push(&sandbox, &token, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(error["errorCode"], "400.002.02", "{field}");
        assert_eq!(error["errorMessage"], message);
    }

    let not_json = sandbox
        .http
        .post(sandbox.url("/mpesa/stkpush/v1/processrequest"))
        .bearer_auth(&token)
        .header("Content-Type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(not_json.json::<Value>().await.unwrap()["errorCode"], "400.002.05");
    assert!(sandbox.recorded("INV-FIELDS").await.is_none());
}

#[tokio::test]
async fn a_paid_push_is_in_flight_then_called_back_and_queried_with_string_codes() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (status, accepted) =
        push(&sandbox, &token, &stk_body("INV-OK", &phone("00"), &inbox.url("/stk"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(accepted["ResponseCode"], "0");
    assert_eq!(accepted["ResponseDescription"], "Success. Request accepted for processing");
    assert_eq!(accepted["CustomerMessage"], "Success. Request accepted for processing");
    let id = accepted["CheckoutRequestID"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ws_CO_") && id.ends_with("708374100"), "{id}");

    let (status, in_flight) = query(&sandbox, &token, &id).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "pending is HTTP 500 at Daraja");
    assert_eq!(in_flight["errorCode"], "500.001.1001");
    assert_eq!(in_flight["errorMessage"], "The transaction is being processed");

    let received = inbox.next().await;
    assert_eq!(received.method, Method::POST);
    assert_eq!(received.path, "/stk");
    let callback = &received.body["Body"]["stkCallback"];
    assert_eq!(callback["ResultCode"], 0, "the callback's code is a number");
    assert_eq!(callback["ResultDesc"], "The service request is processed successfully.");
    assert_eq!(callback["CheckoutRequestID"], id.as_str());
    assert_eq!(callback["MerchantRequestID"], accepted["MerchantRequestID"]);
    let items = callback["CallbackMetadata"]["Item"].as_array().unwrap();
    let item = |name: &str| items.iter().find(|item| item["Name"] == name).unwrap()["Value"].clone();
    assert_eq!(item("Amount"), 10);
    assert_eq!(item("PhoneNumber"), 254_708_374_100u64);
    assert_eq!(item("TransactionDate").as_u64().unwrap().to_string().len(), 14);
    let receipt = item("MpesaReceiptNumber");
    assert_eq!(receipt.as_str().unwrap().len(), 10);

    let settled = final_query(&sandbox, &token, &id).await;
    assert_eq!(settled["ResponseCode"], "0");
    assert_eq!(settled["ResponseDescription"], "The service request has been accepted successsfully");
    assert_eq!(settled["ResultCode"], "0", "the query's code is a string");
    assert_eq!(settled["ResultDesc"], "The service request is processed successfully.");
    assert_eq!(settled["MerchantRequestID"], accepted["MerchantRequestID"]);

    let recorded = sandbox.recorded("INV-OK").await.unwrap();
    assert_eq!(recorded["provider"], "mpesa");
    assert_eq!(recorded["handle"], id.as_str());
    assert_eq!(recorded["msisdn"], phone("00"));
    assert_eq!(recorded["amount"], "10");
    assert_eq!(recorded["status"], "success");
    assert_eq!(recorded["callbacksSent"], 1);
}

/// A push from a number ending in `digits` fails with `code`, in the callback and the query.
async fn declined(digits: &str, code: u32, description: &str) {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let reference = format!("INV-{digits}");
    let id = pushed(&sandbox, &token, &stk_body(&reference, &phone(digits), &inbox.url("/stk"))).await;
    let callback = inbox.next().await.body["Body"]["stkCallback"].clone();
    assert_eq!(callback["ResultCode"], code);
    assert_eq!(callback["ResultDesc"], description);
    assert!(callback.get("CallbackMetadata").is_none(), "only a success carries metadata");
    let settled = final_query(&sandbox, &token, &id).await;
    assert_eq!(settled["ResultCode"], code.to_string());
    assert_eq!(settled["ResultDesc"], description);
    assert_eq!(sandbox.recorded(&reference).await.unwrap()["status"], "failed");
}

#[tokio::test]
async fn a_number_ending_in_01_lacks_funds() {
    declined("01", 1, "The balance is insufficient for the transaction.").await;
}

#[tokio::test]
async fn a_number_ending_in_06_cancels_the_prompt() {
    declined("06", 1032, "Request cancelled by user").await;
}

#[tokio::test]
async fn a_number_ending_in_07_enters_a_wrong_pin() {
    declined("07", 2001, "The initiator information is invalid.").await;
}

#[tokio::test]
async fn a_number_ending_in_02_stays_in_flight() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let id = pushed(&sandbox, &token, &stk_body("INV-AWAY", &phone("02"), &inbox.url("/stk"))).await;
    inbox.stays_empty(Duration::from_millis(600)).await;
    let (status, in_flight) = query(&sandbox, &token, &id).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(in_flight["errorCode"], "500.001.1001");
    assert_eq!(sandbox.recorded("INV-AWAY").await.unwrap()["status"], "processing");
}

#[tokio::test]
async fn the_first_push_of_03_fails_with_500_and_records_nothing() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = stk_body("INV-FLAKY", &phone("03"), &inbox.url("/stk"));
    let (status, error) = push(&sandbox, &token, &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorCode"], "500.003.1001");
    assert!(sandbox.recorded("INV-FLAKY").await.is_none());

    let id = pushed(&sandbox, &token, &body).await;
    assert_eq!(final_query(&sandbox, &token, &id).await["ResultCode"], "0");
    assert_eq!(sandbox.recorded("INV-FLAKY").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn a_stalled_push_retried_is_a_second_push_because_daraja_has_no_duplicate_check() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = stk_body("INV-SLOW", &phone("04"), &inbox.url("/stk"));
    let timed_out = sandbox
        .http
        .post(sandbox.url("/mpesa/stkpush/v1/processrequest"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());

    let retry = pushed(&sandbox, &token, &body).await;
    assert_eq!(final_query(&sandbox, &token, &retry).await["ResultCode"], "0");
    let url = sandbox.url("/_sandbox/transactions?reference=INV-SLOW");
    let pushes = sandbox
        .eventually(|| async {
            let list: Vec<Value> = sandbox.http.get(&url).send().await.unwrap().json().await.unwrap();
            list.iter().all(|push| push["status"] == "success").then_some(list)
        })
        .await;
    assert_eq!(pushes.len(), 2, "the customer was prompted, and paid, twice");
    assert_ne!(pushes[0]["handle"], pushes[1]["handle"]);
    assert!(pushes.iter().all(|push| push["initiateCalls"] == 2));
}

#[tokio::test]
async fn a_number_ending_in_05_pays_without_a_callback() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let id = pushed(&sandbox, &token, &stk_body("INV-POLL", &phone("05"), &inbox.url("/stk"))).await;
    assert_eq!(final_query(&sandbox, &token, &id).await["ResultCode"], "0");
    inbox.stays_empty(Duration::from_millis(300)).await;
    assert_eq!(sandbox.recorded("INV-POLL").await.unwrap()["callbacksSent"], 0);
}

#[tokio::test]
async fn an_unknown_checkout_request_is_a_bad_request() {
    let sandbox = Sandbox::start(config()).await;
    let token = token(&sandbox).await;
    let (status, error) = query(&sandbox, &token, "ws_CO_01012026000000000708374100").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errorCode"], "400.002.02");
    assert_eq!(error["errorMessage"], "Bad Request - Invalid CheckoutRequestID");
}

#[tokio::test]
async fn a_b2c_payment_is_acknowledged_then_its_result_posted() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let (status, ack) = pay(&sandbox, &token, &b2c_body("b2c-ok", &phone("00"), &inbox)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ack["OriginatorConversationID"], "b2c-ok");
    assert_eq!(ack["ResponseCode"], "0");
    assert_eq!(ack["ResponseDescription"], "Accept the service request successfully.");
    let conversation_id = ack["ConversationID"].as_str().unwrap().to_owned();
    assert!(conversation_id.starts_with("AG_"), "{conversation_id}");

    let received = inbox.next().await;
    assert_eq!(received.method, Method::POST);
    assert_eq!(received.path, "/b2c/result");
    let result = &received.body["Result"];
    assert_eq!(result["ResultType"], 0);
    assert_eq!(result["ResultCode"], 0);
    assert_eq!(result["ResultDesc"], "The service request is processed successfully.");
    assert_eq!(result["OriginatorConversationID"], "b2c-ok");
    assert_eq!(result["ConversationID"], conversation_id.as_str());
    assert_eq!(parameter(result, "TransactionAmount"), 250);
    assert_eq!(parameter(result, "TransactionReceipt"), &result["TransactionID"]);
    assert_eq!(parameter(result, "B2CRecipientIsRegisteredCustomer"), "Y");
    assert!(parameter(result, "ReceiverPartyPublicName").as_str().unwrap().starts_with(&phone("00")));
    let completed = parameter(result, "TransactionCompletedDateTime").as_str().unwrap();
    assert_eq!((completed.len(), &completed[2..3], &completed[5..6]), (19, ".", "."), "{completed}");
    assert!(parameter(result, "B2CUtilityAccountAvailableFunds").is_number());
    assert_eq!(result["ReferenceData"]["ReferenceItem"]["Key"], "QueueTimeoutURL");

    let recorded = sandbox.recorded("b2c-ok").await.unwrap();
    assert_eq!(recorded["provider"], "mpesa-b2c");
    assert_eq!(recorded["handle"], conversation_id.as_str());
    assert_eq!(recorded["msisdn"], phone("00"));
    assert_eq!(recorded["status"], "success");
}

/// A payout to a number ending in `digits` is accepted, then fails with `code` in its `Result`.
async fn payout_fails(digits: &str, code: u32, description: &str) {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let originator = format!("b2c-{digits}");
    let (status, ack) = pay(&sandbox, &token, &b2c_body(&originator, &phone(digits), &inbox)).await;
    assert_eq!((status, &ack["ResponseCode"]), (StatusCode::OK, &json!("0")), "accepted first");
    let result = inbox.next().await.body["Result"].clone();
    assert_eq!(result["ResultCode"], code);
    assert_eq!(result["ResultDesc"], description);
    assert_eq!(result["OriginatorConversationID"], originator.as_str());
    assert!(result.get("ResultParameters").is_none(), "only a success carries parameters");
    assert!(result["TransactionID"].as_str().unwrap().ends_with("0000000"));
    assert_eq!(sandbox.recorded(&originator).await.unwrap()["status"], "failed");
}

#[tokio::test]
async fn a_payout_to_a_number_ending_in_01_finds_the_utility_account_short() {
    payout_fails("01", 1, "The balance is insufficient for the transaction.").await;
}

#[tokio::test]
async fn a_payout_to_a_number_ending_in_06_has_an_unregistered_recipient() {
    payout_fails(
        "06",
        2040,
        "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
    )
    .await;
}

#[tokio::test]
async fn a_payout_to_a_number_ending_in_07_has_an_invalid_initiator() {
    payout_fails("07", 2001, "The initiator information is invalid.").await;
}

#[tokio::test]
async fn payouts_ending_in_02_and_05_post_no_result() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    for digits in ["02", "05"] {
        let (status, _) =
            pay(&sandbox, &token, &b2c_body(&format!("b2c-{digits}"), &phone(digits), &inbox)).await;
        assert_eq!(status, StatusCode::OK);
    }
    inbox.stays_empty(Duration::from_millis(600)).await;
    assert_eq!(sandbox.recorded("b2c-02").await.unwrap()["status"], "processing");
    assert_eq!(sandbox.recorded("b2c-05").await.unwrap()["status"], "success");
}

#[tokio::test]
async fn a_reused_originator_conversation_id_is_a_duplicate() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = b2c_body("b2c-twice", &phone("00"), &inbox);
    assert_eq!(pay(&sandbox, &token, &body).await.0, StatusCode::OK);
    let (status, error) = pay(&sandbox, &token, &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorCode"], "500.002.1001");
    assert_eq!(error["errorMessage"], "Duplicate OriginatorConversationID.");
    inbox.next().await;
    inbox.stays_empty(Duration::from_millis(300)).await;
    assert_eq!(sandbox.recorded("b2c-twice").await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn the_first_payout_of_03_fails_with_500_and_records_nothing() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = b2c_body("b2c-flaky", &phone("03"), &inbox);
    let (status, error) = pay(&sandbox, &token, &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorCode"], "500.003.1001");
    assert!(sandbox.recorded("b2c-flaky").await.is_none());
    assert_eq!(pay(&sandbox, &token, &body).await.0, StatusCode::OK);
    assert_eq!(inbox.next().await.body["Result"]["ResultCode"], 0);
}

#[tokio::test]
async fn a_stalled_payout_is_recorded_and_its_retry_is_a_duplicate() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let body = b2c_body("b2c-slow", &phone("04"), &inbox);
    let timed_out = sandbox
        .http
        .post(sandbox.url("/mpesa/b2c/v3/paymentrequest"))
        .bearer_auth(&token)
        .timeout(Duration::from_millis(300))
        .json(&body)
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    let (status, error) = pay(&sandbox, &token, &body).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error["errorCode"], "500.002.1001");
    assert_eq!(inbox.next().await.body["Result"]["ResultCode"], 0);
    inbox.stays_empty(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_v1_payout_gets_its_originator_conversation_id_from_daraja() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let mut body = b2c_body("ignored", &phone("00"), &inbox);
    body.as_object_mut().unwrap().remove("OriginatorConversationID");
    let (status, ack) = post(&sandbox, &token, "/mpesa/b2c/v1/paymentrequest", &body).await;
    assert_eq!(status, StatusCode::OK);
    let originator = ack["OriginatorConversationID"].as_str().unwrap().to_owned();
    assert!(originator.ends_with("-1"), "{originator}");
    assert_eq!(inbox.next().await.body["Result"]["OriginatorConversationID"], originator.as_str());
    assert_eq!(sandbox.recorded(&originator).await.unwrap()["initiateCalls"], 1);
}

#[tokio::test]
async fn payout_fields_are_validated_with_daraja_messages() {
    let sandbox = Sandbox::start(config()).await;
    let inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    let cases = [
        ("PartyB", json!("0708374100"), "Bad Request - Invalid PartyB"),
        ("CommandID", json!("SendMoney"), "Bad Request - Invalid CommandID"),
        ("Amount", json!("ten"), "Bad Request - Invalid Amount"),
        ("ResultURL", json!(""), "Bad Request - Invalid ResultURL"),
        ("OriginatorConversationID", Value::Null, "Bad Request - Invalid OriginatorConversationID"),
    ];
    for (field, value, message) in cases {
        let mut body = b2c_body("b2c-fields", &phone("00"), &inbox);
        body[field] = value;
        let (status, error) = pay(&sandbox, &token, &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(error["errorCode"], "400.002.02");
        assert_eq!(error["errorMessage"], message);
    }
    assert!(sandbox.recorded("b2c-fields").await.is_none());
}

#[tokio::test]
async fn one_token_serves_stk_pushes_and_payouts() {
    let sandbox = Sandbox::start(config()).await;
    let mut inbox = Inbox::start().await;
    let token = token(&sandbox).await;
    pushed(&sandbox, &token, &stk_body("INV-SHARED", &phone("00"), &inbox.url("/stk"))).await;
    assert_eq!(pay(&sandbox, &token, &b2c_body("b2c-shared", &phone("00"), &inbox)).await.0, StatusCode::OK);
    let mut paths = vec![inbox.next().await.path, inbox.next().await.path];
    paths.sort();
    assert_eq!(paths, ["/b2c/result", "/stk"]);
    let stats: Value =
        sandbox.http.get(sandbox.url("/_sandbox/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["tokenRequests"]["mpesa"], 1);
}
