//! Starts webhook lanes: every round, each endpoint with deliveries due and no drain gets one.
//! Deliveries are rows, so this is also how retries resume at their time and how lanes a dead
//! worker held come back once their lease lapses. On PostgreSQL a round also starts as soon as
//! a transaction that made deliveries due commits (`NOTIFY`), so a new event's webhook does
//! not wait for the next round.
//!
//! Every scheduler dispatches, leader or not: a lane is taken by a conditional update, so two
//! schedulers starting the same endpoint's lane start one drain. Webhooks therefore go on at
//! once when the leader dies, instead of waiting out its lease.

use std::time::Duration;

use sea_orm::{DatabaseConnection, DbBackend, sqlx::postgres::PgListener};
use tokio_util::sync::CancellationToken;
use ultra_domain::webhooks::DUE_CHANNEL;
use ultra_jobs::{QueueClient, kinds::webhooks::dispatch_waiting};

use crate::SchedulerSettings;

pub async fn run(
    db: DatabaseConnection,
    queue: QueueClient,
    settings: SchedulerSettings,
    shutdown: CancellationToken,
) {
    let mut listener = None;
    while !shutdown.is_cancelled() {
        match dispatch_waiting(&db, &queue).await {
            Ok(0) => {}
            Ok(started) => tracing::debug!(started, "started webhook lanes"),
            Err(err) => tracing::warn!(error = %err, "webhook dispatch round failed"),
        }
        if listener.is_none() {
            listener = listen(&db).await;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(settings.webhook_dispatch_interval) => {}
            woken = notified(&mut listener) => {
                if !woken {
                    // The listening connection broke: poll until it is back.
                    listener = None;
                }
            }
        }
    }
}

/// A connection listening on [`DUE_CHANNEL`], on PostgreSQL; `None` elsewhere or when it cannot
/// be opened, and the rounds are then only timed.
async fn listen(db: &DatabaseConnection) -> Option<PgListener> {
    if db.get_database_backend() != DbBackend::Postgres {
        return None;
    }
    let mut listener = match PgListener::connect_with(db.get_postgres_connection_pool()).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for due webhooks; dispatching on the timer only");
            return None;
        }
    };
    listener.listen(DUE_CHANNEL).await.ok()?;
    Some(listener)
}

/// Resolves when deliveries became due (`true`), or when the listener failed (`false`); never
/// without a listener. Notifications that arrived meanwhile are taken too: one round serves
/// them all.
async fn notified(listener: &mut Option<PgListener>) -> bool {
    let Some(listener) = listener else {
        return std::future::pending().await;
    };
    if listener.recv().await.is_err() {
        return false;
    }
    while let Ok(Ok(Some(_))) = tokio::time::timeout(Duration::ZERO, listener.try_recv()).await {}
    true
}
