//! One apalis worker per queue, kept running.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Duration};

use apalis::prelude::*;
use futures::FutureExt;
use apalis_redis::RedisStorage;
use redis::aio::ConnectionManager;
use tokio_util::sync::CancellationToken;
use ultra_jobs::{Delivery, QueueClient, runner::Runner};

use crate::{WorkerSettings, process_id};

/// apalis buffers up to a batch of fetched tasks; a task waiting in the buffer while every slot
/// is busy stalls the heartbeat, so the batch never exceeds the concurrency, and stays small.
const MAX_BATCH: usize = 16;

/// The apalis handler. Panics are caught here, around everything the delivery does, so that
/// none unwinds into apalis's worker loop, which would end the consumer (and without a
/// supervisor, the process). The runner also catches a handler's panic itself, to record it as
/// a failed attempt.
async fn run_delivery(delivery: Delivery, task_id: TaskId, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    let push_id = task_id.to_string();
    match AssertUnwindSafe(runner.0.execute(&delivery.job, &push_id)).catch_unwind().await {
        Ok(outcome) => outcome.map(|_| ()).map_err(Into::into),
        Err(_) => Err(format!("delivery {push_id} of job {} panicked", delivery.job).into()),
    }
}

/// Runs the queue's apalis worker until shutdown, starting a fresh one (under a new name) if it
/// ever stops on its own: a Redis outage or a `FLUSHALL` that unregistered it would otherwise
/// leave the queue without a consumer.
pub async fn supervise(
    redis: ConnectionManager,
    queue: QueueClient,
    runner: Arc<Runner>,
    name: String,
    concurrency: usize,
    settings: WorkerSettings,
    shutdown: CancellationToken,
) {
    while !shutdown.is_cancelled() {
        let worker_name = format!("{}-{name}-{}", process_id(), ulid::Ulid::new());
        let config = queue
            .apalis_config(&name)
            .heartbeat_interval(settings.heartbeat)
            .missed_heartbeats(settings.missed_heartbeats)
            .batch_size(concurrency.clamp(1, MAX_BATCH))
            // Locking rewrites the task's metadata and scans the active list per task, which
            // collapses throughput as the backlog grows; the job row records who runs what.
            .lock_tasks(false);
        let storage = RedisStorage::<Delivery>::new(redis.clone()).with_config(config);
        let stop = shutdown.clone();
        let outcome = WorkerBuilder::new(worker_name.as_str())
            .backend(storage.poll_with_interval(settings.poll_interval))
            .concurrency(concurrency.max(1))
            .data(Arc::clone(&runner))
            .build(run_delivery)
            .run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            })
            .await;
        if shutdown.is_cancelled() {
            break;
        }
        match outcome {
            Ok(()) => tracing::warn!(queue = %name, worker = %worker_name, "queue consumer stopped; restarting it"),
            Err(err) => tracing::error!(queue = %name, worker = %worker_name, error = %err, "queue consumer failed; restarting it"),
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}
