//! The scheduler process: fires cron schedules, relays jobs the queue lost and starts webhook
//! lanes. Several can run; one holds the leadership lease and fires the schedules and runs the
//! relay, the others stand by; every one starts webhook lanes, which is safe concurrently.

mod cron_loop;
mod leader;
mod relay;
mod webhook_dispatch;

use std::time::Duration;

use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use ultra_jobs::QueueClient;

#[derive(Clone, Debug)]
pub struct SchedulerSettings {
    /// How often the relay looks for jobs Redis does not carry.
    pub relay_interval: Duration,
    /// A job must be this far past due before the relay considers it lost: long enough for the
    /// push that follows a commit.
    pub relay_grace: Duration,
    /// Leadership lease; a crashed leader is replaced within this time.
    pub lease: Duration,
    /// How often endpoints with webhook deliveries due are looked for: the most a new event
    /// waits before its delivery starts.
    pub webhook_dispatch_interval: Duration,
}

pub async fn run(
    db: DatabaseConnection,
    redis: ConnectionManager,
    queue: QueueClient,
    settings: SchedulerSettings,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ultra_domain::health::Dependencies::check(&db, &redis).await.require()?;
    let leadership =
        leader::Leadership::new(redis.clone(), queue.apalis_queue("scheduler-leader"), settings.lease);
    tracing::info!(id = %leadership.id(), "scheduler ready");
    tokio::join!(
        leadership.hold(shutdown.clone()),
        relay::run(db.clone(), queue.clone(), leadership.clone(), settings.clone(), shutdown.clone()),
        webhook_dispatch::run(db.clone(), queue.clone(), settings.clone(), shutdown.clone()),
        cron_loop::run(db, queue, leadership.clone(), shutdown.clone()),
    );
    tracing::info!("scheduler stopped");
    Ok(())
}
