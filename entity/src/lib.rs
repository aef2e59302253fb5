//! SeaORM entities: one module per table, shared by every process.
//!
//! The same entities serve PostgreSQL and SQLite, so column types stay within what both
//! support: strings for ids and enums, `i64` minor units for money, JSON for free-form data.

pub mod api_keys;
pub mod audit_logs;
pub mod events;
pub mod export_chunks;
pub mod exports;
pub mod idempotency_keys;
pub mod jobs;
pub mod ledger_accounts;
pub mod ledger_entries;
pub mod ledger_postings;
pub mod maxtera_accounts;
pub mod maxtera_data_plans;
pub mod maxtera_transactions;
pub mod payment_links;
pub mod payments;
pub mod payouts;
pub mod provider_configs;
pub mod refunds;
pub mod runtime_config;
pub mod sellapay_accounts;
pub mod sellapay_transactions;
pub mod social_accounts;
pub mod social_oauth_states;
pub mod social_posts;
pub mod social_publish_logs;
pub mod subscriptions;
pub mod tokens;
pub mod users;
pub mod webhook_attempts;
pub mod webhook_deliveries;
pub mod webhook_endpoints;
