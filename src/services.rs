//! Connecting to the database and Redis, with errors that tell an operator what to do.

use std::time::Duration;

use anyhow::Context;
use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use ultra_api::{ApiConfig, AppState};
use ultra_domain::auth_tokens::TokenSigner;
use ultra_migration::{Migrator, MigratorTrait};

use crate::{
    settings::{ApiArgs, DatabaseArgs, RedisArgs},
    telemetry,
};

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

pub fn api_state(
    db: DatabaseConnection,
    redis: ConnectionManager,
    jwt_secret: &str,
    api: &ApiArgs,
    redis_args: &RedisArgs,
) -> anyhow::Result<AppState> {
    let signer = TokenSigner::new(jwt_secret)?;
    let config = ApiConfig {
        auth_token_ttl: Duration::from_secs(api.auth_cookie_ttl_seconds),
        cookie_secure: api.auth_cookie_secure,
        max_body_bytes: api.max_body_bytes,
        redis_prefix: redis_args.redis_prefix.clone(),
        trust_forwarded_for: api.trust_forwarded_for,
        public_url: api.public_url.clone(),
    };
    Ok(AppState::new(db, redis, signer, config, telemetry::init_metrics()?))
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
