//! Connecting to the database and Redis, with errors that tell an operator what to do.

use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use ultra_api::{ApiConfig, AppState};
use ultra_domain::{auth_tokens::TokenSigner, secrets::SecretBox};
use ultra_migration::{Migrator, MigratorTrait};
use ultra_outbound::Reach;

use crate::settings::{ApiArgs, DatabaseArgs, RedisArgs, SchedulerArgs, SharedArgs, WorkerArgs};

pub async fn database(args: &DatabaseArgs) -> anyhow::Result<DatabaseConnection> {
    ultra_domain::db::connect(&args.database_url, args.db_max_connections)
        .await
        .with_context(|| format!("cannot connect to the database at {}", redact(&args.database_url)))
}

pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("migrations failed")?;
    tracing::info!("database schema is up to date");
    Ok(())
}

/// Refuses to start on a schema older than the binary: run `ultra migrate` first.
pub async fn require_migrated(db: &DatabaseConnection) -> anyhow::Result<()> {
    let pending = Migrator::get_pending_migrations(db).await?;
    if !pending.is_empty() {
        anyhow::bail!("the database has {} pending migration(s): run `ultra migrate` first", pending.len());
    }
    Ok(())
}

pub async fn redis(url: &str) -> anyhow::Result<ConnectionManager> {
    let connect = ultra_domain::redis_conn::connect(url);
    match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(redis_missing(url, &err.to_string())),
        Err(_) => Err(redis_missing(url, "timed out")),
    }
}

fn redis_missing(url: &str, cause: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "Redis is not answering at {url} ({cause}).\n\
         Ultra needs Redis for its job queues and rate limits. Start one with\n    \
         redis-server --daemonize yes\n\
         or `docker compose up -d redis`, or point REDIS_URL at a running Redis."
    )
}

/// The keys the API signs tokens and seals secrets with.
pub struct Keys {
    pub jwt_secret: String,
    pub encryption_key: String,
}

impl Keys {
    /// Both keys from the environment, as production requires.
    pub fn required(api: &ApiArgs, shared: &SharedArgs) -> anyhow::Result<Self> {
        Ok(Self {
            jwt_secret: api.jwt_secret.clone().ok_or_else(|| {
                anyhow::anyhow!("ULTRA_JWT_SECRET is required: set it to a random string of 32+ bytes")
            })?,
            encryption_key: encryption_key(shared)?,
        })
    }
}

pub fn encryption_key(shared: &SharedArgs) -> anyhow::Result<String> {
    shared.encryption_key.clone().ok_or_else(|| {
        anyhow::anyhow!(
            "ULTRA_ENCRYPTION_KEY is required: set it to 32 random bytes, base64 (openssl rand -base64 32)"
        )
    })
}

/// What job handlers need besides the database.
pub fn job_env(
    shared: &SharedArgs,
    encryption_key: &str,
    worker: &WorkerArgs,
) -> anyhow::Result<std::sync::Arc<ultra_jobs::JobEnv>> {
    Ok(std::sync::Arc::new(ultra_jobs::JobEnv {
        providers: ultra_providers::Providers::new(
            Duration::from_millis(worker.provider_timeout_ms.max(100)),
            Reach::allowing_private(shared.allow_private_provider_urls),
        ),
        sealer: SecretBox::from_base64(encryption_key)?,
        public_url: shared.public_url.clone(),
        webhooks: ultra_jobs::kinds::webhooks::WebhookSender::new()?,
    }))
}

pub fn api_state(
    db: DatabaseConnection,
    redis: ConnectionManager,
    keys: &Keys,
    api: &ApiArgs,
    shared: &SharedArgs,
    redis_args: &RedisArgs,
) -> anyhow::Result<AppState> {
    let signer = TokenSigner::new(&keys.jwt_secret)?;
    let sealer = SecretBox::from_base64(&keys.encryption_key)?;
    let config = ApiConfig {
        auth_token_ttl: Duration::from_secs(api.auth_cookie_ttl_seconds),
        cookie_secure: api.auth_cookie_secure,
        max_body_bytes: api.max_body_bytes,
        redis_prefix: redis_args.redis_prefix.clone(),
        trusted_proxies: api.trusted_proxies.clone(),
        provider_reach: Reach::allowing_private(shared.allow_private_provider_urls),
        public_url: shared.public_url.clone(),
    };
    let pubsub = redis::Client::open(redis_args.redis_url.as_str())?;
    Ok(AppState::new(db, redis, pubsub, signer, sealer, config))
}

pub fn worker_settings(args: &WorkerArgs) -> ultra_worker::WorkerSettings {
    ultra_worker::WorkerSettings {
        queues: args.worker_queues.0.clone(),
        heartbeat: Duration::from_secs(args.worker_heartbeat_seconds.max(1)),
        missed_heartbeats: args.worker_missed_heartbeats.max(2),
        poll_interval: Duration::from_millis(args.worker_poll_ms.max(10)),
        http_addr: Some(args.worker_addr.clone()).filter(|addr| !addr.is_empty()),
    }
}

pub fn scheduler_settings(args: &SchedulerArgs) -> ultra_scheduler::SchedulerSettings {
    ultra_scheduler::SchedulerSettings {
        relay_interval: Duration::from_millis(args.relay_interval_ms.max(50)),
        relay_grace: Duration::from_secs(args.relay_grace_seconds),
        lease: Duration::from_secs(args.scheduler_lease_seconds.max(1)),
        webhook_dispatch_interval: Duration::from_millis(args.webhook_dispatch_interval_ms.max(50)),
    }
}

/// Hides the password in a connection URL before it is printed.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:****{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}
