//! Sellapay transaction ids: one per STK push or payout, in the `TXN-<unix seconds>-<digits>`
//! form the Sellapay document shows, listed together so a client pages one history.

use chrono::Utc;
use rand::Rng;
use sea_orm::{ActiveModelTrait, DatabaseTransaction, EntityTrait, sea_query::OnConflict};
use ultra_entity::sellapay_transactions::{self, TransactionKind};

use crate::{DomainError, DomainResult};

fn new_id() -> String {
    format!("TXN-{}-{:05}", Utc::now().timestamp(), rand::rng().random_range(0..100_000))
}

/// Gives the payment or payout `resource_id` a transaction id. The ids are short, so one that
/// clashes with another made in the same second draws again.
pub async fn open(
    txn: &DatabaseTransaction,
    merchant_id: &str,
    kind: TransactionKind,
    resource_id: &str,
) -> DomainResult<String> {
    let (payment_id, payout_id) = match kind {
        TransactionKind::StkPush => (Some(resource_id.to_owned()), None),
        TransactionKind::Payout => (None, Some(resource_id.to_owned())),
    };
    for _ in 0..5 {
        let row = sellapay_transactions::Model {
            transaction_id: new_id(),
            merchant_id: merchant_id.to_owned(),
            kind,
            payment_id: payment_id.clone(),
            payout_id: payout_id.clone(),
            created_at: Utc::now(),
        };
        let inserted = sellapay_transactions::Entity::insert(
            sellapay_transactions::ActiveModel::from(row.clone()).reset_all(),
        )
        .on_conflict(OnConflict::column(sellapay_transactions::Column::TransactionId).do_nothing().to_owned())
        .exec_without_returning(txn)
        .await?;
        if inserted == 1 {
            return Ok(row.transaction_id);
        }
    }
    Err(DomainError::Internal("no free transaction id".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_documented_form() {
        let id = new_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0], "TXN");
        assert!(parts[1].parse::<i64>().is_ok() && parts[2].len() == 5, "{id}");
    }
}
