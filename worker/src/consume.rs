//! One apalis worker per queue, kept running.

use std::{
    panic::AssertUnwindSafe,
    sync::Arc,
    time::{Duration, Instant},
};

use apalis::prelude::*;
use apalis_redis::RedisStorage;
use futures::{FutureExt, StreamExt};
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
async fn run_delivery(
    delivery: Delivery,
    task_id: TaskId,
    runner: Data<Arc<Runner>>,
) -> Result<(), BoxDynError> {
    let push_id = task_id.to_string();
    match AssertUnwindSafe(runner.0.execute(&delivery.job, &push_id)).catch_unwind().await {
        Ok(outcome) => outcome.map(|_| ()).map_err(Into::into),
        Err(_) => Err(format!("delivery {push_id} of job {} panicked", delivery.job).into()),
    }
}

/// Runs the queue's apalis worker until shutdown, starting a fresh one (under a new name) if it
/// ever stops on its own or stalls: a Redis outage, a `FLUSHALL` that unregistered it, or a
/// Redis reply slower than the heartbeat (after which an apalis 1.0 worker stops polling and
/// heartbeating for good) would otherwise leave the queue without a consumer.
pub async fn supervise(
    redis: ConnectionManager,
    pubsub: redis::Client,
    queue: QueueClient,
    runner: Arc<Runner>,
    (name, concurrency): (String, usize),
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
        let workers_set = config.workers_set();
        let storage = RedisStorage::<Delivery>::new(redis.clone()).with_config(config);
        let (wake, woken) = futures::channel::mpsc::unbounded();
        let listener = tokio::spawn(forward_wakeups(pubsub.clone(), queue.wake_channel(&name), wake));
        let strategy = Strategy::new().stream(woken).interval(settings.poll_interval);
        let stop = shutdown.clone();
        let consumer = WorkerBuilder::new(worker_name.as_str())
            .backend(storage.poll_with_strategy(strategy))
            .concurrency(concurrency.max(1))
            .data(Arc::clone(&runner))
            .build(run_delivery)
            .run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            });
        let outcome = tokio::select! {
            outcome = consumer => outcome.map_err(|err| err.to_string()),
            stall = watchdog(redis.clone(), workers_set, worker_name.clone(), &settings) => Err(stall),
        };
        listener.abort();
        if shutdown.is_cancelled() {
            break;
        }
        match outcome {
            Ok(()) => {
                tracing::warn!(queue = %name, worker = %worker_name, "queue consumer stopped; restarting it")
            }
            Err(err) => {
                tracing::error!(queue = %name, worker = %worker_name, error = %err, "queue consumer failed; restarting it");
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Turns the queue's wake-up announcements into polls of its consumer, resubscribing after a
/// lost connection; the consumer's timed poll covers any gap.
async fn forward_wakeups(
    pubsub: redis::Client,
    channel: String,
    wake: futures::channel::mpsc::UnboundedSender<()>,
) {
    loop {
        if let Ok(mut subscription) = pubsub.get_async_pubsub().await
            && subscription.subscribe(&channel).await.is_ok()
        {
            let mut messages = subscription.on_message();
            while messages.next().await.is_some() {
                if wake.unbounded_send(()).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Resolves when the consumer's heartbeat, as apalis records it in the workers set, is older
/// than the orphan window: by then other workers treat it as dead and re-enqueue its jobs, so
/// it must be replaced. Its in-flight jobs are dropped with it and re-run elsewhere.
async fn watchdog(
    mut redis: ConnectionManager,
    workers_set: String,
    worker_name: String,
    settings: &WorkerSettings,
) -> String {
    let window = settings.heartbeat * u32::try_from(settings.missed_heartbeats).unwrap_or(u32::MAX);
    let mut last_alive = Instant::now();
    loop {
        tokio::time::sleep(settings.heartbeat).await;
        let seen: redis::RedisResult<Option<f64>> =
            redis::cmd("ZSCORE").arg(&workers_set).arg(&worker_name).query_async(&mut redis).await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        if let Ok(Some(heartbeat)) = seen
            && now - heartbeat < settings.heartbeat.as_secs_f64() * 2.0
        {
            last_alive = Instant::now();
        }
        if last_alive.elapsed() > window {
            return format!("no heartbeat for {:?}", last_alive.elapsed());
        }
    }
}
