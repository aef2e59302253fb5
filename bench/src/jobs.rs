//! Jobs per second through the whole pipeline (job row, Redis push, worker, completion
//! recorded) by one worker process and by two, for a handler that only completes and for one
//! that writes a row, against a bare apalis-redis consumer and a bare loop of the same write.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, Statement};
use ultra_domain::audit::{self, Actor, AuditEvent};
use ultra_jobs::{
    Delivery, QueueClient,
    kinds::diagnostics::{Probe, ProbeOutcome},
    queue::Push,
};
use ultra_tests::{Jobs, redis_url};

use crate::{
    load::{PeakRss, closed_loop},
    report::Report,
    usage::{Watched, describe, rss_mib, spent},
    world::World,
};

/// The default queue's concurrency per worker process (`ULTRA_WORKER_QUEUES`).
const WORKER_CONCURRENCY: usize = 64;
/// The most tasks a worker fetches from Redis at once.
const WORKER_BATCH: usize = 16;
/// A worker's database pool (`ULTRA_DB_MAX_CONNECTIONS`).
const WORKER_POOL: u32 = 20;

pub async fn run(report: &mut Report, count: u64) {
    let world = World::start(&[]).await;
    let jobs = Jobs::connect(&world.db, &redis_url(), &world.prefix).await;
    for (label, outcome) in [("no-op", ProbeOutcome::Complete), ("one write", ProbeOutcome::Succeed)] {
        for workers in [1, 2] {
            pipeline(&world, &jobs, report, label, outcome, workers, count).await;
        }
    }
    bare_consumer(&world, report, count).await;
    bare_writes(&world, report, count).await;
}

async fn pipeline(
    world: &World,
    jobs: &Jobs,
    report: &mut Report,
    label: &str,
    outcome: ProbeOutcome,
    workers: usize,
    count: u64,
) {
    let probe = Probe { sleep_ms: 0, outcome };
    let phase_start = Utc::now();
    let enqueue_start = Instant::now();
    for chunk in 0..count.div_ceil(1000) {
        let n = (count - chunk * 1000).min(1000) as usize;
        jobs.enqueue_probes(&probe, n, None, None).await;
    }
    if workers == 1 {
        report.rate(
            &format!("enqueue ({label} probes, 1,000 per transaction)"),
            count,
            enqueue_start.elapsed().as_secs_f64(),
            "",
        );
    }
    world.analyze().await;
    // Workers announce each finished job on Redis; counting those costs the database nothing.
    let redis = redis::Client::open(redis_url()).expect("redis");
    let mut announcements = redis.get_async_pubsub().await.expect("pubsub");
    announcements.psubscribe(format!("{}jobs-done:*", world.prefix)).await.expect("psubscribe");
    let mut processes = Vec::new();
    for _ in 0..workers {
        processes.push(world.worker(&[]).await);
    }
    let mut named: Vec<(String, u32)> =
        processes.iter().enumerate().map(|(i, p)| (format!("worker {}", i + 1), p.pid())).collect();
    named.push(("api (idle)".to_owned(), world.api.pid()));
    let names: Vec<(&str, u32)> = named.iter().map(|(n, p)| (n.as_str(), *p)).collect();
    let watched = Watched::new(&names);
    let before = watched.cpu();
    let peak = PeakRss::watch(processes[0].pid());
    let mut finished = announcements.on_message();
    let mut announced = 0;
    while announced < count {
        match tokio::time::timeout(Duration::from_secs(60), finished.next()).await {
            Ok(Some(_)) => announced += 1,
            _ => break,
        }
    }
    let cpu = spent(&before, &watched.cpu());
    drop(finished);
    let (first, last, done) = finished_since(&jobs.db, phase_start).await;
    let seconds = match (first, last) {
        (Some(first), Some(last)) => (last - first).as_seconds_f64(),
        _ => f64::NAN,
    };
    let name = format!("pipeline, {label} handler, {workers} worker{}", if workers == 1 { "" } else { "s" });
    report.rate(&name, done, seconds, &describe(&cpu));
    report.memory("worker", &format!("under {name}"), peak.mib());
    if label == "no-op" && workers == 1 {
        report.memory("worker", "idle", rss_mib(processes[0].pid()));
    }
}

/// The first and last completion of probes finished since `since`, and how many there were.
async fn finished_since(
    db: &sea_orm::DatabaseConnection,
    since: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>, u64) {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT MIN(finished_at) AS first, MAX(finished_at) AS last, COUNT(*) AS done FROM jobs \
             WHERE kind = 'diagnostics.probe' AND status = 'succeeded' AND finished_at >= $1",
            [since.into()],
        ))
        .await
        .expect("count finished jobs")
        .expect("an aggregate row");
    (
        row.try_get("", "first").ok(),
        row.try_get("", "last").ok(),
        row.try_get::<i64>("", "done").unwrap_or_default() as u64,
    )
}

/// The same pushes, consumed by a bare apalis-redis worker (`lock_tasks(false)`, the batch and
/// poll interval Ultra's workers use) whose handler does nothing: the queue's own ceiling.
async fn bare_consumer(world: &World, report: &mut Report, count: u64) {
    let redis = ultra_domain::redis_conn::connect(&redis_url()).await.expect("redis");
    let queue = QueueClient::new(redis.clone(), format!("{}bare:", world.prefix));
    let pushes: Vec<Push> = (0..count)
        .map(|_| Push {
            queue: "bare".to_owned(),
            push_id: ulid::Ulid::new().to_string(),
            job_id: ulid::Ulid::new().to_string(),
            run_at: Utc::now(),
        })
        .collect();
    queue.push(&pushes).await.expect("push");
    let done = Arc::new(AtomicU64::new(0));
    let config = queue.apalis_config("bare").batch_size(WORKER_BATCH).lock_tasks(false);
    let storage = RedisStorage::<Delivery>::new(redis).with_config(config);
    let counter = Arc::clone(&done);
    let stop = Arc::clone(&done);
    let watched = Watched::new(&[]);
    let before = watched.cpu();
    let start = Instant::now();
    let worker = WorkerBuilder::new(format!("bench-bare-{}", ulid::Ulid::new()))
        .backend(storage.poll_with_interval(Duration::from_millis(100)))
        .concurrency(WORKER_CONCURRENCY)
        .data(counter)
        .build(|_: Delivery, counter: Data<Arc<AtomicU64>>| async move {
            counter.fetch_add(1, Ordering::Relaxed);
            Ok::<(), BoxDynError>(())
        })
        .run_until(async move {
            while stop.load(Ordering::Relaxed) < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok::<(), std::io::Error>(())
        });
    let _ = tokio::time::timeout(Duration::from_secs(600), worker).await;
    let cpu = spent(&before, &watched.cpu());
    report.rate(
        "bare apalis-redis consumer, no-op",
        done.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64(),
        &describe(&cpu),
    );
}

/// The probe's write (one audit row in its own transaction) in a bare loop, at the worker's
/// concurrency over a pool of the worker's size: the database's ceiling for that handler.
async fn bare_writes(world: &World, report: &mut Report, count: u64) {
    let mut options = ConnectOptions::new(world.db.url.clone());
    options
        .max_connections(WORKER_POOL)
        .test_before_acquire_if_idle_for(ultra_domain::db::POOL_PING_AFTER_IDLE)
        .sqlx_logging(false);
    let db = Database::connect(options).await.expect("database");
    let watched = Watched::new(&[]);
    let before = watched.cpu();
    let summary = closed_loop(WORKER_CONCURRENCY, Duration::from_secs(600), count, move |_| {
        let db = db.clone();
        async move {
            let Ok(txn) = ultra_domain::db::begin_write(&db).await else { return false };
            let event = AuditEvent {
                action: "bench.write",
                entity_type: "job",
                entity_id: Some("bench"),
                details: None,
            };
            audit::record(&txn, &Actor::default(), event).await.is_ok() && txn.commit().await.is_ok()
        }
    })
    .await;
    let cpu = spent(&before, &watched.cpu());
    report.rate("bare loop of the probe's write", summary.requests, summary.seconds, &describe(&cpu));
}
