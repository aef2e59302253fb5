//! An export of a million payments built by the release worker and downloaded through the API:
//! the time it takes, where the CPU went, and the peak resident memory of the worker that
//! builds it and of the API that serves it, which must not grow with the file.

use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use ultra_tests::MERCHANT_EMAIL;

use crate::{
    load::PeakRss,
    report::Report,
    usage::{Watched, describe, rss_mib, spent},
    world::World,
};

pub async fn run(report: &mut Report, count: u64) {
    let world = World::start(&[]).await;
    let conn = world.db.connect().await;
    let merchant = ultra_domain::users::find_by_email(&conn, MERCHANT_EMAIL)
        .await
        .expect("read the merchant")
        .expect("the merchant exists")
        .id;
    let stored = Instant::now();
    store_payments(&conn, &merchant, count).await;
    report.note(format!(
        "Export: {count} payments stored in {:.1} s by one `INSERT … SELECT`.",
        stored.elapsed().as_secs_f64()
    ));
    world.analyze().await;

    let worker = world.worker(&[]).await;
    report.memory("worker", "idle, before the export", rss_mib(worker.pid()));
    let watched = Watched::new(&[("worker", worker.pid()), ("api", world.api.pid())]);
    let before = watched.cpu();
    let worker_peak = PeakRss::watch(worker.pid());
    let began = Instant::now();
    let accepted = world.post(&world.merchant, "/api/v1/exports", json!({ "kind": "payments" })).await;
    let id = accepted["data"]["id"].as_str().expect("an export id").to_owned();
    let export = loop {
        let export = view(&world, &id).await;
        match export["status"].as_str() {
            Some("completed") => break export,
            Some("failed") => panic!("the export failed: {export}"),
            _ => {}
        }
        assert!(began.elapsed() < Duration::from_secs(3600), "the export is still {export}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let seconds = began.elapsed().as_secs_f64();
    let cpu = spent(&before, &watched.cpu());
    let rows = export["rowsWritten"].as_u64().unwrap_or_default();
    let bytes = export["bytesWritten"].as_u64().unwrap_or_default();
    report.rate(
        &format!("export built by the worker ({:.0} MiB file)", mib(bytes)),
        rows,
        seconds,
        &describe(&cpu),
    );
    report.memory("worker", "peak while building the export", worker_peak.mib());
    drop(worker_peak);

    report.memory("api", "idle, before the download", rss_mib(world.api.pid()));
    let api_peak = PeakRss::watch(world.api.pid());
    let before = watched.cpu();
    let began = Instant::now();
    let mut response = world
        .client
        .get(world.url(&format!("/api/v1/exports/{id}/download")))
        .bearer_auth(&world.merchant)
        .send()
        .await
        .expect("download");
    assert!(response.status().is_success(), "download: {}", response.status());
    let mut received = 0u64;
    while let Some(chunk) = response.chunk().await.expect("a part of the file") {
        received += chunk.len() as u64;
    }
    let seconds = began.elapsed().as_secs_f64();
    let cpu = spent(&before, &watched.cpu());
    assert_eq!(received, bytes, "the whole file arrived");
    report.rate(
        &format!("export downloaded ({:.0} MiB/s)", mib(bytes) / seconds),
        rows,
        seconds,
        &describe(&cpu),
    );
    report.memory("api", "peak while serving the download", api_peak.mib());
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

async fn view(world: &World, id: &str) -> Value {
    let response = world
        .client
        .get(world.url(&format!("/api/v1/exports/{id}")))
        .bearer_auth(&world.merchant)
        .send()
        .await
        .expect("GET export");
    response.json::<Value>().await.expect("an export")["data"].clone()
}

/// `count` completed payments of about the size a real one exports (a description, a provider
/// transaction id), written by the database itself: a million rows sent one statement at a
/// time would take longer than the export being measured.
async fn store_payments(conn: &sea_orm::DatabaseConnection, merchant: &str, count: u64) {
    let backend = conn.get_database_backend();
    let (numbers, padded) = match backend {
        DbBackend::Postgres => ("generate_series(1, $1) AS seq(n)", "lpad(n::text, 10, '0')"),
        _ => (
            "(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < $1) SELECT n FROM seq)",
            "substr('0000000000' || n, -10)",
        ),
    };
    let sql = format!(
        "INSERT INTO payments (id, merchant_id, provider, mode, amount_minor, currency, status, customer_phone, \
         description, reference, provider_transaction_id, refunded_minor, expires_at, completed_at, created_at, \
         updated_at) \
         SELECT 'pay_bench' || {padded}, $2, 'mvola', 'simulation', 100 * n, 'MGA', 'completed', '0340000000', \
         'Order #' || n, 'ULTBENCH' || {padded}, 'MP' || {padded}, 0, $3, $3, $3, $3 FROM {numbers}"
    );
    // SQLite numbers its parameters `?1`, PostgreSQL `$1`.
    let sql = if backend == DbBackend::Postgres { sql } else { sql.replace('$', "?") };
    let now = Utc::now();
    let count = i64::try_from(count).expect("a count that fits");
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        sql,
        [count.into(), merchant.into(), now.into()],
    ))
    .await
    .expect("store the payments");
}
