//! Live payments at a sustained rate, through the whole platform on PostgreSQL: two workers with
//! a short heartbeat committing completions for several merchants at once. Every payment must
//! settle, once, without PostgreSQL breaking a single deadlock and without a worker restarting
//! a consumer it took for dead.

use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::payments::{self, PaymentStatus};
use ultra_tests::{
    ADMIN_EMAIL, ADMIN_PASSWORD, PROVIDER_TIMEOUT_MS, TestDb, database_stats, free_port, live_config, login,
    redis_url, spawn_ultra, start_api, start_scheduler, start_worker, unique, wait_ready,
};

const MERCHANTS: usize = 4;
const PER_SECOND: u64 = 40;
const SECONDS: u64 = 20;

async fn deadlocks(db: &DatabaseConnection) -> i64 {
    database_stats(db, &["deadlocks"]).await[0]
}

#[tokio::test]
async fn forty_live_payments_a_second_all_settle_without_a_deadlock() {
    if std::env::var("ULTRA_TEST_DB").as_deref() == Ok("sqlite") {
        // SQLite takes one writer at a time: there is no lock order to get wrong.
        return;
    }
    let db = TestDb::seeded().await;
    let mut merchants = Vec::new();
    for n in 0..MERCHANTS {
        let email = format!("shop{n}@ultra.test");
        db.create_user(&email, Some("merchant-password-1"), "user", &["--tier", "pro-plus"]);
        merchants.push(email);
    }
    let conn = db.connect().await;
    let unlimited = json!({ "limit": 1_000_000_000u64, "windowSeconds": 60 });
    let tier = json!({ "payments": unlimited, "requests": unlimited });
    RuntimeConfig::set(&conn, "rateLimits", json!({ "pro_plus": tier, "enterprise": tier }), None)
        .await
        .expect("lift the rate limits");

    let prefix = unique("test:") + ":";
    let api = start_api(&db, &prefix, &[]).await;
    let sandbox_addr = format!("127.0.0.1:{}", free_port());
    let airtel_callback = format!("{}/api/v1/callbacks/airtel", api.base);
    let mut sandbox = spawn_ultra(
        "sandbox",
        &db,
        &redis_url(),
        "sandbox:",
        &[
            ("ULTRA_SANDBOX_ADDR", sandbox_addr.as_str()),
            ("ULTRA_SANDBOX_AIRTEL_CALLBACK_URL", airtel_callback.as_str()),
            ("ULTRA_SANDBOX_SETTLE_MS", "300"),
        ],
    );
    sandbox.base = format!("http://{sandbox_addr}");
    wait_ready(&mut sandbox.child, &format!("{}/healthz", sandbox.base), &sandbox.log).await;
    // The harness's workers heartbeat every second and are presumed dead after three missed.
    let worker_env =
        [("ULTRA_PUBLIC_URL", api.base.as_str()), ("ULTRA_PROVIDER_TIMEOUT_MS", PROVIDER_TIMEOUT_MS)];
    let workers = [
        start_worker(&db, &redis_url(), &prefix, &worker_env).await,
        start_worker(&db, &redis_url(), &prefix, &worker_env).await,
    ];
    let _scheduler = start_scheduler(&db, &redis_url(), &prefix, &[]).await;

    let client = reqwest::Client::new();
    let admin = login(&client, &api.base, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for provider in ["mvola", "airtel"] {
        let response = client
            .put(format!("{}/api/v1/admin/providers/{provider}", api.base))
            .bearer_auth(&admin)
            .json(&live_config(provider, &sandbox.base))
            .send()
            .await
            .expect("configure provider");
        assert_eq!(response.status(), 200, "configure {provider}");
    }
    let mut tokens = Vec::new();
    for email in &merchants {
        tokens.push(login(&client, &api.base, email, "merchant-password-1").await);
    }

    let before = deadlocks(&conn).await;
    let count = PER_SECOND * SECONDS;
    let mut ticks = tokio::time::interval(Duration::from_micros(1_000_000 / PER_SECOND));
    let mut sent = Vec::with_capacity(count as usize);
    for n in 0..count as usize {
        ticks.tick().await;
        // Numbers ending in 00 complete on both providers' sandboxes.
        let (provider, phone) = if n % 2 == 0 { ("mvola", "0340000000") } else { ("airtel", "0330000000") };
        let request = client
            .post(format!("{}/api/v1/payments", api.base))
            .bearer_auth(&tokens[n % MERCHANTS])
            .json(&json!({ "provider": provider, "amount": "1000", "customerPhone": phone }));
        sent.push(tokio::spawn(async move {
            let response = request.send().await.expect("create payment");
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }));
    }
    for request in sent {
        let (status, body) = request.await.expect("request task");
        assert_eq!(status, 202, "{body}");
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let completed = loop {
        let completed = payments::Entity::find()
            .filter(payments::Column::Status.eq(PaymentStatus::Completed))
            .count(&conn)
            .await
            .expect("count payments");
        if completed == count || Instant::now() > deadline {
            break completed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let logs: String = workers.iter().map(|worker| worker.log_text()).collect();
    assert_eq!(completed, count, "every payment completes; worker logs:\n{logs}");
    assert_eq!(deadlocks(&conn).await - before, 0, "PostgreSQL broke no deadlock");
    assert!(!logs.contains("queue consumer failed"), "no consumer was taken for dead:\n{logs}");
}
