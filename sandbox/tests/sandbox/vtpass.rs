use std::time::Duration;

use chrono::{FixedOffset, Utc};
use poem::http::StatusCode;
use serde_json::{Value, json};

use crate::common::{Sandbox, config};

/// A request id VTpass accepts now: Lagos time, then `suffix`.
fn request_id(suffix: &str) -> String {
    let lagos = FixedOffset::east_opt(3600).unwrap();
    format!("{}{suffix}", Utc::now().with_timezone(&lagos).format("%Y%m%d%H%M"))
}

async fn post(sandbox: &Sandbox, path: &str, body: &Value) -> (StatusCode, Value) {
    let answer = sandbox
        .http
        .post(sandbox.url(path))
        .header("api-key", "ultra-sandbox")
        .header("secret-key", "ultra-sandbox-secret")
        .json(body)
        .send()
        .await
        .unwrap();
    (answer.status(), answer.json().await.unwrap())
}

async fn get(sandbox: &Sandbox, path: &str) -> Value {
    let answer = sandbox
        .http
        .get(sandbox.url(path))
        .header("api-key", "ultra-sandbox")
        .header("public-key", "ultra-sandbox")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    answer.json().await.unwrap()
}

/// ₦100 of MTN airtime to `080111111{digits}`, the last two digits being the test number.
fn airtime(request_id: &str, digits: &str) -> Value {
    json!({ "request_id": request_id, "serviceID": "mtn", "amount": 100, "phone": format!("080111111{digits}") })
}

async fn pay(sandbox: &Sandbox, body: &Value) -> Value {
    let (status, answer) = post(sandbox, "/api/pay", body).await;
    assert_eq!(status, StatusCode::OK);
    answer
}

async fn requery(sandbox: &Sandbox, request_id: &str) -> Value {
    post(sandbox, "/api/requery", &json!({ "request_id": request_id })).await.1
}

/// Requeries until the purchase is no longer pending.
async fn settled(sandbox: &Sandbox, request_id: &str) -> Value {
    sandbox
        .eventually(|| async {
            let answer = requery(sandbox, request_id).await;
            (answer["content"]["transactions"]["status"] != "pending").then_some(answer)
        })
        .await
}

fn status(answer: &Value) -> &Value {
    &answer["content"]["transactions"]["status"]
}

#[tokio::test]
async fn credentials_are_checked_per_method() {
    let sandbox = Sandbox::start(config()).await;
    let wrong = sandbox
        .http
        .post(sandbox.url("/api/pay"))
        .header("api-key", "ultra-sandbox")
        .header("secret-key", "wrong")
        .json(&airtime(&request_id("A1"), "00"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::OK);
    assert_eq!(
        wrong.json::<Value>().await.unwrap(),
        json!({ "code": "087", "response_description": "INVALID CREDENTIALS" })
    );
    let secret_on_get = sandbox
        .http
        .get(sandbox.url("/api/balance"))
        .header("api-key", "ultra-sandbox")
        .header("secret-key", "ultra-sandbox-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(secret_on_get.json::<Value>().await.unwrap()["code"], "087");
    assert_eq!(get(&sandbox, "/api/balance").await["contents"]["balance"], 1_000_000);
}

#[tokio::test]
async fn request_ids_follow_the_vtpass_rule() {
    let sandbox = Sandbox::start(config()).await;
    let stale = pay(&sandbox, &airtime("202001011200OLD", "00")).await;
    assert_eq!(stale["code"], "085");
    assert!(stale["response_description"].as_str().unwrap().contains("NOT TODAY"));
    assert_eq!(pay(&sandbox, &airtime("MXT-42", "00")).await["code"], "085");

    let id = request_id("ONCE");
    assert_eq!(pay(&sandbox, &airtime(&id, "00")).await["code"], "000");
    let again = pay(&sandbox, &airtime(&id, "00")).await;
    assert_eq!(again, json!({ "code": "014", "response_description": "REQUEST ID ALREADY EXIST" }));
    assert_eq!(requery(&sandbox, &request_id("NEVER")).await["code"], "015");
    assert_eq!(sandbox.recorded(&id).await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn airtime_is_delivered_at_once_by_default() {
    let sandbox = Sandbox::start(config()).await;
    let id = request_id("AIRTIME00");
    let answer = pay(&sandbox, &airtime(&id, "00")).await;
    assert_eq!(answer["code"], "000");
    assert_eq!(answer["response_description"], "TRANSACTION SUCCESSFUL");
    assert_eq!(answer["requestId"], id);
    assert_eq!(answer["amount"], 100);
    assert_eq!(answer["purchased_code"], "");
    let transaction = &answer["content"]["transactions"];
    assert_eq!(transaction["status"], "delivered");
    assert_eq!(transaction["product_name"], "MTN Airtime VTU");
    assert_eq!(transaction["unique_element"], "08011111100");
    assert_eq!(transaction["commission"], 3);
    assert_eq!(transaction["total_amount"], 97);
    assert_eq!(transaction["transactionId"].as_str().unwrap().len(), 26);
    assert_eq!(requery(&sandbox, &id).await["content"]["transactions"], *transaction);
    let recorded = sandbox.recorded(&id).await.unwrap();
    assert_eq!(recorded["provider"], "vtpass");
    assert_eq!(recorded["status"], "delivered");
    assert_eq!(recorded["handle"], transaction["transactionId"]);
}

#[tokio::test]
async fn each_test_number_has_its_fate() {
    let sandbox = Sandbox::start(config()).await;
    let failed = pay(&sandbox, &airtime(&request_id("F01"), "01")).await;
    assert_eq!(failed["code"], "016");
    assert_eq!(status(&failed), "failed");

    let pending = request_id("P02");
    assert_eq!(status(&pay(&sandbox, &airtime(&pending, "02")).await), "pending");
    assert_eq!(status(&settled(&sandbox, &pending).await), "delivered");

    let processing = request_id("P05");
    let answer = pay(&sandbox, &airtime(&processing, "05")).await;
    assert_eq!(answer["code"], "099");
    assert_eq!(status(&answer), "initiated");
    assert_eq!(status(&settled(&sandbox, &processing).await), "delivered");

    let reversed = request_id("R06");
    assert_eq!(status(&pay(&sandbox, &airtime(&reversed, "06")).await), "pending");
    let answer = settled(&sandbox, &reversed).await;
    assert_eq!(answer["code"], "040");
    assert_eq!(status(&answer), "reversed");
}

#[tokio::test]
async fn a_first_purchase_ending_in_03_fails_unrecorded_and_may_be_sent_again() {
    let sandbox = Sandbox::start(config()).await;
    let id = request_id("FLAKY03");
    let (code, answer) = post(&sandbox, "/api/pay", &airtime(&id, "03")).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer["code"], "083");
    assert_eq!(requery(&sandbox, &id).await["code"], "015");
    assert_eq!(status(&pay(&sandbox, &airtime(&id, "03")).await), "delivered");
    assert_eq!(sandbox.recorded(&id).await.unwrap()["initiateCalls"], 2);
}

#[tokio::test]
async fn a_first_purchase_ending_in_04_is_delivered_but_answered_too_late() {
    let sandbox = Sandbox::start(config()).await;
    let id = request_id("SLOW04");
    let timed_out = sandbox
        .http
        .post(sandbox.url("/api/pay"))
        .header("api-key", "ultra-sandbox")
        .header("secret-key", "ultra-sandbox-secret")
        .timeout(Duration::from_millis(300))
        .json(&airtime(&id, "04"))
        .send()
        .await;
    assert!(timed_out.unwrap_err().is_timeout());
    assert_eq!(status(&requery(&sandbox, &id).await), "delivered");
    assert_eq!(pay(&sandbox, &airtime(&id, "04")).await["code"], "014");
}

#[tokio::test]
async fn data_plans_are_sold_at_their_catalogue_price() {
    let sandbox = Sandbox::start(config()).await;
    let plans = get(&sandbox, "/api/service-variations?serviceID=airtel-data").await;
    assert_eq!(plans["response_description"], "000");
    assert_eq!(plans["content"]["serviceID"], "airtel-data");
    let one_gb = plans["content"]["varations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|plan| plan["name"].as_str().unwrap().contains(" 1GB "))
        .unwrap()
        .clone();
    assert_eq!(one_gb["variation_code"], "airt-500");
    assert_eq!(one_gb["variation_amount"], "500.00");
    let body = json!({
        "request_id": request_id("DATA"),
        "serviceID": "airtel-data",
        "billersCode": "08021111100",
        "variation_code": "airt-500",
        "amount": 1,
        "phone": "08021111100",
    });
    let answer = pay(&sandbox, &body).await;
    assert_eq!(status(&answer), "delivered");
    assert_eq!(answer["amount"], 500);
    let unknown = json!({ "request_id": request_id("DATA2"), "serviceID": "airtel-data", "variation_code": "airt-1", "phone": "08021111100" });
    assert_eq!(pay(&sandbox, &unknown).await["code"], "010");
}

#[tokio::test]
async fn meters_are_verified_and_prepaid_ones_get_a_token() {
    let sandbox = Sandbox::start(config()).await;
    let verify =
        |meter: &str| json!({ "billersCode": meter, "serviceID": "ikeja-electric", "type": "prepaid" });
    let valid = post(&sandbox, "/api/merchant-verify", &verify("1111111111111")).await.1;
    assert_eq!(valid["code"], "000");
    assert_eq!(valid["content"]["WrongBillersCode"], false);
    assert_eq!(valid["content"]["Meter_Type"], "PREPAID");
    assert!(valid["content"]["Customer_Name"].is_string());
    let wrong = post(&sandbox, "/api/merchant-verify", &verify("1111111111109")).await.1;
    assert_eq!(wrong["content"]["WrongBillersCode"], true);

    let body = json!({
        "request_id": request_id("POWER"),
        "serviceID": "ikeja-electric",
        "billersCode": "1111111111111",
        "variation_code": "prepaid",
        "amount": 2000,
        "phone": "08011111111",
    });
    let answer = pay(&sandbox, &body).await;
    assert_eq!(status(&answer), "delivered");
    let token = answer["token"].as_str().unwrap();
    assert!(token.starts_with("Token : ") && token.len() == "Token : ".len() + 20, "{token}");
    assert_eq!(answer["purchased_code"], token);
    assert_eq!(answer["units"], "80.0 kWh");
    let mut unknown_meter = body.clone();
    unknown_meter["request_id"] = json!(request_id("POWER09"));
    unknown_meter["billersCode"] = json!("1111111111109");
    assert_eq!(pay(&sandbox, &unknown_meter).await["code"], "016");
}
