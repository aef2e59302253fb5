//! Renewing subscriptions: a scheduled scan enqueues one renewal job per due subscription,
//! period and attempt, and each renewal starts the period's payment.
//!
//! The job's unique key names the subscription, period and attempt, so two schedulers or a
//! rerun enqueue it once; the renewal itself claims the subscription before it writes the
//! payment, so a manual renewal racing the schedule charges once too.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::{
    DomainError,
    audit::Actor,
    payments::NewPayment,
    provider_configs::{self, Provider},
    runtime_config::RuntimeConfig,
    subscriptions,
};
use ultra_entity::{
    payments as payment_rows,
    provider_configs::ProviderMode,
    subscriptions::{self as subscription_rows, SubscriptionStatus},
};

use super::payments::open;
use crate::{
    enqueue::{Enqueued, NewJob},
    job::{Completed, Job, JobContext, JobError},
};

/// Subscriptions enqueued per scan; the next tick takes the rest.
const SCAN_BATCH: u64 = 500;

/// Claims the subscription's current period and writes its renewal payment and the payment's
/// collect job in `txn`; `None` when the period is no longer this attempt's to charge. Both
/// the schedule and `POST subscriptions/{id}/renew` renew through here.
pub async fn start_renewal(
    txn: &DatabaseTransaction,
    subscription: &subscription_rows::Model,
    mode: ProviderMode,
    payment_expiry: chrono::Duration,
    actor: &Actor,
) -> Result<Option<(payment_rows::Model, Enqueued)>, DomainError> {
    let provider = Provider::parse(&subscription.provider)
        .ok_or_else(|| DomainError::Internal(format!("unknown provider {}", subscription.provider)))?;
    let attempt = subscription.renewal_attempts + 1;
    let payment_id = NewPayment::new_id();
    if !subscriptions::claim_renewal(
        txn,
        &subscription.id,
        subscription.next_renewal_at,
        attempt,
        &payment_id,
    )
    .await?
    {
        return Ok(None);
    }
    let new = NewPayment {
        id: payment_id,
        merchant_id: subscription.merchant_id.clone(),
        provider,
        mode,
        amount_minor: subscription.amount_minor,
        currency: "MGA",
        customer_phone: subscription.customer_phone.clone(),
        description: Some(subscription.description.clone().unwrap_or_else(|| subscription.label.clone())),
        metadata: Some(json!({
            "subscriptionId": subscription.id,
            "periodStart": subscription.next_renewal_at,
            "attempt": attempt,
        })),
        merchant_reference: None,
        payment_link_id: None,
        subscription_id: Some(subscription.id.clone()),
        expires_at: Utc::now() + payment_expiry,
    };
    let details = serde_json::Map::from_iter([("subscriptionId".to_owned(), subscription.id.clone().into())]);
    Ok(Some(open(txn, new, actor, details).await?))
}

/// How long a renewal payment waits for the customer, from runtime config.
pub fn payment_expiry(config: &RuntimeConfig) -> chrono::Duration {
    chrono::Duration::seconds(
        i64::try_from(config.payment_expiry_seconds).unwrap_or(i64::MAX).min(86_400 * 30),
    )
}

/// Renews one subscription's period, attempt `attempt` (1 for the period's first try).
#[derive(Debug, Serialize, Deserialize)]
pub struct RenewSubscription {
    pub subscription_id: String,
    pub period: DateTime<Utc>,
    pub attempt: i32,
}

impl RenewSubscription {
    /// Names the subscription, period and attempt, and the subscription's last change: a
    /// merchant who reschedules an overdue subscription onto the same period gets a new
    /// renewal, while two scans of an unchanged subscription enqueue one.
    pub fn unique_key(&self, changed_at: DateTime<Utc>) -> String {
        format!(
            "subscription:{}:renew:{}:{}:{}",
            self.subscription_id,
            self.period.timestamp(),
            self.attempt,
            changed_at.timestamp_micros()
        )
    }
}

impl Job for RenewSubscription {
    const KIND: &'static str = "subscriptions.renew";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 5;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let Some(subscription) =
            subscription_rows::Entity::find_by_id(self.subscription_id.as_str()).one(&ctx.db).await?
        else {
            return ctx.conclude(json!({ "renewed": false, "note": "the subscription was deleted" })).await;
        };
        let current = subscription.status == SubscriptionStatus::Active
            && subscription.next_renewal_at == self.period
            && subscription.renewal_attempts == self.attempt - 1
            && subscription.renewal_payment_id.is_none();
        if !current {
            return ctx
                .conclude(
                    json!({ "renewed": false, "note": "the period was renewed, rescheduled or paused" }),
                )
                .await;
        }
        let provider = Provider::parse(&subscription.provider)
            .ok_or_else(|| JobError::Permanent(format!("unknown provider {}", subscription.provider)))?;
        let config = provider_configs::effective(&ctx.db, provider, &subscription.merchant_id)
            .await?
            .filter(|config| config.enabled);
        let attempt = self.attempt;
        let Some(config) = config else {
            let reason = format!("{} is not configured or is disabled for the merchant", provider.name());
            return ctx
                .finish(move |txn| {
                    Box::pin(async move {
                        subscriptions::renewal_refused(txn, &subscription, attempt).await?;
                        Ok(json!({ "renewed": false, "reason": reason }))
                    })
                })
                .await;
        };
        let expiry = payment_expiry(&RuntimeConfig::load(&ctx.db).await?);
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move {
                match start_renewal(txn, &subscription, config.mode, expiry, &Actor::default()).await? {
                    Some((payment, enqueued)) => {
                        outbox.hold(enqueued);
                        Ok(json!({ "renewed": true, "paymentId": payment.id }))
                    }
                    None => Ok(json!({ "renewed": false, "note": "another renewal holds the period" })),
                }
            })
        })
        .await
    }
}

/// Finds subscriptions whose period (or whose retry) is due and enqueues their renewals.
#[derive(Debug, Serialize, Deserialize)]
pub struct RenewDueSubscriptions;

impl Job for RenewDueSubscriptions {
    const KIND: &'static str = "subscriptions.renew_due";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let now = Utc::now();
        let first_try_due = Condition::all()
            .add(subscription_rows::Column::RenewalAttempts.eq(0))
            .add(subscription_rows::Column::NextRenewalAt.lte(now));
        let retry_due = Condition::all()
            .add(subscription_rows::Column::RenewalAttempts.gt(0))
            .add(subscription_rows::Column::RetryAt.lte(now));
        let due = subscription_rows::Entity::find()
            .filter(subscription_rows::Column::Status.eq(SubscriptionStatus::Active))
            .filter(subscription_rows::Column::Overdue.eq(false))
            .filter(subscription_rows::Column::RenewalPaymentId.is_null())
            .filter(Condition::any().add(first_try_due).add(retry_due))
            .order_by_asc(subscription_rows::Column::NextRenewalAt)
            .limit(SCAN_BATCH)
            .all(&ctx.db)
            .await?;
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move {
                for subscription in &due {
                    let renewal = RenewSubscription {
                        subscription_id: subscription.id.clone(),
                        period: subscription.next_renewal_at,
                        attempt: subscription.renewal_attempts + 1,
                    };
                    outbox
                        .enqueue(
                            txn,
                            NewJob::new(&renewal)
                                .owner(subscription.merchant_id.clone())
                                .resource("subscriptions", subscription.id.clone())
                                .unique_key(renewal.unique_key(subscription.updated_at)),
                        )
                        .await?;
                }
                Ok(json!({ "due": due.len() }))
            })
        })
        .await
    }
}
