//! The Sellapay surface against the M-Pesa Daraja and bank-rail simulators, in live mode: real
//! workers call the sandbox over HTTP, and the sandbox calls back on the API.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::jobs;
use ultra_tests::{
    LiveWorld, MERCHANT_EMAIL, ledger_sum,
    sellapay::{
        Keys, access_token, authorize, balance_kes, create_key, credit, get_balance, post, transaction,
    },
};

/// A live world with M-Pesa and the bank rail configured, and the merchant's Sellapay token.
struct Kenya {
    world: LiveWorld,
    keys: Keys,
    token: String,
}

impl Kenya {
    async fn start() -> Self {
        let world = LiveWorld::start_with(&["mpesa", "bank"]).await;
        // Answers wait for the rail's outcome; a loaded test machine gets more time than the
        // default five seconds, so the assertions below see the outcome, not `pending`.
        let db = world.app.db.connect().await;
        RuntimeConfig::set(&db, "sellapay", json!({ "waitSeconds": 15 }), None).await.unwrap();
        // The API caches runtime config for two seconds.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        let keys = create_key(&world.app, &world.merchant, "kenya").await;
        let token = access_token(&world.app, &keys).await;
        Self { world, keys, token }
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        post(&self.world.app, &self.token, path, &body).await
    }

    async fn transaction(&self, id: &str) -> Value {
        transaction(&self.world.app, &self.token, id).await
    }

    /// Waits until the transaction satisfies `done`, failing with the worker's log.
    async fn transaction_until(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.transaction(id).await;
            if done(&found) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "{id} stayed {found}\nworker log:\n{}",
                self.world.worker.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn settled(&self, id: &str) -> Value {
        self.transaction_until(id, |t| t["status"] != "pending").await
    }

    async fn balance(&self) -> f64 {
        balance_kes(&self.world.app, &self.token).await
    }

    /// The job that moved the payment behind an STK push out of `pending`.
    async fn settling_job(&self, transaction_id: &str) -> jobs::Model {
        let found = self.transaction(transaction_id).await;
        let payment_id = self.payment_of(&found).await;
        let db = self.world.app.db.connect().await;
        jobs::Entity::find()
            .filter(jobs::Column::ResourceId.eq(payment_id))
            .filter(jobs::Column::Kind.eq("payments.check"))
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .find(|job| job.result.as_ref().is_some_and(|r| r["status"] != "pending"))
            .expect("a check settled the payment")
    }

    /// The ultra payment an STK push is, found through the merchant's own payment list.
    async fn payment_of(&self, transaction: &Value) -> String {
        let list: Value = self
            .world
            .app
            .client
            .get(self.world.app.url("/api/v1/payments?per_page=100"))
            .bearer_auth(&self.world.merchant)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["metadata"]["sellapayTransactionId"] == transaction["transaction_id"])
            .and_then(|p| p["id"].as_str())
            .unwrap_or_else(|| panic!("no payment for {transaction} in {list}"))
            .to_owned()
    }
}

/// Each curl example of the seed, sent as written with only the host changed, in the order a
/// new client would: authorize, read the balance, collect by STK push, then pay out to a phone,
/// another account and a bank.
#[tokio::test]
async fn every_curl_example_in_the_seed_gets_its_documented_answer() {
    let kenya = Kenya::start().await;
    let app = &kenya.world.app;
    app.db.create_user("payee@ultra.test", Some("payee-password-1"), "user", &[]);
    let payee = app.login("payee@ultra.test", "payee-password-1").await;
    let payee_keys = create_key(app, &payee, "receiving").await;
    credit(app, MERCHANT_EMAIL, 1_000_000).await;

    // authorize
    let response = authorize(app, Some(&kenya.keys.key), Some(&kenya.keys.secret)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "User authorized");
    assert!(body["access_token"].is_string() && body["expires_in"] == 3600, "{body}");

    // getBalance
    let response = get_balance(app, &kenya.token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["balance"]["KES"], 10_000.0, "{body}");
    for currency in ["USD", "EUR", "GBP"] {
        assert!(body["balance"][currency].is_f64(), "{body}");
    }

    // requestStkPush: pending until the customer confirms, then completed and credited.
    let (status, body) = kenya
        .post("requestStkPush", json!({ "phone": "712345678", "amount": 100, "reference": "INV-001" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "STK push initiated");
    assert_eq!(body["phone"], "254712345678");
    assert_eq!(body["amount"], 100.0);
    assert_eq!(body["status"], "pending");
    let stk = body["transaction_id"].as_str().unwrap().to_owned();
    assert_transaction_id(&stk);
    let settled = kenya.settled(&stk).await;
    assert_eq!(settled["status"], "completed", "{settled}");
    assert_eq!(settled["type"], "stk_push");
    assert_eq!(settled["reference"], "INV-001");
    assert_eq!(kenya.balance().await, 10_100.0);
    let pushes = kenya.world.sandbox_provider("mpesa").await;
    assert_eq!(pushes.len(), 1, "{pushes:?}");
    assert_eq!(pushes[0]["reference"], "INV-001", "AccountReference is the client's reference");

    // sendFundsToMobile: B2C, settled by M-Pesa's result within the wait.
    let (status, body) = kenya
        .post("sendFundsToMobile", json!({ "phone": "712345678", "amount": 100, "reference": "REF-001" }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Funds sent successfully", "{body}");
    assert_eq!(body["phone"], "254712345678");
    assert_eq!(body["amount"], 100.0);
    assert_eq!(body["status"], "completed");
    assert!(body["timestamp"].is_i64());
    let mobile = body["transaction_id"].as_str().unwrap().to_owned();
    assert_transaction_id(&mobile);
    let found = kenya.transaction(&mobile).await;
    assert_eq!(found["channel"], "mobile");
    assert!(found["receipt"].as_str().is_some_and(|r| r.len() == 10), "M-Pesa's receipt: {found}");

    // sendFundsToSellapay
    let (status, body) =
        kenya.post("sendFundsToSellapay", json!({ "account": payee_keys.account, "amount": 1000 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"], "Funds sent successfully");
    assert_eq!(body["recipient_account"], payee_keys.account.as_str());
    assert_eq!(body["amount"], 1000.0);
    assert_eq!(body["status"], "completed");

    // sendFundsToLocalBank: pending with an estimated arrival, then completed.
    let (status, body) = kenya
        .post(
            "sendFundsToLocalBank",
            json!({ "bank_code": "015", "account_number": "0123456789", "amount": 5000, "account_name": "John Doe" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["bank"], "Equity Bank");
    assert_eq!(body["account_number"], "0123456789");
    assert_eq!(body["amount"], 5000.0);
    assert!(body["status"] == "pending" || body["status"] == "completed", "{body}");
    assert!(body["estimated_arrival"].is_string(), "{body}");
    let bank = body["transaction_id"].as_str().unwrap().to_owned();
    let settled = kenya.settled(&bank).await;
    assert_eq!(settled["status"], "completed", "{settled}");
    assert_eq!(settled["bank"], "Equity Bank");

    // Everything adds up: 10,000 + 100 in, 100 + 1,000 + 5,000 out.
    assert_eq!(kenya.balance().await, 4_000.0);
    assert_eq!(ledger_sum(&kenya.world.app.db, "KES").await, 0);
    let page: Value = app
        .client
        .get(app.url("/sellapay/api/v1/transactions?page=1&limit=10"))
        .bearer_auth(&kenya.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 4, "{page}");
    let kinds: Vec<&str> =
        page["transactions"].as_array().unwrap().iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "stk_push").count(), 1, "{kinds:?}");

    // The STK push is an ultra payment too, with provider mpesa in KES.
    let payment_id = kenya.payment_of(&json!({ "transaction_id": stk })).await;
    let payment = kenya.world.payment(&payment_id).await;
    assert_eq!(payment["provider"], "mpesa");
    assert_eq!(payment["currency"], "KES");
    assert_eq!(payment["status"], "completed");
}

fn assert_transaction_id(id: &str) {
    let parts: Vec<&str> = id.split('-').collect();
    assert!(
        parts.len() == 3 && parts[0] == "TXN" && parts[1].parse::<i64>().is_ok() && parts[2].len() == 5,
        "{id}"
    );
}

/// A push whose callback comes completes on the STK query that callback asks for; one whose
/// callback never comes completes on the scheduled query alone; a cancelled one fails.
#[tokio::test]
async fn stk_push_completes_by_callback_and_without_one_by_query() {
    let kenya = Kenya::start().await;
    let push = |phone: &'static str| kenya.post("requestStkPush", json!({ "phone": phone, "amount": 250 }));

    let (status, by_callback) = push("712345600").await;
    assert_eq!(status, StatusCode::OK, "{by_callback}");
    let (_, by_query) = push("712345605").await;
    let (_, cancelled) = push("712345606").await;
    let id = |body: &Value| body["transaction_id"].as_str().unwrap().to_owned();

    let done = kenya.settled(&id(&by_callback)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let job = kenya.settling_job(&id(&by_callback)).await;
    assert_eq!(job.payload["trigger"], "callback", "{}", job.payload);
    assert!(job.payload["handle"].as_str().is_some_and(|h| h.starts_with("ws_CO_")), "{}", job.payload);

    let done = kenya.settled(&id(&by_query)).await;
    assert_eq!(done["status"], "completed", "{done}");
    let job = kenya.settling_job(&id(&by_query)).await;
    assert_eq!(job.payload["trigger"], "poll", "no callback came: {}", job.payload);

    let done = kenya.settled(&id(&cancelled)).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["failure_reason"].as_str().is_some_and(|r| r.contains("1032")), "{done}");

    assert_eq!(kenya.balance().await, 500.0, "two pushes of 250 completed");
    assert_eq!(ledger_sum(&kenya.world.app.db, "KES").await, 0);

    // Callbacks on a forged URL change nothing.
    let forged = kenya
        .world
        .app
        .client
        .post(kenya.world.app.url("/api/v1/callbacks/mpesa/pay_x/0000000000"))
        .json(&json!({ "Body": { "stkCallback": { "ResultCode": 0 } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
}

/// B2C failures arrive after an accepted request, as a `Result`: the payout ends `failed`, the
/// seed's 500 says so, and the reserved funds are back in the balance.
#[tokio::test]
async fn a_b2c_payout_that_fails_returns_the_funds() {
    let kenya = Kenya::start().await;
    credit(&kenya.world.app, MERCHANT_EMAIL, 50_000).await;

    let (status, body) =
        kenya.post("sendFundsToMobile", json!({ "phone": "712345601", "amount": 200 })).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["error"], "Transfer failed");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("insufficient")), "{body}");
    let id = body["details"]["transaction_id"].as_str().unwrap().to_owned();
    let found = kenya.transaction(&id).await;
    assert_eq!(found["status"], "failed");
    assert_eq!(kenya.balance().await, 500.0, "the 200 came back");

    // A recipient M-Pesa will not pay (2040) fails the same way.
    let (status, body) =
        kenya.post("sendFundsToMobile", json!({ "phone": "712345606", "amount": 100 })).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| m.contains("2040")), "{body}");
    assert_eq!(kenya.balance().await, 500.0);

    // A request whose answer is lost (04) is sent again under the same OriginatorConversationID:
    // Daraja refuses the duplicate, the first one pays, and the money leaves once.
    let (status, body) =
        kenya.post("sendFundsToMobile", json!({ "phone": "712345604", "amount": 100 })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = body["transaction_id"].as_str().unwrap().to_owned();
    let done = kenya.settled(&id).await;
    assert_eq!(done["status"], "completed", "{done}");
    let sent = kenya.world.sandbox_provider("mpesa-b2c").await;
    let stalled: Vec<&Value> = sent.iter().filter(|t| t["msisdn"] == "254712345604").collect();
    assert_eq!(stalled.len(), 1, "{sent:?}");
    assert_eq!(kenya.balance().await, 400.0);
    assert_eq!(ledger_sum(&kenya.world.app.db, "KES").await, 0);
}

/// A bank transfer the destination bank refuses returns the funds; one whose request stalls
/// past the worker's timeout is settled by the rail's own account of it, and pays once.
#[tokio::test]
async fn bank_transfers_settle_once_and_failures_return_the_funds() {
    let kenya = Kenya::start().await;
    credit(&kenya.world.app, MERCHANT_EMAIL, 100_000).await;
    let transfer = |account: &'static str| {
        kenya.post(
            "sendFundsToLocalBank",
            json!({ "bank_code": "001", "account_number": account, "amount": "250.50", "account_name": "Jane Doe" }),
        )
    };

    let (status, refused) = transfer("1234567801").await;
    assert!(status == StatusCode::OK || status == StatusCode::INTERNAL_SERVER_ERROR, "{refused}");
    let refused_id = refused["transaction_id"]
        .as_str()
        .or(refused["details"]["transaction_id"].as_str())
        .unwrap()
        .to_owned();
    let done = kenya.settled(&refused_id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert!(done["failure_reason"].as_str().is_some_and(|r| r.contains("closed")), "{done}");

    let (status, stalled) = transfer("1234567804").await;
    assert_eq!(status, StatusCode::OK, "{stalled}");
    let done = kenya.settled(stalled["transaction_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["amount"], 250.5);
    let sent = kenya.world.sandbox_provider("bank").await;
    assert_eq!(sent.len(), 2, "one transfer per payout: {sent:?}");

    assert_eq!(kenya.balance().await, 1_000.0 - 250.5);
    assert_eq!(ledger_sum(&kenya.world.app.db, "KES").await, 0);
}

/// The seed's validation body for each bad field, and a 503 for a rail nobody configured.
#[tokio::test]
async fn bad_fields_get_the_seeds_validation_error() {
    let kenya = Kenya::start().await;
    credit(&kenya.world.app, MERCHANT_EMAIL, 100_000).await;
    let cases = [
        (
            "requestStkPush",
            json!({ "phone": "812345678", "amount": 100 }),
            "phone",
            "Phone must start with 7 or 1",
        ),
        (
            "requestStkPush",
            json!({ "phone": "0712345678", "amount": 100 }),
            "phone",
            "Phone must be 9 digits",
        ),
        ("requestStkPush", json!({ "phone": "712345678", "amount": 10.5 }), "amount", "whole number"),
        (
            "requestStkPush",
            json!({ "phone": "712345678", "amount": 10, "reference": "R".repeat(21) }),
            "reference",
            "20",
        ),
        ("sendFundsToMobile", json!({ "phone": "71234567", "amount": 100 }), "phone", "9 digits"),
        ("sendFundsToMobile", json!({ "phone": "712345678", "amount": -1 }), "amount", "Amount"),
        (
            "sendFundsToLocalBank",
            json!({ "bank_code": "999", "account_number": "0123456789", "amount": 10, "account_name": "J" }),
            "bank_code",
            "Unknown bank code '999'",
        ),
        (
            "sendFundsToLocalBank",
            json!({ "bank_code": "001", "account_number": "12ab", "amount": 10, "account_name": "J" }),
            "account_number",
            "6 to 20 digits",
        ),
        (
            "sendFundsToLocalBank",
            json!({ "bank_code": "001", "account_number": "0123456789", "amount": 10 }),
            "account_name",
            "required",
        ),
    ];
    for (path, body, field, reason) in cases {
        let (status, answer) = kenya.post(path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert_eq!(answer["error"], "Validation error", "{answer}");
        assert_eq!(answer["details"]["field"], field, "{answer}");
        let said = answer["details"]["reason"].as_str().unwrap_or_default();
        assert!(said.contains(reason), "{path} {body}: {answer}");
    }
    let (_, answer) = kenya.post("requestStkPush", json!({ "phone": "812345678", "amount": 100 })).await;
    assert_eq!(
        answer,
        json!({ "error": "Validation error", "message": "Invalid phone number format",
                "details": { "field": "phone", "reason": "Phone must start with 7 or 1" } })
    );

    // Nothing was reserved by refused requests.
    assert_eq!(kenya.balance().await, 1_000.0);

    // Without a bank rail configured, bank payouts are unavailable rather than lost.
    let removed = kenya
        .world
        .app
        .client
        .delete(kenya.world.app.url("/api/v1/admin/providers/bank"))
        .bearer_auth(&kenya.world.admin)
        .send()
        .await
        .unwrap();
    assert!(removed.status().is_success(), "{}", removed.text().await.unwrap());
    let (status, answer) = kenya
        .post(
            "sendFundsToLocalBank",
            json!({ "bank_code": "001", "account_number": "0123456789", "amount": 10, "account_name": "J" }),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{answer}");
    assert_eq!(answer["error"], "Service unavailable");
    assert_eq!(kenya.balance().await, 1_000.0);
}
