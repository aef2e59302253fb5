//! The scheduler process: fires cron schedules and relays jobs the queue lost.
//!
//! Schedules are registered by the features that need them; until then the scheduler checks
//! that it can reach the database and Redis, and waits for its shutdown signal.

use std::future::Future;

use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;

pub async fn run(
    db: DatabaseConnection,
    mut redis: ConnectionManager,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    ultra_domain::db::ping(&db).await?;
    let _: String = redis::cmd("PING").query_async(&mut redis).await?;
    tracing::info!("scheduler ready");
    shutdown.await;
    tracing::info!("scheduler stopped");
    Ok(())
}
