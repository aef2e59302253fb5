//! Maxtera customers: a `customer` user with a password, an integer id and a phone.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set,
};
use ultra_entity::{
    maxtera_accounts,
    users::{self, Tier, UserRole},
};

use crate::{
    DomainResult,
    users::{NewUser, create},
};

/// Creates the user and its Maxtera account. `password_hash` comes from
/// [`crate::passwords::hash`], computed before the transaction began.
pub async fn register(
    txn: &DatabaseTransaction,
    email: &str,
    password_hash: String,
    phone: String,
) -> DomainResult<maxtera_accounts::Model> {
    let user = create(
        txn,
        NewUser {
            email: email.to_owned(),
            name: email.trim().to_lowercase(),
            role: UserRole::Customer,
            tier: Tier::Starter,
            is_super_admin: false,
            password_hash: Some(password_hash),
            phone: Some(phone.clone()),
        },
    )
    .await?;
    Ok(maxtera_accounts::ActiveModel {
        user_id: Set(user.id),
        phone: Set(phone),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(txn)
    .await?)
}

/// The Maxtera account of `user`; `None` for users of the other surfaces, who have no wallet.
pub async fn of_user(
    db: &impl ConnectionTrait,
    user: &users::Model,
) -> DomainResult<Option<maxtera_accounts::Model>> {
    Ok(maxtera_accounts::Entity::find().filter(maxtera_accounts::Column::UserId.eq(&user.id)).one(db).await?)
}
