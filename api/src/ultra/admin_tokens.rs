//! `GET/POST admin/tokens`, `GET admin/tokens/{id}`, `POST admin/tokens/{id}/revoke`: bearer
//! tokens an admin issues for an account (an integration's, a support session's) and revokes.
//!
//! Tokens are issued and revoked exactly as login and logout do it, so a revoked token is
//! refused by every API replica on its next request: authentication reads the token's row.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, AuditEvent},
    auth_tokens::{self, TokenRequest},
    db::begin_write,
};
use ultra_entity::{
    tokens::{self, TokenStatus},
    users::{self, UserRole},
};

use super::ApiTags;
use crate::{
    AppState,
    caches::Change,
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
pub struct CreateTokenRequest {
    /// The account the token authenticates as.
    #[oai(validator(min_length = 1, max_length = 40))]
    pub user_id: String,
    /// What the token is for; defaults to `api`.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    /// Lifetime in seconds, at most a year (a token that outlives that is a password nobody
    /// rotates); defaults to that of a login token.
    #[oai(validator(minimum(value = "1"), maximum(value = "31536000")))]
    pub ttl: Option<u64>,
    /// Signed into the token under `custom`. Registered and surface claims (`sub`, `exp`,
    /// `iat`, `jti`, `scope`…) are refused.
    pub custom_claims: Option<Value>,
}

/// What a token is now: an active token past its expiry reads as expired.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "TokenStatus", rename_all = "lowercase")]
pub enum Status {
    Active,
    Revoked,
    Expired,
}

impl From<TokenStatus> for Status {
    fn from(status: TokenStatus) -> Self {
        match status {
            TokenStatus::Active => Self::Active,
            TokenStatus::Revoked => Self::Revoked,
            TokenStatus::Expired => Self::Expired,
        }
    }
}

/// A token's record. The token itself is shown once, when it is created, and never stored.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct TokenView {
    pub id: String,
    pub user_id: String,
    pub name: String,
    pub status: Status,
    pub expires_at: DateTime<Utc>,
    pub custom_claims: Option<Value>,
    /// The admin who issued it; empty for login sessions and API-key tokens.
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<tokens::Model> for TokenView {
    fn from(token: tokens::Model) -> Self {
        Self {
            status: token.effective_status(Utc::now()).into(),
            id: token.id,
            user_id: token.user_id,
            name: token.name,
            expires_at: token.expires_at,
            custom_claims: token.custom_claims,
            created_by: token.created_by,
            created_at: token.created_at,
            revoked_at: token.revoked_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatedToken {
    #[oai(flatten)]
    pub record: TokenView,
    /// The JWT to send as `Authorization: Bearer <token>`. Shown in this response only.
    pub token: String,
    pub token_type: String,
}

pub struct AdminTokensApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminTokensApi {
    /// Generate a token for a user
    ///
    /// The token is in this response only: it is not stored, and no other operation shows it.
    /// For the same reason this operation takes no `Idempotency-Key` (a replay would show it
    /// again); a token issued by a retry that was not needed is revoked like any other. Tokens
    /// for admin accounts need a super-admin.
    #[oai(path = "/admin/tokens", method = "post", operation_id = "createToken")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        body: JsonBody<CreateTokenRequest>,
    ) -> ApiResult<Reply<CreatedToken, 201>> {
        let principal = auth.0;
        principal.require_admin()?;
        let request = body.value;
        let custom_claims = match request.custom_claims {
            None | Some(Value::Null) => None,
            Some(claims) => {
                auth_tokens::check_custom_claims(&claims)?;
                Some(claims)
            }
        };
        let name = request.name.as_deref().map(str::trim).unwrap_or("api");
        if name.is_empty() {
            return Err(ApiError::validation("name", "must not be blank"));
        }
        let ttl = request.ttl.map_or(state.config.auth_token_ttl, Duration::from_secs);
        let user = users::Entity::find_by_id(request.user_id.as_str())
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        // A token for an admin account carries that admin's power.
        if user.role == UserRole::Admin && !principal.user.is_super_admin {
            return Err(ApiError::forbidden("only a super-admin can issue tokens for admin accounts"));
        }

        let txn = begin_write(&state.db).await?;
        let issued = auth_tokens::issue(
            &txn,
            &state.signer,
            TokenRequest {
                user: &user,
                name,
                ttl,
                custom_claims,
                created_by: Some(principal.user.id.clone()),
            },
        )
        .await?;
        audit::record(
            &txn,
            &actor(req, Some(&principal.user.id)),
            AuditEvent {
                action: "token.created",
                entity_type: "token",
                entity_id: Some(&issued.row.id),
                details: Some(json!({
                    "userId": user.id,
                    "name": name,
                    "expiresAt": issued.row.expires_at,
                })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Reply::new(CreatedToken {
            record: issued.row.into(),
            token: issued.jwt,
            token_type: "Bearer".to_owned(),
        }))
    }

    /// List tokens
    ///
    /// Every token, login sessions included, newest first; never the tokens themselves.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/admin/tokens", method = "get", operation_id = "listTokens")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "userId")] user_id: Query<Option<String>>,
        status: Query<Option<Status>>,
        #[oai(validator(minimum(value = "1")))] page: Query<Option<u64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        /// Opaque cursor from the previous page's `meta.nextCursor`.
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<TokenView>>> {
        auth.0.require_admin()?;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = tokens::Entity::find();
        if let Some(user_id) = user_id.0 {
            select = select.filter(tokens::Column::UserId.eq(user_id));
        }
        if let Some(status) = status.0 {
            select = select.filter(status_is(status, Utc::now()));
        }
        let (rows, meta) = paginate(&state.db, select, tokens::Column::Id, |t| &t.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(TokenView::from).collect(), meta))
    }

    /// Get token details
    #[oai(path = "/admin/tokens/:id", method = "get", operation_id = "getToken")]
    async fn get(&self, state: Data<&AppState>, auth: Auth, id: Path<String>) -> ApiResult<Reply<TokenView>> {
        auth.0.require_admin()?;
        let token = tokens::Entity::find_by_id(id.0)
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found("token"))?;
        Ok(Reply::new(token.into()))
    }

    /// Revoke a token
    ///
    /// Every API replica refuses the token from its next request on. Revoking a token that is
    /// no longer active changes nothing and answers it as it is. A super-admin's tokens need a
    /// super-admin.
    #[oai(path = "/admin/tokens/:id/revoke", method = "post", operation_id = "revokeToken")]
    async fn revoke(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<TokenView>> {
        let principal = auth.0;
        principal.require_admin()?;
        let txn = begin_write(&state.db).await?;
        let (token, owner) = tokens::Entity::find_by_id(id.0)
            .find_also_related(users::Entity)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("token"))?;
        if owner.as_ref().is_some_and(|owner| owner.is_super_admin) && !principal.user.is_super_admin {
            return Err(ApiError::forbidden("only a super-admin can revoke a super-admin's tokens"));
        }
        if token.effective_status(Utc::now()) != TokenStatus::Active {
            return Ok(Reply::new(token.into()));
        }
        let token = auth_tokens::revoke(&txn, token).await?;
        audit::record(
            &txn,
            &actor(req, Some(&principal.user.id)),
            AuditEvent {
                action: "token.revoked",
                entity_type: "token",
                entity_id: Some(&token.id),
                details: Some(json!({ "userId": token.user_id })),
            },
        )
        .await?;
        txn.commit().await?;
        state.caches.announce(&state.redis, Change::Token(&token.jti)).await;
        Ok(Reply::new(token.into()))
    }
}

/// Rows whose status, as a client sees it, is `status`.
fn status_is(status: Status, now: DateTime<Utc>) -> Condition {
    let active = tokens::Column::Status.eq(TokenStatus::Active);
    match status {
        Status::Active => Condition::all().add(active).add(tokens::Column::ExpiresAt.gt(now)),
        Status::Revoked => Condition::all().add(tokens::Column::Status.eq(TokenStatus::Revoked)),
        Status::Expired => Condition::any()
            .add(tokens::Column::Status.eq(TokenStatus::Expired))
            .add(Condition::all().add(active).add(tokens::Column::ExpiresAt.lte(now))),
    }
}
