//! The worker process: consumes the job queues through apalis-redis and runs each delivery
//! with [`ultra_jobs::runner::Runner`]. Any number of worker processes can share the queues.

mod consume;
mod housekeeping;
pub mod operator;

use std::{sync::Arc, time::Duration};

use metrics_exporter_prometheus::PrometheusHandle;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use ultra_jobs::{JobEnv, QueueClient, Registry, runner::Runner};

#[derive(Clone, Debug)]
pub struct WorkerSettings {
    /// Queues to consume, each with how many jobs may run at once.
    pub queues: Vec<(String, usize)>,
    /// apalis heartbeat; a worker silent for `heartbeat × missed_heartbeats` is presumed dead
    /// and its jobs are re-enqueued by the others.
    pub heartbeat: Duration,
    pub missed_heartbeats: usize,
    /// How often an idle worker asks Redis for work.
    pub poll_interval: Duration,
    /// Where `/healthz`, `/readyz` and `/metrics` are served; `None` serves nothing.
    pub http_addr: Option<String>,
}

/// A name no other worker process has, now or before: apalis-redis refuses to register a
/// name that was seen within the last heartbeat, which would block a quick restart.
pub fn process_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

#[allow(clippy::too_many_arguments)]
pub async fn run(
    db: DatabaseConnection,
    redis: ConnectionManager,
    pubsub: redis::Client,
    queue: QueueClient,
    settings: WorkerSettings,
    env: Arc<JobEnv>,
    metrics: PrometheusHandle,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    ultra_domain::health::Dependencies::check(&db, &redis).await.require()?;
    let worker_id = process_id();
    let runner = Runner::new(db.clone(), queue.clone(), Registry::standard(), worker_id.clone(), env);
    let queue_names: Vec<String> = settings.queues.iter().map(|(name, _)| name.clone()).collect();

    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(housekeeping::run(queue.clone(), queue_names, shutdown.clone()));
    if let Some(addr) = settings.http_addr.clone() {
        let (db, redis, shutdown) = (db.clone(), redis.clone(), shutdown.clone());
        tasks.spawn(async move {
            if let Err(err) = operator::serve(&addr, db, redis, metrics, shutdown).await {
                tracing::error!(error = %err, %addr, "worker HTTP server stopped");
            }
        });
    }
    for (name, concurrency) in &settings.queues {
        tasks.spawn(consume::supervise(
            redis.clone(),
            pubsub.clone(),
            queue.clone(),
            Arc::clone(&runner),
            (name.clone(), *concurrency),
            settings.clone(),
            shutdown.clone(),
        ));
    }
    tracing::info!(worker = %worker_id, queues = ?settings.queues, "worker ready");
    while tasks.join_next().await.is_some() {}
    tracing::info!("worker stopped");
    Ok(())
}
