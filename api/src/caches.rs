//! What nearly every request reads and seldom changes: the session behind a token (its row and
//! its user) and the provider configuration that applies to a merchant. Reading them from the
//! database was a round trip per request, a fifth of a payment's statements.
//!
//! Each API replica keeps its own copy. Whoever changes one of them announces it on a Redis
//! channel every replica listens to, after the change has committed, and waits until every
//! replica that heard it has confirmed (a counter in Redis), so a revoked token stops working
//! on every replica before the revocation is answered. A replica that is not listening (while it starts, or after
//! its subscription dropped or stopped answering pings) cannot hear announcements, so it reads
//! the database instead until it listens again, and empties its copies when it does.
//!
//! A read that started before an announcement could finish after it, and would store what the
//! announcement just removed; every announcement therefore advances a generation, and a read
//! stores its result only if the generation has not moved while it ran.

use std::{
    future::Future,
    hash::Hash,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::Utc;
use futures::StreamExt;
use moka::sync::Cache;
use redis::{AsyncCommands, aio::ConnectionManager};
use sea_orm::DatabaseConnection;
use ultra_domain::{
    DomainResult,
    auth_tokens::{self, Claims},
    provider_configs::{self, Provider},
};
use ultra_entity::{
    provider_configs as provider_config_rows,
    tokens::{self, TokenStatus},
    users,
};

/// How long an entry lives at most, as a bound on what a lost announcement could leave behind.
const MAX_AGE: Duration = Duration::from_secs(60);
const MAX_SESSIONS: u64 = 100_000;
const MAX_PROVIDER_CONFIGS: u64 = 10_000;
/// How often the subscription is pinged; a connection that does not answer is given up, since
/// a silently dead one would deliver no announcements.
const PING_EVERY: Duration = Duration::from_secs(5);
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// How long an announcement waits for every replica to confirm it, and how often it looks.
const ACK_WAIT: Duration = Duration::from_secs(2);
const ACK_POLL: Duration = Duration::from_millis(2);
/// Seconds an announcement's confirmations are kept.
const ACK_KEEP: i64 = 60;

pub type Session = Arc<(tokens::Model, users::Model)>;

/// What changed, as announced to every replica.
pub enum Change<'a> {
    /// One token was revoked or spent.
    Token(&'a str),
    /// An account changed or was deleted, and with it its sessions and the provider
    /// configurations it owns.
    Account,
    /// A provider configuration, global or a merchant's, was written or removed.
    ProviderConfigs,
}

impl Change<'_> {
    fn message(&self) -> String {
        match self {
            Change::Token(jti) => format!("token:{jti}"),
            Change::Account => "accounts".to_owned(),
            Change::ProviderConfigs => "provider-configs".to_owned(),
        }
    }
}

pub struct Caches {
    sessions: Cache<String, Session>,
    provider_configs: Cache<(Provider, String), Option<provider_config_rows::Model>>,
    generation: AtomicU64,
    listening: AtomicBool,
    channel: String,
    /// Where replicas count that they have applied an announcement, by its id.
    acks: String,
}

impl Caches {
    pub fn new(redis_prefix: &str) -> Self {
        Self {
            sessions: Cache::builder().max_capacity(MAX_SESSIONS).time_to_live(MAX_AGE).build(),
            provider_configs: Cache::builder()
                .max_capacity(MAX_PROVIDER_CONFIGS)
                .time_to_live(MAX_AGE)
                .build(),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            channel: format!("{redis_prefix}caches:changed"),
            acks: format!("{redis_prefix}caches:acks:"),
        }
    }

    /// The token's session if the token is still active and unexpired.
    pub async fn session(&self, db: &DatabaseConnection, claims: &Claims) -> DomainResult<Option<Session>> {
        let session = self
            .read_through("sessions", &self.sessions, claims.jti.clone(), || async {
                Ok(auth_tokens::authenticate(db, claims).await?.map(Arc::new))
            })
            .await?;
        // An entry outlives neither its token nor its expiry.
        Ok(session.filter(|session| session.0.effective_status(Utc::now()) == TokenStatus::Active))
    }

    /// The configuration that applies to `merchant_id` for `provider`: its own, else the global one.
    pub async fn provider_config(
        &self,
        db: &DatabaseConnection,
        provider: Provider,
        merchant_id: &str,
    ) -> DomainResult<Option<provider_config_rows::Model>> {
        let key = (provider, merchant_id.to_owned());
        let config = self
            .read_through("provider_configs", &self.provider_configs, key, || async {
                Ok(Some(provider_configs::effective(db, provider, merchant_id).await?))
            })
            .await?;
        Ok(config.flatten())
    }

    /// Forgets `change` here and on every listening replica, and returns once they all have
    /// (or after [`ACK_WAIT`]), so that a revocation holds on every replica by the time its
    /// request is answered. Call it after the change committed.
    pub async fn announce(&self, redis: &ConnectionManager, change: Change<'_>) {
        let change = change.message();
        self.forget(&change);
        let id = ulid::Ulid::new().to_string();
        let mut redis = redis.clone();
        let receivers = match redis.publish::<_, _, i64>(&self.channel, format!("{id} {change}")).await {
            Ok(receivers) => receivers,
            Err(err) => {
                tracing::warn!(error = %err, %change, "could not announce a change; other replicas keep it for up to a minute");
                return;
            }
        };
        let acks = format!("{}{id}", self.acks);
        let deadline = tokio::time::Instant::now() + ACK_WAIT;
        while tokio::time::Instant::now() < deadline {
            match redis.get::<_, Option<i64>>(&acks).await {
                Ok(Some(acked)) if acked >= receivers => return,
                Ok(_) => tokio::time::sleep(ACK_POLL).await,
                Err(err) => {
                    tracing::warn!(error = %err, %change, "could not count the replicas that heard a change");
                    return;
                }
            }
        }
        tracing::warn!(%change, receivers, "not every replica confirmed a change in time; a silent one keeps it until its ping fails");
    }

    /// Listens for announcements until the process ends, resubscribing whenever the
    /// subscription fails.
    pub async fn listen(self: Arc<Self>, client: redis::Client, redis: ConnectionManager) {
        loop {
            if let Err(err) = self.listen_once(&client, &redis).await {
                tracing::warn!(error = %err, "cache announcements lost; reading the database until resubscribed");
            }
            self.listening.store(false, Ordering::SeqCst);
            self.forget_all();
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    }

    async fn listen_once(&self, client: &redis::Client, redis: &ConnectionManager) -> redis::RedisResult<()> {
        let (mut sink, mut stream) = client.get_async_pubsub().await?.split();
        sink.subscribe(&self.channel).await?;
        // Whatever was announced before the subscription took effect went unheard.
        self.forget_all();
        self.listening.store(true, Ordering::SeqCst);
        tracing::debug!(channel = %self.channel, "listening for cache announcements");
        let mut ping = tokio::time::interval(PING_EVERY);
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else { return Ok(()) };
                    let payload = message.get_payload::<String>().unwrap_or_default();
                    let Some((id, change)) = payload.split_once(' ') else {
                        self.forget_all();
                        continue;
                    };
                    self.forget(change);
                    let acks = format!("{}{id}", self.acks);
                    redis::pipe()
                        .incr(&acks, 1)
                        .ignore()
                        .expire(&acks, ACK_KEEP)
                        .ignore()
                        .query_async::<()>(&mut redis.clone())
                        .await?;
                }
                _ = ping.tick() => {
                    tokio::time::timeout(PING_EVERY, sink.ping::<redis::Value>())
                        .await
                        .map_err(|_| redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
                }
            }
        }
    }

    fn forget(&self, change: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        match change.strip_prefix("token:") {
            Some(jti) => self.sessions.invalidate(jti),
            None if change == "provider-configs" => self.provider_configs.invalidate_all(),
            // An account's sessions and the provider configurations it owns go with it.
            None if change == "accounts" => {
                self.sessions.invalidate_all();
                self.provider_configs.invalidate_all();
            }
            None => self.forget_all(),
        }
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.sessions.invalidate_all();
        self.provider_configs.invalidate_all();
    }

    /// `cache`'s entry for `key`, else what `load` reads, kept for next time when `load` found
    /// something and no announcement arrived while it read. `None` from `load` is not kept.
    async fn read_through<K, V, F, Fut>(
        &self,
        name: &'static str,
        cache: &Cache<K, V>,
        key: K,
        load: F,
    ) -> DomainResult<Option<V>>
    where
        K: Hash + Eq + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = DomainResult<Option<V>>>,
    {
        let listening = self.listening.load(Ordering::SeqCst);
        if listening && let Some(value) = cache.get(&key) {
            metrics::counter!("cache_reads_total", "cache" => name, "outcome" => "hit").increment(1);
            return Ok(Some(value));
        }
        metrics::counter!("cache_reads_total", "cache" => name, "outcome" => "miss").increment(1);
        let generation = self.generation.load(Ordering::SeqCst);
        let value = load().await?;
        if let Some(value) = &value
            && listening
            && self.listening.load(Ordering::SeqCst)
            && self.generation.load(Ordering::SeqCst) == generation
        {
            cache.insert(key, value.clone());
        }
        Ok(value)
    }
}
