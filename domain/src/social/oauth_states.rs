//! The OAuth `state` of a connection: it names a pending authorization row and carries a MAC
//! over the row's id and platform, so the callback can tell a state we issued from a forged
//! one before touching the database, and spends the row once, before it expires.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use ultra_entity::{social_accounts::SocialPlatform, social_oauth_states};

use crate::{DomainError, DomainResult, ids, secrets::SecretBox};

/// Long enough to log in at the platform and consent; a state older than this is refused.
pub const LIFETIME: Duration = Duration::minutes(15);
const PURPOSE: &str = "social-oauth-state";
const BROWSER_PURPOSE: &str = "social-oauth-browser";

/// The value of the cookie, named after the pending authorization, that `connect` sets in the
/// browser that starts it. The callback needs it besides the state: a state carried to another
/// browser (a victim sent the attacker's authorization URL) links nothing.
pub fn browser_binding(sealer: &SecretBox, id: &str) -> String {
    sealer.path_token(BROWSER_PURPOSE, id)
}

/// The pending authorization a `state` names, before it is checked.
pub fn state_id(state: &str) -> Option<&str> {
    state.split_once('.').map(|(id, _)| id)
}

fn mac_input(platform: SocialPlatform, id: &str) -> String {
    format!("{}:{id}", platform_name(platform))
}

pub fn platform_name(platform: SocialPlatform) -> &'static str {
    match platform {
        SocialPlatform::Meta => "meta",
        SocialPlatform::Tiktok => "tiktok",
    }
}

/// Records a pending authorization and returns it with the `state` to send to the platform.
pub async fn issue(
    db: &impl ConnectionTrait,
    sealer: &SecretBox,
    user_id: &str,
    platform: SocialPlatform,
    redirect_uri: &str,
    now: DateTime<Utc>,
) -> DomainResult<(social_oauth_states::Model, String)> {
    let id = ids::new_id("oauth");
    let row = social_oauth_states::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user_id.to_owned()),
        platform: Set(platform),
        redirect_uri: Set(redirect_uri.to_owned()),
        expires_at: Set(now + LIFETIME),
        used_at: Set(None),
        created_at: Set(now),
    }
    .insert(db)
    .await?;
    let state = format!("{id}.{}", sealer.path_token(PURPOSE, &mac_input(platform, &id)));
    Ok((row, state))
}

/// Spends `state` for a callback from `platform`, in the browser holding its binding cookie
/// (`browser`): the pending authorization it names, or a validation error on `state` saying why
/// it is refused. Of two callbacks with the same state,
/// one wins.
pub async fn redeem(
    db: &impl ConnectionTrait,
    sealer: &SecretBox,
    platform: SocialPlatform,
    state: &str,
    browser: Option<&str>,
    now: DateTime<Utc>,
) -> DomainResult<social_oauth_states::Model> {
    let refuse = |message: &str| DomainError::validation("state", message);
    let (id, mac) = state.split_once('.').ok_or_else(|| refuse("is not a state this API issued"))?;
    if !sealer.verify_path_token(PURPOSE, &mac_input(platform, id), mac) {
        return Err(refuse("is not a state this API issued for this platform"));
    }
    if !browser.is_some_and(|binding| sealer.verify_path_token(BROWSER_PURPOSE, id, binding)) {
        return Err(refuse(
            "was issued to another browser: finish the connection in the browser that started it",
        ));
    }
    let spent = social_oauth_states::Entity::update_many()
        .col_expr(social_oauth_states::Column::UsedAt, Expr::value(now))
        .filter(social_oauth_states::Column::Id.eq(id))
        .filter(social_oauth_states::Column::UsedAt.is_null())
        .filter(social_oauth_states::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    let row = social_oauth_states::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| refuse("is not a state this API issued"))?;
    if spent.rows_affected == 1 {
        return Ok(row);
    }
    Err(if row.used_at.is_some() {
        refuse("has already been used: start the connection again")
    } else {
        refuse("has expired: start the connection again")
    })
}

/// Deletes authorizations that can no longer be completed.
pub async fn purge(db: &impl ConnectionTrait, now: DateTime<Utc>) -> DomainResult<u64> {
    let deleted = social_oauth_states::Entity::delete_many()
        .filter(social_oauth_states::Column::ExpiresAt.lt(now - Duration::days(1)))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
