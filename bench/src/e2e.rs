//! End to end: a payment initiated in live mode against the sandbox (MVola's protocol, its
//! customer confirming at once) until its `payment.completed` webhook is received.

use std::{sync::Arc, time::Instant};

use serde_json::{Value, json};
use ultra_tests::{Process, free_port, live_config, redis_url, spawn_ultra, wait_ready};

use crate::{
    load::{Summary, histogram, paced},
    report::Report,
    webhooks::{Sent, arrivals, wait_for, world_with_receiver},
    world::World,
};

pub async fn run(report: &mut Report, count: u64) {
    let (world, receiver) = world_with_receiver().await;
    let _sandbox = live_sandbox(&world, &["mvola"]).await;
    let _worker = world.worker(&[("ULTRA_PUBLIC_URL", world.api.base.as_str())]).await;
    let _scheduler = world.scheduler().await;

    // Ten payments a second: the latency of a payment on a calm system, not of a backlog.
    let sent: Sent = Arc::default();
    let (client, url, token) = (world.client.clone(), world.url("/api/v1/payments"), world.merchant.clone());
    paced(10, count, |_| {
        let request = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000" }));
        let log = Arc::clone(&sent);
        async move {
            let began = Instant::now();
            let Ok(response) = request.send().await else { return };
            let Ok(body) = response.json::<Value>().await else { return };
            if let Some(id) = body["data"]["id"].as_str() {
                log.lock().expect("sent").insert(id.to_owned(), began);
            }
        }
    })
    .await;
    let received = wait_for(&receiver, count as usize).await;
    let arrived = arrivals(&received);
    let mut latencies = histogram();
    for (id, began) in sent.lock().expect("sent").iter() {
        if let Some(at) = arrived.get(id) {
            latencies.saturating_record((*at - *began).as_micros() as u64);
        }
    }
    let summary = Summary { requests: latencies.len(), errors: 0, seconds: 0.0, histogram: latencies };
    report.latency(
        "live payment initiated to webhook received (sandbox, no delay)",
        &summary,
        "p99 under 100",
    );
}

/// The sandbox, its customers confirming at once, with `providers` configured against it in
/// live mode.
pub async fn live_sandbox(world: &World, providers: &[&str]) -> Process {
    let addr = format!("127.0.0.1:{}", free_port());
    let callbacks = format!("{}/api/v1/callbacks/airtel", world.api.base);
    let mut sandbox = spawn_ultra(
        "sandbox",
        &world.db,
        &redis_url(),
        &format!("{}sandbox:", world.prefix),
        &[
            crate::world::QUIET,
            ("ULTRA_SANDBOX_ADDR", addr.as_str()),
            ("ULTRA_SANDBOX_AIRTEL_CALLBACK_URL", callbacks.as_str()),
            ("ULTRA_SANDBOX_SETTLE_MS", "0"),
        ],
    );
    sandbox.base = format!("http://{addr}");
    wait_ready(&mut sandbox.child, &format!("{}/healthz", sandbox.base), &sandbox.log).await;
    for provider in providers {
        world
            .put(
                &world.admin,
                &format!("/api/v1/admin/providers/{provider}"),
                live_config(provider, &sandbox.base),
            )
            .await;
    }
    sandbox
}
