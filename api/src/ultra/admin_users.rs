//! `GET/POST admin/users`, `PATCH/DELETE admin/users/{id}`.
//!
//! Admin accounts are a super-admin's to manage: creating one, making an account an admin or
//! one an admin no longer, and changing or deleting a super-admin all need a super-admin, so a
//! plain admin cannot raise itself or anyone else to the power of those who appointed it.

use poem::{Request, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Header, Path, Query},
    types::MaybeUndefined,
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use serde_json::json;
use ultra_domain::{
    audit::{self, AuditEvent},
    db::begin_write,
    passwords,
    users::{self, NewUser, UserChanges},
};
use ultra_entity::users::{self as user_rows, UserRole};

use super::{
    ApiTags,
    views::{Deleted, Role, Tier, UserView},
};
use crate::{
    AppState,
    caches::Change,
    http::{
        auth::Auth,
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateUserRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
    /// Defaults to `user` (a merchant). Creating an admin needs a super-admin.
    pub role: Option<Role>,
    /// Omit for an account that logs in by email alone, when passwordless login is enabled.
    #[oai(validator(min_length = 8, max_length = 1024))]
    pub password: Option<String>,
    /// Defaults to `starter`.
    pub tier: Option<Tier>,
    #[oai(validator(max_length = 30))]
    pub phone: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateUserRequest {
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: Option<String>,
    #[oai(validator(max_length = 254))]
    pub email: Option<String>,
    pub role: Option<Role>,
    /// The SLA tier: what the account may use and its rate limits (`GET admin/tiers`).
    pub tier: Option<Tier>,
    /// Null removes the number.
    #[oai(validator(max_length = 30))]
    pub phone: MaybeUndefined<String>,
}

pub struct AdminUsersApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminUsersApi {
    /// Create a user
    ///
    /// Idempotent with the `Idempotency-Key` header.
    #[oai(path = "/admin/users", method = "post", operation_id = "createUser")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateUserRequest>,
    ) -> ApiResult<Reply<UserView, 201>> {
        let principal = auth.0;
        principal.require_admin()?;
        let request = body.value;
        let role = request.role.unwrap_or(Role::User);
        if role == Role::Admin && !principal.user.is_super_admin {
            return Err(ApiError::forbidden("only a super-admin can create admin accounts"));
        }
        let password_hash = match request.password {
            Some(password) => Some(
                tokio::task::spawn_blocking(move || passwords::hash(&password))
                    .await
                    .map_err(ApiError::internal)??,
            ),
            None => None,
        };
        let new_user = NewUser {
            email: request.email,
            name: request.name,
            role: role.into(),
            tier: request.tier.unwrap_or(Tier::Starter).into(),
            is_super_admin: false,
            password_hash,
            phone: request.phone,
        };
        let actor = actor(req, Some(&principal.user.id));
        let scope = principal.user.id.clone();
        idempotency::run(
            &state,
            Idempotent {
                scope: &scope,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/admin/users",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let user = users::create(txn, new_user).await?;
                    audit::record(
                        txn,
                        &actor,
                        AuditEvent {
                            action: "user.created",
                            entity_type: "user",
                            entity_id: Some(&user.id),
                            details: None,
                        },
                    )
                    .await?;
                    Ok(Reply::new(UserView::from(user)))
                })
            },
        )
        .await
    }

    /// List users
    ///
    /// Newest first; `search` matches name or email.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/admin/users", method = "get", operation_id = "listUsers")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        search: Query<Option<String>>,
        role: Query<Option<Role>>,
        #[oai(validator(minimum(value = "1")))] page: Query<Option<u64>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        /// Opaque cursor from the previous page's `meta.nextCursor`.
        cursor: Query<Option<String>>,
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))] limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<UserView>>> {
        auth.0.require_admin()?;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = user_rows::Entity::find();
        if let Some(role) = role.0 {
            select = select.filter(user_rows::Column::Role.eq(ultra_entity::users::UserRole::from(role)));
        }
        if let Some(search) = search.0.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            let escaped = search.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
            select = select.filter(
                Condition::any()
                    .add(Expr::col(user_rows::Column::Email).like(pattern()))
                    .add(Expr::expr(Func::lower(Expr::col(user_rows::Column::Name))).like(pattern())),
            );
        }
        let (rows, meta) = paginate(&state.db, select, user_rows::Column::Id, |u| &u.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(UserView::from).collect(), meta))
    }

    /// Update a user
    ///
    /// Changes any of name, email, role, tier and phone. An email another account has is a
    /// 409; no admin can make itself anything but an admin. Idempotent with the
    /// `Idempotency-Key` header.
    #[oai(path = "/admin/users/:id", method = "patch", operation_id = "updateUser")]
    async fn update(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<UpdateUserRequest>,
    ) -> ApiResult<Reply<UserView>> {
        let principal = auth.0;
        principal.require_admin()?;
        let request = body.value;
        let changes = UserChanges {
            name: request.name,
            email: request.email,
            role: request.role.map(UserRole::from),
            tier: request.tier.map(Into::into),
            phone: match request.phone {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(phone) => Some(Some(phone)),
            },
        };
        if changes.is_empty() {
            return Err(ApiError::validation(
                "body",
                "must change at least one of name, email, role, tier, phone",
            ));
        }
        let actor = actor(req, Some(&principal.user.id));
        let caller = principal.user.clone();
        let id = id.0;
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "PATCH /api/v1/admin/users/{id}",
                fingerprint: &format!("{id}:{}", body.fingerprint),
            },
            move |txn| {
                Box::pin(async move {
                    let user = user_rows::Entity::find_by_id(id)
                        .one(txn)
                        .await?
                        .ok_or_else(|| ApiError::not_found("user"))?;
                    may_change(&caller, &user, changes.role)?;
                    let (user, diff) = users::update(txn, user, changes).await?;
                    if !diff.is_empty() {
                        audit::record(
                            txn,
                            &actor,
                            AuditEvent {
                                action: "user.updated",
                                entity_type: "user",
                                entity_id: Some(&user.id),
                                details: Some(json!({ "changes": diff })),
                            },
                        )
                        .await?;
                    }
                    Ok(Reply::new(UserView::from(user)))
                })
            },
        )
        .await?;
        state.caches.announce(&state.redis, Change::Account).await;
        Ok(reply)
    }

    /// Delete a user
    ///
    /// Cannot delete a user with payment history (returns 409): payments, payouts, Sellapay or
    /// Maxtera transactions, or ledger postings. What the account owns goes with it, and its
    /// tokens stop working at once. No admin can delete itself.
    #[oai(path = "/admin/users/:id", method = "delete", operation_id = "deleteUser")]
    async fn delete(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<Deleted>> {
        let principal = auth.0;
        principal.require_admin()?;
        let txn = begin_write(&state.db).await?;
        let user = user_rows::Entity::find_by_id(id.0)
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("user"))?;
        if user.id == principal.user.id {
            return Err(ApiError::conflict("cannot_delete_self", "an admin cannot delete their own account"));
        }
        if user.role == UserRole::Admin && !principal.user.is_super_admin {
            return Err(ApiError::forbidden("only a super-admin can delete admin accounts"));
        }
        let tokens_revoked = users::delete(&txn, &user).await?;
        audit::record(
            &txn,
            &actor(req, Some(&principal.user.id)),
            AuditEvent {
                action: "user.deleted",
                entity_type: "user",
                entity_id: Some(&user.id),
                details: Some(
                    json!({ "email": user.email, "role": user.role, "tokensRevoked": tokens_revoked }),
                ),
            },
        )
        .await?;
        txn.commit().await?;
        state.caches.announce(&state.redis, Change::Account).await;
        Ok(Reply::new(Deleted { deleted: true }))
    }
}

/// Holds back from plain admins what the rules above reserve to super-admins, and from every
/// admin its own demotion: the last admin demoting itself would leave nobody to undo it.
fn may_change(caller: &user_rows::Model, target: &user_rows::Model, role: Option<UserRole>) -> ApiResult<()> {
    let leaves_admin = role.is_some_and(|role| role != UserRole::Admin) && target.role == UserRole::Admin;
    if target.id == caller.id && leaves_admin {
        return Err(ApiError::conflict(
            "cannot_demote_self",
            "an admin cannot take away their own admin role",
        ));
    }
    let admin_role_changes =
        role.is_some_and(|role| (role == UserRole::Admin) != (target.role == UserRole::Admin));
    if (admin_role_changes || target.is_super_admin) && !caller.is_super_admin {
        return Err(ApiError::forbidden(
            "only a super-admin can change a super-admin, or make an account an admin or not",
        ));
    }
    Ok(())
}
