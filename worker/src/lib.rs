//! The worker process: consumes job queues and runs their handlers.
//!
//! Job kinds and their queues are registered by the job pipeline; until then a worker checks
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
    tracing::info!("worker ready");
    shutdown.await;
    tracing::info!("worker stopped");
    Ok(())
}
