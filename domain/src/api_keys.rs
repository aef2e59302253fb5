//! Sellapay credentials: key and secret pairs a merchant creates on the ultra surface and a
//! Sellapay client exchanges for a bearer token.

use chrono::Utc;
use hmac::{Hmac, Mac};
use rand::{Rng, distr::Alphanumeric};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use serde_json::json;
use sha2::Sha256;
use ultra_entity::{api_keys, sellapay_accounts, users};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    ids,
};

/// Sellapay account ids look like the seed's: 50 letters and digits.
const ACCOUNT_CHARS: usize = 50;
const KEY_PREFIX: &str = "spk_";
const SECRET_PREFIX: &str = "sps_";

fn random(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// The stored form of a secret: its HMAC-SHA256 keyed by the public key, so that checking a
/// secret is a constant-time MAC verification.
fn digest(key: &str, secret: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    mac.update(secret.as_bytes());
    mac
}

/// A new pair; the secret exists only here and in the response that shows it once.
pub struct CreatedKey {
    pub key: api_keys::Model,
    pub secret: String,
    pub account: String,
}

pub async fn create(
    db: &impl ConnectionTrait,
    actor: &Actor,
    owner: &users::Model,
    name: &str,
) -> DomainResult<CreatedKey> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(DomainError::validation("name", "must be 1 to 100 characters"));
    }
    let key = format!("{KEY_PREFIX}{}", random(32));
    let secret = format!("{SECRET_PREFIX}{}", random(48));
    let row = api_keys::ActiveModel {
        id: Set(ids::new_id("key")),
        user_id: Set(owner.id.clone()),
        name: Set(name.to_owned()),
        secret_hash: Set(hex::encode(digest(&key, &secret).finalize().into_bytes())),
        key: Set(key),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    let account = account_of(db, &owner.id).await?;
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "api_key.created",
            entity_type: "api_key",
            entity_id: Some(&row.id),
            details: Some(json!({ "name": row.name, "key": row.key })),
        },
    )
    .await?;
    Ok(CreatedKey { key: row, secret, account })
}

/// The merchant's Sellapay account id, created on first use.
pub async fn account_of(db: &impl ConnectionTrait, user_id: &str) -> DomainResult<String> {
    if let Some(found) = sellapay_accounts::Entity::find()
        .filter(sellapay_accounts::Column::UserId.eq(user_id))
        .one(db)
        .await?
    {
        return Ok(found.account);
    }
    let created = sellapay_accounts::ActiveModel {
        account: Set(random(ACCOUNT_CHARS)),
        user_id: Set(user_id.to_owned()),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    Ok(created.account)
}

/// The merchant behind an account id.
pub async fn account_owner(db: &impl ConnectionTrait, account: &str) -> DomainResult<Option<String>> {
    Ok(sellapay_accounts::Entity::find_by_id(account).one(db).await?.map(|row| row.user_id))
}

/// The live key matching this pair and its owner; `None` for an unknown key, a wrong secret,
/// a revoked key or an owner who can no longer log in, all alike to the caller.
pub async fn verify(
    db: &impl ConnectionTrait,
    key: &str,
    secret: &str,
) -> DomainResult<Option<(api_keys::Model, users::Model)>> {
    let Some(row) = api_keys::Entity::find().filter(api_keys::Column::Key.eq(key)).one(db).await? else {
        return Ok(None);
    };
    let Ok(stored) = hex::decode(&row.secret_hash) else {
        return Ok(None);
    };
    if row.revoked_at.is_some() || digest(key, secret).verify_slice(&stored).is_err() {
        return Ok(None);
    }
    let Some(owner) = users::Entity::find_by_id(&row.user_id).one(db).await? else {
        return Ok(None);
    };
    api_keys::Entity::update_many()
        .col_expr(api_keys::Column::LastUsedAt, Expr::value(Utc::now()))
        .filter(api_keys::Column::Id.eq(&row.id))
        .exec(db)
        .await?;
    Ok(Some((row, owner)))
}

/// Whether the key a token was issued for is still live: revoking a key ends its tokens too.
pub async fn is_live(db: &impl ConnectionTrait, id: &str) -> DomainResult<bool> {
    Ok(api_keys::Entity::find_by_id(id).one(db).await?.is_some_and(|row| row.revoked_at.is_none()))
}

pub async fn revoke(
    db: &impl ConnectionTrait,
    actor: &Actor,
    key: &api_keys::Model,
) -> DomainResult<api_keys::Model> {
    if key.revoked_at.is_some() {
        return Ok(key.clone());
    }
    let mut row: api_keys::ActiveModel = key.clone().into();
    row.revoked_at = Set(Some(Utc::now()));
    let revoked = row.update(db).await?;
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "api_key.revoked",
            entity_type: "api_key",
            entity_id: Some(&revoked.id),
            details: Some(json!({ "key": revoked.key })),
        },
    )
    .await?;
    Ok(revoked)
}
