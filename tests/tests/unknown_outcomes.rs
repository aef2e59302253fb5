//! A collection that may have reached the provider never ends unpaid on Ultra's own guess: a
//! worker killed after the provider accepted, an answer lost, a callback that never comes. The
//! payment completes on the provider's word, or is held as `unknown` for an operator to
//! resolve; it is never `expired` while the customer may have paid.

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::{audit_logs, events, payments as payment_rows};
use ultra_tests::{
    LiveWorld, MERCHANT_EMAIL, ledger_sum, live_config, redis_url,
    sellapay::{access_token, balance_kes, create_key, credit, post, transaction},
    start_live_worker, start_scheduler,
};

fn id_of(body: &Value) -> String {
    body["data"]["id"].as_str().expect("payment id").to_owned()
}

fn on_sqlite() -> bool {
    std::env::var("ULTRA_TEST_DB").as_deref() == Ok("sqlite")
}

/// Payments expire after `seconds`, and the expiry schedule runs every second.
async fn quick_expiry(world: &LiveWorld, seconds: u64) -> ultra_tests::Process {
    let db = world.app.db.connect().await;
    RuntimeConfig::set(&db, "paymentExpirySeconds", json!(seconds), None).await.unwrap();
    RuntimeConfig::set(&db, "schedules", json!({ "expire-payments": "* * * * * *" }), None).await.unwrap();
    // The API caches runtime config for two seconds.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    start_scheduler(&world.app.db, &redis_url(), &world.app.redis_prefix, &[]).await
}

/// Waits until the sandbox has recorded a collection under the payment's reference: the
/// provider has accepted it.
async fn provider_has(world: &LiveWorld, reference: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while world.sandbox_transactions(reference).await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "the worker never called the provider:\n{}",
            world.worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// SIGKILLs the world's worker and starts another in its place.
async fn kill_worker(world: &mut LiveWorld) {
    world.worker.signal("KILL");
    assert!(world.worker.exited_within(Duration::from_secs(5)).await);
    world.worker = start_live_worker(&world.app).await;
}

async fn merchant_balance(world: &LiveWorld) -> i64 {
    let db = world.app.db.connect().await;
    let merchant = ultra_domain::users::find_by_email(&db, MERCHANT_EMAIL).await.unwrap().unwrap();
    ultra_domain::ledger::find_account(&db, &format!("merchant:{}:MGA:available", merchant.id))
        .await
        .unwrap()
        .map_or(0, |account| account.balance_minor)
}

async fn resolve(world: &LiveWorld, token: &str, id: &str, body: &Value) -> (u16, Value) {
    let response = world
        .app
        .client
        .post(world.app.url(&format!("/api/v1/admin/payments/{id}/resolve")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_mvola_payment_whose_answer_and_callback_were_lost_is_held_as_unknown_not_expired() {
    let mut world = LiveWorld::start_with(&["mvola"]).await;
    let _scheduler = quick_expiry(&world, 8).await;
    // 09: MVola records the request and the customer pays, but the answer comes too late and
    // no callback is sent. The worker is killed while it waits for that answer.
    let (status, body) = world.pay("mvola", "5000", "0340000009", None).await;
    assert_eq!(status, 202, "{body}");
    let id = id_of(&body);
    provider_has(&world, body["data"]["reference"].as_str().unwrap()).await;
    kill_worker(&mut world).await;

    let payment = world.payment_until(&id, Duration::from_secs(40), |p| p["status"] != "pending").await;
    assert_eq!(payment["status"], "unknown", "never written off while the customer may have paid: {payment}");
    assert!(payment["failureReason"].as_str().is_some_and(|r| r.contains("lost")), "{payment}");
    let transactions = world.sandbox_transactions(payment["reference"].as_str().unwrap()).await;
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    assert_eq!(transactions[0]["status"], "completed", "the customer did pay: {transactions:?}");
    assert_eq!(merchant_balance(&world).await, 0, "not credited on a guess either");

    // The merchant sees it, with an event; operators see it on the worker's metrics.
    let listed: Value = world
        .app
        .client
        .get(world.app.url("/api/v1/payments?status=unknown"))
        .bearer_auth(&world.merchant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    let db = world.app.db.connect().await;
    let recorded = events::Entity::find()
        .filter(events::Column::ResourceId.eq(id.as_str()))
        .filter(events::Column::EventType.eq("payment.unknown"))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].payload["status"], "unknown");
    let held =
        world.worker.metric("money_held_unknown_total", &[("kind", "payment"), ("provider", "mvola")]).await;
    assert_eq!(held, 1.0, "{}", world.worker.log_text());

    // Only an operator resolves it, once, on the provider's word.
    let note = json!({ "outcome": "paid", "providerTransactionId": "MV-STATEMENT-1", "note": "on the MVola statement" });
    let (status, refused) = resolve(&world, &world.merchant, &id, &note).await;
    assert_eq!(status, 403, "{refused}");
    let (status, resolved) = resolve(&world, &world.admin, &id, &note).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["data"]["status"], "completed");
    assert_eq!(resolved["data"]["providerTransactionId"], "MV-STATEMENT-1");
    assert_eq!(merchant_balance(&world).await, 500_000, "credited once the provider's word is in");
    assert_eq!(ledger_sum(&world.app.db, "MGA").await, 0);
    let (status, again) = resolve(&world, &world.admin, &id, &note).await;
    assert_eq!(status, 409, "{again}");
    assert_eq!(again["meta"]["code"], "payment_not_unknown");
    let audit = audit_logs::Entity::find()
        .filter(audit_logs::Column::Action.eq("payment.resolved"))
        .filter(audit_logs::Column::EntityId.eq(id.as_str()))
        .one(&db)
        .await
        .unwrap()
        .expect("the resolution is audited");
    assert!(audit.actor_id.is_some(), "under the operator's own id");
    assert_eq!(audit.details.as_ref().unwrap()["note"], "on the MVola statement");
}

#[tokio::test]
async fn an_unknown_payment_the_provider_says_was_never_paid_is_resolved_as_failed() {
    let mut world = LiveWorld::start_with(&["mvola"]).await;
    let _scheduler = quick_expiry(&world, 6).await;
    let (_, body) = world.pay("mvola", "4000", "0340000009", None).await;
    let id = id_of(&body);
    provider_has(&world, body["data"]["reference"].as_str().unwrap()).await;
    kill_worker(&mut world).await;
    let payment = world.payment_until(&id, Duration::from_secs(40), |p| p["status"] != "pending").await;
    assert_eq!(payment["status"], "unknown", "{payment}");

    let (status, body) =
        resolve(&world, &world.admin, &id, &json!({ "outcome": "maybe", "note": "x" })).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        resolve(&world, &world.admin, &id, &json!({ "outcome": "unpaid", "note": "" })).await;
    assert_eq!(status, 400, "an empty note is refused: {body}");
    let (status, resolved) = resolve(
        &world,
        &world.admin,
        &id,
        &json!({ "outcome": "unpaid", "note": "MVola support: reversed" }),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["data"]["status"], "failed");
    assert_eq!(merchant_balance(&world).await, 0);
}

#[tokio::test]
async fn an_airtel_payment_whose_answer_was_lost_is_found_by_our_reference() {
    let mut world = LiveWorld::start_with(&["airtel"]).await;
    let (_, body) = world.pay("airtel", "6000", "0330000009", None).await;
    let id = id_of(&body);
    provider_has(&world, body["data"]["reference"].as_str().unwrap()).await;
    kill_worker(&mut world).await;

    let payment = world.settled(&id).await;
    assert_eq!(payment["status"], "completed", "{payment}");
    let transactions = world.sandbox_transactions(payment["reference"].as_str().unwrap()).await;
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    assert_eq!(transactions[0]["initiateCalls"], 1, "asked by reference, not sent again: {transactions:?}");
    assert_eq!(merchant_balance(&world).await, 600_000);
}

#[tokio::test]
async fn an_orange_order_whose_answer_was_lost_is_replaced_and_paid_on_the_new_page() {
    let mut world = LiveWorld::start_with(&["orange"]).await;
    // Orange's test digits are the amount's: 09 stalls the first order and sends no notification.
    let (_, body) = world.pay("orange", "10009", "0320000000", None).await;
    let id = id_of(&body);
    // Orange records orders under their order id, which is new per attempt.
    let deadline = Instant::now() + Duration::from_secs(10);
    while world.sandbox_provider("orange").await.is_empty() {
        assert!(Instant::now() < deadline, "the worker never called Orange:\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_worker(&mut world).await;

    // The first order's page was never sent to anyone, so nobody can pay it: a new order is the
    // one the customer sees.
    let payment =
        world.payment_until(&id, Duration::from_secs(30), |p| p["checkoutUrl"].as_str().is_some()).await;
    assert_eq!(payment["status"], "pending");
    let page = world.app.client.get(payment["checkoutUrl"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let payment = world.settled(&id).await;
    assert_eq!(payment["status"], "completed", "{payment}");
    assert_eq!(world.sandbox_provider("orange").await.len(), 2, "the lost order and the one paid");
    assert_eq!(merchant_balance(&world).await, 1_000_900);
}

#[tokio::test]
async fn a_payment_whose_worker_died_after_storing_the_handle_completes_by_status_query() {
    if on_sqlite() {
        // SQLite locks the whole file, so one job row cannot be held while the worker commits
        // the payment's handle; the lost-answer tests above cover SQLite.
        return;
    }
    let mut world = LiveWorld::start_with(&["mvola"]).await;
    // 05: MVola answers at once and the customer pays, but no callback comes.
    world.worker.signal("KILL");
    assert!(world.worker.exited_within(Duration::from_secs(5)).await);
    let (_, body) = world.pay("mvola", "7000", "0340000005", None).await;
    let id = id_of(&body);
    let job_id = body["data"]["job"]["id"].as_str().unwrap().to_owned();

    // Hold the collect job's row: the worker can call MVola and store its answer, but not
    // record the job's completion.
    let db = world.app.db.connect().await;
    let hold = db.begin().await.unwrap();
    hold.execute_unprepared(&format!("SELECT id FROM jobs WHERE id = '{job_id}' FOR UPDATE")).await.unwrap();
    world.worker = start_live_worker(&world.app).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let payment = payment_rows::Entity::find_by_id(id.as_str()).one(&db).await.unwrap().unwrap();
        if payment.provider_handle.is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the handle was never stored:\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_worker(&mut world).await;
    hold.rollback().await.unwrap();

    let payment = world.settled(&id).await;
    assert_eq!(payment["status"], "completed", "{payment}\n{}", world.worker.log_text());
    let transactions = world.sandbox_transactions(payment["reference"].as_str().unwrap()).await;
    assert_eq!(transactions.len(), 1, "{transactions:?}");
    assert_eq!(transactions[0]["initiateCalls"], 1, "{transactions:?}");
    assert_eq!(merchant_balance(&world).await, 700_000, "credited once");
}

/// Points `provider`'s global configuration at an app the sandbox does not know: every call
/// from then on is refused for its credentials, so nothing can ask the provider anything.
async fn break_credentials(world: &LiveWorld, provider: &str) {
    let mut config = live_config(provider, &world.sandbox.base);
    config["clientId"] = json!("an-app-the-provider-does-not-know");
    let response = world
        .app
        .client
        .put(world.app.url(&format!("/api/v1/admin/providers/{provider}")))
        .bearer_auth(&world.admin)
        .json(&config)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn reconciliation(world: &LiveWorld) -> Value {
    let response = world
        .app
        .client
        .get(world.app.url("/api/v1/admin/reconciliation"))
        .bearer_auth(&world.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["data"].clone()
}

async fn admin_post(world: &LiveWorld, path: &str, body: &Value) -> (u16, Value) {
    let response =
        world.app.client.post(world.app.url(path)).bearer_auth(&world.admin).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_refund_the_provider_accepted_is_held_as_unknown_when_it_can_no_longer_be_asked() {
    let world = LiveWorld::start_with(&["airtel"]).await;
    // 08: Airtel accepts the refund in progress and settles it a little later.
    let (_, body) = world.pay("airtel", "4000", "0330000008", Some(10)).await;
    let payment = world.settled(&id_of(&body)).await;
    assert_eq!(payment["status"], "completed", "{payment}");
    let payment_id = payment["id"].as_str().unwrap();
    let created: Value = world
        .app
        .client
        .post(world.app.url(&format!("/api/v1/payments/{payment_id}/refunds")))
        .bearer_auth(&world.merchant)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let refund_id = created["data"]["id"].as_str().expect("refund id").to_owned();
    let refund_until = |status: &'static str| {
        let world = &world;
        let refund_id = refund_id.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let body: Value = world
                    .app
                    .client
                    .get(world.app.url(&format!("/api/v1/payments/refunds/{refund_id}")))
                    .bearer_auth(&world.merchant)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if body["data"]["status"] == status {
                    return body["data"].clone();
                }
                assert!(Instant::now() < deadline, "refund stayed {body}\n{}", world.worker.log_text());
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    refund_until("processing").await;
    assert_eq!(merchant_balance(&world).await, 0, "the refund's amount is held");

    // Airtel has the refund, and now refuses our credentials: it can no longer say.
    break_credentials(&world, "airtel").await;
    let response = world
        .app
        .client
        .post(world.app.url(&format!("/api/v1/payments/refunds/{refund_id}/poll")))
        .bearer_auth(&world.merchant)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let held = refund_until("unknown").await;
    assert!(held["failureReason"].as_str().is_some_and(|r| r.contains("could not be asked")), "{held}");
    assert_eq!(merchant_balance(&world).await, 0, "not released on a guess: the customer may have the money");
    assert_eq!(world.payment(payment_id).await["status"], "refunding");
    let overview = reconciliation(&world).await;
    assert_eq!(overview["refunds"]["total"], 1, "{overview}");
    assert_eq!(overview["refunds"]["items"][0]["id"], refund_id.as_str());

    let (status, resolved) = admin_post(
        &world,
        &format!("/api/v1/admin/refunds/{refund_id}/resolve"),
        &json!({ "outcome": "sent", "note": "Airtel statement shows the reversal" }),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["data"]["status"], "completed");
    assert_eq!(world.payment(payment_id).await["status"], "refunded");
    assert_eq!(merchant_balance(&world).await, 0);
    assert_eq!(ledger_sum(&world.app.db, "MGA").await, 0);
    assert_eq!(reconciliation(&world).await["refunds"]["total"], 0);
}

#[tokio::test]
async fn a_payout_whose_answer_was_lost_is_held_as_unknown_when_the_rail_cannot_be_asked() {
    let mut world = LiveWorld::start_with(&["mpesa", "bank"]).await;
    let db = world.app.db.connect().await;
    RuntimeConfig::set(&db, "sellapay", json!({ "waitSeconds": 0 }), None).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let keys = create_key(&world.app, &world.merchant, "payouts").await;
    let token = access_token(&world.app, &keys).await;
    credit(&world.app, MERCHANT_EMAIL, 1_000_000).await;

    // 09: the bank records the transfer, answers too late and sends no callback.
    let (status, body) = post(
        &world.app,
        &token,
        "sendFundsToLocalBank",
        &json!({ "bank_code": "015", "account_number": "0123456709", "amount": 2500, "account_name": "John Doe" }),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while world.sandbox_provider("bank").await.is_empty() {
        assert!(Instant::now() < deadline, "the worker never called the bank:\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.worker.signal("KILL");
    assert!(world.worker.exited_within(Duration::from_secs(5)).await);
    break_credentials(&world, "bank").await;
    world.worker = start_live_worker(&world.app).await;

    let deadline = Instant::now() + Duration::from_secs(30);
    let overview = loop {
        let overview = reconciliation(&world).await;
        if overview["payouts"]["total"] == 1 {
            break overview;
        }
        assert!(Instant::now() < deadline, "no payout held: {overview}\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let payout = &overview["payouts"]["items"][0];
    assert_eq!(payout["status"], "unknown", "{payout}");
    assert_eq!(payout["transactionId"], body["transaction_id"]);
    assert_eq!(
        balance_kes(&world.app, &token).await,
        7500.0,
        "the 2500 stays reserved, never released on a guess"
    );
    let seen = transaction(&world.app, &token, body["transaction_id"].as_str().unwrap()).await;
    assert_eq!(seen["status"], "pending", "Sellapay's clients see an unfinished transfer: {seen}");

    let (status, resolved) = admin_post(
        &world,
        &format!("/api/v1/admin/payouts/{}/resolve", payout["id"].as_str().unwrap()),
        &json!({ "outcome": "not_sent", "note": "the bank confirms no transfer left" }),
    )
    .await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["data"]["status"], "failed");
    assert_eq!(balance_kes(&world.app, &token).await, 10_000.0, "released once the rail's word is in");
    assert_eq!(ledger_sum(&world.app.db, "KES").await, 0);
}

#[tokio::test]
async fn an_stk_push_whose_answer_and_callback_were_lost_is_held_as_unknown_not_expired() {
    let mut world = LiveWorld::start_with(&["mpesa"]).await;
    let db = world.app.db.connect().await;
    RuntimeConfig::set(&db, "sellapay", json!({ "waitSeconds": 0 }), None).await.unwrap();
    let _scheduler = quick_expiry(&world, 8).await;
    let keys = create_key(&world.app, &world.merchant, "stk").await;
    let token = access_token(&world.app, &keys).await;

    // 09: Daraja prompts the customer, who pays, but its answer comes too late and no callback
    // is sent. A second push would be a second charge, and Daraja's query needs the
    // CheckoutRequestID its lost answer carried: nothing can ask.
    let (status, body) =
        post(&world.app, &token, "requestStkPush", &json!({ "phone": "712345609", "amount": 300 })).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while world.sandbox_provider("mpesa").await.is_empty() {
        assert!(Instant::now() < deadline, "the worker never called Daraja:\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_worker(&mut world).await;

    let transaction_id = body["transaction_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(40);
    let seen = loop {
        let seen = transaction(&world.app, &token, &transaction_id).await;
        if seen["status"] != "pending" {
            break seen;
        }
        assert!(Instant::now() < deadline, "still pending: {seen}\n{}", world.worker.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(seen["status"], "unknown", "never expired while the customer may have paid: {seen}");
    let pushes = world.sandbox_provider("mpesa").await;
    assert_eq!(pushes.len(), 1, "one prompt, never a second charge: {pushes:?}");
    assert_eq!(pushes[0]["status"], "success", "the customer paid: {pushes:?}");
    assert_eq!(reconciliation(&world).await["payments"]["total"], 1);
    assert_eq!(balance_kes(&world.app, &token).await, 0.0, "not credited on a guess either");
}
