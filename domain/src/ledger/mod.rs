//! The double-entry ledger. Money only moves as a balanced entry: postings that sum to zero,
//! written in the caller's transaction together with the balance change of every account.
//!
//! A merchant's (or wallet's) account keeps its balance on its row. A debit is a conditional
//! update (`balance + amount >= 0`), so two concurrent debits can never both spend the same
//! money: on PostgreSQL the second waits for the first's row lock and re-checks the condition;
//! on SQLite writers are serialised by `BEGIN IMMEDIATE` (see [`crate::db::begin_write`]).
//! A credit cannot fail, and inside a group of job effects it is [`held`] to the group's end.
//!
//! A system account (provider clearing, refunds in flight) may go negative, so it has nothing
//! to check; and since every payment posts to its provider's clearing account, a balance kept
//! on that row would be the one row every completion waits on. Its balance is instead the sum
//! of its postings, which are only inserted, and its stored column stays zero.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QuerySelect, Set,
    sea_query::{Expr, ExprTrait, OnConflict},
};
use ultra_entity::{ledger_accounts, ledger_entries, ledger_postings};

use crate::{DomainError, DomainResult, ids};

pub mod held;

pub struct AccountSpec<'a> {
    pub code: &'a str,
    pub owner_id: Option<&'a str>,
    pub currency: &'a str,
    pub allow_negative: bool,
}

impl<'a> AccountSpec<'a> {
    /// A merchant's balance: it can never go below zero.
    pub fn merchant(code: &'a str, merchant_id: &'a str, currency: &'a str) -> Self {
        Self { code, owner_id: Some(merchant_id), currency, allow_negative: false }
    }

    /// A platform account mirroring money held at a provider; a clearing account goes
    /// negative as collections are credited to merchants before the provider settles.
    pub fn system(code: &'a str, currency: &'a str) -> Self {
        Self { code, owner_id: None, currency, allow_negative: true }
    }
}

/// The code of a merchant's spendable balance.
pub fn merchant_code(merchant_id: &str, currency: &str) -> String {
    format!("merchant:{merchant_id}:{currency}:available")
}

/// The code of a provider account: `clearing` for collections, `refunds` for refunds in flight.
pub fn provider_code(provider: &str, currency: &str, purpose: &str) -> String {
    format!("provider:{provider}:{currency}:{purpose}")
}

/// Returns the account with this code, creating it on first use.
pub async fn open_account(
    db: &impl ConnectionTrait,
    spec: AccountSpec<'_>,
) -> DomainResult<ledger_accounts::Model> {
    if let Some(account) = find_account(db, spec.code).await? {
        return Ok(account);
    }
    let now = Utc::now();
    let account = ledger_accounts::ActiveModel {
        id: Set(ids::new_id("acct")),
        code: Set(spec.code.to_owned()),
        owner_id: Set(spec.owner_id.map(str::to_owned)),
        currency: Set(spec.currency.to_owned()),
        balance_minor: Set(0),
        allow_negative: Set(spec.allow_negative),
        created_at: Set(now),
        updated_at: Set(now),
    };
    // Another transaction may open the same account at the same moment; DO NOTHING waits for
    // it and leaves this transaction usable, where a unique violation would abort it.
    ledger_accounts::Entity::insert(account)
        .on_conflict(OnConflict::column(ledger_accounts::Column::Code).do_nothing().to_owned())
        .exec_without_returning(db)
        .await?;
    find_account(db, spec.code).await?.ok_or(DomainError::NotFound("ledger account"))
}

pub async fn find_account(
    db: &impl ConnectionTrait,
    code: &str,
) -> DomainResult<Option<ledger_accounts::Model>> {
    Ok(ledger_accounts::Entity::find().filter(ledger_accounts::Column::Code.eq(code)).one(db).await?)
}

pub struct Posting<'a> {
    pub account_id: &'a str,
    pub amount_minor: i64,
}

pub struct Entry<'a> {
    pub kind: &'a str,
    /// Unique per business event, so that replaying the event cannot post it twice.
    pub reference: &'a str,
    pub description: Option<&'a str>,
    pub postings: Vec<Posting<'a>>,
}

/// Posts a balanced entry inside `txn`. Fails without effect (once the caller rolls back) if
/// the entry does not balance, a reference was already posted, or a debit would overdraw.
pub async fn post(txn: &DatabaseTransaction, entry: Entry<'_>) -> DomainResult<ledger_entries::Model> {
    if entry.postings.len() < 2 || entry.postings.iter().any(|p| p.amount_minor == 0) {
        return Err(DomainError::validation("postings", "an entry needs at least two non-zero postings"));
    }
    let mut accounts = BTreeMap::new();
    for posting in &entry.postings {
        let account = ledger_accounts::Entity::find_by_id(posting.account_id)
            .one(txn)
            .await?
            .ok_or(DomainError::NotFound("ledger account"))?;
        accounts.insert(account.id.clone(), account);
    }
    let mut sums: BTreeMap<&str, i128> = BTreeMap::new();
    for posting in &entry.postings {
        let currency = accounts[posting.account_id].currency.as_str();
        *sums.entry(currency).or_default() += i128::from(posting.amount_minor);
    }
    if sums.values().any(|sum| *sum != 0) {
        return Err(DomainError::validation("postings", "postings must sum to zero per currency"));
    }

    let now = Utc::now();
    let inserted = ledger_entries::ActiveModel {
        id: Set(ids::new_id("le")),
        kind: Set(entry.kind.to_owned()),
        reference: Set(entry.reference.to_owned()),
        description: Set(entry.description.map(str::to_owned)),
        created_at: Set(now),
    }
    .insert(txn)
    .await
    .map_err(|err| match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => DomainError::Conflict {
            code: "ledger_reference_posted",
            message: format!("ledger entry {} was already posted", entry.reference),
        },
        _ => err.into(),
    })?;

    // Apply balance changes in account-id order so that two entries touching the same accounts
    // lock them in the same order and cannot deadlock.
    let mut postings = entry.postings;
    postings.sort_by(|a, b| a.account_id.cmp(b.account_id));
    for posting in &postings {
        apply(txn, &accounts[posting.account_id], posting.amount_minor).await?;
        ledger_postings::ActiveModel {
            entry_id: Set(inserted.id.clone()),
            account_id: Set(posting.account_id.to_owned()),
            amount_minor: Set(posting.amount_minor),
            currency: Set(accounts[posting.account_id].currency.clone()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(txn)
        .await?;
    }
    Ok(inserted)
}

/// Moves `amount_minor` from one account to another, opening either on first use: the shape
/// of most entries.
pub async fn transfer(
    txn: &DatabaseTransaction,
    kind: &str,
    reference: &str,
    description: Option<&str>,
    from: AccountSpec<'_>,
    to: AccountSpec<'_>,
    amount_minor: i64,
) -> DomainResult<ledger_entries::Model> {
    let from = open_account(txn, from).await?;
    let to = open_account(txn, to).await?;
    post(
        txn,
        Entry {
            kind,
            reference,
            description,
            postings: vec![
                Posting { account_id: &from.id, amount_minor: -amount_minor },
                Posting { account_id: &to.id, amount_minor },
            ],
        },
    )
    .await
}

async fn apply(
    txn: &DatabaseTransaction,
    account: &ledger_accounts::Model,
    amount_minor: i64,
) -> DomainResult<()> {
    if account.allow_negative || (amount_minor > 0 && held::hold(&account.id, amount_minor)) {
        return Ok(());
    }
    use ledger_accounts::Column;
    let result = ledger_accounts::Entity::update_many()
        .col_expr(Column::BalanceMinor, Expr::col(Column::BalanceMinor).add(amount_minor))
        .col_expr(Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(&account.id))
        .filter(Expr::col(Column::BalanceMinor).add(amount_minor).gte(0))
        .exec(txn)
        .await?;
    if result.rows_affected == 1 {
        return Ok(());
    }
    let available = balance(txn, &account.id).await?;
    Err(DomainError::InsufficientFunds { required: -amount_minor, available })
}

/// The account's balance: kept on the row, or for a system account the sum of its postings.
pub async fn balance(db: &impl ConnectionTrait, account_id: &str) -> DomainResult<i64> {
    let account = ledger_accounts::Entity::find_by_id(account_id)
        .one(db)
        .await?
        .ok_or(DomainError::NotFound("ledger account"))?;
    if !account.allow_negative {
        return Ok(account.balance_minor);
    }
    let sum: Option<i64> = ledger_postings::Entity::find()
        .select_only()
        .column_as(Expr::cust("CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT)"), "sum")
        .filter(ledger_postings::Column::AccountId.eq(account_id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(sum.unwrap_or(0))
}
