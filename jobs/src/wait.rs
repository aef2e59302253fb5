//! Waiting for a job to finish, for `Prefer: wait=N`. The worker announces every terminal
//! transition on a pub/sub channel, so a waiting request is woken at once instead of polling
//! the database.

use std::time::Duration;

use futures::StreamExt;
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::time::Instant;
use ultra_entity::jobs;

use crate::queue::QueueClient;

/// The job as it stands when it reaches a terminal state or `timeout` passes, whichever first.
/// `None` if there is no such job.
pub async fn until_finished(
    db: &DatabaseConnection,
    redis: &redis::Client,
    queue: &QueueClient,
    job_id: &str,
    timeout: Duration,
) -> Result<Option<jobs::Model>, ultra_domain::DomainError> {
    let deadline = Instant::now() + timeout;
    // Subscribed before the row is read, so a completion between the two is not missed.
    let subscribed = tokio::time::timeout(SUBSCRIBE_BUDGET, async {
        let mut pubsub = redis.get_async_pubsub().await?;
        pubsub.subscribe(queue.done_channel(job_id)).await?;
        Ok::<_, redis::RedisError>(pubsub)
    })
    .await;
    let mut pubsub = match subscribed {
        Ok(Ok(pubsub)) => pubsub,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, job_id, "cannot subscribe to the job's end; polling the database");
            return poll_until_finished(db, job_id, deadline).await;
        }
        Err(_) => {
            tracing::warn!(job_id, "subscribing to the job's end timed out; polling the database");
            return poll_until_finished(db, job_id, deadline).await;
        }
    };
    let mut job = jobs::Entity::find_by_id(job_id).one(db).await?;
    let mut messages = pubsub.on_message();
    while let Some(current) = &job
        && !current.status.is_terminal()
    {
        let Some(remaining) = deadline.checked_duration_since(Instant::now()) else { break };
        if tokio::time::timeout(remaining, messages.next()).await.is_err() {
            break;
        }
        job = jobs::Entity::find_by_id(job_id).one(db).await?;
    }
    Ok(job)
}

/// The longest a waiting request tries to subscribe before it polls the database instead.
const SUBSCRIBE_BUDGET: Duration = Duration::from_millis(500);

/// [`until_finished`] without Redis: the request has committed its work, so a Redis outage
/// costs it some database reads, not its answer.
async fn poll_until_finished(
    db: &DatabaseConnection,
    job_id: &str,
    deadline: Instant,
) -> Result<Option<jobs::Model>, ultra_domain::DomainError> {
    loop {
        let job = jobs::Entity::find_by_id(job_id).one(db).await?;
        let now = Instant::now();
        if job.as_ref().is_none_or(|job| job.status.is_terminal()) || now >= deadline {
            return Ok(job);
        }
        tokio::time::sleep(SETTLE_POLL.min(deadline - now)).await;
    }
}

/// How often a waiting request looks at the job's resource once the job is done.
const SETTLE_POLL: Duration = Duration::from_millis(100);

/// Waits up to `timeout` for job `job_id`, then for the resource it works on to settle: a job
/// that hands work to a provider ends before the provider answers. `load` reads the resource
/// and says whether it is final; the last value read is returned, settled or not.
pub async fn until_settled<T, F, Fut>(
    db: &DatabaseConnection,
    redis: &redis::Client,
    queue: &QueueClient,
    job_id: &str,
    timeout: Duration,
    load: F,
) -> Result<T, ultra_domain::DomainError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<(T, bool), ultra_domain::DomainError>>,
{
    let deadline = Instant::now() + timeout;
    until_finished(db, redis, queue, job_id, timeout).await?;
    loop {
        let (resource, settled) = load().await?;
        let now = Instant::now();
        if settled || now >= deadline {
            return Ok(resource);
        }
        tokio::time::sleep(SETTLE_POLL.min(deadline - now)).await;
    }
}
