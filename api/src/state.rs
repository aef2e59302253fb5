use std::{sync::Arc, time::Duration};

use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;
use ultra_domain::{auth_tokens::TokenSigner, runtime_config::RuntimeConfigStore, secrets::SecretBox};
use ultra_jobs::{QueueClient, kinds::payments::Opener};
use ultra_outbound::Reach;

use crate::{caches::Caches, http::client::TrustedProxies};

/// Settings the API reads from the environment at start; runtime settings live in
/// [`RuntimeConfigStore`] instead.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Lifetime of login tokens and of the `auth_token` cookie.
    pub auth_token_ttl: Duration,
    /// Whether the cookie carries `Secure`; off only for plain-HTTP development.
    pub cookie_secure: bool,
    pub max_body_bytes: usize,
    /// Prepended to every Redis key, so that several installs or test runs can share a Redis.
    pub redis_prefix: String,
    /// The proxies whose `X-Forwarded-For` entries say who the client is.
    pub trusted_proxies: TrustedProxies,
    /// Where merchants' provider configurations may point: see
    /// [`ultra_domain::provider_configs::check_hosts`].
    pub provider_reach: Reach,
    /// The address clients reach the API at, shown in the OpenAPI document.
    pub public_url: String,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

pub struct Inner {
    pub db: DatabaseConnection,
    pub redis: ConnectionManager,
    /// For pub/sub subscriptions, which need a connection of their own.
    pub pubsub: redis::Client,
    pub queue: QueueClient,
    /// Writes the payments that stand alone together, and pushes their jobs together.
    pub opener: Opener,
    pub runtime: RuntimeConfigStore,
    /// Sessions and provider configurations, kept coherent across replicas by announcements.
    pub caches: Arc<Caches>,
    pub signer: TokenSigner,
    /// Seals and opens secrets stored in the database.
    pub sealer: SecretBox,
    pub config: ApiConfig,
}

impl AppState {
    pub fn new(
        db: DatabaseConnection,
        redis: ConnectionManager,
        pubsub: redis::Client,
        signer: TokenSigner,
        sealer: SecretBox,
        config: ApiConfig,
    ) -> Self {
        let runtime = RuntimeConfigStore::new(db.clone(), Duration::from_secs(2));
        let queue = QueueClient::new(redis.clone(), config.redis_prefix.clone());
        let caches = Arc::new(Caches::new(&config.redis_prefix));
        let opener = Opener::new(db.clone(), queue.clone());
        Self(Arc::new(Inner { db, redis, pubsub, queue, opener, runtime, caches, signer, sealer, config }))
    }
}

impl std::ops::Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
