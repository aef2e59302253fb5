//! Maxtera accounts and tokens: `auth/register/`, `auth/login/` (an `access` and a `refresh`
//! JWT, as Simple JWT gives them) and `auth/refresh/`, which rotates: a refresh token is good
//! for one refresh.

use std::time::Duration;

use poem::{Request, RequestBody, http::StatusCode, web::Data};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ApiResponse, ExtractParamOptions, Object, OpenApi, payload::Json,
    registry::Registry,
};
use serde_json::json;
use ultra_domain::{
    DomainError,
    audit::{self, Actor, AuditEvent},
    auth_tokens::{self, MAXTERA_REFRESH_SCOPE, MAXTERA_SCOPE, TokenRequest},
    maxtera::{accounts, phones},
    passwords, users,
};
use ultra_entity::{maxtera_accounts, users::Model as User};

use super::{MaxteraTags, fields::required};
use crate::{
    AppState,
    http::{
        auth::{bearer_scheme, bearer_token},
        client::actor,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

const MAX_PASSWORD_LEN: usize = 128;

/// Simple JWT's answer to a token it cannot accept.
fn token_rejected() -> ApiError {
    ApiError::with_body(
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
        json!({ "detail": "Given token not valid for any token type", "code": "token_not_valid" }),
    )
}

/// A Maxtera customer, authenticated by an `access` token.
pub struct MaxteraAuth {
    pub user: User,
    pub account: maxtera_accounts::Model,
}

async fn authenticate(req: &Request) -> Result<MaxteraAuth, ApiError> {
    let state = req.data::<AppState>().ok_or_else(|| ApiError::internal("state missing"))?;
    let jwt = bearer_token(req).filter(|t| !t.is_empty()).ok_or_else(|| {
        ApiError::with_body(
            StatusCode::UNAUTHORIZED,
            "not_authenticated",
            json!({ "detail": "Authentication credentials were not provided.", "code": "not_authenticated" }),
        )
    })?;
    let claims =
        state.signer.verify(&jwt).filter(|c| c.scope() == Some(MAXTERA_SCOPE)).ok_or_else(token_rejected)?;
    let session = state.caches.session(&state.db, &claims).await?.ok_or_else(token_rejected)?;
    let user = session.1.clone();
    let account = accounts::of_user(&state.db, &user).await?.ok_or_else(token_rejected)?;
    Ok(MaxteraAuth { user, account })
}

impl<'a> ApiExtractor<'a> for MaxteraAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            "maxteraBearer",
            bearer_scheme("The `access` token from `POST /maxtera/api/v1/auth/login/`"),
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["maxteraBearer"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(authenticate(req).await?)
    }
}

#[derive(Object)]
#[oai(rename = "MaxteraRegisterRequest")]
pub struct RegisterRequest {
    pub email: Option<String>,
    /// At least 8 characters.
    pub password: Option<String>,
    /// A Nigerian mobile number: `08012345678` or `+2348012345678`.
    pub phone: Option<String>,
}

#[derive(Object)]
#[oai(rename = "MaxteraRegistered")]
pub struct Registered {
    pub message: String,
    pub user_id: i64,
}

#[derive(ApiResponse)]
pub enum RegisterResponse {
    #[oai(status = 201)]
    Created(Json<Registered>),
}

#[derive(Object)]
#[oai(rename = "MaxteraLoginRequest")]
pub struct LoginRequest {
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Object)]
#[oai(rename = "MaxteraRefreshRequest")]
pub struct RefreshRequest {
    pub refresh: Option<String>,
}

#[derive(Object)]
#[oai(rename = "MaxteraTokenPair")]
pub struct TokenPair {
    /// Send as `Authorization: Bearer <access>`; valid for `maxtera.accessTokenSeconds`.
    pub access: String,
    /// Exchange at `auth/refresh/` for a new pair; good once.
    pub refresh: String,
}

pub struct MaxteraAuthApi;

#[OpenApi(prefix_path = "/maxtera/api/v1", tag = "MaxteraTags::Maxtera")]
impl MaxteraAuthApi {
    /// Register
    ///
    /// Creates a customer account with an empty NGN wallet. 10 requests per minute per IP.
    #[oai(path = "/auth/register", method = "post", operation_id = "maxteraRegister")]
    async fn register(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: JsonBody<RegisterRequest>,
    ) -> ApiResult<RegisterResponse> {
        let request = body.value;
        let email = users::normalize_email(&required("email", request.email)?)
            .map_err(|_| ApiError::validation("email", "Enter a valid email address."))?;
        let password = request.password.unwrap_or_default();
        if password.is_empty() {
            return Err(ApiError::validation("password", "This field is required."));
        }
        let length = password.chars().count();
        if length < passwords::MIN_PASSWORD_LEN {
            return Err(ApiError::validation(
                "password",
                format!(
                    "This password is too short. It must contain at least {} characters.",
                    passwords::MIN_PASSWORD_LEN
                ),
            ));
        }
        if length > MAX_PASSWORD_LEN {
            return Err(ApiError::validation(
                "password",
                format!("Ensure this field has no more than {MAX_PASSWORD_LEN} characters."),
            ));
        }
        let phone = phones::nigerian("phone", &required("phone", request.phone)?)?;
        if users::find_by_email(&state.db, &email).await?.is_some() {
            return Err(email_taken());
        }
        let hash = tokio::task::spawn_blocking(move || passwords::hash(&password))
            .await
            .map_err(ApiError::internal)??;
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let account = accounts::register(&txn, &email, hash, phone).await.map_err(|err| match err {
            DomainError::Conflict { .. } => email_taken(),
            other => other.into(),
        })?;
        audit::record(
            &txn,
            &actor(req, Some(&account.user_id)),
            AuditEvent {
                action: "maxtera.register",
                entity_type: "user",
                entity_id: Some(&account.user_id),
                details: Some(json!({ "maxteraUserId": account.id })),
            },
        )
        .await?;
        txn.commit().await?;
        Ok(RegisterResponse::Created(Json(Registered {
            message: "Account created successfully".to_owned(),
            user_id: account.id,
        })))
    }

    /// Login
    ///
    /// Exchanges email and password for an `access` and a `refresh` token. 10 requests per
    /// minute per IP.
    #[oai(path = "/auth/login", method = "post", operation_id = "maxteraLogin")]
    async fn login(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: JsonBody<LoginRequest>,
    ) -> ApiResult<Json<TokenPair>> {
        let request = body.value;
        let email = required("email", request.email)?;
        let password = required("password", request.password)?;
        let user = users::find_by_email(&state.db, &email).await?;
        let stored = user.as_ref().and_then(|u| u.password_hash.clone());
        let matches = tokio::task::spawn_blocking(move || passwords::verify(&password, stored.as_deref()))
            .await
            .map_err(ApiError::internal)?;
        let customer = match user {
            Some(user) if matches => accounts::of_user(&state.db, &user).await?.map(|_| user),
            _ => None,
        };
        let Some(user) = customer else {
            return Err(ApiError::with_body(
                StatusCode::UNAUTHORIZED,
                "no_active_account",
                json!({ "detail": "No active account found with the given credentials", "code": "no_active_account" }),
            ));
        };
        Ok(Json(issue_pair(&state, &actor(req, Some(&user.id)), &user, "maxtera.login").await?))
    }

    /// Refresh
    ///
    /// Exchanges a `refresh` token for a new pair. The refresh token sent is spent: sending
    /// it again is refused.
    #[oai(path = "/auth/refresh", method = "post", operation_id = "maxteraRefresh")]
    async fn refresh(
        &self,
        req: &Request,
        state: Data<&AppState>,
        body: JsonBody<RefreshRequest>,
    ) -> ApiResult<Json<TokenPair>> {
        let refresh = required("refresh", body.value.refresh)?;
        let claims = state
            .signer
            .verify(&refresh)
            .filter(|c| c.scope() == Some(MAXTERA_REFRESH_SCOPE))
            .ok_or_else(refresh_rejected)?;
        let user = auth_tokens::redeem(&state.db, &claims).await?.ok_or_else(refresh_rejected)?;
        Ok(Json(issue_pair(&state, &actor(req, Some(&user.id)), &user, "maxtera.refresh").await?))
    }
}

fn email_taken() -> ApiError {
    ApiError::validation("email", "A user with this email already exists.")
}

fn refresh_rejected() -> ApiError {
    ApiError::with_body(
        StatusCode::UNAUTHORIZED,
        "token_not_valid",
        json!({ "detail": "Token is invalid or expired", "code": "token_not_valid" }),
    )
}

/// Issues an access and a refresh token, recording `action` (a login or a refresh) in the audit
/// trail in the same transaction.
async fn issue_pair(state: &AppState, actor: &Actor, user: &User, action: &str) -> ApiResult<TokenPair> {
    let config = state.runtime.current().await?;
    let txn = ultra_domain::db::begin_write(&state.db).await?;
    let issue = async |name: &str, scope: &str, seconds: u64| {
        auth_tokens::issue(
            &txn,
            &state.signer,
            TokenRequest {
                user,
                name,
                ttl: Duration::from_secs(seconds),
                custom_claims: Some(json!({ "scope": scope })),
                created_by: None,
            },
        )
        .await
    };
    let access = issue("maxtera:access", MAXTERA_SCOPE, config.maxtera.access_token_seconds).await?;
    let refresh =
        issue("maxtera:refresh", MAXTERA_REFRESH_SCOPE, config.maxtera.refresh_token_seconds).await?;
    audit::record(
        &txn,
        actor,
        AuditEvent { action, entity_type: "user", entity_id: Some(&user.id), details: None },
    )
    .await?;
    txn.commit().await?;
    Ok(TokenPair { access: access.jwt, refresh: refresh.jwt })
}
