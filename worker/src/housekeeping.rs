//! Keeping the queues within apalis-redis's limits, and reporting their depth.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use ultra_jobs::QueueClient;

const PROMOTE_EVERY: Duration = Duration::from_millis(200);
const DEPTH_EVERY: u32 = 25;

/// Moves due delayed deliveries to the active list in bounded chunks, at start and then
/// continually, so that apalis's own promotion never meets more than it can unpack.
pub async fn run(queue: QueueClient, queues: Vec<String>, shutdown: CancellationToken) {
    let mut round = 0u32;
    while !shutdown.is_cancelled() {
        for name in &queues {
            if let Err(err) = queue.promote_due(name).await {
                tracing::warn!(queue = %name, error = %err, "could not promote due jobs");
            }
            if round.is_multiple_of(DEPTH_EVERY)
                && let Ok((active, scheduled)) = queue.depth(name).await
            {
                metrics::gauge!("job_queue_depth", "queue" => name.clone(), "state" => "due")
                    .set(active as f64);
                metrics::gauge!("job_queue_depth", "queue" => name.clone(), "state" => "delayed")
                    .set(scheduled as f64);
            }
        }
        round = round.wrapping_add(1);
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(PROMOTE_EVERY) => {}
        }
    }
}
