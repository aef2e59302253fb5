//! Wallet transactions. A purchase debits the wallet when it is requested, so concurrent
//! purchases can never overdraw it; the debit waits in a held account until the aggregator
//! delivers (it then settles to the aggregator) or refuses (it then goes back to the wallet).
//! A funding moves nothing until OnePipe confirms the transfer, and is credited once.

use chrono::{FixedOffset, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Select,
    sea_query::Expr,
};
use serde_json::{Value, json};
use ultra_entity::maxtera_transactions::{self, MaxteraKind, MaxteraStatus};

use super::{CURRENCY, catalogue::Network};
use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    ledger::{self, AccountSpec},
};

/// What a purchase request names besides its kind and amount.
pub struct NewPurchase {
    pub kind: MaxteraKind,
    pub amount_minor: i64,
    pub network: Option<Network>,
    /// The number topped up, or for a bill the customer's own, which the aggregator requires.
    pub phone: String,
    pub plan: Option<String>,
    pub service: Option<String>,
    pub service_id: String,
    pub variation_code: Option<String>,
    pub billers_code: Option<String>,
}

/// The code of a customer's wallet, which can never go below zero.
pub fn wallet_code(user_id: &str) -> String {
    format!("customer:{user_id}:{CURRENCY}:wallet")
}

fn wallet<'a>(code: &'a str, user_id: &'a str) -> AccountSpec<'a> {
    AccountSpec { code, owner_id: Some(user_id), currency: CURRENCY, allow_negative: false }
}

/// Where purchases wait between the debit and the aggregator's answer.
fn held_code() -> String {
    format!("maxtera:{CURRENCY}:purchases_held")
}

/// The wallet's balance in kobo; zero before its first movement.
pub async fn balance(db: &impl ConnectionTrait, user_id: &str) -> DomainResult<i64> {
    Ok(ledger::find_account(db, &wallet_code(user_id)).await?.map_or(0, |account| account.balance_minor))
}

/// The reference a customer sees, in the seed's forms. Made from the id, so unique without a
/// counter; airtime carries the Lagos date the purchase was made on.
fn reference_of(row: &maxtera_transactions::Model) -> String {
    let network = row.network.as_deref().unwrap_or("VTU");
    match row.kind {
        MaxteraKind::Funding => format!("MPX-{:08}", row.id),
        MaxteraKind::Airtime => {
            let lagos = FixedOffset::east_opt(3600).expect("a one-hour offset is valid");
            format!("{network}-{}-{:03}", row.created_at.with_timezone(&lagos).format("%Y%m%d"), row.id)
        }
        MaxteraKind::Data => format!("{network}-DATA-{:03}", row.id),
        MaxteraKind::Bills => format!("BILL-{:04}", row.id),
    }
}

async fn insert(
    txn: &DatabaseTransaction,
    row: maxtera_transactions::ActiveModel,
) -> DomainResult<maxtera_transactions::Model> {
    let mut inserted = row.insert(txn).await?;
    let reference = reference_of(&inserted);
    maxtera_transactions::Entity::update_many()
        .col_expr(maxtera_transactions::Column::Reference, Expr::value(reference.clone()))
        .filter(maxtera_transactions::Column::Id.eq(inserted.id))
        .exec(txn)
        .await?;
    inserted.reference = Some(reference);
    Ok(inserted)
}

fn new_row(user_id: &str, kind: MaxteraKind, amount_minor: i64) -> maxtera_transactions::ActiveModel {
    let now = Utc::now();
    maxtera_transactions::ActiveModel {
        user_id: sea_orm::Set(user_id.to_owned()),
        kind: sea_orm::Set(kind),
        status: sea_orm::Set(MaxteraStatus::Pending),
        amount_minor: sea_orm::Set(amount_minor),
        currency: sea_orm::Set(CURRENCY.to_owned()),
        created_at: sea_orm::Set(now),
        updated_at: sea_orm::Set(now),
        ..Default::default()
    }
}

/// Writes the purchase and debits the wallet; fails with `InsufficientFunds` (and nothing
/// written, once the caller rolls back) when the balance does not cover it.
pub async fn open_purchase(
    txn: &DatabaseTransaction,
    user_id: &str,
    new: NewPurchase,
) -> DomainResult<maxtera_transactions::Model> {
    let mut row = new_row(user_id, new.kind, new.amount_minor);
    row.network = sea_orm::Set(new.network.map(|n| n.name().to_owned()));
    row.phone = sea_orm::Set(Some(new.phone));
    row.plan = sea_orm::Set(new.plan);
    row.service = sea_orm::Set(new.service);
    row.service_id = sea_orm::Set(Some(new.service_id));
    row.variation_code = sea_orm::Set(new.variation_code);
    row.billers_code = sea_orm::Set(new.billers_code);
    let purchase = insert(txn, row).await?;
    let code = wallet_code(user_id);
    ledger::transfer(
        txn,
        "maxtera.purchase",
        &format!("maxtera:{}:debit", purchase.id),
        purchase.reference.as_deref(),
        wallet(&code, user_id),
        AccountSpec::system(&held_code(), CURRENCY),
        purchase.amount_minor,
    )
    .await?;
    Ok(purchase)
}

/// Writes a funding awaiting the customer's transfer; nothing moves until OnePipe confirms it.
pub async fn open_funding(
    txn: &DatabaseTransaction,
    user_id: &str,
    amount_minor: i64,
) -> DomainResult<maxtera_transactions::Model> {
    insert(txn, new_row(user_id, MaxteraKind::Funding, amount_minor)).await
}

pub async fn find(db: &impl ConnectionTrait, id: i64) -> DomainResult<maxtera_transactions::Model> {
    maxtera_transactions::Entity::find_by_id(id).one(db).await?.ok_or(DomainError::NotFound("transaction"))
}

/// A transaction by its reference, for provider notifications, which name only that.
pub async fn by_reference(
    db: &impl ConnectionTrait,
    reference: &str,
) -> DomainResult<Option<maxtera_transactions::Model>> {
    Ok(maxtera_transactions::Entity::find()
        .filter(maxtera_transactions::Column::Reference.eq(reference))
        .one(db)
        .await?)
}

/// `user_id`'s transactions; another customer's are simply not there.
pub fn of_user(user_id: &str) -> Select<maxtera_transactions::Entity> {
    maxtera_transactions::Entity::find().filter(maxtera_transactions::Column::UserId.eq(user_id))
}

pub async fn set_job(db: &impl ConnectionTrait, id: i64, job_id: &str) -> DomainResult<()> {
    update(db, id, [(maxtera_transactions::Column::JobId, Expr::value(job_id))]).await
}

/// Records the aggregator request id a purchase is about to be sent under, before the call:
/// a retry after a lost answer then asks about that request instead of buying again.
pub async fn mark_sent(db: &impl ConnectionTrait, id: i64, request_id: &str) -> DomainResult<()> {
    update(
        db,
        id,
        [
            (maxtera_transactions::Column::ProviderRequestId, Expr::value(request_id)),
            (maxtera_transactions::Column::SentAt, Expr::value(Utc::now())),
        ],
    )
    .await
}

/// Keeps what the provider said the customer needs (a funding's account to transfer to, a
/// bill's customer name) while the transaction is still open.
pub async fn set_details(db: &impl ConnectionTrait, id: i64, details: Value) -> DomainResult<()> {
    update(db, id, [(maxtera_transactions::Column::Details, Expr::value(details))]).await
}

async fn update<const N: usize>(
    db: &impl ConnectionTrait,
    id: i64,
    columns: [(maxtera_transactions::Column, sea_orm::sea_query::SimpleExpr); N],
) -> DomainResult<()> {
    let mut update = maxtera_transactions::Entity::update_many()
        .col_expr(maxtera_transactions::Column::UpdatedAt, Expr::value(Utc::now()));
    for (column, value) in columns {
        update = update.col_expr(column, value);
    }
    update.filter(maxtera_transactions::Column::Id.eq(id)).exec(db).await?;
    Ok(())
}

/// Moves a pending transaction to `to`; `None` if another run already finished it, which is
/// what makes every credit and refund happen once.
async fn finish(
    txn: &DatabaseTransaction,
    row: &maxtera_transactions::Model,
    to: MaxteraStatus,
    provider_reference: Option<String>,
    failure_reason: Option<String>,
) -> DomainResult<Option<maxtera_transactions::Model>> {
    let now = Utc::now();
    let updated = maxtera_transactions::Entity::update_many()
        .col_expr(maxtera_transactions::Column::Status, Expr::value(to))
        .col_expr(maxtera_transactions::Column::ProviderReference, Expr::value(provider_reference))
        .col_expr(maxtera_transactions::Column::FailureReason, Expr::value(failure_reason))
        .col_expr(maxtera_transactions::Column::CompletedAt, Expr::value(now))
        .col_expr(maxtera_transactions::Column::UpdatedAt, Expr::value(now))
        .filter(maxtera_transactions::Column::Id.eq(row.id))
        .filter(maxtera_transactions::Column::Status.eq(MaxteraStatus::Pending))
        .exec(txn)
        .await?;
    if updated.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Some(find(txn, row.id).await?))
}

/// The aggregator delivered: the held debit settles to it. `details` adds what the customer
/// needs to keep (an electricity token) to what the row already holds.
pub async fn deliver(
    txn: &DatabaseTransaction,
    row: &maxtera_transactions::Model,
    provider_reference: Option<String>,
    details: Option<Value>,
) -> DomainResult<Option<maxtera_transactions::Model>> {
    if row.kind == MaxteraKind::Funding {
        return Err(DomainError::Internal("a funding is credited, not delivered".into()));
    }
    let Some(mut done) = finish(txn, row, MaxteraStatus::Success, provider_reference, None).await? else {
        return Ok(None);
    };
    if let Some(details) = details {
        let merged = merge(done.details.take(), details);
        set_details(txn, done.id, merged.clone()).await?;
        done.details = Some(merged);
    }
    ledger::transfer(
        txn,
        "maxtera.purchase_settled",
        &format!("maxtera:{}:settle", done.id),
        done.reference.as_deref(),
        AccountSpec::system(&held_code(), CURRENCY),
        AccountSpec::system(&ledger::provider_code("vtpass", CURRENCY, "clearing"), CURRENCY),
        done.amount_minor,
    )
    .await?;
    audited(txn, &done, "maxtera.purchase_delivered").await?;
    Ok(Some(done))
}

/// OnePipe confirmed the transfer: the wallet is credited with what arrived, once.
pub async fn credit(
    txn: &DatabaseTransaction,
    row: &maxtera_transactions::Model,
    provider_reference: Option<String>,
    received_minor: i64,
) -> DomainResult<Option<maxtera_transactions::Model>> {
    if row.kind != MaxteraKind::Funding || received_minor <= 0 {
        return Err(DomainError::Internal("only a funding with a positive amount is credited".into()));
    }
    let Some(mut done) = finish(txn, row, MaxteraStatus::Success, provider_reference, None).await? else {
        return Ok(None);
    };
    if received_minor != done.amount_minor {
        // The customer sent another amount than invoiced; the wallet gets what arrived.
        let note = serde_json::json!({ "requestedAmountMinor": done.amount_minor });
        let merged = merge(done.details.take(), note);
        update(
            txn,
            done.id,
            [
                (maxtera_transactions::Column::AmountMinor, Expr::value(received_minor)),
                (maxtera_transactions::Column::Details, Expr::value(merged.clone())),
            ],
        )
        .await?;
        done.amount_minor = received_minor;
        done.details = Some(merged);
    }
    let code = wallet_code(&done.user_id);
    ledger::transfer(
        txn,
        "maxtera.funding",
        &format!("maxtera:{}:credit", done.id),
        done.reference.as_deref(),
        AccountSpec::system(&ledger::provider_code("onepipe", CURRENCY, "clearing"), CURRENCY),
        wallet(&code, &done.user_id),
        received_minor,
    )
    .await?;
    audited(txn, &done, "maxtera.funding_credited").await?;
    Ok(Some(done))
}

/// Ends a transaction that did not happen: a purchase's debit goes back to the wallet, once;
/// a funding simply ends, since nothing was credited.
pub async fn fail(
    txn: &DatabaseTransaction,
    row: &maxtera_transactions::Model,
    reason: &str,
) -> DomainResult<Option<maxtera_transactions::Model>> {
    let Some(done) = finish(txn, row, MaxteraStatus::Failed, None, Some(truncate(reason))).await? else {
        return Ok(None);
    };
    if done.kind != MaxteraKind::Funding {
        let code = wallet_code(&done.user_id);
        ledger::transfer(
            txn,
            "maxtera.purchase_refunded",
            &format!("maxtera:{}:refund", done.id),
            Some(reason),
            AccountSpec::system(&held_code(), CURRENCY),
            wallet(&code, &done.user_id),
            done.amount_minor,
        )
        .await?;
    }
    let action = match done.kind {
        MaxteraKind::Funding => "maxtera.funding_failed",
        _ => "maxtera.purchase_failed",
    };
    audited(txn, &done, action).await?;
    Ok(Some(done))
}

/// The end of a wallet transaction in the audit trail, as the platform's own act: the worker
/// that settled it acted on the provider's word, not on anyone's request.
async fn audited(
    txn: &DatabaseTransaction,
    row: &maxtera_transactions::Model,
    action: &str,
) -> DomainResult<()> {
    audit::record(
        txn,
        &Actor::default(),
        AuditEvent {
            action,
            entity_type: "maxtera_transaction",
            entity_id: Some(&row.id.to_string()),
            details: Some(json!({
                "userId": row.user_id,
                "kind": row.kind,
                "amountMinor": row.amount_minor,
                "reference": row.reference,
                "reason": row.failure_reason,
            })),
        },
    )
    .await
}

fn truncate(reason: &str) -> String {
    reason.chars().take(255).collect()
}

fn merge(existing: Option<Value>, extra: Value) -> Value {
    match (existing, extra) {
        (Some(Value::Object(mut base)), Value::Object(more)) => {
            base.extend(more);
            Value::Object(base)
        }
        (_, extra) => extra,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn row(
        id: i64,
        kind: MaxteraKind,
        network: Option<&str>,
        created_at: chrono::DateTime<Utc>,
    ) -> maxtera_transactions::Model {
        maxtera_transactions::Model {
            id,
            user_id: "usr_1".into(),
            kind,
            status: MaxteraStatus::Pending,
            amount_minor: 10_000,
            currency: CURRENCY.into(),
            reference: None,
            network: network.map(str::to_owned),
            phone: None,
            plan: None,
            service: None,
            service_id: None,
            variation_code: None,
            billers_code: None,
            provider_request_id: None,
            provider_reference: None,
            details: None,
            failure_reason: None,
            job_id: None,
            sent_at: None,
            completed_at: None,
            created_at,
            updated_at: created_at,
        }
    }

    #[test]
    fn references_take_the_seeds_forms() {
        let noon = Utc.with_ymd_and_hms(2025, 1, 30, 12, 0, 0).unwrap();
        assert_eq!(reference_of(&row(42, MaxteraKind::Funding, None, noon)), "MPX-00000042");
        assert_eq!(reference_of(&row(1, MaxteraKind::Airtime, Some("MTN"), noon)), "MTN-20250130-001");
        assert_eq!(reference_of(&row(1, MaxteraKind::Data, Some("AIRTEL"), noon)), "AIRTEL-DATA-001");
        assert_eq!(reference_of(&row(4567, MaxteraKind::Bills, None, noon)), "BILL-4567");
    }

    #[test]
    fn airtime_references_carry_the_lagos_date() {
        // 23:30 UTC is already the next day in Lagos (UTC+1).
        let late = Utc.with_ymd_and_hms(2025, 1, 30, 23, 30, 0).unwrap();
        assert_eq!(reference_of(&row(7, MaxteraKind::Airtime, Some("GLO"), late)), "GLO-20250131-007");
    }
}
