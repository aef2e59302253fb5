//! API throughput: `POST /api/v1/payments` (simulation mode) and `GET /api/v1/payments/{id}`
//! at 64 connections, against the same machine's HTTP floor (`GET /healthz`) and database
//! floor (a single-row insert loop at 64 clients), and what a payment's own writes and push
//! cost without the rest of the API.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Map, Value, json};
use ultra_domain::{audit::Actor, payments::NewPayment, provider_configs::Provider};
use ultra_entity::provider_configs::ProviderMode;
use ultra_jobs::{
    QueueClient,
    kinds::payments::{Opener, Opening},
};
use ultra_tests::redis_url;

use crate::{
    load::{PeakRss, Summary, closed_loop},
    report::Report,
    usage::{Watched, describe, rss_mib, spent},
    world::World,
};

pub const CLIENTS: usize = 64;

pub async fn run(report: &mut Report, seconds: u64) {
    let world = World::start(&[]).await;
    world.put(&world.merchant, "/api/v1/merchant/providers/mvola", json!({ "mode": "simulation" })).await;
    let api_pid = world.api.pid();
    let watched = Watched::new(&[("api", api_pid)]);
    report.memory("api", "idle", rss_mib(api_pid));
    let duration = Duration::from_secs(seconds);
    let limit = u64::MAX;

    let client = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().expect("client");
    let healthz = world.url("/healthz");
    let http = {
        let client = client.clone();
        measure(&watched, "GET /healthz (HTTP floor)", report, async move {
            closed_loop(CLIENTS, duration, limit, move |_| {
                let request = client.get(&healthz);
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            })
            .await
        })
        .await
    };

    let created: Arc<Mutex<Vec<String>>> = Arc::default();
    let peak = PeakRss::watch(api_pid);
    let create = {
        let (client, url, token, created) =
            (client.clone(), world.url("/api/v1/payments"), world.merchant.clone(), Arc::clone(&created));
        measure(&watched, "POST /api/v1/payments", report, async move {
            closed_loop(CLIENTS, duration, limit, move |n| {
                let body = json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000",
                                   "description": format!("bench {n}") });
                let request = client.post(&url).bearer_auth(&token).json(&body);
                let created = Arc::clone(&created);
                async move {
                    let Ok(response) = request.send().await else { return false };
                    if response.status().as_u16() != 202 {
                        return false;
                    }
                    let Ok(body) = response.json::<Value>().await else { return false };
                    if let Some(id) = body["data"]["id"].as_str() {
                        created.lock().expect("ids").push(id.to_owned());
                    }
                    true
                }
            })
            .await
        })
        .await
    };
    report.memory("api", "under POST payments", peak.mib());

    let ids = Arc::new(created.lock().expect("ids").clone());
    let read = {
        let (client, base, token) = (client.clone(), world.url("/api/v1/payments/"), world.merchant.clone());
        measure(&watched, "GET /api/v1/payments/{id}", report, async move {
            closed_loop(CLIENTS, duration, limit, move |n| {
                let id = &ids[(n as usize * 7919) % ids.len()];
                let request = client.get(format!("{base}{id}")).bearer_auth(&token);
                async move { request.send().await.is_ok_and(|r| r.status().is_success()) }
            })
            .await
        })
        .await
    };

    // The pool outlives the measurement: its connections' backends must still be running when
    // their CPU is read, or the floor's PostgreSQL time would be lost with them.
    let floor_pool = floor_pool(&world).await;
    let floor = measure(
        &watched,
        "INSERT one row (database floor)",
        report,
        insert_floor(floor_pool.clone(), duration),
    )
    .await;
    let redis = ultra_domain::redis_conn::connect(&redis_url()).await.expect("redis");
    let queue = QueueClient::new(redis, format!("{}writes:", world.prefix));
    let writes = measure(
        &watched,
        "a payment's writes and push alone",
        report,
        payment_writes(Opener::new(floor_pool.clone(), queue), duration),
    )
    .await;
    drop(floor_pool);
    report.ratio("POST payments / database floor", create.rate() / floor.rate(), "at least 0.25");
    report.ratio("a payment's writes and push alone / database floor", writes.rate() / floor.rate(), "");
    report.ratio("POST payments / a payment's writes and push alone", create.rate() / writes.rate(), "");
    report.ratio("POST payments / HTTP floor", create.rate() / http.rate(), "");
    report.ratio("GET payment / HTTP floor", read.rate() / http.rate(), "");
}

/// 64 clients opening payments as `POST payments` without an `Idempotency-Key` does, through
/// the same code (the payment, its collect job and its audit entry, all or none, written
/// together with other clients' and their jobs pushed together), with no HTTP, no
/// authentication and no rate limit: the most the API could reach.
async fn payment_writes(opener: Opener, duration: Duration) -> Summary {
    closed_loop(CLIENTS, duration, u64::MAX, move |n| {
        let opener = opener.clone();
        async move {
            let new = NewPayment {
                id: NewPayment::new_id(),
                merchant_id: "usr_bench".to_owned(),
                provider: Provider::Mvola,
                mode: ProviderMode::Simulation,
                amount_minor: 1_000_000,
                currency: "MGA",
                customer_phone: "0340000000".to_owned(),
                description: Some(format!("bench {n}")),
                metadata: None,
                merchant_reference: None,
                payment_link_id: None,
                subscription_id: None,
                expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
            };
            let actor = Actor { user_id: Some("usr_bench".to_owned()), ..Actor::default() };
            opener.open(Opening { new, actor, details: Map::new() }).await.is_ok()
        }
    })
    .await
}

/// Runs `load`, adding its rate, latencies and CPU split to the report.
async fn measure(
    watched: &Watched,
    name: &str,
    report: &mut Report,
    load: impl std::future::Future<Output = Summary>,
) -> Summary {
    let before = watched.cpu();
    let summary = load.await;
    let cpu = spent(&before, &watched.cpu());
    report.throughput(name, &summary, &describe(&cpu));
    summary
}

/// A pool of 64 connections, all open, and the floor's table.
async fn floor_pool(world: &World) -> DatabaseConnection {
    let mut options = ConnectOptions::new(world.db.url.clone());
    options
        .max_connections(CLIENTS as u32)
        .min_connections(CLIENTS as u32)
        .test_before_acquire_if_idle_for(ultra_domain::db::POOL_PING_AFTER_IDLE)
        .sqlx_logging(false);
    let db = Database::connect(options).await.expect("database");
    db.execute_unprepared(
        "CREATE TABLE bench_floor (id VARCHAR(40) PRIMARY KEY, merchant_id VARCHAR(40) NOT NULL, \
         amount_minor BIGINT NOT NULL, status VARCHAR(16) NOT NULL, created_at TIMESTAMPTZ NOT NULL)",
    )
    .await
    .expect("floor table");
    db
}

/// 64 clients inserting single rows like a payment's into a table of their own, each in its
/// own transaction, over a pool of 64 connections: what the database alone can take.
async fn insert_floor(db: DatabaseConnection, duration: Duration) -> Summary {
    let backend = db.get_database_backend();
    closed_loop(CLIENTS, duration, u64::MAX, move |_| {
        let db = db.clone();
        async move {
            let insert = Statement::from_sql_and_values(
                backend,
                "INSERT INTO bench_floor (id, merchant_id, amount_minor, status, created_at) \
                 VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)",
                [
                    ulid::Ulid::new().to_string().into(),
                    "usr_bench".into(),
                    1_000_000i64.into(),
                    "pending".into(),
                ],
            );
            db.execute_raw(insert).await.is_ok()
        }
    })
    .await
}
