//! `POST auth/login`, `GET auth/session`, `POST auth/logout` and `POST admin/auth/login`.

use chrono::{DateTime, Utc};
use poem::{
    Request,
    web::{
        Data,
        cookie::{Cookie, CookieJar, SameSite},
    },
};
use poem_openapi::{Object, OpenApi};
use ultra_domain::{
    audit::{self, AuditEvent},
    auth_tokens::{self, TokenRequest},
    passwords, users,
};
use ultra_entity::users::{Model as User, UserRole};

use super::{ApiTags, views::UserView};
use crate::{
    AppState,
    caches::Change,
    http::{
        auth::{AUTH_COOKIE, Auth},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

const INVALID_CREDENTIALS: &str = "invalid email or password";

#[derive(Object)]
pub struct LoginRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// Required only if the account has a password set.
    #[oai(validator(min_length = 8, max_length = 1024))]
    pub password: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct LoginData {
    /// A JWT to send as `Authorization: Bearer <token>`; the same value is set as the
    /// HttpOnly `auth_token` cookie.
    pub token: String,
    pub token_type: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SessionData {
    pub user: UserView,
    /// The merchant an admin acts as under `X-App-Context: merchant`.
    pub acting_as: Option<UserView>,
    pub token: TokenInfo,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct LogoutData {
    pub logged_out: bool,
}

pub struct AuthApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Login (merchant or admin)
    ///
    /// Returns a JWT valid for `AUTH_COOKIE_TTL_SECONDS` and sets it as the HttpOnly
    /// `auth_token` cookie. Rate-limited to 10 requests per 60 seconds per IP.
    #[oai(path = "/auth/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        req: &Request,
        state: Data<&AppState>,
        jar: &CookieJar,
        body: JsonBody<LoginRequest>,
    ) -> ApiResult<Reply<LoginData>> {
        let user = verify_credentials(&state, &body.value).await?;
        open_session(&state, req, jar, user).await
    }

    /// Get current session
    #[oai(path = "/auth/session", method = "get", operation_id = "getSession")]
    async fn session(&self, auth: Auth) -> ApiResult<Reply<SessionData>> {
        let principal = auth.0;
        Ok(Reply::new(SessionData {
            token: TokenInfo {
                id: principal.token.id,
                name: principal.token.name,
                expires_at: principal.token.expires_at,
            },
            user: principal.user.into(),
            acting_as: principal.acting_as.map(Into::into),
        }))
    }

    /// Logout
    ///
    /// Revokes the current token, on every replica at once, and clears the auth cookie.
    #[oai(path = "/auth/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        req: &Request,
        state: Data<&AppState>,
        jar: &CookieJar,
        auth: Auth,
    ) -> ApiResult<Reply<LogoutData>> {
        let principal = auth.0;
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let token = auth_tokens::revoke(&txn, principal.token).await?;
        audit::record(
            &txn,
            &actor(req, Some(&principal.user.id)),
            AuditEvent {
                action: "auth.logout",
                entity_type: "token",
                entity_id: Some(&token.id),
                details: None,
            },
        )
        .await?;
        txn.commit().await?;
        state.caches.announce(&state.redis, Change::Token(&token.jti)).await;
        jar.add(auth_cookie(&state, String::new(), 0));
        Ok(Reply::new(LogoutData { logged_out: true }))
    }
}

pub struct AdminAuthApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminAuthApi {
    /// Admin login
    ///
    /// Like `auth/login`, for admin accounts only. Rate-limited to 10 requests per 60 s per IP.
    #[oai(path = "/admin/auth/login", method = "post", operation_id = "adminLogin")]
    async fn admin_login(
        &self,
        req: &Request,
        state: Data<&AppState>,
        jar: &CookieJar,
        body: JsonBody<LoginRequest>,
    ) -> ApiResult<Reply<LoginData>> {
        let user = verify_credentials(&state, &body.value).await?;
        if user.role != UserRole::Admin {
            return Err(ApiError::forbidden("this account is not an admin account"));
        }
        open_session(&state, req, jar, user).await
    }
}

/// Checks the credentials. Every failure that could reveal whether an email is registered
/// answers the same 401, after the same password-hashing work.
async fn verify_credentials(state: &AppState, request: &LoginRequest) -> ApiResult<User> {
    let email = users::normalize_email(&request.email)?;
    let user = users::find_by_email(&state.db, &email).await?;
    let Some(password) = request.password.clone() else {
        let config = state.runtime.current().await?;
        if !config.passwordless_login {
            return Err(ApiError::unauthorized(
                "a password is required: passwordless login is disabled on this server",
            ));
        }
        return match user {
            Some(user) if user.password_hash.is_none() && user.role != UserRole::Customer => Ok(user),
            _ => Err(ApiError::unauthorized(INVALID_CREDENTIALS)),
        };
    };
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let matches = tokio::task::spawn_blocking(move || passwords::verify(&password, stored.as_deref()))
        .await
        .map_err(ApiError::internal)?;
    // Maxtera customers log in to the Maxtera API only; to them this surface knows no account.
    match user {
        Some(user) if matches && user.role != UserRole::Customer => Ok(user),
        _ => Err(ApiError::unauthorized(INVALID_CREDENTIALS)),
    }
}

async fn open_session(
    state: &AppState,
    req: &Request,
    jar: &CookieJar,
    user: User,
) -> ApiResult<Reply<LoginData>> {
    let ttl = state.config.auth_token_ttl;
    let txn = ultra_domain::db::begin_write(&state.db).await?;
    let issued = auth_tokens::issue(
        &txn,
        &state.signer,
        TokenRequest { user: &user, name: "login", ttl, custom_claims: None, created_by: None },
    )
    .await?;
    audit::record(
        &txn,
        &actor(req, Some(&user.id)),
        AuditEvent {
            action: "auth.login",
            entity_type: "token",
            entity_id: Some(&issued.row.id),
            details: None,
        },
    )
    .await?;
    txn.commit().await?;
    jar.add(auth_cookie(state, issued.jwt.clone(), ttl.as_secs()));
    Ok(Reply::new(LoginData {
        token: issued.jwt,
        token_type: "Bearer".to_owned(),
        expires_at: issued.row.expires_at,
        user: user.into(),
    }))
}

fn auth_cookie(state: &AppState, value: String, max_age_seconds: u64) -> Cookie {
    let mut cookie = Cookie::new_with_str(AUTH_COOKIE, value);
    cookie.set_http_only(true);
    cookie.set_path("/");
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(state.config.cookie_secure);
    cookie.set_max_age(std::time::Duration::from_secs(max_age_seconds));
    cookie
}
