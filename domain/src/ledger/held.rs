//! Credits held back until the end of a transaction that commits many effects at once.
//!
//! A worker commits up to a few dozen job effects in one transaction, several such
//! transactions at a time. Were each effect to update its merchant's balance as it runs, two
//! transactions crediting two merchants in opposite orders would deadlock, and every payment
//! of a busy merchant would hold that merchant's row until its whole group commits. A change
//! that cannot fail (a credit to an account that may not go negative) is therefore held while
//! the group runs, summed per account, and applied at its end, one update per account in
//! account-id order: every group then locks balances in one global order, for the shortest
//! time. A debit still applies at once, since it must be checked against the balance.

use std::{cell::RefCell, collections::BTreeMap, future::Future};

use chrono::Utc;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use ultra_entity::ledger_accounts;

tokio::task_local! {
    static HELD: RefCell<BTreeMap<String, i64>>;
}

/// Runs `work` with credits held: [`crate::ledger::post`] called inside it leaves credits to
/// be applied by [`apply`].
pub async fn holding<F: Future>(work: F) -> F::Output {
    HELD.scope(RefCell::new(BTreeMap::new()), work).await
}

/// Holds `amount_minor` for `account_id` if credits are being held here; otherwise returns
/// false and the caller applies it at once.
pub(super) fn hold(account_id: &str, amount_minor: i64) -> bool {
    HELD.try_with(|held| *held.borrow_mut().entry(account_id.to_owned()).or_default() += amount_minor).is_ok()
}

/// The credits held so far, to return to with [`restore`] when an effect is rolled back to
/// its savepoint.
pub fn mark() -> BTreeMap<String, i64> {
    HELD.try_with(|held| held.borrow().clone()).unwrap_or_default()
}

pub fn restore(mark: BTreeMap<String, i64>) {
    let _ = HELD.try_with(|held| *held.borrow_mut() = mark);
}

/// Applies and clears the credits held, in account-id order, in `txn`.
pub async fn apply(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    let held = HELD.try_with(|held| std::mem::take(&mut *held.borrow_mut())).unwrap_or_default();
    let now = Utc::now();
    for (account_id, amount_minor) in held {
        use ledger_accounts::Column;
        ledger_accounts::Entity::update_many()
            .col_expr(Column::BalanceMinor, Expr::col(Column::BalanceMinor).add(amount_minor))
            .col_expr(Column::UpdatedAt, Expr::value(now))
            .filter(Column::Id.eq(account_id))
            .exec(txn)
            .await?;
    }
    Ok(())
}
