//! Capacity: live payments offered at rising rates through the whole platform (one API, two
//! workers, one scheduler, MVola's and Airtel's protocols against the sandbox, callbacks,
//! status queries, ledger postings, events and webhooks to a local receiver), each rate for a
//! fixed time. The sustained capacity is the highest rate whose backlog is gone 30 s after
//! the step ends.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::{Value, json};
use ultra_tests::database_stats;

use crate::{
    e2e::live_sandbox,
    load::{histogram, paced},
    report::Report,
    usage::{Watched, spent},
    webhooks::{Sent, arrivals, world_with_receiver},
};

/// How long a step's backlog has to drain once its load stops.
const DRAIN: Duration = Duration::from_secs(30);

/// Pending payments, and jobs due to run (queued or running, their time come).
async fn backlog(db: &DatabaseConnection) -> (i64, i64) {
    (
        scalar(db, "SELECT COUNT(*) AS n FROM payments WHERE status = 'pending'").await,
        scalar(
            db,
            "SELECT COUNT(*) AS n FROM jobs WHERE status IN ('queued', 'running') AND run_at <= CURRENT_TIMESTAMP",
        )
        .await,
    )
}

async fn scalar(db: &DatabaseConnection, sql: &'static str) -> i64 {
    db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql))
        .await
        .expect("a count")
        .and_then(|row| row.try_get::<i64>("", "n").ok())
        .unwrap_or_default()
}

/// What PostgreSQL has done in this database so far: transactions and rows written.
async fn database_work(db: &DatabaseConnection) -> Vec<(&'static str, i64)> {
    let figures = [
        ("transactions", "xact_commit + xact_rollback"),
        ("rows inserted", "tup_inserted"),
        ("rows updated", "tup_updated"),
        ("rows deleted", "tup_deleted"),
        ("deadlocks", "deadlocks"),
    ];
    let values = database_stats(db, &figures.map(|(_, figure)| figure)).await;
    figures.iter().map(|(name, _)| *name).zip(values).collect()
}

pub async fn run(report: &mut Report, rates: &[u64], seconds: u64) {
    let (world, receiver) = world_with_receiver().await;
    let sandbox = live_sandbox(&world, &["mvola", "airtel"]).await;
    let env = [("ULTRA_PUBLIC_URL", world.api.base.as_str())];
    let workers = [world.worker(&env).await, world.worker(&env).await];
    let scheduler = world.scheduler().await;
    let watched = Watched::new(&[
        ("api", world.api.pid()),
        ("worker", workers[0].pid()),
        ("worker", workers[1].pid()),
        ("scheduler", scheduler.pid()),
        ("sandbox", sandbox.pid()),
    ]);
    let db = world.db.connect().await;
    let database_before = database_work(&db).await;
    let mut rows = Vec::new();
    let mut sustained = None;
    for &rate in rates {
        let before = watched.cpu();
        let already = receiver.count();
        let sent: Sent = Arc::default();
        let errors = Arc::new(AtomicU64::new(0));
        let (client, url, token) =
            (world.client.clone(), world.url("/api/v1/payments"), world.merchant.clone());
        let began = Instant::now();
        paced(rate, rate * seconds, |n| {
            // Numbers ending in 00 complete on both providers' sandboxes.
            let (provider, phone) =
                if n % 2 == 0 { ("mvola", "0340000000") } else { ("airtel", "0330000000") };
            let request = client
                .post(&url)
                .bearer_auth(&token)
                .json(&json!({ "provider": provider, "amount": "10000", "customerPhone": phone }));
            let (log, errors) = (Arc::clone(&sent), Arc::clone(&errors));
            async move {
                let began = Instant::now();
                let id = match request.send().await {
                    Ok(response) if response.status() == 202 => response
                        .json::<Value>()
                        .await
                        .ok()
                        .and_then(|body| body["data"]["id"].as_str().map(str::to_owned)),
                    _ => None,
                };
                match id {
                    Some(id) => {
                        log.lock().expect("sent").insert(id, began);
                    }
                    None => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
        .await;
        let step = began.elapsed();
        let delivered_in_step = receiver.count().saturating_sub(already);
        let at_end = backlog(&db).await;
        tokio::time::sleep(DRAIN.saturating_sub(began.elapsed() - step)).await;
        let after_drain = backlog(&db).await;
        let cpu = spent(&before, &watched.cpu());

        let arrived = arrivals(&receiver.requests());
        let mut latencies = histogram();
        let sent = sent.lock().expect("sent");
        for (id, at) in sent.iter() {
            if let Some(arrival) = arrived.get(id) {
                latencies.saturating_record(arrival.saturating_duration_since(*at).as_micros().max(1) as u64);
            }
        }
        let completed = latencies.len().max(1) as f64;
        let per_payment = |group: &str| cpu.get(group).copied().unwrap_or_default() * 1000.0 / completed;
        let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
        rows.push(format!(
            "| {rate}/s | {:.0}/s | {} | {} / {} | {} / {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            delivered_in_step as f64 / step.as_secs_f64(),
            errors.load(Ordering::Relaxed),
            at_end.0,
            at_end.1,
            after_drain.0,
            after_drain.1,
            ms(0.5),
            ms(0.99),
            ms(1.0),
            per_payment("api"),
            per_payment("worker"),
            per_payment("scheduler"),
            per_payment("postgresql"),
            per_payment("redis"),
            per_payment("sandbox"),
        ));
        if after_drain != (0, 0) || latencies.len() < sent.len() as u64 {
            break;
        }
        sustained = Some(rate);
    }
    let database = database_work(&db).await;
    let payments =
        scalar(&db, "SELECT COUNT(*) AS n FROM payments WHERE status = 'completed'").await.max(1) as f64;
    let jobs: Vec<String> = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT kind, COUNT(*) AS n FROM jobs GROUP BY kind ORDER BY COUNT(*) DESC",
        ))
        .await
        .expect("jobs by kind")
        .iter()
        .map(|row| {
            let kind: String = row.try_get("", "kind").unwrap_or_default();
            let n: i64 = row.try_get("", "n").unwrap_or_default();
            format!("{kind} {:.2}", n as f64 / payments)
        })
        .collect();
    let per_payment: Vec<String> = database
        .iter()
        .zip(&database_before)
        .map(|((name, after), (_, before))| format!("{name} {:.1}", (after - before) as f64 / payments))
        .collect();
    report.note(format!(
        "Capacity, per completed payment over the whole run: jobs {}; PostgreSQL {}.",
        jobs.join(", "),
        per_payment.join(", ")
    ));
    report.note(format!(
        "### Capacity ({seconds} s per rate)\n\n\
         | offered | webhooks/s during the step | errors | backlog at end (payments / jobs) | 30 s later | p50 ms | p99 ms | max ms | api | workers | scheduler | postgresql | redis | sandbox (apart) |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n{}\n\n\
         Latency is from a payment's `POST` to its `payment.completed` webhook; CPU is in ms per completed payment. \
         Sustained capacity: {}.",
        rows.join("\n"),
        sustained.map_or("below the first rate".to_owned(), |rate| format!("{rate} payments a second"))
    ));
}
