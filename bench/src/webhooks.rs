//! Webhook delivery: events recorded and deliveries received per second by a local receiver
//! that answers at once, the CPU each delivery costs across Ultra's processes, PostgreSQL and
//! Redis, and the time from a payment's completion to its webhook's arrival.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use ultra_domain::events::{self, NewEvent};
use ultra_tests::{
    MERCHANT_EMAIL,
    receiver::{Behaviour, Received, Receiver},
    user_id,
};

use crate::{
    load::{Summary, histogram, paced},
    report::Report,
    usage::{Watched, describe, spent},
    world::World,
};

const EVENTS_PER_TRANSACTION: u64 = 100;

/// A world whose merchant has one endpoint, on a local receiver, for `payment.completed`.
pub async fn world_with_receiver() -> (World, Receiver) {
    let world = World::start(&[("webhooks", json!({ "allowPrivateUrls": true }))]).await;
    let receiver = Receiver::start(Behaviour::Succeed).await;
    world
        .post(
            &world.merchant,
            "/api/v1/webhooks/endpoints",
            json!({ "url": receiver.url(), "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                    "events": ["payment.completed"] }),
        )
        .await;
    (world, receiver)
}

pub async fn run(report: &mut Report, count: u64, latency_count: u64) {
    let (world, receiver) = world_with_receiver().await;
    let db = world.db.connect().await;
    let merchant_id = user_id(&db, MERCHANT_EMAIL).await;

    // The backlog is recorded first, then drained: the drain alone is measured.
    let start = Instant::now();
    for batch in 0..count.div_ceil(EVENTS_PER_TRANSACTION) {
        let txn = ultra_domain::db::begin_write(&db).await.expect("begin");
        for n in 0..EVENTS_PER_TRANSACTION.min(count - batch * EVENTS_PER_TRANSACTION) {
            let resource_id = format!("pay_bench_{batch}_{n}");
            let event = NewEvent {
                merchant_id: &merchant_id,
                event_type: "payment.completed",
                resource_type: "payment",
                resource_id: &resource_id,
                payload: json!({ "id": resource_id, "amount": "10000", "currency": "MGA", "status": "completed" }),
            };
            events::record(&txn, event).await.expect("record an event");
        }
        txn.commit().await.expect("commit");
    }
    let recorded = start.elapsed().as_secs_f64();
    report.rate(
        &format!("events recorded with their deliveries ({EVENTS_PER_TRANSACTION} per transaction)"),
        count,
        recorded,
        "",
    );
    world.analyze().await;
    let worker = world.worker(&[]).await;
    let scheduler = world.scheduler().await;
    let watched =
        Watched::new(&[("api", world.api.pid()), ("worker", worker.pid()), ("scheduler", scheduler.pid())]);
    let before = watched.cpu();
    let received = wait_for(&receiver, count as usize).await;
    let mut ultra = spent(&before, &watched.cpu());
    let generator = ultra.remove("load generator").unwrap_or_default();
    let (first, last) = (received[0].at, received[received.len() - 1].at);
    report.rate("webhooks delivered", received.len() as u64, (last - first).as_secs_f64(), &describe(&ultra));
    let cpu_ms: f64 = ultra.values().sum::<f64>() * 1000.0 / received.len() as f64;
    report.ratio("CPU ms per delivered webhook (Ultra, PostgreSQL, Redis)", cpu_ms, "at most 0.7");
    report.note(format!("The load generator (the receiver) used {generator:.2} s of CPU besides."));

    let latencies = completion_to_receipt(&world, &receiver, latency_count).await;
    report.latency("payment completed (simulation) to webhook received", &latencies, "");
}

/// Waits for `n` deliveries, then returns them in arrival order.
pub async fn wait_for(receiver: &Receiver, n: usize) -> Vec<Received> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while receiver.count() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut received = receiver.requests();
    received.sort_by_key(|r| r.at);
    received
}

/// Simulation-mode payments arriving at 50 a second: each completes in its collection job,
/// and its `payment.completed` webhook is timed from the completion the payment records.
async fn completion_to_receipt(world: &World, receiver: &Receiver, count: u64) -> Summary {
    world.put(&world.merchant, "/api/v1/merchant/providers/mvola", json!({ "mode": "simulation" })).await;
    let already = receiver.count();
    let (client, url, token) = (world.client.clone(), world.url("/api/v1/payments"), world.merchant.clone());
    paced(50, count, |_| {
        let request = client
            .post(&url)
            .bearer_auth(&token)
            .json(&json!({ "provider": "mvola", "amount": "10000", "customerPhone": "0340000000" }));
        async move {
            let _ = request.send().await;
        }
    })
    .await;
    let received = wait_for(receiver, already + count as usize).await;
    let anchor = (Instant::now(), Utc::now());
    let mut latencies = histogram();
    for request in received.iter().filter(|r| r.json()["type"] == "payment.completed") {
        let body = request.json();
        let Some(completed) =
            body["data"]["completedAt"].as_str().and_then(|t| t.parse::<DateTime<Utc>>().ok())
        else {
            continue;
        };
        let arrived = anchor.1 - chrono::Duration::from_std(anchor.0 - request.at).unwrap_or_default();
        let micros = (arrived - completed).num_microseconds().unwrap_or_default().max(1);
        latencies.saturating_record(micros as u64);
    }
    Summary { requests: latencies.len(), errors: 0, seconds: 0.0, histogram: latencies }
}

/// Arrival times of `payment.completed` webhooks, by payment id.
pub fn arrivals(received: &[Received]) -> HashMap<String, Instant> {
    received
        .iter()
        .filter_map(|r| {
            let body: Value = r.json();
            let id = body["data"]["id"].as_str().filter(|_| body["type"] == "payment.completed")?;
            Some((id.to_owned(), r.at))
        })
        .collect()
}

pub type Sent = Arc<Mutex<HashMap<String, Instant>>>;
