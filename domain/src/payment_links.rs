//! Payment links: how many payments a link may still take, and what a payment through one does
//! to it when it ends.
//!
//! A payer holds one of the link's uses from the moment the payment starts (`reserved_count`)
//! until it ends: completed payments turn it into a use (`uses_count`), others give it back.
//! Both moves are conditional updates of the link's row, so concurrent payers can never complete
//! more than `max_uses` payments between them.
//!
//! Holding is what an anonymous payer could abuse, starting payments with numbers that never
//! confirm until the link shows depleted. So a checkout payment holds its use for a short time
//! only (`checkoutHoldSeconds`), one number holds at most one use of a link at a time, and
//! payments started per link are rate-limited besides those per client IP.

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, SimpleExpr},
};
use serde_json::{Value, json};
use ultra_entity::{
    payment_links::{self, PaymentLinkStatus},
    payments::{self, PaymentStatus},
};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    events::{self, NewEvent},
    ids,
    money::format_amount,
};

pub fn new_id() -> String {
    ids::new_id("plink")
}

/// The status a reader should see: an active link past its expiry is expired even before the
/// schedule that flips it has run.
pub fn effective_status(link: &payment_links::Model, now: DateTime<Utc>) -> PaymentLinkStatus {
    match link.expires_at {
        Some(at) if link.status == PaymentLinkStatus::Active && at <= now => PaymentLinkStatus::Expired,
        _ => link.status,
    }
}

/// Uses a payer could still take: `None` when the link has no limit.
pub fn remaining_uses(link: &payment_links::Model) -> Option<i32> {
    link.max_uses.map(|max| Ord::max(max - link.uses_count - link.reserved_count, 0))
}

/// Takes one use of the link for a payment about to start, in the transaction that writes the
/// payment. Refuses, naming why, a link that is disabled, expired or out of uses.
pub async fn reserve(db: &impl ConnectionTrait, id: &str, now: DateTime<Utc>) -> DomainResult<()> {
    let has_room = Condition::any().add(payment_links::Column::MaxUses.is_null()).add(
        Expr::col(payment_links::Column::UsesCount)
            .add(Expr::col(payment_links::Column::ReservedCount))
            .lt(Expr::col(payment_links::Column::MaxUses)),
    );
    let not_expired = Condition::any()
        .add(payment_links::Column::ExpiresAt.is_null())
        .add(payment_links::Column::ExpiresAt.gt(now));
    let taken = payment_links::Entity::update_many()
        .col_expr(
            payment_links::Column::ReservedCount,
            Expr::col(payment_links::Column::ReservedCount).add(1),
        )
        .col_expr(payment_links::Column::UpdatedAt, Expr::value(now))
        .filter(payment_links::Column::Id.eq(id))
        .filter(payment_links::Column::Status.eq(PaymentLinkStatus::Active))
        .filter(not_expired)
        .filter(has_room)
        .exec(db)
        .await?;
    if taken.rows_affected == 1 {
        return Ok(());
    }
    let link =
        payment_links::Entity::find_by_id(id).one(db).await?.ok_or(DomainError::NotFound("payment link"))?;
    Err(refusal(&link, now))
}

/// Refuses a second pending payment from the same number on one link: one number holds at
/// most one of a link's uses at a time, so a payer cannot take them all with one phone.
pub async fn refuse_second_hold(db: &impl ConnectionTrait, link_id: &str, phone: &str) -> DomainResult<()> {
    let waiting = payments::Entity::find()
        .filter(payments::Column::PaymentLinkId.eq(link_id))
        .filter(payments::Column::CustomerPhone.eq(phone))
        .filter(payments::Column::Status.eq(PaymentStatus::Pending))
        .one(db)
        .await?;
    match waiting {
        None => Ok(()),
        Some(_) => Err(DomainError::Conflict {
            code: "payment_in_progress",
            message: "this number already has a payment waiting on this link: confirm it on the phone, \
                      or wait until it ends"
                .to_owned(),
        }),
    }
}

/// Why a payer cannot use `link` now.
pub fn refusal(link: &payment_links::Model, now: DateTime<Utc>) -> DomainError {
    match effective_status(link, now) {
        PaymentLinkStatus::Disabled => DomainError::Conflict {
            code: "payment_link_disabled",
            message: "this payment link has been disabled by the merchant".to_owned(),
        },
        PaymentLinkStatus::Expired => DomainError::Conflict {
            code: "payment_link_expired",
            message: "this payment link has expired".to_owned(),
        },
        PaymentLinkStatus::Depleted | PaymentLinkStatus::Active => {
            let max = link.max_uses.unwrap_or_default();
            let message = if link.reserved_count > 0 && link.uses_count < max {
                format!(
                    "this payment link is depleted: {} of its {max} uses are paid and {} are being paid; \
                     a use frees up if one of those payments fails",
                    link.uses_count, link.reserved_count
                )
            } else {
                format!("this payment link is depleted: all {max} of its uses are paid")
            };
            DomainError::Conflict { code: "payment_link_depleted", message }
        }
    }
}

/// What happens to the link when a payment made through it ends, in the transaction that ends
/// the payment: a completed payment turns its held use into a paid one (depleting the link on
/// the last) and records `payment_link.paid`; any other end gives the use back.
pub async fn payment_ended(db: &impl ConnectionTrait, payment: &payments::Model) -> DomainResult<()> {
    let Some(link_id) = payment.payment_link_id.as_deref() else {
        return Ok(());
    };
    let released = Expr::col(payment_links::Column::ReservedCount).sub(1);
    let mut update = payment_links::Entity::update_many()
        .col_expr(payment_links::Column::ReservedCount, released)
        .col_expr(payment_links::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payment_links::Column::Id.eq(link_id))
        .filter(payment_links::Column::ReservedCount.gt(0));
    let completed = payment.status == payments::PaymentStatus::Completed;
    if completed {
        let uses = Expr::col(payment_links::Column::UsesCount).add(1);
        let depleted: SimpleExpr = Expr::case(
            Condition::all()
                .add(payment_links::Column::Status.eq(PaymentLinkStatus::Active))
                .add(payment_links::Column::MaxUses.is_not_null())
                .add(
                    Expr::col(payment_links::Column::UsesCount)
                        .add(1)
                        .gte(Expr::col(payment_links::Column::MaxUses)),
                ),
            Expr::value(PaymentLinkStatus::Depleted),
        )
        .finally(Expr::col(payment_links::Column::Status))
        .into();
        update = update
            .col_expr(payment_links::Column::UsesCount, uses)
            .col_expr(payment_links::Column::Status, depleted);
    }
    update.exec(db).await?;
    if !completed {
        return Ok(());
    }
    let link = payment_links::Entity::find_by_id(link_id).one(db).await?;
    audit::record(
        db,
        &Actor::default(),
        AuditEvent {
            action: "payment_link.paid",
            entity_type: "payment_link",
            entity_id: Some(link_id),
            details: Some(
                json!({ "paymentId": payment.id, "usesCount": link.as_ref().map(|l| l.uses_count) }),
            ),
        },
    )
    .await?;
    events::record(
        db,
        NewEvent {
            merchant_id: &payment.merchant_id,
            event_type: "payment_link.paid",
            resource_type: "payment_link",
            resource_id: link_id,
            payload: paid_payload(link.as_ref(), payment),
        },
    )
    .await?;
    Ok(())
}

fn paid_payload(link: Option<&payment_links::Model>, payment: &payments::Model) -> Value {
    json!({
        "paymentLinkId": payment.payment_link_id,
        "title": link.map(|l| l.title.clone()),
        "status": link.map(|l| l.status),
        "usesCount": link.map(|l| l.uses_count),
        "maxUses": link.and_then(|l| l.max_uses),
        "payment": {
            "id": payment.id,
            "provider": payment.provider,
            "amount": format_amount(payment.amount_minor),
            "currency": payment.currency,
            "reference": payment.reference,
            "providerTransactionId": payment.provider_transaction_id,
            "completedAt": payment.completed_at,
        },
    })
}

/// Flips active links past their expiry to `expired`; the number flipped.
pub async fn expire_due(db: &impl ConnectionTrait, now: DateTime<Utc>) -> DomainResult<u64> {
    let flipped = payment_links::Entity::update_many()
        .col_expr(payment_links::Column::Status, Expr::value(PaymentLinkStatus::Expired))
        .col_expr(payment_links::Column::UpdatedAt, Expr::value(now))
        .filter(payment_links::Column::Status.eq(PaymentLinkStatus::Active))
        .filter(payment_links::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?;
    Ok(flipped.rows_affected)
}
