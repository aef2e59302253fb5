//! What the API and the workers share: database access, the ledger, users and their tokens,
//! runtime configuration and the audit trail. Nothing here speaks HTTP.

pub mod analytics;
pub mod api_keys;
pub mod audit;
pub mod auth_tokens;
pub mod backoff;
pub mod banks;
pub mod config_patch;
pub mod csv_export;
pub mod dates;
pub mod db;
pub mod error;
pub mod events;
pub mod health;
pub mod ids;
pub mod ledger;
pub mod maxtera;
pub mod money;
pub mod msisdn;
pub mod onboarding;
pub mod passwords;
pub mod payment_links;
pub mod payments;
pub mod payouts;
pub mod provider_configs;
pub mod redis_conn;
pub mod refunds;
pub mod runtime_config;
pub mod secrets;
pub mod sellapay_transactions;
pub mod social;
pub mod subscriptions;
pub mod tiers;
pub mod users;
pub mod webhooks;

pub use error::{DomainError, DomainResult};
