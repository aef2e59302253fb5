//! The ultra merchant surface, mounted at `/api/v1`: one module per resource.

pub mod admin_config;
pub mod admin_marketing;
pub mod admin_tokens;
pub mod admin_users;
pub mod analytics;
pub mod api_keys;
pub mod audit_logs;
pub mod auth;
pub mod callbacks;
pub mod checkout;
pub mod exports;
pub mod jobs;
pub mod marketing;
pub mod marketing_views;
pub mod onboarding;
pub mod payment_export;
pub mod payment_links;
pub mod payments;
pub mod platform;
pub mod providers;
pub mod reconciliation;
pub mod refunds;
pub mod subscription_export;
pub mod subscriptions;
pub mod tiers;
pub mod views;
pub mod webhooks;

use poem_openapi::Tags;

#[derive(Tags)]
pub enum ApiTags {
    /// Authentication (login, session, logout)
    Auth,
    /// Admin user, token, config, audit-log, and provider management
    Admin,
    /// Payment initiation, polling, refunds, CSV export
    Payments,
    /// Payment links, and the public operations of their hosted checkout page
    PaymentLinks,
    /// Recurring subscription management
    Subscriptions,
    /// Status of asynchronous operations
    Jobs,
    /// CSV files built in the background, and their downloads
    Exports,
    /// Merchant payment provider configuration
    MerchantProviders,
    /// Health, readiness and metrics
    Platform,
    /// Provider callbacks: hints that trigger a status query
    Callbacks,
    /// Webhook endpoint registration, delivery management, DLQ
    Webhooks,
    /// Sellapay API credentials
    ApiKeys,
    /// Payment and subscription analytics (accessible to merchants)
    Analytics,
    /// Pro+ merchant onboarding wizard (progress + UAT confirmation)
    MerchantOnboarding,
    /// Social media account connection and post management (merchant)
    Marketing,
    /// Social media administration (super-admin)
    AdminMarketing,
}
