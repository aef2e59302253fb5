//! Starts webhook lanes: every round, each endpoint with deliveries due and no drain gets one.
//! Deliveries are rows, so this is also how retries resume at their time and how lanes a dead
//! worker held come back once their lease lapses.

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use ultra_jobs::{QueueClient, kinds::webhooks::dispatch_waiting};

use crate::{SchedulerSettings, leader::Leadership};

pub async fn run(
    db: DatabaseConnection,
    queue: QueueClient,
    leadership: Leadership,
    settings: SchedulerSettings,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        if leadership.is_leader() {
            match dispatch_waiting(&db, &queue).await {
                Ok(0) => {}
                Ok(started) => tracing::debug!(started, "started webhook lanes"),
                Err(err) => tracing::warn!(error = %err, "webhook dispatch round failed"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(settings.webhook_dispatch_interval) => {}
        }
    }
}
