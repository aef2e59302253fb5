//! Creating, finding, changing and deleting users.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    sea_query::{Query, SelectStatement},
};
use ultra_entity::{
    api_keys, export_chunks, exports, idempotency_keys, ledger_accounts, ledger_postings, maxtera_accounts,
    maxtera_transactions, payment_links, payments, payouts, provider_configs, sellapay_accounts,
    sellapay_transactions, subscriptions, tokens,
    users::{self, Tier, UserRole},
    webhook_endpoints,
};

use crate::{DomainError, DomainResult, ids, runtime_config::RuntimeConfig};

pub struct NewUser {
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub tier: Tier,
    pub is_super_admin: bool,
    /// From [`crate::passwords::hash`], done by the caller outside any transaction: it is slow on purpose.
    pub password_hash: Option<String>,
    pub phone: Option<String>,
}

/// Lower-cases and checks an email address: one `@`, a non-empty local part, and a domain with
/// a dot. Deliverability is the mail server's business; this catches typing mistakes.
pub fn normalize_email(raw: &str) -> DomainResult<String> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !email.chars().any(char::is_whitespace)
            }
            None => false,
        };
    if valid { Ok(email) } else { Err(DomainError::validation("email", "must be a valid email address")) }
}

pub async fn create(db: &impl ConnectionTrait, new: NewUser) -> DomainResult<users::Model> {
    let email = normalize_email(&new.email)?;
    let name = checked_name(&new.name)?;
    if find_by_email(db, &email).await?.is_some() {
        return Err(email_taken(&email));
    }
    let now = Utc::now();
    let user = users::ActiveModel {
        id: Set(ids::new_id("usr")),
        email: Set(email),
        name: Set(name),
        role: Set(new.role),
        is_super_admin: Set(new.is_super_admin),
        tier: Set(new.tier),
        password_hash: Set(new.password_hash),
        phone: Set(new.phone),
        created_at: Set(now),
        updated_at: Set(now),
    };
    user.insert(db).await.map_err(|err| match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => DomainError::Conflict {
            code: "email_taken",
            message: "a user with this email already exists".to_owned(),
        },
        _ => err.into(),
    })
}

pub async fn find_by_email(db: &impl ConnectionTrait, email: &str) -> DomainResult<Option<users::Model>> {
    Ok(users::Entity::find().filter(users::Column::Email.eq(email.trim().to_lowercase())).one(db).await?)
}

/// What an admin may change on an account; `None` leaves a field as it is.
pub struct UserChanges {
    pub name: Option<String>,
    pub email: Option<String>,
    pub role: Option<UserRole>,
    pub tier: Option<Tier>,
    /// `Some(None)` clears the phone number.
    pub phone: Option<Option<String>>,
}

impl UserChanges {
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.email.is_none()
            && self.role.is_none()
            && self.tier.is_none()
            && self.phone.is_none()
    }
}

/// Applies `changes` and returns the account with what changed, as `{field: {from, to}}` for
/// the audit trail. An account that stops being an admin stops being a super-admin too, so that
/// promoting it again later does not quietly restore that power.
pub async fn update(
    db: &impl ConnectionTrait,
    user: users::Model,
    changes: UserChanges,
) -> DomainResult<(users::Model, serde_json::Map<String, serde_json::Value>)> {
    let mut diff = serde_json::Map::new();
    let mut note = |field: &str, from: serde_json::Value, to: serde_json::Value| {
        if from != to {
            diff.insert(field.to_owned(), serde_json::json!({ "from": from, "to": to }));
        }
    };
    let mut active = users::ActiveModel::from(user.clone());
    if let Some(name) = changes.name {
        let name = checked_name(&name)?;
        note("name", user.name.clone().into(), name.clone().into());
        active.name = Set(name);
    }
    let email = changes.email.as_deref().map(normalize_email).transpose()?;
    if let Some(email) = &email {
        if find_by_email(db, email).await?.is_some_and(|other| other.id != user.id) {
            return Err(email_taken(email));
        }
        note("email", user.email.clone().into(), email.clone().into());
        active.email = Set(email.clone());
    }
    if let Some(role) = changes.role {
        if role != UserRole::User && user.role == UserRole::User && is_primary_merchant(db, &user.id).await? {
            return Err(primary_merchant(&user.id));
        }
        note("role", serde_json::json!(user.role), serde_json::json!(role));
        active.role = Set(role);
        if role != UserRole::Admin && user.is_super_admin {
            note("isSuperAdmin", true.into(), false.into());
            active.is_super_admin = Set(false);
        }
    }
    if let Some(tier) = changes.tier {
        note("tier", serde_json::json!(user.tier), serde_json::json!(tier));
        active.tier = Set(tier);
    }
    if let Some(phone) = changes.phone {
        note("phone", serde_json::json!(user.phone), serde_json::json!(phone));
        active.phone = Set(phone);
    }
    if diff.is_empty() {
        return Ok((user, diff));
    }
    active.updated_at = Set(Utc::now());
    let updated = active.update(db).await.map_err(|err| match err.sql_err() {
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => {
            email_taken(email.as_deref().unwrap_or_default())
        }
        _ => err.into(),
    })?;
    Ok((updated, diff))
}

/// Deletes an account that has never moved money, with everything it owns (its tokens, API
/// keys, webhook endpoints, payment links, subscriptions, provider settings, exports and empty
/// ledger accounts). Its tokens go with it, so they stop working on every replica at once.
/// An account with payment history is kept: the ledger and the merchant's records must go on
/// naming who the money belonged to. Returns how many tokens were revoked.
pub async fn delete(db: &impl ConnectionTrait, user: &users::Model) -> DomainResult<u64> {
    let history = payment_history(db, &user.id).await?;
    if !history.is_empty() {
        return Err(DomainError::Conflict {
            code: "user_has_payment_history",
            message: format!(
                "{} has payment history ({}); an account with payment history cannot be deleted",
                user.id,
                history.join(", ")
            ),
        });
    }
    if is_primary_merchant(db, &user.id).await? {
        return Err(primary_merchant(&user.id));
    }
    let id = user.id.as_str();
    let tokens = tokens::Entity::delete_many().filter(tokens::Column::UserId.eq(id)).exec(db).await?;
    api_keys::Entity::delete_many().filter(api_keys::Column::UserId.eq(id)).exec(db).await?;
    sellapay_accounts::Entity::delete_many()
        .filter(sellapay_accounts::Column::UserId.eq(id))
        .exec(db)
        .await?;
    maxtera_accounts::Entity::delete_many().filter(maxtera_accounts::Column::UserId.eq(id)).exec(db).await?;
    webhook_endpoints::Entity::delete_many()
        .filter(webhook_endpoints::Column::UserId.eq(id))
        .exec(db)
        .await?;
    payment_links::Entity::delete_many().filter(payment_links::Column::MerchantId.eq(id)).exec(db).await?;
    subscriptions::Entity::delete_many().filter(subscriptions::Column::MerchantId.eq(id)).exec(db).await?;
    provider_configs::Entity::delete_many().filter(provider_configs::Column::Scope.eq(id)).exec(db).await?;
    idempotency_keys::Entity::delete_many().filter(idempotency_keys::Column::Scope.eq(id)).exec(db).await?;
    export_chunks::Entity::delete_many()
        .filter(export_chunks::Column::ExportId.in_subquery(owned(
            exports::Entity,
            exports::Column::Id,
            exports::Column::OwnerId,
            id,
        )))
        .exec(db)
        .await?;
    exports::Entity::delete_many().filter(exports::Column::OwnerId.eq(id)).exec(db).await?;
    ledger_accounts::Entity::delete_many().filter(ledger_accounts::Column::OwnerId.eq(id)).exec(db).await?;
    users::Entity::delete_by_id(id).exec(db).await?;
    Ok(tokens.rows_affected)
}

/// What money the account has moved, as `3 payments`, `1 payout`…; empty if none.
async fn payment_history(db: &impl ConnectionTrait, id: &str) -> DomainResult<Vec<String>> {
    let counts = [
        ("payment", payments::Entity::find().filter(payments::Column::MerchantId.eq(id)).count(db).await?),
        ("payout", payouts::Entity::find().filter(payouts::Column::MerchantId.eq(id)).count(db).await?),
        (
            "Sellapay transaction",
            sellapay_transactions::Entity::find()
                .filter(sellapay_transactions::Column::MerchantId.eq(id))
                .count(db)
                .await?,
        ),
        (
            "Maxtera transaction",
            maxtera_transactions::Entity::find()
                .filter(maxtera_transactions::Column::UserId.eq(id))
                .count(db)
                .await?,
        ),
        (
            "ledger posting",
            ledger_postings::Entity::find()
                .filter(ledger_postings::Column::AccountId.in_subquery(owned(
                    ledger_accounts::Entity,
                    ledger_accounts::Column::Id,
                    ledger_accounts::Column::OwnerId,
                    id,
                )))
                .count(db)
                .await?,
        ),
    ];
    Ok(counts
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .map(|(what, count)| format!("{count} {what}{}", if count == 1 { "" } else { "s" }))
        .collect())
}

/// The ids of the rows `id` owns, as a subquery, so that each count or deletion is one statement.
fn owned<E: EntityTrait>(entity: E, id_column: E::Column, owner: E::Column, id: &str) -> SelectStatement {
    Query::select().column(id_column).from(entity).and_where(owner.eq(id)).to_owned()
}

async fn is_primary_merchant(db: &impl ConnectionTrait, id: &str) -> DomainResult<bool> {
    Ok(RuntimeConfig::load(db).await?.primary_merchant_id.as_deref() == Some(id))
}

fn checked_name(raw: &str) -> DomainResult<String> {
    let name = raw.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::validation("name", "must be 1 to 100 characters"));
    }
    Ok(name)
}

/// Admins under `X-App-Context: merchant` act as this account, so it stays a merchant's.
fn primary_merchant(id: &str) -> DomainError {
    DomainError::Conflict {
        code: "primary_merchant",
        message: format!(
            "{id} is the primary merchant (runtime config primaryMerchantId); name another merchant there first"
        ),
    }
}

fn email_taken(email: &str) -> DomainError {
    DomainError::Conflict {
        code: "email_taken",
        message: format!("a user with email {email} already exists"),
    }
}
