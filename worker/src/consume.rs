//! One apalis worker per queue, kept running.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
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

/// What a consumer's deliveries share: the runner, and how many of them are running now.
struct Consumer {
    runner: Arc<Runner>,
    running: Arc<AtomicUsize>,
}

/// Counts a delivery as running until it is dropped, however it ends.
struct Running(Arc<AtomicUsize>);

impl Running {
    fn start(running: &Arc<AtomicUsize>) -> Self {
        running.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(running))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The apalis handler. Panics are caught here, around everything the delivery does, so that
/// none unwinds into apalis's worker loop, which would end the consumer (and without a
/// supervisor, the process). The runner also catches a handler's panic itself, to record it as
/// a failed attempt.
async fn run_delivery(
    delivery: Delivery,
    task_id: TaskId,
    consumer: Data<Arc<Consumer>>,
) -> Result<(), BoxDynError> {
    let _running = Running::start(&consumer.running);
    let push_id = task_id.to_string();
    match AssertUnwindSafe(consumer.runner.execute(&delivery.job, &push_id)).catch_unwind().await {
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
        let running = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Consumer { runner: Arc::clone(&runner), running: Arc::clone(&running) });
        let consumer = WorkerBuilder::new(worker_name.as_str())
            .backend(storage.poll_with_strategy(strategy))
            .concurrency(concurrency.max(1))
            .data(shared)
            .build(run_delivery)
            .run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            });
        let outcome = tokio::select! {
            outcome = consumer => outcome.map_err(|err| err.to_string()),
            stall = watchdog(redis.clone(), workers_set, worker_name.clone(), &running, &settings) => Err(stall),
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

/// Resolves when the consumer is dead: nothing of it is running and its heartbeat, as apalis
/// records it in the workers set, is older than the orphan window (by then other workers treat
/// it as dead and re-enqueue its jobs, so it must be replaced; its in-flight jobs are dropped
/// with it and re-run elsewhere).
///
/// A consumer whose every slot is busy is alive even though apalis stops heartbeating for it
/// then (its heartbeat waits on the same poll as its next task). Deliveries waiting on the
/// database under load would otherwise get it restarted and its jobs re-enqueued by other
/// workers, and those redeliveries add to the very load that slowed it. So while any of its
/// deliveries runs, the watchdog counts it alive and renews its heartbeat itself.
async fn watchdog(
    mut redis: ConnectionManager,
    workers_set: String,
    worker_name: String,
    running: &AtomicUsize,
    settings: &WorkerSettings,
) -> String {
    let window = settings.heartbeat * u32::try_from(settings.missed_heartbeats).unwrap_or(u32::MAX);
    let mut last_alive = Instant::now();
    loop {
        tokio::time::sleep(settings.heartbeat).await;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        if running.load(Ordering::Relaxed) > 0 {
            last_alive = Instant::now();
            // XX: a consumer another worker has already declared dead stays so.
            let _: redis::RedisResult<()> = redis::cmd("ZADD")
                .arg(&workers_set)
                .arg("XX")
                .arg(now)
                .arg(&worker_name)
                .query_async(&mut redis)
                .await;
            continue;
        }
        let seen: redis::RedisResult<Option<f64>> =
            redis::cmd("ZSCORE").arg(&workers_set).arg(&worker_name).query_async(&mut redis).await;
        if let Ok(Some(heartbeat)) = seen
            && (now as f64) - heartbeat < settings.heartbeat.as_secs_f64() * 2.0
        {
            last_alive = Instant::now();
        }
        if last_alive.elapsed() > window {
            return format!("no heartbeat for {:?}", last_alive.elapsed());
        }
    }
}
