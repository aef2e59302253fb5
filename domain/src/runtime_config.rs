//! Settings an operator changes while Ultra runs, stored one key per row in `runtime_config`.
//!
//! Every process reads them through a [`RuntimeConfigStore`], which caches the whole set for a
//! short time: a change reaches every API replica and worker within that time, without a
//! database read on every request.

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, Set, sea_query::OnConflict};
use serde::{Deserialize, Serialize};
use tokio::{sync::RwLock, time::Instant};
use ultra_entity::{runtime_config, users::Tier};

use crate::{DomainError, DomainResult};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// Lets an account that has no password log in by email alone.
    pub passwordless_login: bool,
    /// How long a stored idempotent response is replayed.
    pub idempotency_ttl: IdempotencyTtl,
    /// The merchant an admin acts as when sending `X-App-Context: merchant`; when unset, the
    /// oldest merchant account.
    pub primary_merchant_id: Option<String>,
    /// Login attempts allowed per client IP and window.
    pub login_rate_limit: RateLimitRule,
    /// A payment still pending this long after creation expires.
    pub payment_expiry_seconds: u64,
    /// Requests allowed per window to each SLA tier's accounts.
    pub rate_limits: TierRateLimits,
    /// Finished job rows older than this are deleted.
    pub job_retention_days: u32,
    /// Cron expressions (with a seconds field) overriding a schedule's default, by name.
    pub schedules: BTreeMap<String, String>,
    pub webhooks: WebhookSettings,
    pub sellapay: SellapaySettings,
    pub maxtera: MaxteraSettings,
    pub subscriptions: SubscriptionSettings,
    /// Requests to the public payment-link endpoints allowed per client IP and window.
    pub checkout_rate_limit: RateLimitRule,
    /// Payments started through one payment link per window, by all payers together: bounds
    /// how fast anyone can take a link's uses with numbers that never confirm.
    pub checkout_link_rate_limit: RateLimitRule,
    /// How long a payment started from a payment link's checkout holds one of its uses: it
    /// expires after this long (or `payment_expiry_seconds`, if shorter) unless paid. Meant to
    /// outlast the provider's confirmation window, which no provider publishes: raise it where
    /// payers confirm later.
    pub checkout_hold_seconds: u64,
    pub refunds: RefundSettings,
    pub marketing: MarketingSettings,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            passwordless_login: false,
            idempotency_ttl: IdempotencyTtl::default(),
            primary_merchant_id: None,
            login_rate_limit: RateLimitRule { limit: 10, window_seconds: 60 },
            payment_expiry_seconds: 15 * 60,
            rate_limits: TierRateLimits::default(),
            job_retention_days: 30,
            schedules: BTreeMap::new(),
            webhooks: WebhookSettings::default(),
            sellapay: SellapaySettings::default(),
            maxtera: MaxteraSettings::default(),
            subscriptions: SubscriptionSettings::default(),
            checkout_rate_limit: RateLimitRule { limit: 30, window_seconds: 60 },
            checkout_link_rate_limit: RateLimitRule { limit: 30, window_seconds: 60 },
            checkout_hold_seconds: 5 * 60,
            refunds: RefundSettings::default(),
            marketing: MarketingSettings::default(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct IdempotencyTtl {
    pub default_seconds: u64,
    /// Per endpoint, keyed `METHOD /path/template`, e.g. `POST /api/v1/payments`.
    pub endpoints: BTreeMap<String, u64>,
}

impl Default for IdempotencyTtl {
    fn default() -> Self {
        Self { default_seconds: 24 * 3600, endpoints: BTreeMap::new() }
    }
}

impl IdempotencyTtl {
    pub fn for_endpoint(&self, endpoint: &str) -> Duration {
        Duration::from_secs(self.endpoints.get(endpoint).copied().unwrap_or(self.default_seconds))
    }
}

/// How webhooks are delivered. The defaults retry for about a day: one minute, doubling, at
/// most twelve hours apart, twelve attempts in all.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct WebhookSettings {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// The wait after the first failed attempt; each further failure doubles it.
    pub backoff_base_seconds: u64,
    pub backoff_max_seconds: u64,
    /// A receiver's `Retry-After` is followed up to this long.
    pub retry_after_max_seconds: u64,
    /// How long a receiver has to answer.
    pub timeout_ms: u64,
    /// An endpoint that has failed without a success for this long is disabled.
    pub disable_after_seconds: u64,
    /// Deliveries one endpoint may have in flight at once.
    pub endpoint_concurrency: u32,
    /// Accepts endpoint URLs that reach loopback or private addresses, and plain `http`: for a
    /// laptop (`ultra dev` turns it on), never for a shared install.
    pub allow_private_urls: bool,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_attempts: 12,
            backoff_base_seconds: 60,
            backoff_max_seconds: 12 * 3600,
            retry_after_max_seconds: 3600,
            timeout_ms: 15_000,
            disable_after_seconds: 5 * 24 * 3600,
            endpoint_concurrency: 4,
            allow_private_urls: false,
        }
    }
}

impl WebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.clamp(100, 120_000))
    }
}

/// The Sellapay surface's limits and the rates its balance is shown at.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct SellapaySettings {
    /// `POST authorize` requests per client IP and window.
    pub authorize_rate_limit: RateLimitRule,
    /// Requests per bearer token and window on every other endpoint.
    pub token_rate_limit: RateLimitRule,
    /// Value of one KES in each other currency `getBalance` reports, as decimal text.
    pub fx_rates: BTreeMap<String, String>,
    /// How long a payout or STK push request waits for its outcome before answering `pending`,
    /// so a fast rail's answer comes back in the response as the seed shows.
    pub wait_seconds: u64,
}

impl Default for SellapaySettings {
    fn default() -> Self {
        // The rates the seed's own example implies (50,000 KES = 425.53 USD, 389.95 EUR, 338.45 GBP).
        let fx_rates = [("USD", "0.0085106"), ("EUR", "0.007799"), ("GBP", "0.006769")]
            .into_iter()
            .map(|(currency, rate)| (currency.to_owned(), rate.to_owned()))
            .collect();
        Self {
            authorize_rate_limit: RateLimitRule { limit: 10, window_seconds: 60 },
            token_rate_limit: RateLimitRule { limit: 100, window_seconds: 60 },
            fx_rates,
            wait_seconds: 5,
        }
    }
}

/// The Maxtera surface's token lifetimes, purchase limits and wait.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct MaxteraSettings {
    /// Lifetime of an `access` token; short, since a stolen one cannot be recalled by its holder.
    pub access_token_seconds: u64,
    /// Lifetime of a `refresh` token, which is good for one refresh only.
    pub refresh_token_seconds: u64,
    /// `POST auth/register/` and `auth/login/` requests per client IP and window.
    pub auth_rate_limit: RateLimitRule,
    /// How long a purchase or funding request waits for its outcome before answering
    /// `pending`, so a fast aggregator's answer comes back in the response as the seed shows.
    pub wait_seconds: u64,
    /// Naira limits per request.
    pub funding: AmountLimits,
    pub airtime: AmountLimits,
    pub bills: AmountLimits,
}

impl Default for MaxteraSettings {
    fn default() -> Self {
        Self {
            access_token_seconds: 15 * 60,
            refresh_token_seconds: 7 * 24 * 3600,
            auth_rate_limit: RateLimitRule { limit: 10, window_seconds: 60 },
            wait_seconds: 5,
            funding: AmountLimits { min: 100, max: 1_000_000 },
            airtime: AmountLimits { min: 50, max: 50_000 },
            bills: AmountLimits { min: 500, max: 500_000 },
        }
    }
}

/// How failed renewals are retried.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct SubscriptionSettings {
    /// The wait before each retry of a period whose renewal payment failed; once they are
    /// used up the subscription is marked overdue. Customers often top up within a day.
    pub retry_delays_seconds: Vec<u64>,
}

impl Default for SubscriptionSettings {
    fn default() -> Self {
        Self { retry_delays_seconds: vec![3600, 6 * 3600, 24 * 3600] }
    }
}

/// The limits that come with each SLA tier, keyed by the tier's name.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TierRateLimits {
    pub starter: TierLimits,
    pub pro: TierLimits,
    pub pro_plus: TierLimits,
    pub enterprise: TierLimits,
}

impl Default for TierRateLimits {
    /// Every tier creates payments at the seed's 30 per minute; the general allowance grows with
    /// the tier, and stays far above what a dashboard or a polling integration sends.
    fn default() -> Self {
        let limits = |requests: u32| TierLimits {
            payments: RateLimitRule { limit: 30, window_seconds: 60 },
            requests: RateLimitRule { limit: requests, window_seconds: 60 },
        };
        Self { starter: limits(1200), pro: limits(2400), pro_plus: limits(6000), enterprise: limits(12_000) }
    }
}

impl TierRateLimits {
    pub fn for_tier(&self, tier: Tier) -> &TierLimits {
        match tier {
            Tier::Starter => &self.starter,
            Tier::Pro => &self.pro,
            Tier::ProPlus => &self.pro_plus,
            Tier::Enterprise => &self.enterprise,
        }
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TierLimits {
    /// `POST /api/v1/payments` requests per merchant.
    pub payments: RateLimitRule,
    /// Authenticated requests to the ultra surface per account, payments included.
    pub requests: RateLimitRule,
}

/// How refunds a provider is still processing are followed up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct RefundSettings {
    /// How long a refund the provider accepted waits before its status is asked again; the
    /// `poll-refunds` schedule then picks it up at its next tick.
    pub recheck_seconds: u64,
}

impl Default for RefundSettings {
    fn default() -> Self {
        Self { recheck_seconds: 10 }
    }
}

/// Social publishing's connection flow.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct MarketingSettings {
    /// The merchant dashboard's address: a connection's `redirectUri` must be on its origin, so
    /// the OAuth callback never sends a browser anywhere else. Unset, the API's own address.
    pub frontend_url: Option<String>,
}

/// The least and most a single request may move, in whole units of the currency.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AmountLimits {
    pub min: u64,
    pub max: u64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitRule {
    pub limit: u32,
    pub window_seconds: u32,
}

impl RuntimeConfig {
    /// Reads every stored key over the defaults. A stored value of the wrong shape is an
    /// error rather than silently ignored, so a bad edit is noticed.
    pub async fn load(db: &impl ConnectionTrait) -> DomainResult<Self> {
        let rows = runtime_config::Entity::find().all(db).await?;
        let mut merged =
            serde_json::to_value(Self::default()).map_err(|err| DomainError::Internal(err.to_string()))?;
        if let Some(map) = merged.as_object_mut() {
            for row in rows {
                if map.contains_key(&row.key) {
                    map.insert(row.key, row.value);
                }
            }
        }
        serde_json::from_value(merged)
            .map_err(|err| DomainError::Internal(format!("runtime config is invalid: {err}")))
    }

    /// Stores one key. Used by operators' tooling and by `ultra dev` when it seeds a laptop.
    pub async fn set(
        db: &impl ConnectionTrait,
        key: &str,
        value: serde_json::Value,
        updated_by: Option<String>,
    ) -> DomainResult<()> {
        let mut probe =
            serde_json::to_value(Self::default()).map_err(|err| DomainError::Internal(err.to_string()))?;
        let Some(map) = probe.as_object_mut() else {
            return Err(DomainError::Internal("runtime config is not an object".into()));
        };
        if !map.contains_key(key) {
            return Err(DomainError::validation(key, "unknown runtime config key"));
        }
        map.insert(key.to_owned(), value.clone());
        serde_json::from_value::<Self>(probe).map_err(|err| DomainError::validation(key, err.to_string()))?;
        runtime_config::Entity::insert(runtime_config::ActiveModel {
            key: Set(key.to_owned()),
            value: Set(value),
            updated_by: Set(updated_by),
            updated_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(runtime_config::Column::Key)
                .update_columns([
                    runtime_config::Column::Value,
                    runtime_config::Column::UpdatedBy,
                    runtime_config::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec(db)
        .await?;
        Ok(())
    }
}

pub struct RuntimeConfigStore {
    db: DatabaseConnection,
    max_age: Duration,
    cached: RwLock<Option<(Instant, Arc<RuntimeConfig>)>>,
}

impl RuntimeConfigStore {
    pub fn new(db: DatabaseConnection, max_age: Duration) -> Self {
        Self { db, max_age, cached: RwLock::new(None) }
    }

    pub async fn current(&self) -> DomainResult<Arc<RuntimeConfig>> {
        if let Some((loaded_at, config)) = self.cached.read().await.as_ref()
            && loaded_at.elapsed() < self.max_age
        {
            return Ok(config.clone());
        }
        let config = Arc::new(RuntimeConfig::load(&self.db).await?);
        *self.cached.write().await = Some((Instant::now(), config.clone()));
        Ok(config)
    }

    /// Drops the cached set, so that the process that just wrote a change serves it at once
    /// rather than after the cache's age.
    pub async fn forget(&self) {
        *self.cached.write().await = None;
    }
}
