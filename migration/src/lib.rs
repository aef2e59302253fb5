//! Schema migrations, written once for PostgreSQL and SQLite alike.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_core;
mod m20261122_000002_job_delivery;
mod m20261122_000003_provider_configs;
mod m20261122_000004_payments;
mod m20261122_000005_collections_and_refunds;
mod m20261122_000006_webhooks;
mod m20261122_000007_api_keys;
mod m20261122_000008_payouts;
mod m20261129_000009_sellapay_rails;
mod m20261129_000010_maxtera;
mod m20261129_000011_links_subscriptions_exports;
mod m20261129_000012_analytics_and_onboarding;
mod m20261129_000013_social_publishing;
mod m20261129_000014_partial_payment_indexes;
mod m20261207_000015_refund_sent_and_claim_tokens;
mod m20261207_000016_derived_system_balances;
mod m20261207_000017_deliveries_by_status;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_core::Migration),
            Box::new(m20261122_000002_job_delivery::Migration),
            Box::new(m20261122_000003_provider_configs::Migration),
            Box::new(m20261122_000004_payments::Migration),
            Box::new(m20261122_000005_collections_and_refunds::Migration),
            Box::new(m20261122_000006_webhooks::Migration),
            Box::new(m20261122_000007_api_keys::Migration),
            Box::new(m20261122_000008_payouts::Migration),
            Box::new(m20261129_000009_sellapay_rails::Migration),
            Box::new(m20261129_000010_maxtera::Migration),
            Box::new(m20261129_000011_links_subscriptions_exports::Migration),
            Box::new(m20261129_000012_analytics_and_onboarding::Migration),
            Box::new(m20261129_000013_social_publishing::Migration),
            Box::new(m20261129_000014_partial_payment_indexes::Migration),
            Box::new(m20261207_000015_refund_sent_and_claim_tokens::Migration),
            Box::new(m20261207_000016_derived_system_balances::Migration),
            Box::new(m20261207_000017_deliveries_by_status::Migration),
        ]
    }
}
