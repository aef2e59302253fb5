//! The Pro+ onboarding wizard: four steps read from the merchant's live data, never stored, so
//! a step is done exactly when what it asks for exists (and undone if it is taken away), and
//! the one thing the merchant declares, that acceptance testing is over, is an audit row.
//!
//! The declaration is recorded at most once per merchant: a partial unique index
//! (`uq_audit_logs_uat_confirmed`) admits one `onboarding.uat.confirmed` row per merchant, so
//! two confirmations racing each other both see the checks pass, one inserts, and the other's
//! insert is refused and it answers with the first one's row.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use serde_json::json;
use ultra_entity::{
    audit_logs, payment_links,
    payments::{self, PaymentStatus},
    provider_configs, webhook_endpoints,
};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
};

/// The audit action that records a merchant's UAT confirmation.
pub const UAT_CONFIRMED: &str = "onboarding.uat.confirmed";

/// What the wizard's steps are read from, for one merchant.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Providers the merchant has enabled in a configuration of their own (the global ones,
    /// set by the platform, prove nothing about the merchant's setup).
    pub enabled_providers: Vec<String>,
    pub active_webhook_endpoints: u64,
    pub payment_links: u64,
    pub first_payment_link_at: Option<DateTime<Utc>>,
    /// Payments that collected money: `completed`, `refunding` or `refunded`.
    pub completed_payments: u64,
    pub confirmation: Option<audit_logs::Model>,
}

/// Something UAT confirmation needs that is not there yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prerequisite {
    ProviderCredentials,
    WebhookEndpoint,
    FirstPaymentLink,
    CompletedPayment,
}

impl Prerequisite {
    /// The name clients see: the wizard's step names, and `completedPayment` for the UAT signal.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProviderCredentials => "providerCredentials",
            Self::WebhookEndpoint => "webhookEndpoint",
            Self::FirstPaymentLink => "firstPaymentLink",
            Self::CompletedPayment => "completedPayment",
        }
    }

    fn explanation(self) -> &'static str {
        match self {
            Self::ProviderCredentials => {
                "enable a provider configuration of your own (PUT /api/v1/merchant/providers/{name})"
            }
            Self::WebhookEndpoint => "register an active webhook endpoint (POST /api/v1/webhooks/endpoints)",
            Self::FirstPaymentLink => "create a payment link (POST /api/v1/payment-links)",
            Self::CompletedPayment => "complete at least one payment",
        }
    }
}

impl Progress {
    pub fn provider_credentials(&self) -> bool {
        !self.enabled_providers.is_empty()
    }

    pub fn webhook_endpoint(&self) -> bool {
        self.active_webhook_endpoints > 0
    }

    pub fn first_payment_link(&self) -> bool {
        self.payment_links > 0
    }

    /// The signal that testing happened: money went through end to end at least once.
    pub fn uat_signals(&self) -> bool {
        self.completed_payments > 0
    }

    /// The fourth step: tested, and declared so.
    pub fn uat(&self) -> bool {
        self.uat_signals() && self.confirmation.is_some()
    }

    /// What confirming UAT still needs, in the wizard's order.
    pub fn missing(&self) -> Vec<Prerequisite> {
        [
            (Prerequisite::ProviderCredentials, self.provider_credentials()),
            (Prerequisite::WebhookEndpoint, self.webhook_endpoint()),
            (Prerequisite::FirstPaymentLink, self.first_payment_link()),
            (Prerequisite::CompletedPayment, self.uat_signals()),
        ]
        .into_iter()
        .filter_map(|(prerequisite, met)| (!met).then_some(prerequisite))
        .collect()
    }
}

pub async fn progress(db: &impl ConnectionTrait, merchant_id: &str) -> DomainResult<Progress> {
    let enabled_providers = provider_configs::Entity::find()
        .select_only()
        .column(provider_configs::Column::Provider)
        .filter(provider_configs::Column::Scope.eq(merchant_id))
        .filter(provider_configs::Column::Enabled.eq(true))
        .order_by_asc(provider_configs::Column::Provider)
        .into_tuple()
        .all(db)
        .await?;
    let active_webhook_endpoints = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::UserId.eq(merchant_id))
        .filter(webhook_endpoints::Column::IsActive.eq(true))
        .count(db)
        .await?;
    let links = payment_links::Entity::find().filter(payment_links::Column::MerchantId.eq(merchant_id));
    let payment_links = links.clone().count(db).await?;
    let first_payment_link_at = links
        .select_only()
        .column(payment_links::Column::CreatedAt)
        .order_by_asc(payment_links::Column::CreatedAt)
        .into_tuple()
        .one(db)
        .await?;
    let completed_payments = payments::Entity::find()
        .filter(payments::Column::MerchantId.eq(merchant_id))
        .filter(payments::Column::Status.is_in([
            PaymentStatus::Completed,
            PaymentStatus::Refunding,
            PaymentStatus::Refunded,
        ]))
        .count(db)
        .await?;
    Ok(Progress {
        enabled_providers,
        active_webhook_endpoints,
        payment_links,
        first_payment_link_at,
        completed_payments,
        confirmation: confirmation(db, merchant_id).await?,
    })
}

async fn confirmation(
    db: &impl ConnectionTrait,
    merchant_id: &str,
) -> DomainResult<Option<audit_logs::Model>> {
    Ok(audit_logs::Entity::find()
        .filter(audit_logs::Column::Action.eq(UAT_CONFIRMED))
        .filter(audit_logs::Column::EntityType.eq("merchant"))
        .filter(audit_logs::Column::EntityId.eq(merchant_id))
        .one(db)
        .await?)
}

/// The outcome of a confirmation: the row that records it, and whether it was there already.
pub struct Confirmation {
    pub record: audit_logs::Model,
    pub already_confirmed: bool,
}

/// Records the merchant's UAT confirmation once every prerequisite is met; a merchant who has
/// confirmed before gets that confirmation back, whatever has changed since.
pub async fn confirm_uat(
    db: &impl ConnectionTrait,
    merchant_id: &str,
    actor: &Actor,
) -> DomainResult<Confirmation> {
    let progress = progress(db, merchant_id).await?;
    if let Some(record) = progress.confirmation {
        return Ok(Confirmation { record, already_confirmed: true });
    }
    let missing = progress.missing();
    if !missing.is_empty() {
        let reasons: Vec<String> =
            missing.iter().map(|item| format!("{} ({})", item.name(), item.explanation())).collect();
        return Err(DomainError::Conflict {
            code: "uat_prerequisites_missing",
            message: format!("UAT cannot be confirmed yet; missing: {}", reasons.join("; ")),
        });
    }
    let details = json!({
        "enabledProviders": progress.enabled_providers,
        "activeWebhookEndpoints": progress.active_webhook_endpoints,
        "paymentLinks": progress.payment_links,
        "completedPayments": progress.completed_payments,
    });
    let event = AuditEvent {
        action: UAT_CONFIRMED,
        entity_type: "merchant",
        entity_id: Some(merchant_id),
        details: Some(details),
    };
    let already_confirmed = match audit::record(db, actor, event).await {
        Ok(()) => false,
        Err(DomainError::Database(err))
            if matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            true
        }
        Err(err) => return Err(err),
    };
    let record = confirmation(db, merchant_id)
        .await?
        .ok_or_else(|| DomainError::Internal("the UAT confirmation just recorded is missing".into()))?;
    Ok(Confirmation { record, already_confirmed })
}
