//! One apalis worker per queue, kept running.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
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

/// What a consumer's deliveries share: the runner, and what is running.
struct Consumer {
    runner: Arc<Runner>,
    deliveries: Arc<Deliveries>,
}

/// A consumer's deliveries in flight, and when one last started or ended.
struct Deliveries {
    running: AtomicUsize,
    /// Milliseconds from `epoch` to the last start or end.
    changed_ms: AtomicU64,
    epoch: Instant,
}

impl Deliveries {
    fn new() -> Self {
        Self { running: AtomicUsize::new(0), changed_ms: AtomicU64::new(0), epoch: Instant::now() }
    }

    fn changed(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed_ms.store(ms, Ordering::Relaxed);
    }

    /// Whether deliveries are running and one started or ended within `within`: busy, which a
    /// hung delivery alone is not.
    fn busy(&self, within: Duration) -> bool {
        let changed = Duration::from_millis(self.changed_ms.load(Ordering::Relaxed));
        self.running.load(Ordering::Relaxed) > 0 && self.epoch.elapsed().saturating_sub(changed) < within
    }
}

/// Counts a delivery as running until it is dropped, however it ends.
struct Running(Arc<Deliveries>);

impl Running {
    fn start(deliveries: &Arc<Deliveries>) -> Self {
        deliveries.running.fetch_add(1, Ordering::Relaxed);
        deliveries.changed();
        Self(Arc::clone(deliveries))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.changed();
    }
}

/// How long a consumer's deliveries may run with none starting or ending before it is taken
/// for stuck rather than busy: far longer than any of Ultra's jobs runs (an export of a
/// million payments builds in about 11 s), far shorter than forever.
const SILENT_BUSY: Duration = Duration::from_secs(600);

/// The apalis handler. Panics are caught here, around everything the delivery does, so that
/// none unwinds into apalis's worker loop, which would end the consumer (and without a
/// supervisor, the process). The runner also catches a handler's panic itself, to record it as
/// a failed attempt.
async fn run_delivery(
    delivery: Delivery,
    task_id: TaskId,
    consumer: Data<Arc<Consumer>>,
) -> Result<(), BoxDynError> {
    let _running = Running::start(&consumer.deliveries);
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
        let deliveries = Arc::new(Deliveries::new());
        let shared = Arc::new(Consumer { runner: Arc::clone(&runner), deliveries: Arc::clone(&deliveries) });
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
            stall = watchdog(redis.clone(), workers_set, worker_name.clone(), &deliveries, &settings) => Err(stall),
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
/// workers, and those redeliveries add to the very load that slowed it. So while its
/// deliveries run and make progress ([`Deliveries::busy`]), the watchdog counts it alive and
/// renews its heartbeat itself.
async fn watchdog(
    mut redis: ConnectionManager,
    workers_set: String,
    worker_name: String,
    deliveries: &Deliveries,
    settings: &WorkerSettings,
) -> String {
    let window = settings.heartbeat * u32::try_from(settings.missed_heartbeats).unwrap_or(u32::MAX);
    let mut last_alive = Instant::now();
    loop {
        tokio::time::sleep(settings.heartbeat).await;
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        if deliveries.busy(SILENT_BUSY) {
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
