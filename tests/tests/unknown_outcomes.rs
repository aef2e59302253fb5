//! A collection that may have reached the provider never ends unpaid on Ultra's own guess: a
//! worker killed after the provider accepted, an answer lost, a callback that never comes. The
//! payment completes on the provider's word, or is held as `unknown` for an operator to
//! resolve; it is never `expired` while the customer may have paid.

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::{Value, json};
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::{audit_logs, events, payments as payment_rows};
use ultra_tests::{LiveWorld, MERCHANT_EMAIL, ledger_sum, redis_url, start_live_worker, start_scheduler};

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
