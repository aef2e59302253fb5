//! Payments in live mode: real workers calling the provider sandbox over HTTP with each
//! provider's own protocol, callbacks back to the API, polling, expiry, crashes and forgeries.

use std::time::Duration;

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::{runtime_config::RuntimeConfig, secrets::SecretBox};
use ultra_entity::jobs;
use ultra_tests::{ENCRYPTION_KEY, LiveWorld, MERCHANT_EMAIL, redis_url, start_live_worker, start_scheduler};

fn id_of(body: &Value) -> String {
    body["data"]["id"].as_str().expect("payment id").to_owned()
}

/// The one sandbox transaction made under a payment's reference.
async fn only_transaction(world: &LiveWorld, payment: &Value) -> Value {
    let reference = payment["reference"].as_str().unwrap();
    let transactions = world.sandbox_transactions(reference).await;
    assert_eq!(transactions.len(), 1, "one provider transaction for {reference}: {transactions:?}");
    transactions[0].clone()
}

#[tokio::test]
async fn a_fast_provider_answers_within_prefer_wait() {
    let world = LiveWorld::start().await;
    let (status, body) = world.pay("mvola", "10000", "0340000000", Some(5)).await;
    assert_eq!(status, 202, "{body}");
    let payment = &body["data"];
    assert_eq!(payment["status"], "completed", "{body}\n{}", world.worker.log_text());
    assert!(payment["providerTransactionId"].as_str().is_some_and(|id| !id.is_empty()), "{payment}");
    let transaction = only_transaction(&world, payment).await;
    assert_eq!(transaction["status"], "completed");
    assert_eq!(transaction["amount"], "10000");
    assert_eq!(transaction["msisdn"], "0340000000");
}

/// Every test number of a push provider (the number decides), paid at once, each reaching
/// its outcome with one provider transaction.
async fn push_provider_outcomes(provider: &str, prefix: &str) {
    let world = LiveWorld::start().await;
    let mut payments = Vec::new();
    for digits in ["00", "01", "02", "03", "04", "05"] {
        let (status, body) = world.pay(provider, "2500", &format!("{prefix}{digits}"), None).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["data"]["status"], "pending");
        payments.push((digits, id_of(&body)));
    }
    for (digits, id) in &payments {
        if *digits == "02" {
            continue;
        }
        let payment = world.settled(id).await;
        let expected = if *digits == "01" { "failed" } else { "completed" };
        assert_eq!(payment["status"], expected, "{provider} {digits}: {payment}");
        let transaction = only_transaction(&world, &payment).await;
        match *digits {
            "01" => assert!(payment["failureReason"].as_str().is_some_and(|r| !r.is_empty()), "{payment}"),
            // The 500 made nothing; the retry made the one transaction.
            "03" => assert_eq!(transaction["initiateCalls"], 2, "{transaction}"),
            "05" => assert_eq!(transaction["callbacksSent"], 0, "completed by polling alone: {transaction}"),
            _ => {}
        }
        if expected == "completed" {
            assert!(payment["providerTransactionId"].as_str().is_some_and(|t| !t.is_empty()), "{payment}");
        }
    }
    // The customer who never confirms leaves the payment pending, and asking the provider
    // on demand says so too.
    let never = &payments.iter().find(|(d, _)| *d == "02").unwrap().1;
    let response = world
        .app
        .client
        .post(world.app.url(&format!("/api/v1/payments/{never}/poll")))
        .bearer_auth(&world.merchant)
        .header("Prefer", "wait=5")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let polled: Value = response.json().await.unwrap();
    assert_eq!(polled["data"]["job"]["kind"], "payments.check");
    assert_eq!(polled["data"]["job"]["status"], "succeeded", "{polled}");
    assert_eq!(polled["data"]["status"], "pending");

    // One OAuth token served every call: it is cached until shortly before it expires.
    let stats: Value = world
        .app
        .client
        .get(format!("{}/_sandbox/stats", world.sandbox.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["tokenRequests"][provider], 1, "{stats}");
}

#[tokio::test]
async fn mvola_test_numbers_reach_their_outcomes() {
    push_provider_outcomes("mvola", "03400000").await;
}

#[tokio::test]
async fn airtel_test_numbers_reach_their_outcomes() {
    push_provider_outcomes("airtel", "03300000").await;
}

#[tokio::test]
async fn orange_customers_pay_on_the_checkout_page() {
    let world = LiveWorld::start().await;
    // Orange never sees the customer's number: its test digits are the amount's.
    let cases = [("10000", "completed"), ("10001", "failed"), ("10003", "completed"), ("10005", "completed")];
    let mut payments = Vec::new();
    for (amount, expected) in cases {
        let (status, body) = world.pay("orange", amount, "0320000000", None).await;
        assert_eq!(status, 202, "{body}");
        payments.push((amount, expected, id_of(&body)));
    }
    for (amount, expected, id) in &payments {
        let payment =
            world.payment_until(id, Duration::from_secs(20), |p| p["checkoutUrl"].as_str().is_some()).await;
        assert_eq!(payment["status"], "pending", "nobody has paid yet");
        let page = world.app.client.get(payment["checkoutUrl"].as_str().unwrap()).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let payment = world.settled(id).await;
        assert_eq!(payment["status"], *expected, "amount {amount}: {payment}");
    }
}

#[tokio::test]
async fn a_payment_the_customer_never_confirms_expires() {
    let world = LiveWorld::start().await;
    let db = world.app.db.connect().await;
    RuntimeConfig::set(&db, "paymentExpirySeconds", json!(3), None).await.unwrap();
    RuntimeConfig::set(&db, "schedules", json!({ "expire-payments": "* * * * * *" }), None).await.unwrap();
    // The API caches runtime config for two seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let _scheduler = start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await;

    let (_, body) = world.pay("airtel", "3000", "0330000002", None).await;
    let payment = world.settled(&id_of(&body)).await;
    assert_eq!(payment["status"], "expired", "{payment}");
    let transaction = only_transaction(&world, &payment).await;
    assert_eq!(transaction["status"], "TIP", "the provider never saw a confirmation: {transaction}");
}

#[tokio::test]
async fn a_worker_killed_during_the_provider_call_charges_once() {
    let mut world = LiveWorld::start().await;
    // 04: the provider records the request, then hangs past the worker's timeout.
    let (_, body) = world.pay("airtel", "7000", "0330000004", None).await;
    let id = id_of(&body);
    let reference = body["data"]["reference"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while world.sandbox_transactions(&reference).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the worker never called the provider");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.worker.signal("KILL");
    assert!(world.worker.exited_within(Duration::from_secs(5)).await);
    world.worker = start_live_worker(&world.app).await;

    let payment = world.settled(&id).await;
    assert_eq!(payment["status"], "completed", "{payment}");
    let transaction = only_transaction(&world, &payment).await;
    assert_eq!(transaction["initiateCalls"], 1, "the retry asked about the first call: {transaction}");
    let db = world.app.db.connect().await;
    let merchant = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap();
    let account = ultra_domain::ledger::find_account(&db, &format!("merchant:{}:MGA:available", merchant.id))
        .await
        .unwrap()
        .expect("merchant account");
    assert_eq!(account.balance_minor, 700_000, "credited once");
}

/// Waits until the job that hands the payment to the provider has finished.
async fn collect_job_done(world: &LiveWorld, body: &Value) {
    let job = body["data"]["job"]["statusUrl"].as_str().unwrap();
    let response = world
        .app
        .client
        .get(world.app.url(job))
        .bearer_auth(&world.merchant)
        .header("Prefer", "wait=10")
        .send()
        .await
        .unwrap();
    let job: Value = response.json().await.unwrap();
    assert_eq!(job["data"]["status"], "succeeded", "{job}");
}

/// Waits for a callback's status check on `payment_id` to finish, and returns its result.
async fn callback_check(world: &LiveWorld, payment_id: &str) -> Value {
    let db = world.app.db.connect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let checks = jobs::Entity::find()
            .filter(jobs::Column::Kind.eq("payments.check"))
            .filter(jobs::Column::ResourceId.eq(payment_id))
            .all(&db)
            .await
            .unwrap();
        if let Some(done) = checks.iter().find(|job| {
            job.payload["trigger"] == "callback" && job.status == ultra_entity::jobs::JobStatus::Succeeded
        }) {
            return done.result.clone().unwrap_or_default();
        }
        assert!(std::time::Instant::now() < deadline, "no callback check ran: {checks:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn forged_callbacks_change_nothing() {
    let world = LiveWorld::start().await;
    let client = &world.app.client;

    // MVola: even with the right URL, a callback claiming success is checked with MVola.
    let (_, body) = world.pay("mvola", "5000", "0340000002", None).await;
    let mvola = id_of(&body);
    collect_job_done(&world, &body).await;
    let token = SecretBox::from_base64(ENCRYPTION_KEY).unwrap().path_token("callback", &mvola);
    let forged = json!({ "transactionStatus": "completed", "serverCorrelationId": "forged",
                         "transactionReference": "1234567" });
    let wrong = client
        .put(world.app.url(&format!("/api/v1/callbacks/mvola/{mvola}/0000000000aaaaaaaaaa")))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404, "a URL we did not hand out");
    let accepted = client
        .put(world.app.url(&format!("/api/v1/callbacks/mvola/{mvola}/{token}")))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    assert_eq!(accepted.json::<Value>().await.unwrap()["data"]["action"], "checking");
    let result = callback_check(&world, &mvola).await;
    assert_eq!(result["status"], "pending", "{result}");

    // Airtel: its callback URL is public and names only our reference.
    let (_, body) = world.pay("airtel", "5000", "0330000002", None).await;
    let airtel = id_of(&body);
    collect_job_done(&world, &body).await;
    let reference = body["data"]["reference"].as_str().unwrap();
    let forged = json!({ "transaction": { "id": reference, "status_code": "TS", "airtel_money_id": "MP0000",
                                          "message": "Paid" } });
    let response = client.post(world.app.url("/api/v1/callbacks/airtel")).json(&forged).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let result = callback_check(&world, &airtel).await;
    assert_eq!(result["status"], "pending", "{result}");

    // Orange: a notification without the order's notif_token is ignored outright.
    let (_, body) = world.pay("orange", "5002", "0320000000", None).await;
    let orange = id_of(&body);
    world.payment_until(&orange, Duration::from_secs(10), |p| p["checkoutUrl"].as_str().is_some()).await;
    let token = SecretBox::from_base64(ENCRYPTION_KEY).unwrap().path_token("callback", &orange);
    let response = client
        .post(world.app.url(&format!("/api/v1/callbacks/orange/{orange}/{token}")))
        .json(&json!({ "status": "SUCCESS", "notif_token": "guessed", "txnid": "MP1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["data"]["action"], "ignored");

    tokio::time::sleep(Duration::from_secs(1)).await;
    for id in [&mvola, &airtel, &orange] {
        let payment = world.payment(id).await;
        assert_eq!(payment["status"], "pending", "{payment}");
        assert!(payment["providerTransactionId"].is_null(), "{payment}");
    }
}
