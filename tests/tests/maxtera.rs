//! The Maxtera surface against the OnePipe and VTpass simulators, in live mode: customers
//! register, fund their wallets by transfer to a OnePipe account, and buy airtime, data and
//! bills, which real workers buy from the sandbox over HTTP.

use std::time::{Duration, Instant};

use futures::future::join_all;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::ledger_entries;
use ultra_tests::{LiveWorld, ledger_sum, start_live_worker};

const BASE: &str = "/maxtera/api/v1";

/// A live world with OnePipe and VTpass configured globally, the platform's own accounts.
struct Nigeria {
    world: LiveWorld,
}

/// A registered, logged-in customer.
struct Customer {
    access: String,
    refresh: String,
    user_id: i64,
}

impl Nigeria {
    async fn start() -> Self {
        let world = LiveWorld::start_with(&["onepipe", "vtpass"]).await;
        // A loaded test machine gets more than the default five seconds, so the answers
        // below carry the outcome, not `pending`.
        let db = world.app.db.connect().await;
        RuntimeConfig::set(&db, "maxtera", json!({ "waitSeconds": 15 }), None).await.unwrap();
        // The API caches runtime config for two seconds.
        tokio::time::sleep(Duration::from_millis(2100)).await;
        Self { world }
    }

    fn url(&self, path: &str) -> String {
        self.world.app.url(&format!("{BASE}{path}"))
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
    }

    async fn post(&self, token: Option<&str>, path: &str, body: Value) -> (StatusCode, Value) {
        let mut request = self.world.app.client.post(self.url(path)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        self.send(request).await
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.send(self.world.app.client.get(self.url(path)).bearer_auth(token)).await
    }

    async fn register(&self, email: &str, phone: &str) -> Customer {
        let (status, body) = self
            .post(
                None,
                "/auth/register/",
                json!({ "email": email, "password": "mypassword", "phone": phone }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let user_id = body["user_id"].as_i64().expect("integer user_id");
        let (status, tokens) =
            self.post(None, "/auth/login/", json!({ "email": email, "password": "mypassword" })).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        Customer {
            access: tokens["access"].as_str().unwrap().to_owned(),
            refresh: tokens["refresh"].as_str().unwrap().to_owned(),
            user_id,
        }
    }

    async fn balance(&self, customer: &Customer) -> f64 {
        let (status, body) = self.get(&customer.access, "/wallet/balance/").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["currency"], "NGN");
        body["balance"].as_f64().unwrap()
    }

    async fn transaction(&self, customer: &Customer, id: i64) -> Value {
        let (status, body) = self.get(&customer.access, &format!("/transactions/{id}/")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits until the transaction leaves `pending`, failing with the worker's log.
    async fn settled(&self, customer: &Customer, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let found = self.transaction(customer, id).await;
            if found["status"] != "pending" {
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

    /// Funds the wallet with `naira` and waits for OnePipe's confirmation to credit it.
    async fn fund(&self, customer: &Customer, naira: u64) -> Value {
        let (status, body) = self
            .post(Some(&customer.access), "/wallet/fund/", json!({ "amount": naira, "method": "onepipe" }))
            .await;
        assert!(status == StatusCode::ACCEPTED || status == StatusCode::OK, "{status} {body}");
        let settled = self.settled(customer, body["transaction_id"].as_i64().unwrap()).await;
        assert_eq!(settled["status"], "success", "{settled}");
        body
    }

    /// Ledger entries whose reference starts with `prefix`.
    async fn entries(&self, prefix: &str) -> Vec<ledger_entries::Model> {
        let db = self.world.app.db.connect().await;
        ledger_entries::Entity::find()
            .filter(ledger_entries::Column::Reference.starts_with(prefix))
            .all(&db)
            .await
            .unwrap()
    }
}

fn matches_form(reference: &Value, prefix: &str, digits: &[usize]) -> bool {
    let Some(text) = reference.as_str().and_then(|r| r.strip_prefix(prefix)) else { return false };
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == digits.len()
        && parts
            .iter()
            .zip(digits)
            .all(|(part, min)| part.len() >= *min && part.bytes().all(|b| b.is_ascii_digit()))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_request_sample_of_the_seed_gets_the_documented_shape() {
    let ng = Nigeria::start().await;

    // POST /auth/register/, as written.
    let (status, registered) = ng
        .post(
            None,
            "/auth/register/",
            json!({ "email": "user@example.com", "password": "mypassword", "phone": "08012345678" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    assert_eq!(registered["message"], "Account created successfully");
    assert!(registered["user_id"].as_i64().is_some_and(|id| id > 0), "{registered}");
    let (status, again) = ng
        .post(
            None,
            "/auth/register",
            json!({ "email": "USER@example.com", "password": "another-pass", "phone": "08012345678" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(again["email"][0].as_str().unwrap().contains("already exists"), "{again}");

    // POST /auth/login/, as written.
    let (status, tokens) =
        ng.post(None, "/auth/login/", json!({ "email": "user@example.com", "password": "mypassword" })).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access"].as_str().unwrap().to_owned();
    assert!(tokens["refresh"].is_string());
    let (status, wrong) = ng
        .post(None, "/auth/login/", json!({ "email": "user@example.com", "password": "not-my-password" }))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong["detail"], "No active account found with the given credentials");
    let customer = Customer {
        access,
        refresh: tokens["refresh"].as_str().unwrap().to_owned(),
        user_id: registered["user_id"].as_i64().unwrap(),
    };

    // GET /wallet/balance/: a new wallet is empty.
    let (status, balance) = ng.get(&customer.access, "/wallet/balance/").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(balance, json!({ "balance": 0.0, "currency": "NGN" }));

    // POST /wallet/fund/, as written: pending with an MPX- reference and where to transfer.
    let (status, funding) = ng
        .post(Some(&customer.access), "/wallet/fund/", json!({ "amount": 2000, "method": "onepipe" }))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{funding}");
    assert_eq!(funding["status"], "pending");
    assert!(matches_form(&funding["reference"], "MPX-", &[8]), "{funding}");
    assert!(funding["payment_instructions"]["account_number"].is_string(), "{funding}");
    let funded = ng.settled(&customer, funding["transaction_id"].as_i64().unwrap()).await;
    assert_eq!(funded["status"], "success", "{funded}");
    assert_eq!(ng.balance(&customer).await, 2000.0);
    ng.fund(&customer, 5000).await;

    // POST /airtime/purchase/, as written.
    let (status, airtime) = ng
        .post(
            Some(&customer.access),
            "/airtime/purchase/",
            json!({ "network": "MTN", "amount": 100, "phone_number": "08012345678" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{airtime}");
    assert_eq!(airtime["status"], "success");
    assert!(matches_form(&airtime["reference"], "MTN-", &[8, 3]), "{airtime}");

    // GET /data/plans/?network= lists what POST /data/purchase/ takes.
    let (status, plans) = ng.get(&customer.access, "/data/plans/?network=AIRTEL").await;
    assert_eq!(status, StatusCode::OK);
    let one_gb = plans.as_array().unwrap().iter().find(|p| p["plan"] == "1GB").expect("a 1GB plan").clone();
    assert_eq!(one_gb["network"], "AIRTEL");
    let price = one_gb["amount"].as_f64().unwrap();

    // POST /data/purchase/, as written.
    let (status, data) = ng
        .post(
            Some(&customer.access),
            "/data/purchase/",
            json!({ "network": "AIRTEL", "plan": "1GB", "phone_number": "08012345678" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert_eq!(data["status"], "success");
    assert!(matches_form(&data["reference"], "AIRTEL-DATA-", &[3]), "{data}");

    // POST /bills/pay/, as written: the smartcard is verified, then the bill paid.
    let (status, bill) = ng
        .post(
            Some(&customer.access),
            "/bills/pay/",
            json!({ "service_type": "DSTV", "smartcard_number": "1234567890", "amount": 4800 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{bill}");
    assert_eq!(bill["status"], "success");
    assert!(matches_form(&bill["transaction_id"], "BILL-", &[4]), "{bill}");
    assert!(bill["customer_name"].is_string(), "{bill}");

    // GET /transactions/: newest first, in the documented shape.
    let (status, history) = ng.get(&customer.access, "/transactions/").await;
    assert_eq!(status, StatusCode::OK);
    let history = history.as_array().unwrap().clone();
    let types: Vec<&str> = history.iter().map(|t| t["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Bills", "Data", "Airtime", "Funding", "Funding"]);
    for entry in &history {
        for field in ["id", "type", "amount", "status", "created_at", "reference"] {
            assert!(!entry[field].is_null(), "{field} missing in {entry}");
        }
        assert_eq!(entry["status"], "success");
        assert!(entry["created_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(history[2]["amount"].as_f64(), Some(100.0));
    let (status, page) = ng.get(&customer.access, "/transactions?page=2&page_size=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        page.as_array().unwrap().iter().map(|t| t["id"].clone()).collect::<Vec<_>>(),
        [history[2]["id"].clone(), history[3]["id"].clone()]
    );

    // GET /transactions/{id}/, also without the trailing slash.
    let airtime_id = history[2]["id"].as_i64().unwrap();
    let (status, detail) = ng.get(&customer.access, &format!("/transactions/{airtime_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["reference"], airtime["reference"]);
    assert_eq!(detail["network"], "MTN");
    assert_eq!(detail["phone_number"], "08012345678");

    // The wallet adds up: 2,000 + 5,000 - 100 - the plan - 4,800.
    assert_eq!(ng.balance(&customer).await, 7000.0 - 100.0 - price - 4800.0);
    assert_eq!(ledger_sum(&ng.world.app.db, "NGN").await, 0);

    // Another customer sees none of it.
    let other = ng.register("other@example.com", "08031234567").await;
    let (status, _) = ng.get(&other.access, &format!("/transactions/{airtime_id}/")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = ng.get(&other.access, "/transactions/abc/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, empty) = ng.get(&other.access, "/transactions/").await;
    assert_eq!(empty, json!([]));
    assert_ne!(other.user_id, customer.user_id);

    // A refresh token is good once; the access token it gives works.
    let (status, rotated) = ng.post(None, "/auth/refresh/", json!({ "refresh": customer.refresh })).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, replayed) = ng.post(None, "/auth/refresh/", json!({ "refresh": customer.refresh })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(replayed["code"], "token_not_valid");
    let (status, _) = ng.get(rotated["access"].as_str().unwrap(), "/wallet/balance/").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ng.get(rotated["refresh"].as_str().unwrap(), "/wallet/balance/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a refresh token is not an access token");
    let (status, _) = ng.post(None, "/auth/refresh/", json!({ "refresh": customer.access })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "an access token does not refresh");

    // Without a token, nothing.
    let (status, body) = ng.send(ng.world.app.client.get(ng.url("/wallet/balance/"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["detail"], "Authentication credentials were not provided.");
    // A merchant's token does not open the Maxtera surface, nor a Maxtera token the ultra one.
    let (status, _) = ng.get(&ng.world.merchant, "/wallet/balance/").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let ultra = ng.world.app.client.get(ng.world.app.url("/api/v1/payments")).bearer_auth(&customer.access);
    assert_eq!(ultra.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_purchase_is_refunded_once_even_when_the_worker_dies_before_or_during_the_call() {
    let mut ng = Nigeria::start().await;
    let customer = ng.register("buyer@example.com", "08012345678").await;
    ng.fund(&customer, 1000).await;

    // The aggregator refuses (test number 01): failed within the request, wallet refunded.
    let (status, failed) = ng
        .post(
            Some(&customer.access),
            "/airtime/purchase/",
            json!({ "network": "MTN", "amount": 100, "phone_number": "08030000001" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{failed}");
    assert_eq!(failed["status"], "failed");
    assert!(failed["message"].as_str().is_some_and(|m| !m.is_empty()), "{failed}");
    assert_eq!(ng.balance(&customer).await, 1000.0);

    // The worker is dead when the purchase is debited: the next worker buys it, and refunds.
    ng.world.worker.signal("KILL");
    assert!(ng.world.worker.exited_within(Duration::from_secs(5)).await);
    RuntimeConfig::set(&ng.world.app.db.connect().await, "maxtera", json!({ "waitSeconds": 1 }), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, queued) = ng
        .post(
            Some(&customer.access),
            "/airtime/purchase/",
            json!({ "network": "MTN", "amount": 200, "phone_number": "08030000001" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{queued}");
    assert_eq!(queued["status"], "pending");
    assert_eq!(ng.balance(&customer).await, 800.0, "debited at request time");
    ng.world.worker = start_live_worker(&ng.world.app).await;
    let settled = ng.settled(&customer, queued["id"].as_i64().unwrap()).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    assert_eq!(ng.balance(&customer).await, 1000.0);

    // The worker dies while the aggregator holds the call (test number 08 answers late and
    // fails): the next worker asks about that request instead of buying again.
    let (status, held) = ng
        .post(
            Some(&customer.access),
            "/airtime/purchase/",
            json!({ "network": "MTN", "amount": 300, "phone_number": "08030000008" }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{held}");
    let reference = held["reference"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    while ng
        .world
        .sandbox_provider("vtpass")
        .await
        .iter()
        .all(|t| t["initiateCalls"].as_u64().unwrap_or(0) == 0 || t["msisdn"] != "08030000008")
    {
        assert!(
            Instant::now() < deadline,
            "the call never reached the sandbox: {:?}",
            ng.world.sandbox_provider("vtpass").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ng.world.worker.signal("KILL");
    assert!(ng.world.worker.exited_within(Duration::from_secs(5)).await);
    assert_eq!(ng.balance(&customer).await, 700.0);
    ng.world.worker = start_live_worker(&ng.world.app).await;
    let settled = ng.settled(&customer, held["id"].as_i64().unwrap()).await;
    assert_eq!(settled["status"], "failed", "{settled}");
    assert_eq!(ng.balance(&customer).await, 1000.0);
    let calls: u64 = ng
        .world
        .sandbox_provider("vtpass")
        .await
        .iter()
        .filter(|t| t["msisdn"] == "08030000008")
        .map(|t| t["initiateCalls"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(calls, 1, "{reference} was bought once");

    // Every purchase refunded exactly once, and the ledger balanced.
    for id in [failed["id"].as_i64().unwrap(), queued["id"].as_i64().unwrap(), held["id"].as_i64().unwrap()] {
        assert_eq!(ng.entries(&format!("maxtera:{id}:refund")).await.len(), 1, "refunds of {id}");
    }
    assert_eq!(ledger_sum(&ng.world.app.db, "NGN").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_concurrent_purchases_against_a_wallet_that_covers_twelve_make_twelve() {
    let ng = Nigeria::start().await;
    let customer = ng.register("rush@example.com", "08012345678").await;
    ng.fund(&customer, 1200).await;
    let requests = (0..30).map(|_| {
        ng.post(
            Some(&customer.access),
            "/airtime/purchase/",
            json!({ "network": "GLO", "amount": 100, "phone_number": "08051234500" }),
        )
    });
    let answers = join_all(requests).await;
    let bought: Vec<&Value> =
        answers.iter().filter(|(status, _)| status.is_success()).map(|(_, b)| b).collect();
    let refused: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::PAYMENT_REQUIRED)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(bought.len(), 12, "{answers:?}");
    assert_eq!(refused.len(), 18, "{answers:?}");
    assert!(refused[0]["detail"].as_str().unwrap().contains("Insufficient wallet balance"), "{}", refused[0]);
    for purchase in &bought {
        ng.settled(&customer, purchase["id"].as_i64().unwrap()).await;
    }
    assert_eq!(ng.balance(&customer).await, 0.0);
    let (_, history) = ng.get(&customer.access, "/transactions/?page_size=100").await;
    let airtime: Vec<&Value> =
        history.as_array().unwrap().iter().filter(|t| t["type"] == "Airtime").collect();
    assert_eq!(airtime.len(), 12);
    assert!(airtime.iter().all(|t| t["status"] == "success"));
    let delivered =
        ng.world.sandbox_provider("vtpass").await.iter().filter(|t| t["status"] == "delivered").count();
    assert_eq!(delivered, 12);
    assert_eq!(ledger_sum(&ng.world.app.db, "NGN").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_funding_confirmed_by_notification_and_by_query_credits_once() {
    let ng = Nigeria::start().await;
    let customer = ng.register("saver@example.com", "08012345678").await;

    // Paid with a notification (00): the notification's check and the scheduled query both
    // find it paid; the wallet is credited once.
    let funding = ng.fund(&customer, 3000).await;
    let id = funding["transaction_id"].as_i64().unwrap();
    let reference = funding["reference"].as_str().unwrap().to_owned();
    // The next scheduled query comes three seconds after the account was opened.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let notification = json!({ "request_ref": "replayed", "request_type": "transaction_notification",
        "details": { "status": "Successful", "transaction_ref": reference, "amount": 300000 } });
    let replay = ng.world.app.post_json("/api/v1/callbacks/onepipe", &notification).await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(replay.json::<Value>().await.unwrap()["data"]["action"], "ignored");
    assert_eq!(ng.balance(&customer).await, 3000.0);
    assert_eq!(ng.entries(&format!("maxtera:{id}:credit")).await.len(), 1);

    // Paid without a notification (05): the scheduled query credits it.
    let silent = ng.fund(&customer, 505).await;
    assert_eq!(ng.balance(&customer).await, 3505.0);
    assert_eq!(ng.entries(&format!("maxtera:{}:credit", silent["transaction_id"])).await.len(), 1);

    // Never paid (02): a forged notification prompts a query, which finds nothing paid.
    let (_, unpaid) = ng
        .post(Some(&customer.access), "/wallet/fund/", json!({ "amount": "702", "method": "onepipe" }))
        .await;
    let forged = json!({ "request_ref": "forged", "request_type": "transaction_notification",
        "details": { "status": "Successful", "transaction_ref": unpaid["reference"], "amount": 70200 } });
    let answer = ng.world.app.post_json("/api/v1/callbacks/onepipe", &forged).await;
    assert_eq!(answer.json::<Value>().await.unwrap()["data"]["action"], "checking");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = ng.transaction(&customer, unpaid["transaction_id"].as_i64().unwrap()).await;
    assert_eq!(still["status"], "pending", "{still}");
    assert_eq!(ng.balance(&customer).await, 3505.0);

    // Expired unpaid (01): failed, nothing credited.
    let (_, expired) =
        ng.post(Some(&customer.access), "/wallet/fund/", json!({ "amount": 401, "method": "onepipe" })).await;
    let ended = ng.settled(&customer, expired["transaction_id"].as_i64().unwrap()).await;
    assert_eq!(ended["status"], "failed", "{ended}");
    assert_eq!(ng.balance(&customer).await, 3505.0);
    assert_eq!(ledger_sum(&ng.world.app.db, "NGN").await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_a_400_naming_the_field_and_moves_no_money() {
    let ng = Nigeria::start().await;
    let customer = ng.register("careful@example.com", "08012345678").await;
    ng.fund(&customer, 1000).await;
    let cases = [
        (
            "/auth/register/",
            json!({ "email": "not-an-email", "password": "mypassword", "phone": "08012345678" }),
            "email",
        ),
        (
            "/auth/register/",
            json!({ "email": "a@example.com", "password": "short", "phone": "08012345678" }),
            "password",
        ),
        (
            "/auth/register/",
            json!({ "email": "a@example.com", "password": "mypassword", "phone": "12345" }),
            "phone",
        ),
        ("/wallet/fund/", json!({ "amount": 2000, "method": "card" }), "method"),
        ("/wallet/fund/", json!({ "amount": 50, "method": "onepipe" }), "amount"),
        ("/wallet/fund/", json!({ "amount": "20.001", "method": "onepipe" }), "amount"),
        (
            "/airtime/purchase/",
            json!({ "network": "VODAFONE", "amount": 100, "phone_number": "08012345678" }),
            "network",
        ),
        (
            "/airtime/purchase/",
            json!({ "network": "MTN", "amount": 10, "phone_number": "08012345678" }),
            "amount",
        ),
        (
            "/airtime/purchase/",
            json!({ "network": "MTN", "amount": 100, "phone_number": "0801234" }),
            "phone_number",
        ),
        (
            "/airtime/purchase/",
            json!({ "network": "GLO", "amount": 100, "phone_number": "08031234567" }),
            "phone_number",
        ),
        ("/airtime/purchase/", json!({ "network": "MTN", "amount": 100 }), "phone_number"),
        (
            "/data/purchase/",
            json!({ "network": "MTN", "plan": "7TB", "phone_number": "08031234567" }),
            "plan",
        ),
        (
            "/bills/pay/",
            json!({ "service_type": "NEPA", "smartcard_number": "1234567890", "amount": 4800 }),
            "service_type",
        ),
        (
            "/bills/pay/",
            json!({ "service_type": "DSTV", "smartcard_number": "12ab", "amount": 4800 }),
            "smartcard_number",
        ),
        (
            "/bills/pay/",
            json!({ "service_type": "IKEDC", "smartcard_number": "1234567890", "amount": 4800 }),
            "meter_number",
        ),
    ];
    for (path, body, field) in cases {
        let token = (!path.starts_with("/auth")).then_some(customer.access.as_str());
        let (status, answer) = ng.post(token, path, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body}: {answer}");
        assert!(answer[field][0].as_str().is_some_and(|m| !m.is_empty()), "{path} {body}: {answer}");
    }
    // A ported number may be topped up on its new network.
    let (status, ported) = ng
        .post(
            Some(&customer.access),
            "/airtime/purchase/",
            json!({ "network": "GLO", "amount": 100, "phone_number": "08031234500", "ported": true }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ported}");
    // A smartcard the biller does not know (09) fails verification, and is refunded.
    let (status, unknown) = ng
        .post(
            Some(&customer.access),
            "/bills/pay/",
            json!({ "service_type": "GOTV", "smartcard_number": "1234567809", "amount": 500 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{unknown}");
    assert_eq!(unknown["status"], "failed", "{unknown}");
    assert_eq!(ng.balance(&customer).await, 900.0);
    let (_, history) = ng.get(&customer.access, "/transactions/").await;
    assert_eq!(history.as_array().unwrap().len(), 3, "refused requests leave no transaction: {history}");
    assert_eq!(ledger_sum(&ng.world.app.db, "NGN").await, 0);
}
