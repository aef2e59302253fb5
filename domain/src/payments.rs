//! The payment state machine, and what each transition does to the ledger and the event log.

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr};
use serde_json::{Value, json};
use ultra_entity::{
    payments::{self, PaymentStatus},
    provider_configs::ProviderMode,
};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    events::{self, NewEvent},
    ids,
    ledger::{self, AccountSpec},
    money::format_amount,
    payment_links,
    provider_configs::Provider,
    subscriptions,
};

/// A payment to collect, validated by the surface that takes it.
#[derive(Clone)]
pub struct NewPayment {
    pub id: String,
    pub merchant_id: String,
    pub provider: Provider,
    pub mode: ProviderMode,
    pub amount_minor: i64,
    pub currency: &'static str,
    pub customer_phone: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub merchant_reference: Option<String>,
    /// The payment link it is paid through; the caller has reserved one of the link's uses.
    pub payment_link_id: Option<String>,
    /// The subscription it renews; the caller has claimed the subscription's renewal.
    pub subscription_id: Option<String>,
    pub expires_at: DateTime<Utc>,
}

impl NewPayment {
    /// A fresh payment id, for callers that must name the payment before writing it.
    pub fn new_id() -> String {
        ids::new_id("pay")
    }
}

/// A pending payment, collected by the job `job_id`, as the caller will write it.
pub fn pending(new: NewPayment, job_id: &str) -> payments::Model {
    // As stored: PostgreSQL keeps microseconds, so the answer to the request that makes the
    // payment shows the times every later read will.
    let now = Utc::now().trunc_subsecs(6);
    payments::Model {
        id: new.id,
        merchant_id: new.merchant_id,
        provider: new.provider.name().to_owned(),
        mode: new.mode,
        amount_minor: new.amount_minor,
        currency: new.currency.to_owned(),
        status: PaymentStatus::Pending,
        customer_phone: new.customer_phone,
        description: new.description,
        metadata: new.metadata,
        reference: format!("ULT{}", ulid::Ulid::new()),
        provider_transaction_id: None,
        failure_reason: None,
        refunded_minor: 0,
        job_id: Some(job_id.to_owned()),
        initiated_at: None,
        provider_handle: None,
        provider_data: None,
        checkout_url: None,
        merchant_reference: new.merchant_reference,
        payment_link_id: new.payment_link_id,
        subscription_id: new.subscription_id,
        expires_at: new.expires_at.trunc_subsecs(6),
        completed_at: None,
        created_at: now,
        updated_at: now,
    }
}

/// The seed's statuses and the only moves between them: a pending payment ends completed,
/// failed, cancelled or expired; a completed one can be refunded, through `refunding`. A
/// pending payment whose collection may have reached the provider, but whose outcome the
/// provider cannot tell, becomes `unknown`; only the provider's word (a status query, or an
/// operator who asked the provider) moves it on.
pub fn can_transition(from: PaymentStatus, to: PaymentStatus) -> bool {
    use PaymentStatus::*;
    matches!(
        (from, to),
        (Pending, Completed | Failed | Cancelled | Expired | Unknown)
            | (Unknown, Completed | Failed | Expired)
            | (Completed, Refunding | Refunded)
            | (Refunding, Refunded | Completed)
    )
}

/// Statuses a status query may still move: the provider's answer settles both.
pub fn awaits_provider(status: PaymentStatus) -> bool {
    matches!(status, PaymentStatus::Pending | PaymentStatus::Unknown)
}

/// What events and webhooks carry about a payment.
pub fn payload(payment: &payments::Model) -> Value {
    json!({
        "id": payment.id,
        "provider": payment.provider,
        "amount": format_amount(payment.amount_minor),
        "currency": payment.currency,
        "status": payment.status,
        "customerPhone": payment.customer_phone,
        "description": payment.description,
        "metadata": payment.metadata,
        "reference": payment.reference,
        "providerTransactionId": payment.provider_transaction_id,
        "failureReason": payment.failure_reason,
        "createdAt": payment.created_at,
        "completedAt": payment.completed_at,
    })
}

/// Moves a payment from `from` to `to` if it is still in `from`; `None` if another transition
/// got there first (a callback and a poll racing), so the caller does nothing more.
async fn transition(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    to: PaymentStatus,
    provider_transaction_id: Option<String>,
    failure_reason: Option<String>,
    now: DateTime<Utc>,
    unsent_only: bool,
) -> DomainResult<Option<payments::Model>> {
    if !can_transition(payment.status, to) {
        return Err(DomainError::Conflict {
            code: "illegal_transition",
            message: format!("a {:?} payment cannot become {to:?}", payment.status),
        });
    }
    let mut update = payments::Entity::update_many()
        .col_expr(payments::Column::Status, Expr::value(to))
        .col_expr(payments::Column::UpdatedAt, Expr::value(now));
    if to == PaymentStatus::Completed {
        update = update.col_expr(payments::Column::CompletedAt, Expr::value(now));
    }
    if let Some(id) = &provider_transaction_id {
        update = update.col_expr(payments::Column::ProviderTransactionId, Expr::value(id.clone()));
    }
    if let Some(reason) = &failure_reason {
        update = update.col_expr(payments::Column::FailureReason, Expr::value(reason.clone()));
    }
    let mut update = update
        .filter(payments::Column::Id.eq(&payment.id))
        .filter(payments::Column::Status.eq(payment.status));
    if unsent_only {
        update = update.filter(payments::Column::InitiatedAt.is_null());
    }
    let changed = update.exec(txn).await?;
    if changed.rows_affected == 0 {
        return Ok(None);
    }
    Ok(payments::Entity::find_by_id(payment.id.as_str()).one(txn).await?)
}

/// Completes a pending payment: credits the merchant from the provider's clearing account and
/// records `payment.completed`, all in `txn`.
pub async fn complete(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    provider_transaction_id: Option<String>,
) -> DomainResult<Option<payments::Model>> {
    let Some(done) =
        transition(txn, payment, PaymentStatus::Completed, provider_transaction_id, None, Utc::now(), false)
            .await?
    else {
        return Ok(None);
    };
    let reference = format!("payment:{}:collect", done.id);
    let clearing = ledger::provider_code(&done.provider, &done.currency, "clearing");
    let merchant = ledger::merchant_code(&done.merchant_id, &done.currency);
    ledger::transfer(
        txn,
        "payment.collected",
        &reference,
        done.description.as_deref(),
        AccountSpec::system(&clearing, &done.currency),
        AccountSpec::merchant(&merchant, &done.merchant_id, &done.currency),
        done.amount_minor,
    )
    .await?;
    record_outcome(txn, &done, "payment.completed").await?;
    payment_links::payment_ended(txn, &done).await?;
    subscriptions::payment_ended(txn, &done).await?;
    Ok(Some(done))
}

/// Ends a pending payment without money moving: `failed`, `expired` or `cancelled`.
pub async fn end_unpaid(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    to: PaymentStatus,
    reason: &str,
) -> DomainResult<Option<payments::Model>> {
    end(txn, payment, to, reason, false).await
}

/// [`end_unpaid`] for a payment never sent to the provider, which a worker may be sending at
/// this moment: `None`, and nothing changes, if the worker marked it sent first.
pub async fn end_unsent(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    to: PaymentStatus,
    reason: &str,
) -> DomainResult<Option<payments::Model>> {
    end(txn, payment, to, reason, true).await
}

async fn end(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    to: PaymentStatus,
    reason: &str,
    unsent_only: bool,
) -> DomainResult<Option<payments::Model>> {
    let Some(done) =
        transition(txn, payment, to, None, Some(reason.to_owned()), Utc::now(), unsent_only).await?
    else {
        return Ok(None);
    };
    let event = match to {
        PaymentStatus::Expired => "payment.expired",
        PaymentStatus::Cancelled => "payment.cancelled",
        _ => "payment.failed",
    };
    record_outcome(txn, &done, event).await?;
    payment_links::payment_ended(txn, &done).await?;
    subscriptions::payment_ended(txn, &done).await?;
    Ok(Some(done))
}

/// Holds a pending payment for reconciliation: the collection may have reached the provider,
/// and the provider cannot say how it ended, so it is neither completed nor written off. Its
/// payment link use and subscription claim stay held until it is resolved. Records
/// `payment.unknown`.
pub async fn mark_unknown(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    reason: &str,
) -> DomainResult<Option<payments::Model>> {
    let Some(held) =
        transition(txn, payment, PaymentStatus::Unknown, None, Some(reason.to_owned()), Utc::now(), false)
            .await?
    else {
        return Ok(None);
    };
    record_outcome(txn, &held, "payment.unknown").await?;
    Ok(Some(held))
}

/// What an operator learned from the provider about a payment in `unknown`.
#[derive(Clone, Debug)]
pub enum Resolution {
    /// The provider collected the money: complete the payment and credit the merchant.
    Paid { provider_transaction_id: Option<String> },
    /// The provider has no collection, or it failed: the payment fails.
    Unpaid,
}

/// Settles an `unknown` payment on an operator's word, audited under the operator with their
/// note. A payment no longer `unknown` (a status query got there first) is a conflict.
pub async fn resolve(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    actor: &Actor,
    resolution: Resolution,
    note: &str,
) -> DomainResult<payments::Model> {
    let not_unknown = || DomainError::Conflict {
        code: "payment_not_unknown",
        message: "only an unknown payment can be resolved, and this one is not (or no longer)".to_owned(),
    };
    if payment.status != PaymentStatus::Unknown {
        return Err(not_unknown());
    }
    let (outcome, moved) = match resolution {
        Resolution::Paid { provider_transaction_id } => {
            ("paid", complete(txn, payment, provider_transaction_id).await?)
        }
        Resolution::Unpaid => {
            let reason = format!("resolved as unpaid: {note}");
            ("unpaid", end_unpaid(txn, payment, PaymentStatus::Failed, &reason).await?)
        }
    };
    let resolved = moved.ok_or_else(not_unknown)?;
    audit::record(
        txn,
        actor,
        AuditEvent {
            action: "payment.resolved",
            entity_type: "payment",
            entity_id: Some(&resolved.id),
            details: Some(json!({ "outcome": outcome, "status": resolved.status, "note": note })),
        },
    )
    .await?;
    Ok(resolved)
}

async fn record_outcome(
    db: &impl ConnectionTrait,
    payment: &payments::Model,
    event: &str,
) -> DomainResult<()> {
    events::record(
        db,
        NewEvent {
            merchant_id: &payment.merchant_id,
            event_type: event,
            resource_type: "payment",
            resource_id: &payment.id,
            payload: payload(payment),
        },
    )
    .await?;
    audit::record(
        db,
        &Actor::default(),
        AuditEvent {
            action: event,
            entity_type: "payment",
            entity_id: Some(&payment.id),
            details: Some(json!({ "status": payment.status, "reason": payment.failure_reason })),
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_legal_transitions() {
        use PaymentStatus::*;
        assert!(can_transition(Pending, Completed));
        assert!(can_transition(Completed, Refunding));
        assert!(!can_transition(Failed, Completed));
        assert!(!can_transition(Expired, Completed));
        assert!(!can_transition(Refunded, Pending));
        assert!(!can_transition(Completed, Pending));
    }

    #[test]
    fn an_unknown_payment_moves_only_on_the_providers_word() {
        use PaymentStatus::*;
        assert!(can_transition(Pending, Unknown));
        assert!(can_transition(Unknown, Completed));
        assert!(can_transition(Unknown, Failed));
        assert!(!can_transition(Unknown, Cancelled));
        assert!(!can_transition(Unknown, Pending));
        assert!(!can_transition(Expired, Unknown));
        assert!(awaits_provider(Unknown) && awaits_provider(Pending) && !awaits_provider(Expired));
    }
}
