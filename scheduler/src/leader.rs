//! Single-leader lease: `SET key id NX PX ttl`, renewed by its holder at a third of the ttl, so
//! that two schedulers never both fire and a dead leader is replaced within one ttl.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use redis::{Script, aio::ConnectionManager};
use tokio_util::sync::CancellationToken;

const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
";

const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

#[derive(Clone)]
pub struct Leadership {
    redis: ConnectionManager,
    key: String,
    id: String,
    lease: Duration,
    leading: Arc<AtomicBool>,
}

impl Leadership {
    pub fn new(redis: ConnectionManager, key: String, lease: Duration) -> Self {
        let id = format!("{}-{}", std::process::id(), ulid::Ulid::new());
        Self { redis, key, id, lease, leading: Arc::new(AtomicBool::new(false)) }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// Acquires or renews the lease until shutdown, then releases it for a quick hand-over.
    pub async fn hold(&self, shutdown: CancellationToken) {
        let ttl_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        while !shutdown.is_cancelled() {
            let mut redis = self.redis.clone();
            let held = if self.is_leader() {
                Script::new(RENEW)
                    .key(&self.key)
                    .arg(&self.id)
                    .arg(ttl_ms)
                    .invoke_async::<i64>(&mut redis)
                    .await
                    .map(|r| r == 1)
            } else {
                redis::cmd("SET")
                    .arg(&self.key)
                    .arg(&self.id)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async::<Option<String>>(&mut redis)
                    .await
                    .map(|r| r.is_some())
            };
            let leading = held.unwrap_or_else(|err| {
                tracing::warn!(error = %err, "leadership check failed; standing by");
                false
            });
            if leading != self.leading.swap(leading, Ordering::SeqCst) {
                tracing::info!(id = %self.id, leading, "scheduler leadership changed");
            }
            metrics::gauge!("scheduler_is_leader").set(if leading { 1.0 } else { 0.0 });
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.lease / 3) => {}
            }
        }
        if self.leading.swap(false, Ordering::SeqCst) {
            let mut redis = self.redis.clone();
            let _ = Script::new(RELEASE).key(&self.key).arg(&self.id).invoke_async::<i64>(&mut redis).await;
        }
    }
}
