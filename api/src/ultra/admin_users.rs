//! `GET/POST admin/users`.

use poem::{Request, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Header, Query},
};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait, Func, LikeExpr},
};
use ultra_domain::{
    audit::{self, AuditEvent},
    passwords,
    users::{self, NewUser},
};
use ultra_entity::users as user_rows;

use super::{
    ApiTags,
    views::{Role, Tier, UserView},
};
use crate::{
    AppState,
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
}
