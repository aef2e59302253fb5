//! The Redis side of the pipeline: pushing deliveries onto apalis-redis queues and keeping
//! those queues within what apalis-redis 1.0 handles.
//!
//! Pushes are written with our own script rather than apalis's `push`, which sends every task,
//! due or not, through the `scheduled` sorted set: apalis's fetch script promotes *all* due
//! members of that set with one `unpack()`, and past about 8,000 it fails on every call and
//! every worker of the queue exits. Our script puts due deliveries straight on the active list,
//! in the layout apalis reads (`Config`'s key names), and only future ones in `scheduled`,
//! which [`QueueClient::promote_due`] drains in bounded chunks before apalis sees them.

use std::sync::LazyLock;

use apalis_redis::Config;
use chrono::{DateTime, Utc};
use redis::{Script, aio::ConnectionManager};
use serde::{Deserialize, Serialize};

/// The message apalis carries: just the job row's id. Everything else is read from the row.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Delivery {
    pub job: String,
}

/// One push of a job onto its queue.
#[derive(Clone, Debug)]
pub struct Push {
    pub queue: String,
    pub push_id: String,
    pub job_id: String,
    pub run_at: DateTime<Utc>,
}

const PUSH: &str = r"
-- KEYS: data hash, active list, signal list, meta prefix, scheduled set, wake channel
-- ARGV[1]: now (unix seconds); then triples of task id, data, run_at
local now = tonumber(ARGV[1])
local active = 0
for i = 2, #ARGV, 3 do
  local id, data, run_at = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  redis.call('HSET', KEYS[1], id, data)
  redis.call('HSET', KEYS[4] .. ':' .. id, 'attempts', 0, 'max_attempts', 1, 'status', 'Pending', 'idempotency_key', '')
  if run_at > now then
    redis.call('ZADD', KEYS[5], run_at, id)
  else
    redis.call('RPUSH', KEYS[2], id)
    active = active + 1
  end
end
if active > 0 then
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], 1)
  redis.call('PUBLISH', KEYS[6], active)
end
return active
";

const PROMOTE: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], 0, ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return #ids
";

/// Queue scores are whole seconds; rounding up keeps a delayed job from running early.
fn ceil_seconds(at: DateTime<Utc>) -> i64 {
    at.timestamp() + i64::from(at.timestamp_subsec_nanos() > 0)
}

/// Members moved per promotion call: far below the ~8,000 that breaks `unpack()`.
/// Built once: a `Script` hashes its source when made, and every payment pushes a job.
static PUSH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PUSH));

const PROMOTE_CHUNK: usize = 1000;
/// Deliveries per push call, to keep each script short.
const PUSH_CHUNK: usize = 500;

#[derive(Clone)]
pub struct QueueClient {
    redis: ConnectionManager,
    prefix: String,
}

impl QueueClient {
    pub fn new(redis: ConnectionManager, prefix: impl Into<String>) -> Self {
        Self { redis, prefix: prefix.into() }
    }

    /// The apalis queue name for one of our queues, under this install's key prefix.
    pub fn apalis_queue(&self, queue: &str) -> String {
        format!("{}jobs-{queue}", self.prefix)
    }

    /// apalis's configuration for a queue; its key names are the layout pushes write to.
    pub fn apalis_config(&self, queue: &str) -> Config {
        Config::default().queue(self.apalis_queue(queue))
    }

    pub fn redis(&self) -> ConnectionManager {
        self.redis.clone()
    }

    /// The pub/sub channel on which a push of due deliveries to `queue` is announced, so idle
    /// workers fetch at once rather than at their next poll.
    pub fn wake_channel(&self, queue: &str) -> String {
        format!("{}jobs-wake:{queue}", self.prefix)
    }

    /// The pub/sub channel on which a job's reaching a terminal state is announced.
    pub fn done_channel(&self, job_id: &str) -> String {
        format!("{}jobs-done:{job_id}", self.prefix)
    }

    pub async fn push(&self, pushes: &[Push]) -> redis::RedisResult<()> {
        let mut by_queue: std::collections::BTreeMap<&str, Vec<&Push>> = Default::default();
        for push in pushes {
            by_queue.entry(push.queue.as_str()).or_default().push(push);
        }
        let now = Utc::now();
        for (queue, pushes) in by_queue {
            let config = self.apalis_config(queue);
            for chunk in pushes.chunks(PUSH_CHUNK) {
                let mut invocation = PUSH_SCRIPT.prepare_invoke();
                invocation
                    .key(config.job_data_hash())
                    .key(config.active_jobs_list())
                    .key(config.signal_list())
                    .key(config.job_meta_hash())
                    .key(config.scheduled_jobs_set())
                    .key(self.wake_channel(queue))
                    .arg(now.timestamp());
                for push in chunk {
                    let data = serde_json::to_string(&Delivery { job: push.job_id.clone() })
                        .expect("a delivery serializes");
                    let run_at = if push.run_at <= now { 0 } else { ceil_seconds(push.run_at) };
                    invocation.arg(&push.push_id).arg(data).arg(run_at);
                }
                let _: i64 = invocation.invoke_async(&mut self.redis.clone()).await?;
            }
        }
        Ok(())
    }

    /// Moves due deliveries from `scheduled` to the active list, a chunk at a time, and
    /// returns how many moved.
    pub async fn promote_due(&self, queue: &str) -> redis::RedisResult<usize> {
        let config = self.apalis_config(queue);
        let script = Script::new(PROMOTE);
        let mut moved = 0;
        loop {
            let count: usize = script
                .key(config.scheduled_jobs_set())
                .key(config.active_jobs_list())
                .arg(Utc::now().timestamp())
                .arg(PROMOTE_CHUNK)
                .invoke_async(&mut self.redis.clone())
                .await?;
            moved += count;
            if count < PROMOTE_CHUNK {
                return Ok(moved);
            }
        }
    }

    /// Deliveries waiting: due on the active list plus delayed in `scheduled`.
    pub async fn depth(&self, queue: &str) -> redis::RedisResult<(u64, u64)> {
        let config = self.apalis_config(queue);
        redis::pipe()
            .llen(config.active_jobs_list())
            .zcard(config.scheduled_jobs_set())
            .query_async(&mut self.redis.clone())
            .await
    }

    /// Which of these pushes Redis will still deliver: their metadata exists and apalis has not
    /// finished them (done or dead). A push Redis finished while the job row still names it was
    /// skipped or lost, and only a new push runs the job.
    pub async fn live_pushes(&self, queue: &str, push_ids: &[String]) -> redis::RedisResult<Vec<bool>> {
        let config = self.apalis_config(queue);
        let mut pipe = redis::pipe();
        for id in push_ids {
            pipe.exists(format!("{}:{id}", config.job_meta_hash()))
                .sismember(config.done_jobs_set(), id)
                .sismember(config.dead_jobs_set(), id);
        }
        let answers: Vec<bool> = pipe.query_async(&mut self.redis.clone()).await?;
        Ok(answers.chunks(3).map(|push| push[0] && !push[1] && !push[2]).collect())
    }

    /// Tells whoever waits on these jobs ([`crate::wait`]) that they finished, in one round trip.
    pub async fn announce_done(&self, job_ids: &[String]) {
        let mut pipe = redis::pipe();
        for job_id in job_ids {
            pipe.publish(self.done_channel(job_id), "done").ignore();
        }
        if let Err(err) = pipe.query_async::<()>(&mut self.redis.clone()).await {
            tracing::warn!(error = %err, count = job_ids.len(), "could not announce finished jobs; waiters fall back to their timeout");
        }
    }
}
