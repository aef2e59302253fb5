//! The scheduler process: fires cron schedules and relays jobs the queue lost.
//!
//! Schedules are registered by the features that need them; until then the scheduler checks
//! that it can reach the database and Redis, and waits for its shutdown signal.

use std::future::Future;

use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;

pub async fn run(
    db: DatabaseConnection,
    redis: ConnectionManager,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    ultra_domain::health::Dependencies::check(&db, &redis).await.require()?;
    tracing::info!("scheduler ready");
    shutdown.await;
    tracing::info!("scheduler stopped");
    Ok(())
}
