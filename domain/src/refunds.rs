//! Refunds: what each provider supports, and the moves of a refund's life. The payment's
//! `refunded_minor` counts every refund that is not failed or cancelled, so reserving an
//! amount is one conditional update that can never let two concurrent refunds exceed it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait,
    QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};
use serde_json::json;
use ultra_entity::{
    payments::{self, PaymentStatus},
    provider_configs::ProviderMode,
    refunds::{self, RefundStatus},
};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    events::{self, NewEvent},
    ids,
    ledger::{self, AccountSpec},
    money::format_amount,
    payments::payload,
    provider_configs::Provider,
};

/// How refunds work for a provider in a mode.
pub struct Capability {
    pub supported: bool,
    /// `api` (through the provider), `manual` (by the merchant, outside Ultra) or `simulation`.
    pub mode: &'static str,
    /// Whether less than the whole payment can be refunded.
    pub partial: bool,
    pub note: &'static str,
}

/// Per the providers' APIs: Airtel refunds whole transactions; MVola Merchant Pay and Orange
/// WebPay have no refund resource at all.
pub fn capability(provider: Provider, mode: ProviderMode) -> Capability {
    match (mode, provider) {
        (ProviderMode::Simulation, _) => Capability {
            supported: true,
            mode: "simulation",
            partial: true,
            note: "Refunds are finalised at once; no money moves at the provider.",
        },
        (ProviderMode::Live, Provider::Airtel) => Capability {
            supported: true,
            mode: "api",
            partial: false,
            note: "Airtel Money refunds the whole transaction; the refund is polled until it settles.",
        },
        (ProviderMode::Live, Provider::Mvola) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "MVola Merchant Pay has no refund API: refund the customer from the MVola merchant portal.",
        },
        (ProviderMode::Live, Provider::Orange) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "Orange Money WebPay has no refund API: refund the customer from the Orange Money merchant portal.",
        },
        (ProviderMode::Live, Provider::Mpesa) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "M-Pesa reversals are made from the M-PESA organisation portal, or paid back with sendFundsToMobile.",
        },
        (ProviderMode::Live, Provider::Bank) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "The bank rail only pays out; it takes no payments to refund.",
        },
        (ProviderMode::Live, Provider::Vtpass) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "VTpass only sells airtime, data and bills; it takes no payments to refund.",
        },
        (ProviderMode::Live, Provider::Onepipe) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "OnePipe transfers fund Maxtera wallets; they are not payments to refund.",
        },
        (ProviderMode::Live, Provider::Meta | Provider::Tiktok) => Capability {
            supported: false,
            mode: "manual",
            partial: false,
            note: "Meta and TikTok publish posts; they take no payments to refund.",
        },
    }
}

/// What events and the API carry about a refund.
pub fn refund_payload(refund: &refunds::Model) -> serde_json::Value {
    json!({
        "id": refund.id,
        "paymentId": refund.payment_id,
        "amount": format_amount(refund.amount_minor),
        "currency": refund.currency,
        "status": refund.status,
        "reason": refund.reason,
        "providerRefundId": refund.provider_refund_id,
    })
}

/// Reserves `amount_minor` of the payment and holds it out of the merchant's balance.
async fn reserve(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    refund_id: &str,
    attempt: i32,
    amount_minor: i64,
) -> DomainResult<()> {
    use payments::Column;
    let reserved = payments::Entity::update_many()
        .col_expr(Column::RefundedMinor, Expr::col(Column::RefundedMinor).add(amount_minor))
        .col_expr(Column::Status, Expr::value(PaymentStatus::Refunding))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(&payment.id))
        .filter(Column::Status.is_in([PaymentStatus::Completed, PaymentStatus::Refunding]))
        .filter(Expr::col(Column::RefundedMinor).add(amount_minor).lte(Expr::col(Column::AmountMinor)))
        .exec(txn)
        .await?;
    if reserved.rows_affected == 0 {
        let current = payments::Entity::find_by_id(payment.id.as_str())
            .one(txn)
            .await?
            .ok_or(DomainError::NotFound("payment"))?;
        return Err(not_refundable(&current, amount_minor));
    }
    let refunds = ledger::provider_code(&payment.provider, &payment.currency, "refunds");
    let merchant = ledger::merchant_code(&payment.merchant_id, &payment.currency);
    ledger::transfer(
        txn,
        "refund.held",
        &format!("refund:{refund_id}:hold:{attempt}"),
        None,
        AccountSpec::merchant(&merchant, &payment.merchant_id, &payment.currency),
        AccountSpec::system(&refunds, &payment.currency),
        amount_minor,
    )
    .await?;
    Ok(())
}

fn not_refundable(payment: &payments::Model, amount_minor: i64) -> DomainError {
    let remaining = payment.amount_minor - payment.refunded_minor;
    if payment.status == PaymentStatus::Refunded {
        return DomainError::Conflict {
            code: "payment_fully_refunded",
            message: "the payment is already fully refunded".to_owned(),
        };
    }
    if !matches!(payment.status, PaymentStatus::Completed | PaymentStatus::Refunding) {
        return DomainError::Conflict {
            code: "payment_not_refundable",
            message: format!("only completed payments can be refunded; this one is {:?}", payment.status)
                .to_lowercase(),
        };
    }
    if remaining <= 0 {
        return DomainError::Conflict {
            code: "payment_fully_refunded",
            message: "the payment is already fully refunded (or has refunds in flight for all of it)"
                .to_owned(),
        };
    }
    DomainError::Conflict {
        code: "refund_exceeds_refundable",
        message: format!(
            "a refund of {} {} exceeds the {} {} that remains refundable",
            format_amount(amount_minor),
            payment.currency,
            format_amount(remaining),
            payment.currency
        ),
    }
}

pub struct NewRefund {
    /// `None` refunds whatever remains refundable.
    pub amount_minor: Option<i64>,
    pub reason: Option<String>,
}

/// Creates a pending refund of `payment`, reserving its amount.
pub async fn create(
    txn: &DatabaseTransaction,
    payment: &payments::Model,
    request: NewRefund,
    actor: &Actor,
) -> DomainResult<refunds::Model> {
    let provider = Provider::parse(&payment.provider).ok_or(DomainError::NotFound("provider"))?;
    let capability = capability(provider, payment.mode);
    if !capability.supported {
        return Err(DomainError::Unprocessable {
            code: "refund_not_supported",
            message: capability.note.to_owned(),
        });
    }
    let remaining = payment.amount_minor - payment.refunded_minor;
    let amount_minor = request.amount_minor.unwrap_or(remaining);
    if amount_minor <= 0 {
        return Err(not_refundable(payment, std::cmp::max(amount_minor, 1)));
    }
    if !capability.partial && amount_minor != payment.amount_minor {
        return Err(DomainError::Unprocessable {
            code: "partial_refund_not_supported",
            message: format!(
                "{} refunds whole payments only: refund {} or nothing",
                provider.name(),
                format_amount(payment.amount_minor)
            ),
        });
    }
    let id = ids::new_id("rfd");
    reserve(txn, payment, &id, 1, amount_minor).await?;
    let now = Utc::now();
    let refund = refunds::ActiveModel {
        id: Set(id),
        payment_id: Set(payment.id.clone()),
        merchant_id: Set(payment.merchant_id.clone()),
        provider: Set(payment.provider.clone()),
        mode: Set(payment.mode),
        amount_minor: Set(amount_minor),
        currency: Set(payment.currency.clone()),
        status: Set(RefundStatus::Pending),
        reason: Set(request.reason),
        provider_refund_id: Set(None),
        failure_reason: Set(None),
        attempt: Set(1),
        job_id: Set(None),
        sent_at: Set(None),
        next_check_at: Set(None),
        completed_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(txn)
    .await?;
    audit::record(
        txn,
        actor,
        AuditEvent {
            action: "refund.created",
            entity_type: "refund",
            entity_id: Some(&refund.id),
            details: Some(refund_payload(&refund)),
        },
    )
    .await?;
    Ok(refund)
}

/// Puts a failed or cancelled refund back to pending, reserving its amount again.
pub async fn retry(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    actor: &Actor,
) -> DomainResult<refunds::Model> {
    if !matches!(refund.status, RefundStatus::Failed | RefundStatus::Cancelled) {
        return Err(DomainError::Conflict {
            code: "refund_not_retryable",
            message: format!(
                "only failed or cancelled refunds can be retried; this one is {:?}",
                refund.status
            )
            .to_lowercase(),
        });
    }
    let payment = payments::Entity::find_by_id(refund.payment_id.as_str())
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound("payment"))?;
    let attempt = refund.attempt + 1;
    reserve(txn, &payment, &refund.id, attempt, refund.amount_minor).await?;
    let changed = refunds::Entity::update_many()
        .col_expr(refunds::Column::Status, Expr::value(RefundStatus::Pending))
        .col_expr(refunds::Column::Attempt, Expr::value(attempt))
        .col_expr(refunds::Column::FailureReason, Expr::value(Option::<String>::None))
        .col_expr(refunds::Column::NextCheckAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(refunds::Column::SentAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(refunds::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(refunds::Column::Id.eq(&refund.id))
        .filter(refunds::Column::Status.eq(refund.status))
        .exec(txn)
        .await?;
    if changed.rows_affected == 0 {
        return Err(DomainError::Conflict {
            code: "refund_changed",
            message: "the refund changed while being retried; fetch it and try again".to_owned(),
        });
    }
    let retried = find(txn, &refund.id).await?;
    audit::record(
        txn,
        actor,
        AuditEvent {
            action: "refund.retried",
            entity_type: "refund",
            entity_id: Some(&retried.id),
            details: Some(json!({ "attempt": attempt })),
        },
    )
    .await?;
    Ok(retried)
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> DomainResult<refunds::Model> {
    refunds::Entity::find_by_id(id).one(db).await?.ok_or(DomainError::NotFound("refund"))
}

/// Records, in its own commit and before the provider is called, that the refund may reach the
/// provider from now on.
pub async fn mark_sent(db: &impl ConnectionTrait, id: &str) -> DomainResult<()> {
    refunds::Entity::update_many()
        .col_expr(refunds::Column::SentAt, Expr::value(Utc::now()))
        .filter(refunds::Column::Id.eq(id))
        .filter(refunds::Column::SentAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Holds a refund whose outcome the provider cannot tell: its amount stays out of the
/// merchant's balance until the provider's answer or an operator resolves it. Records
/// `refund.unknown` in the audit log.
pub async fn hold_unknown(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    reason: &str,
) -> DomainResult<Option<refunds::Model>> {
    let Some(held) =
        transition(txn, refund, RefundStatus::Unknown, None, Some(reason.to_owned()), None).await?
    else {
        return Ok(None);
    };
    audit::record(
        txn,
        &Actor::default(),
        AuditEvent {
            action: "refund.unknown",
            entity_type: "refund",
            entity_id: Some(&held.id),
            details: Some(json!({ "reason": reason })),
        },
    )
    .await?;
    Ok(Some(held))
}

/// Settles a refund held as `unknown` on an operator's word (`refunded`: the customer got the
/// money; otherwise the amount is released), audited as `refund.resolved` under the operator.
pub async fn resolve(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    actor: &Actor,
    refunded: bool,
    note: &str,
) -> DomainResult<refunds::Model> {
    let not_unknown = || DomainError::Conflict {
        code: "refund_not_unknown",
        message: "only an unknown refund can be resolved, and this one is not (or no longer)".to_owned(),
    };
    if refund.status != RefundStatus::Unknown {
        return Err(not_unknown());
    }
    let resolved = if refunded {
        settle(txn, refund, None).await?
    } else {
        fail(txn, refund, RefundStatus::Failed, &format!("resolved as not refunded: {note}")).await?
    };
    let resolved = resolved.ok_or_else(not_unknown)?;
    audit::record(
        txn,
        actor,
        AuditEvent {
            action: "refund.resolved",
            entity_type: "refund",
            entity_id: Some(&resolved.id),
            details: Some(json!({ "refunded": refunded, "status": resolved.status, "note": note })),
        },
    )
    .await?;
    Ok(resolved)
}

/// Moves an open refund to `to` if it is still in the status the caller read.
async fn transition(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    to: RefundStatus,
    provider_refund_id: Option<String>,
    failure_reason: Option<String>,
    next_check_at: Option<DateTime<Utc>>,
) -> DomainResult<Option<refunds::Model>> {
    let now = Utc::now();
    let mut update = refunds::Entity::update_many()
        .col_expr(refunds::Column::Status, Expr::value(to))
        .col_expr(refunds::Column::NextCheckAt, Expr::value(next_check_at))
        .col_expr(refunds::Column::UpdatedAt, Expr::value(now));
    if to == RefundStatus::Completed {
        update = update.col_expr(refunds::Column::CompletedAt, Expr::value(now));
    }
    if let Some(id) = provider_refund_id {
        update = update.col_expr(refunds::Column::ProviderRefundId, Expr::value(id));
    }
    if let Some(reason) = failure_reason {
        update = update.col_expr(refunds::Column::FailureReason, Expr::value(reason));
    }
    let changed = update
        .filter(refunds::Column::Id.eq(&refund.id))
        .filter(refunds::Column::Status.eq(refund.status))
        .filter(refunds::Column::Status.is_in(RefundStatus::OPEN))
        .exec(txn)
        .await?;
    if changed.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Some(find(txn, &refund.id).await?))
}

/// The provider accepted the refund and is still moving the money; ask again at `next_check_at`.
pub async fn mark_processing(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    next_check_at: DateTime<Utc>,
) -> DomainResult<Option<refunds::Model>> {
    transition(txn, refund, RefundStatus::Processing, None, None, Some(next_check_at)).await
}

/// The money reached the customer: the held amount leaves for the provider, and the payment
/// becomes `refunded` once nothing of it remains.
pub async fn settle(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    provider_refund_id: Option<String>,
) -> DomainResult<Option<refunds::Model>> {
    let Some(done) = transition(txn, refund, RefundStatus::Completed, provider_refund_id, None, None).await?
    else {
        return Ok(None);
    };
    let held = ledger::provider_code(&done.provider, &done.currency, "refunds");
    let clearing = ledger::provider_code(&done.provider, &done.currency, "clearing");
    ledger::transfer(
        txn,
        "refund.settled",
        &format!("refund:{}:settle", done.id),
        done.reason.as_deref(),
        AccountSpec::system(&held, &done.currency),
        AccountSpec::system(&clearing, &done.currency),
        done.amount_minor,
    )
    .await?;
    let payment = close_refunding(txn, &done.payment_id, &done.id).await?;
    let mut event = payload(&payment);
    event["refund"] = refund_payload(&done);
    events::record(
        txn,
        NewEvent {
            merchant_id: &done.merchant_id,
            event_type: "payment.refunded",
            resource_type: "payment",
            resource_id: &done.payment_id,
            payload: event,
        },
    )
    .await?;
    audit::record(
        txn,
        &Actor::default(),
        AuditEvent {
            action: "refund.completed",
            entity_type: "refund",
            entity_id: Some(&done.id),
            details: Some(refund_payload(&done)),
        },
    )
    .await?;
    Ok(Some(done))
}

/// The refund did not happen: the held amount goes back to the merchant and becomes
/// refundable again.
pub async fn fail(
    txn: &DatabaseTransaction,
    refund: &refunds::Model,
    to: RefundStatus,
    reason: &str,
) -> DomainResult<Option<refunds::Model>> {
    let Some(done) = transition(txn, refund, to, None, Some(reason.to_owned()), None).await? else {
        return Ok(None);
    };
    let held = ledger::provider_code(&done.provider, &done.currency, "refunds");
    let merchant = ledger::merchant_code(&done.merchant_id, &done.currency);
    ledger::transfer(
        txn,
        "refund.released",
        &format!("refund:{}:release:{}", done.id, done.attempt),
        None,
        AccountSpec::system(&held, &done.currency),
        AccountSpec::merchant(&merchant, &done.merchant_id, &done.currency),
        done.amount_minor,
    )
    .await?;
    payments::Entity::update_many()
        .col_expr(
            payments::Column::RefundedMinor,
            Expr::col(payments::Column::RefundedMinor).sub(done.amount_minor),
        )
        .filter(payments::Column::Id.eq(&done.payment_id))
        .exec(txn)
        .await?;
    close_refunding(txn, &done.payment_id, &done.id).await?;
    audit::record(
        txn,
        &Actor::default(),
        AuditEvent {
            action: "refund.failed",
            entity_type: "refund",
            entity_id: Some(&done.id),
            details: Some(json!({ "status": done.status, "reason": reason })),
        },
    )
    .await?;
    Ok(Some(done))
}

/// Once no refund of the payment is open, a `refunding` payment becomes `refunded` if nothing
/// remains refundable, else `completed` again.
async fn close_refunding(
    txn: &DatabaseTransaction,
    payment_id: &str,
    closed_refund_id: &str,
) -> DomainResult<payments::Model> {
    let open = refunds::Entity::find()
        .filter(refunds::Column::PaymentId.eq(payment_id))
        .filter(refunds::Column::Id.ne(closed_refund_id))
        .filter(refunds::Column::Status.is_in(RefundStatus::OPEN))
        .count(txn)
        .await?;
    let payment =
        payments::Entity::find_by_id(payment_id).one(txn).await?.ok_or(DomainError::NotFound("payment"))?;
    if open > 0 || payment.status != PaymentStatus::Refunding {
        return Ok(payment);
    }
    let to = if payment.refunded_minor >= payment.amount_minor {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::Completed
    };
    payments::Entity::update_many()
        .col_expr(payments::Column::Status, Expr::value(to))
        .col_expr(payments::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payments::Column::Id.eq(payment_id))
        .filter(payments::Column::Status.eq(PaymentStatus::Refunding))
        .exec(txn)
        .await?;
    payments::Entity::find_by_id(payment_id).one(txn).await?.ok_or(DomainError::NotFound("payment"))
}
