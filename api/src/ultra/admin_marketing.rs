//! Social publishing, the super-admin's side: every merchant's accounts and posts, suspending
//! or reinstating an account, a post's publish log, and totals.

use std::collections::BTreeMap;

use chrono::Utc;
use poem::{Request, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
    sea_query::{Expr, Func},
};
use serde_json::json;
use ultra_domain::{
    audit::{self, AuditEvent},
    db::begin_write,
    social::{accounts, posts},
};
use ultra_entity::{
    social_accounts::{self as account_rows, SocialAccountStatus, SocialPlatform},
    social_posts::{self as post_rows, SocialPostStatus},
    social_publish_logs,
};

use super::{
    ApiTags,
    marketing_views::{AccountStatus, AccountView, PlatformName, PostStatus, PostView, PublishLogView},
};
use crate::{
    AppState,
    http::{
        auth::Auth,
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AccountStatusRequest {
    /// `revoked` suspends publishing through the account until an admin reinstates it, even
    /// if its owner connects it again (its grant at the platform is kept); `active` reinstates
    /// it.
    pub status: AccountStatus,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CountedAccounts {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_platform: BTreeMap<String, i64>,
    pub by_type: BTreeMap<String, i64>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CountedPosts {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
    pub by_platform: BTreeMap<String, i64>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CountedAttempts {
    pub total: i64,
    /// By outcome: `published`, `processing`, `retrying`, `failed`, `cancelled`.
    pub by_outcome: BTreeMap<String, i64>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct MarketingStats {
    pub accounts: CountedAccounts,
    pub posts: CountedPosts,
    /// Publish-log entries: every attempt and cancellation.
    pub log_entries: CountedAttempts,
}

/// Rows of `E` counted by the values of `column`.
async fn count_by<E, C>(db: &impl ConnectionTrait, column: C) -> ApiResult<BTreeMap<String, i64>>
where
    E: EntityTrait,
    C: ColumnTrait,
{
    let rows: Vec<(String, i64)> = E::find()
        .select_only()
        .column(column)
        .expr_as(Func::count(Expr::col(column)), "n")
        .group_by(column)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Every value of an enum column present, zero when no row has it, so a dashboard reads a
/// fixed shape.
fn with_zeros(mut counts: BTreeMap<String, i64>, values: &[&str]) -> BTreeMap<String, i64> {
    for value in values {
        counts.entry((*value).to_owned()).or_insert(0);
    }
    counts
}

pub struct AdminMarketingApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::AdminMarketing")]
impl AdminMarketingApi {
    /// List all social accounts (admin view)
    ///
    /// Super-admin only. Lists all social accounts across all users.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/admin/marketing/accounts", method = "get", operation_id = "adminListSocialAccounts")]
    async fn list_accounts(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        platform: Query<Option<PlatformName>>,
        #[oai(name = "userId", validator(max_length = 64))] user_id: Query<Option<String>>,
        status: Query<Option<AccountStatus>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<AccountView>>> {
        auth.0.require_super_admin()?;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = account_rows::Entity::find();
        if let Some(platform) = platform.0 {
            select = select.filter(account_rows::Column::Platform.eq(SocialPlatform::from(platform)));
        }
        if let Some(user_id) = user_id.0 {
            select = select.filter(account_rows::Column::UserId.eq(user_id));
        }
        if let Some(status) = status.0 {
            select = select.filter(account_rows::Column::Status.eq(SocialAccountStatus::from(status)));
        }
        let (rows, meta) = paginate(&state.db, select, account_rows::Column::Id, |a| &a.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(Into::into).collect(), meta))
    }

    /// Update social account status
    ///
    /// Super-admin only. Can activate or revoke accounts. An expired account cannot be
    /// activated: its owner must connect it again.
    #[oai(
        path = "/admin/marketing/accounts/:id",
        method = "patch",
        operation_id = "adminUpdateSocialAccount"
    )]
    async fn update_account(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        body: JsonBody<AccountStatusRequest>,
    ) -> ApiResult<Reply<AccountView>> {
        let principal = auth.0;
        principal.require_super_admin()?;
        let status = body.value.status;
        if status == AccountStatus::Expired {
            return Err(ApiError::validation("status", "must be active or revoked"));
        }
        let actor = actor(req, Some(&principal.user.id));
        let txn = begin_write(&state.db).await?;
        let account = accounts::find(&txn, &id.0, None).await?;
        let before = account.status;
        let account = accounts::suspend(&txn, account, status == AccountStatus::Revoked, Utc::now()).await?;
        audit::record(
            &txn,
            &actor,
            AuditEvent {
                action: "social_account.status_changed",
                entity_type: "social_account",
                entity_id: Some(&account.id),
                details: Some(json!({ "from": before, "to": account.status, "userId": account.user_id })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Reply::new(account.into()))
    }

    /// List all social posts (admin view)
    ///
    /// Super-admin only. Lists all social posts across all users.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/admin/marketing/posts", method = "get", operation_id = "adminListSocialPosts")]
    async fn list_posts(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        status: Query<Option<PostStatus>>,
        platform: Query<Option<PlatformName>>,
        #[oai(name = "userId", validator(max_length = 64))] user_id: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<PostView>>> {
        auth.0.require_super_admin()?;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = post_rows::Entity::find();
        if let Some(status) = status.0 {
            select = select.filter(post_rows::Column::Status.eq(SocialPostStatus::from(status)));
        }
        if let Some(platform) = platform.0 {
            select = select.filter(post_rows::Column::Platform.eq(SocialPlatform::from(platform)));
        }
        if let Some(user_id) = user_id.0 {
            select = select.filter(post_rows::Column::UserId.eq(user_id));
        }
        let (rows, meta) = paginate(&state.db, select, post_rows::Column::Id, |p| &p.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(Into::into).collect(), meta))
    }

    /// Get publish logs for a post
    ///
    /// Super-admin only. Returns all publish/cancel attempts for a post, oldest first.
    #[oai(path = "/admin/marketing/posts/:id/logs", method = "get", operation_id = "adminSocialPostLogs")]
    async fn logs(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<Vec<PublishLogView>>> {
        auth.0.require_super_admin()?;
        let post = post_rows::Entity::find_by_id(id.0.as_str())
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found("social post"))?;
        let logs = posts::logs(&state.db, &post.id).await?;
        Ok(Reply::new(logs.into_iter().map(Into::into).collect()))
    }

    /// Get marketing statistics
    ///
    /// Super-admin only. Returns aggregated stats across all social accounts and posts.
    #[oai(path = "/admin/marketing/stats", method = "get", operation_id = "adminMarketingStats")]
    async fn stats(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<MarketingStats>> {
        auth.0.require_super_admin()?;
        let db = &state.db;
        let platforms = ["meta", "tiktok"];
        let account_status = count_by::<account_rows::Entity, _>(db, account_rows::Column::Status).await?;
        let accounts = CountedAccounts {
            total: account_status.values().sum(),
            by_status: with_zeros(account_status, &["active", "revoked", "expired"]),
            by_platform: with_zeros(
                count_by::<account_rows::Entity, _>(db, account_rows::Column::Platform).await?,
                &platforms,
            ),
            by_type: with_zeros(
                count_by::<account_rows::Entity, _>(db, account_rows::Column::Kind).await?,
                &["facebook_page", "instagram", "tiktok"],
            ),
        };
        let post_status = count_by::<post_rows::Entity, _>(db, post_rows::Column::Status).await?;
        let posts = CountedPosts {
            total: post_status.values().sum(),
            by_status: with_zeros(post_status, &["draft", "scheduled", "publishing", "published", "failed"]),
            by_platform: with_zeros(
                count_by::<post_rows::Entity, _>(db, post_rows::Column::Platform).await?,
                &platforms,
            ),
        };
        let outcomes =
            count_by::<social_publish_logs::Entity, _>(db, social_publish_logs::Column::Outcome).await?;
        let log_entries = CountedAttempts { total: outcomes.values().sum(), by_outcome: outcomes };
        Ok(Reply::new(MarketingStats { accounts, posts, log_entries }))
    }
}
