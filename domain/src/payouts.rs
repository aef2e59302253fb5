//! Payouts: the amount is reserved out of the merchant's balance when the payout is requested,
//! so concurrent requests can never overdraw it; success settles the reservation to where the
//! money went, failure releases it back.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    sea_query::Expr,
};
use serde_json::{Value, json};
use ultra_entity::{
    payouts::{self, PayoutKind, PayoutStatus},
    sellapay_transactions::TransactionKind,
};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    events::{self, NewEvent},
    ids,
    ledger::{self, AccountSpec},
    money::format_amount,
    sellapay_transactions,
};

pub const CURRENCY: &str = "KES";

/// What a payout request names besides its kind and amount.
#[derive(Default)]
pub struct Destination {
    pub phone: Option<String>,
    pub recipient_account: Option<String>,
    pub recipient_id: Option<String>,
    pub bank_code: Option<String>,
    pub account_number: Option<String>,
    pub account_name: Option<String>,
}

pub struct NewPayout {
    pub kind: PayoutKind,
    pub amount_minor: i64,
    pub destination: Destination,
    pub reference: Option<String>,
    pub narrative: Option<String>,
}

/// The system account holding reserved payouts until they settle or are released.
fn held_code() -> String {
    format!("payouts:{CURRENCY}:held")
}

/// Writes the payout, gives it a Sellapay transaction id and reserves its amount; fails with
/// `InsufficientFunds` (and nothing written, once the caller rolls back) when the balance does
/// not cover it.
pub async fn create(
    txn: &DatabaseTransaction,
    merchant_id: &str,
    new: NewPayout,
) -> DomainResult<payouts::Model> {
    let now = Utc::now();
    let id = ids::new_id("po");
    let transaction_id = sellapay_transactions::open(txn, merchant_id, TransactionKind::Payout, &id).await?;
    let destination = new.destination;
    let row = payouts::Model {
        id: id.clone(),
        merchant_id: merchant_id.to_owned(),
        transaction_id,
        kind: new.kind,
        status: PayoutStatus::Pending,
        amount_minor: new.amount_minor,
        currency: CURRENCY.to_owned(),
        phone: destination.phone,
        recipient_account: destination.recipient_account,
        recipient_id: destination.recipient_id,
        bank_code: destination.bank_code,
        account_number: destination.account_number,
        account_name: destination.account_name,
        reference: new.reference,
        narrative: new.narrative,
        provider_reference: None,
        failure_reason: None,
        job_id: None,
        sent_at: None,
        provider_handle: None,
        completed_at: None,
        created_at: now,
        updated_at: now,
    };
    payouts::ActiveModel::from(row.clone()).reset_all().insert(txn).await?;
    let merchant = ledger::merchant_code(merchant_id, CURRENCY);
    ledger::transfer(
        txn,
        "payout.reserved",
        &format!("payout:{id}:reserve"),
        row.narrative.as_deref(),
        AccountSpec::merchant(&merchant, merchant_id, CURRENCY),
        AccountSpec::system(&held_code(), CURRENCY),
        row.amount_minor,
    )
    .await?;
    Ok(row)
}

pub async fn find(db: &impl ConnectionTrait, id: &str) -> DomainResult<payouts::Model> {
    payouts::Entity::find_by_id(id).one(db).await?.ok_or(DomainError::NotFound("payout"))
}

pub async fn set_job(db: &impl ConnectionTrait, id: &str, job_id: &str) -> DomainResult<()> {
    payouts::Entity::update_many()
        .col_expr(payouts::Column::JobId, Expr::value(job_id))
        .filter(payouts::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Records that the payout is about to go to its rail, before the call: a retry after a lost
/// answer must then assume the rail may have it.
pub async fn mark_sent(db: &impl ConnectionTrait, id: &str) -> DomainResult<()> {
    payouts::Entity::update_many()
        .col_expr(payouts::Column::SentAt, Expr::value(Utc::now()))
        .filter(payouts::Column::Id.eq(id))
        .filter(payouts::Column::SentAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The rail has accepted the payout and is moving the money; `handle` is its id for it, when
/// its answer gave one.
pub async fn mark_processing(
    txn: &DatabaseTransaction,
    payout: &payouts::Model,
    handle: Option<String>,
) -> DomainResult<payouts::Model> {
    let mut update = payouts::Entity::update_many()
        .col_expr(payouts::Column::Status, Expr::value(PayoutStatus::Processing))
        .col_expr(payouts::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(handle) = handle {
        update = update.col_expr(payouts::Column::ProviderHandle, Expr::value(handle));
    }
    update
        .filter(payouts::Column::Id.eq(&payout.id))
        .filter(payouts::Column::Status.is_in(PayoutStatus::OPEN))
        .exec(txn)
        .await?;
    find(txn, &payout.id).await
}

/// Holds a payout whose outcome the rail cannot tell: the amount stays reserved until the
/// rail's answer or an operator resolves it. Records `payout.unknown`.
pub async fn hold_unknown(
    txn: &DatabaseTransaction,
    payout: &payouts::Model,
    reason: &str,
) -> DomainResult<Option<payouts::Model>> {
    let updated = payouts::Entity::update_many()
        .col_expr(payouts::Column::Status, Expr::value(PayoutStatus::Unknown))
        .col_expr(payouts::Column::FailureReason, Expr::value(reason))
        .col_expr(payouts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payouts::Column::Id.eq(&payout.id))
        .filter(payouts::Column::Status.is_in([PayoutStatus::Pending, PayoutStatus::Processing]))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    let held = find(txn, &payout.id).await?;
    record(txn, &held, "payout.unknown").await?;
    Ok(Some(held))
}

/// Settles a payout held as `unknown` on an operator's word (`sent`: the money left, and the
/// reservation settles; otherwise it is released), audited as `payout.resolved`.
pub async fn resolve(
    txn: &DatabaseTransaction,
    payout: &payouts::Model,
    actor: &Actor,
    sent: bool,
    note: &str,
) -> DomainResult<payouts::Model> {
    let not_unknown = || DomainError::Conflict {
        code: "payout_not_unknown",
        message: "only an unknown payout can be resolved, and this one is not (or no longer)".to_owned(),
    };
    if payout.status != PayoutStatus::Unknown {
        return Err(not_unknown());
    }
    let resolved = if sent {
        complete(txn, payout, None).await?
    } else {
        fail(txn, payout, &format!("resolved as not sent: {note}")).await?
    };
    let resolved = resolved.ok_or_else(not_unknown)?;
    audit::record(
        txn,
        actor,
        AuditEvent {
            action: "payout.resolved",
            entity_type: "payout",
            entity_id: Some(&resolved.id),
            details: Some(json!({ "sent": sent, "status": resolved.status, "note": note })),
        },
    )
    .await?;
    Ok(resolved)
}

/// Moves an open payout to `to`; `None` if another run already finished it.
async fn finish(
    txn: &DatabaseTransaction,
    payout: &payouts::Model,
    to: PayoutStatus,
    provider_reference: Option<String>,
    failure_reason: Option<String>,
) -> DomainResult<Option<payouts::Model>> {
    let now = Utc::now();
    let updated = payouts::Entity::update_many()
        .col_expr(payouts::Column::Status, Expr::value(to))
        .col_expr(payouts::Column::ProviderReference, Expr::value(provider_reference))
        .col_expr(payouts::Column::FailureReason, Expr::value(failure_reason))
        .col_expr(payouts::Column::CompletedAt, Expr::value(now))
        .col_expr(payouts::Column::UpdatedAt, Expr::value(now))
        .filter(payouts::Column::Id.eq(&payout.id))
        .filter(payouts::Column::Status.is_in(PayoutStatus::OPEN))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Some(find(txn, &payout.id).await?))
}

/// Settles the reservation to where the money went.
pub async fn complete(
    txn: &DatabaseTransaction,
    payout: &payouts::Model,
    provider_reference: Option<String>,
) -> DomainResult<Option<payouts::Model>> {
    let Some(done) = finish(txn, payout, PayoutStatus::Completed, provider_reference, None).await? else {
        return Ok(None);
    };
    let held = held_code();
    let recipient = match done.kind {
        PayoutKind::Sellapay => {
            Some(done.recipient_id.clone().ok_or(DomainError::NotFound("recipient account"))?)
        }
        PayoutKind::Mobile | PayoutKind::Bank => None,
    };
    let code = match (&recipient, done.kind) {
        (Some(recipient), _) => ledger::merchant_code(recipient, CURRENCY),
        (None, PayoutKind::Mobile) => ledger::provider_code("mpesa", CURRENCY, "clearing"),
        (None, _) => ledger::provider_code("bank", CURRENCY, "clearing"),
    };
    let to = match &recipient {
        Some(recipient) => AccountSpec::merchant(&code, recipient, CURRENCY),
        None => AccountSpec::system(&code, CURRENCY),
    };
    ledger::transfer(
        txn,
        "payout.settled",
        &format!("payout:{}:settle", done.id),
        done.narrative.as_deref(),
        AccountSpec::system(&held, CURRENCY),
        to,
        done.amount_minor,
    )
    .await?;
    record(txn, &done, "payout.completed").await?;
    Ok(Some(done))
}

/// Releases the reservation back to the merchant's balance.
pub async fn fail(
    txn: &DatabaseTransaction,
    payout: &payouts::Model,
    reason: &str,
) -> DomainResult<Option<payouts::Model>> {
    let Some(done) = finish(txn, payout, PayoutStatus::Failed, None, Some(reason.to_owned())).await? else {
        return Ok(None);
    };
    let held = held_code();
    let merchant = ledger::merchant_code(&done.merchant_id, CURRENCY);
    ledger::transfer(
        txn,
        "payout.released",
        &format!("payout:{}:release", done.id),
        Some(reason),
        AccountSpec::system(&held, CURRENCY),
        AccountSpec::merchant(&merchant, &done.merchant_id, CURRENCY),
        done.amount_minor,
    )
    .await?;
    record(txn, &done, "payout.failed").await?;
    Ok(Some(done))
}

pub fn payload(payout: &payouts::Model) -> Value {
    json!({
        "id": payout.id,
        "transactionId": payout.transaction_id,
        "kind": payout.kind,
        "status": payout.status,
        "amount": format_amount(payout.amount_minor),
        "currency": payout.currency,
        "reference": payout.reference,
        "failureReason": payout.failure_reason,
        "completedAt": payout.completed_at,
    })
}

/// Records the payout's end as an event for the merchant's webhooks and in the audit trail.
async fn record(txn: &DatabaseTransaction, payout: &payouts::Model, event: &str) -> DomainResult<()> {
    events::record(
        txn,
        NewEvent {
            merchant_id: &payout.merchant_id,
            event_type: event,
            resource_type: "payout",
            resource_id: &payout.id,
            payload: payload(payout),
        },
    )
    .await?;
    audit::record(
        txn,
        &Actor::default(),
        AuditEvent {
            action: event,
            entity_type: "payout",
            entity_id: Some(&payout.id),
            details: Some(json!({ "status": payout.status, "reason": payout.failure_reason })),
        },
    )
    .await
}
