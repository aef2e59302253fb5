//! An export of a million payments built by the release worker and downloaded through the API:
//! the time it takes, where the CPU went, and the peak resident memory of the worker that
//! builds it and of the API that serves it, which must not grow with the file.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use ultra_tests::{MERCHANT_EMAIL, user_id};

use crate::{
    load::PeakRss,
    report::Report,
    usage::{Watched, describe, rss_mib, spent},
    world::World,
};

pub async fn run(report: &mut Report, count: u64) {
    let world = World::start(&[]).await;
    let conn = world.db.connect().await;
    let merchant = user_id(&conn, MERCHANT_EMAIL).await;
    let stored = Instant::now();
    ultra_tests::store_payments(&conn, &merchant, count).await;
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
