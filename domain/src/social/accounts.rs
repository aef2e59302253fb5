//! Connected social accounts: connecting (and reconnecting), renewing their tokens, and the
//! status changes that stop publication through them.

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Set, sea_query::Expr,
};
use ultra_entity::social_accounts::{self, SocialAccountKind, SocialAccountStatus, SocialPlatform};

use crate::{DomainError, DomainResult, ids};

/// How long before its token lapses an account is renewed: Meta's user tokens live about 60
/// days, TikTok's access tokens two hours.
pub fn refresh_window(platform: SocialPlatform) -> Duration {
    match platform {
        SocialPlatform::Meta => Duration::days(7),
        SocialPlatform::Tiktok => Duration::minutes(30),
    }
}

/// What a completed OAuth exchange gives for one account.
#[derive(Clone)]
pub struct Connection {
    pub user_id: String,
    pub platform: SocialPlatform,
    pub kind: SocialAccountKind,
    pub external_id: String,
    pub name: String,
    pub sealed_tokens: String,
    pub scope: Option<String>,
    pub token_expires_at: Option<DateTime<Utc>>,
}

/// Stores a connected account. Connecting the same Page, Instagram account or TikTok user again
/// renews the existing row, reactivating it (unless an admin suspended it), so posts that name
/// it keep working.
pub async fn connect(
    db: &impl ConnectionTrait,
    connection: Connection,
    now: DateTime<Utc>,
) -> DomainResult<social_accounts::Model> {
    let existing = social_accounts::Entity::find()
        .filter(social_accounts::Column::UserId.eq(connection.user_id.as_str()))
        .filter(social_accounts::Column::Kind.eq(connection.kind))
        .filter(social_accounts::Column::ExternalId.eq(connection.external_id.as_str()))
        .one(db)
        .await?;
    let row = match existing {
        Some(row) => {
            let status = if row.suspended_at.is_some() {
                SocialAccountStatus::Revoked
            } else {
                SocialAccountStatus::Active
            };
            let mut active = row.into_active_model();
            active.name = Set(connection.name);
            active.status = Set(status);
            active.sealed_tokens = Set(connection.sealed_tokens);
            active.scope = Set(connection.scope);
            active.token_expires_at = Set(connection.token_expires_at);
            active.last_refreshed_at = Set(Some(now));
            active.last_error = Set(None);
            active.updated_at = Set(now);
            active.update(db).await?
        }
        None => {
            social_accounts::ActiveModel {
                id: Set(ids::new_id("sacc")),
                user_id: Set(connection.user_id),
                platform: Set(connection.platform),
                kind: Set(connection.kind),
                external_id: Set(connection.external_id),
                name: Set(connection.name),
                status: Set(SocialAccountStatus::Active),
                sealed_tokens: Set(connection.sealed_tokens),
                scope: Set(connection.scope),
                token_expires_at: Set(connection.token_expires_at),
                last_refreshed_at: Set(Some(now)),
                last_error: Set(None),
                suspended_at: Set(None),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await?
        }
    };
    Ok(row)
}

/// `id` if it belongs to `owner` (any owner for `None`, as admins see them).
pub async fn find(
    db: &impl ConnectionTrait,
    id: &str,
    owner: Option<&str>,
) -> DomainResult<social_accounts::Model> {
    social_accounts::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|account| owner.is_none_or(|owner| account.user_id == owner))
        .ok_or(DomainError::NotFound("social account"))
}

/// Disconnects the account at its owner's request.
pub async fn disconnect(
    db: &impl ConnectionTrait,
    account: social_accounts::Model,
    now: DateTime<Utc>,
) -> DomainResult<social_accounts::Model> {
    let mut active = account.into_active_model();
    active.status = Set(SocialAccountStatus::Revoked);
    active.updated_at = Set(now);
    Ok(active.update(db).await?)
}

/// An admin's decision: `revoke` suspends the account until an admin reinstates it, whatever its
/// owner does meanwhile. Reinstating an expired account is refused: its tokens no longer work,
/// and only its owner connecting it again gives new ones.
pub async fn suspend(
    db: &impl ConnectionTrait,
    account: social_accounts::Model,
    revoke: bool,
    now: DateTime<Utc>,
) -> DomainResult<social_accounts::Model> {
    if !revoke && account.status == SocialAccountStatus::Expired {
        return Err(DomainError::Conflict {
            code: "social_account_expired",
            message: "the platform no longer accepts this account's tokens: its owner must connect it again"
                .to_owned(),
        });
    }
    let mut active = account.into_active_model();
    active.status = Set(if revoke { SocialAccountStatus::Revoked } else { SocialAccountStatus::Active });
    active.suspended_at = Set(revoke.then_some(now));
    active.updated_at = Set(now);
    Ok(active.update(db).await?)
}

/// Stores renewed tokens; `false` when the account stopped being active meanwhile, so that a
/// renewal never revives a disconnected account.
pub async fn refreshed(
    db: &impl ConnectionTrait,
    id: &str,
    sealed_tokens: String,
    token_expires_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let updated = social_accounts::Entity::update_many()
        .col_expr(social_accounts::Column::SealedTokens, Expr::value(sealed_tokens))
        .col_expr(social_accounts::Column::TokenExpiresAt, Expr::value(token_expires_at))
        .col_expr(social_accounts::Column::LastRefreshedAt, Expr::value(Some(now)))
        .col_expr(social_accounts::Column::LastError, Expr::value(None::<String>))
        .col_expr(social_accounts::Column::UpdatedAt, Expr::value(now))
        .filter(social_accounts::Column::Id.eq(id))
        .filter(social_accounts::Column::Status.eq(SocialAccountStatus::Active))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Marks an active account `expired` with the platform's reason: its tokens were refused and
/// could not be renewed.
pub async fn expire(
    db: &impl ConnectionTrait,
    id: &str,
    reason: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let mut reason = reason.to_owned();
    truncate(&mut reason, 1000);
    let updated = social_accounts::Entity::update_many()
        .col_expr(social_accounts::Column::Status, Expr::value(SocialAccountStatus::Expired))
        .col_expr(social_accounts::Column::LastError, Expr::value(Some(reason)))
        .col_expr(social_accounts::Column::UpdatedAt, Expr::value(now))
        .filter(social_accounts::Column::Id.eq(id))
        .filter(social_accounts::Column::Status.eq(SocialAccountStatus::Active))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Active accounts whose tokens lapse within their platform's refresh window, soonest first.
pub async fn due_for_refresh(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> DomainResult<Vec<social_accounts::Model>> {
    let mut due = Condition::any();
    for platform in [SocialPlatform::Meta, SocialPlatform::Tiktok] {
        due = due.add(
            Condition::all()
                .add(social_accounts::Column::Platform.eq(platform))
                .add(social_accounts::Column::TokenExpiresAt.lt(now + refresh_window(platform))),
        );
    }
    Ok(social_accounts::Entity::find()
        .filter(social_accounts::Column::Status.eq(SocialAccountStatus::Active))
        .filter(social_accounts::Column::TokenExpiresAt.is_not_null())
        .filter(due)
        .order_by_asc(social_accounts::Column::TokenExpiresAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Other active accounts of `account`'s owner on the same platform: a Meta grant covers a Page
/// and its Instagram account together, so revoking it at Meta for one would cut off the other.
pub async fn others_sharing_grant(
    db: &impl ConnectionTrait,
    account: &social_accounts::Model,
) -> DomainResult<u64> {
    use sea_orm::PaginatorTrait;
    Ok(social_accounts::Entity::find()
        .filter(social_accounts::Column::UserId.eq(account.user_id.as_str()))
        .filter(social_accounts::Column::Platform.eq(account.platform))
        .filter(social_accounts::Column::Status.eq(SocialAccountStatus::Active))
        .filter(social_accounts::Column::Id.ne(account.id.as_str()))
        .count(db)
        .await?)
}

pub(crate) fn truncate(text: &mut String, max_chars: usize) {
    if let Some((cut, _)) = text.char_indices().nth(max_chars) {
        text.truncate(cut);
    }
}
