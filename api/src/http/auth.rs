//! Authentication for the ultra surface: a JWT from the `Authorization: Bearer` header or the
//! HttpOnly `auth_token` cookie, checked against the token table on every request, through the
//! replica's session cache ([`crate::caches`]), which revocations empty on every replica.

use std::marker::PhantomData;

use poem::http::StatusCode;
use poem::{Request, RequestBody};
use poem_openapi::{
    ApiExtractor, ApiExtractorType, ExtractParamOptions,
    registry::{MetaSecurityScheme, Registry},
};
use sea_orm::{ActiveEnum, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use ultra_domain::{
    runtime_config::{RateLimitRule, TierRateLimits},
    tiers::{self, Feature},
};
use ultra_entity::{
    tokens,
    users::{self, UserRole},
};

use super::{error::ApiError, rate_limit};
use crate::AppState;

pub const AUTH_COOKIE: &str = "auth_token";

/// The authenticated caller.
pub struct Principal {
    pub user: users::Model,
    pub token: tokens::Model,
    /// Set when an admin sends `X-App-Context: merchant`: the primary merchant they act as.
    pub acting_as: Option<users::Model>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.user.role == UserRole::Admin && self.acting_as.is_none()
    }

    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this operation needs an admin account"))
        }
    }

    /// The merchant this caller acts for: themselves, or the primary merchant for an admin
    /// under `X-App-Context: merchant`.
    pub fn merchant(&self) -> Result<&users::Model, ApiError> {
        match &self.acting_as {
            Some(merchant) => Ok(merchant),
            None if self.user.role == UserRole::User => Ok(&self.user),
            None => Err(ApiError::forbidden(
                "this operation is for merchant accounts; admins send X-App-Context: merchant",
            )),
        }
    }

    /// The merchant, for what only the merchant's own login may do: minting credentials that
    /// act as the merchant and sending the merchant's money out. An admin acting as the primary
    /// merchant does the merchant's everyday work, never these.
    pub fn merchant_in_person(&self, what: &str) -> Result<&users::Model, ApiError> {
        if self.acting_as.is_some() {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "impersonation_forbidden",
                format!("an admin acting as the merchant cannot {what}: log in as the merchant"),
            ));
        }
        self.merchant()
    }

    /// Whether the caller may see something owned by `owner_id`: admins see everything, a
    /// merchant (or an admin acting as one) only their own.
    pub fn may_see(&self, owner_id: &str) -> bool {
        self.is_admin() || self.merchant().is_ok_and(|merchant| merchant.id == owner_id)
    }

    /// The merchant a list is narrowed to: the one an admin names in the `param` filter (or
    /// `None`, every merchant), and always the caller's own for anyone else, who may not name
    /// one.
    pub fn merchant_scope(&self, requested: Option<String>, param: &str) -> Result<Option<String>, ApiError> {
        if self.is_admin() {
            return Ok(requested);
        }
        if requested.is_some() {
            return Err(ApiError::forbidden(format!("{param} is an admin filter")));
        }
        Ok(Some(self.merchant()?.id.clone()))
    }

    pub fn require_super_admin(&self) -> Result<(), ApiError> {
        self.require_admin()?;
        if self.user.is_super_admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("this operation needs a super-admin account"))
        }
    }
}

/// Refuses a feature the account's SLA tier does not include, saying which tier does.
pub fn require_feature(account: &users::Model, feature: Feature) -> Result<(), ApiError> {
    if tiers::allows(account.tier, feature) {
        return Ok(());
    }
    let minimum = feature.minimum_tier();
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "tier_required",
        format!(
            "{} requires the {} SLA tier ({}) or higher; this account is on {}",
            feature.label(),
            minimum.label(),
            minimum.to_value(),
            account.tier.to_value()
        ),
    ))
}

/// The extractor handlers take to require a logged-in caller. `L` names a limit the operation
/// counts against besides the caller's requests; both are counted in one Redis call.
pub struct Auth<L: Counted = Requests>(pub Principal, PhantomData<L>);

/// What an operation counts against besides the caller's per-tier request limit.
pub trait Counted: Send + Sync + 'static {
    fn limit(principal: &Principal, limits: &TierRateLimits) -> Option<(String, RateLimitRule)>;
}

/// The per-tier request limit alone.
pub struct Requests;

impl Counted for Requests {
    fn limit(_: &Principal, _: &TierRateLimits) -> Option<(String, RateLimitRule)> {
        None
    }
}

/// Payments started, per merchant at the merchant's tier.
pub struct Payments;

impl Counted for Payments {
    fn limit(principal: &Principal, limits: &TierRateLimits) -> Option<(String, RateLimitRule)> {
        let merchant = principal.merchant().ok()?;
        Some((format!("payments:{}", merchant.id), limits.for_tier(merchant.tier).payments))
    }
}

pub fn bearer_token(req: &Request) -> Option<String> {
    let value = req.header("Authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

async fn authenticate<L: Counted>(req: &Request) -> Result<Principal, ApiError> {
    let state = req.data::<AppState>().ok_or_else(|| ApiError::internal("state missing"))?;
    let jwt = bearer_token(req)
        .or_else(|| req.cookie().get(AUTH_COOKIE).map(|c| c.value_str().to_owned()))
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized("authentication required: send a bearer token or the auth_token cookie")
        })?;
    let claims =
        state.signer.verify(&jwt).ok_or_else(|| ApiError::unauthorized("the token is invalid or expired"))?;
    if claims.scope().is_some() {
        return Err(ApiError::unauthorized("this token is for the Sellapay or Maxtera API only"));
    }
    let session = state
        .caches
        .session(&state.db, &claims)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token has been revoked or has expired"))?;
    let (token, user) = (session.0.clone(), session.1.clone());
    if user.role == UserRole::Customer {
        return Err(ApiError::unauthorized("this account is a Maxtera customer's: use the Maxtera API"));
    }
    let acting_as = match req.header("X-App-Context") {
        None | Some("admin") => None,
        Some("merchant") if user.role == UserRole::Admin => Some(primary_merchant(state).await?),
        Some("merchant") => None,
        Some(other) => {
            return Err(ApiError::validation(
                "X-App-Context",
                format!("must be `merchant` or `admin`, not `{other}`"),
            ));
        }
    };
    let principal = Principal { user, token, acting_as };
    let config = state.runtime.current().await?;
    let requests = config.rate_limits.for_tier(principal.user.tier).requests;
    let mut limits = vec![(format!("requests:{}", principal.user.id), requests)];
    limits.extend(L::limit(&principal, &config.rate_limits));
    rate_limit::enforce(req, state, &limits).await?;
    Ok(principal)
}

/// The merchant named in runtime config, or else the oldest merchant account.
async fn primary_merchant(state: &AppState) -> Result<users::Model, ApiError> {
    let config = state.runtime.current().await?;
    let merchant = match &config.primary_merchant_id {
        Some(id) => users::Entity::find_by_id(id.as_str()).one(&state.db).await?,
        None => {
            users::Entity::find()
                .filter(users::Column::Role.eq(UserRole::User))
                .order_by_asc(users::Column::Id)
                .one(&state.db)
                .await?
        }
    };
    merchant.ok_or_else(|| {
        ApiError::conflict(
            "no_primary_merchant",
            "X-App-Context: merchant needs a primary merchant; set primaryMerchantId in runtime config",
        )
    })
}

/// An `Authorization: Bearer <JWT>` scheme for the OpenAPI document; every surface's tokens are
/// JWTs, told apart by their scope.
pub fn bearer_scheme(description: &'static str) -> MetaSecurityScheme {
    MetaSecurityScheme {
        ty: "http",
        description: Some(description),
        name: None,
        key_in: None,
        scheme: Some("bearer"),
        bearer_format: Some("JWT"),
        flows: None,
        openid_connect_url: None,
    }
}

impl<'a, L: Counted> ApiExtractor<'a> for Auth<L> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme("bearerAuth", bearer_scheme("JWT from `POST /api/v1/auth/login`"));
        registry.create_security_scheme(
            "cookieAuth",
            MetaSecurityScheme {
                ty: "apiKey",
                description: Some("The HttpOnly cookie set by login"),
                name: Some(AUTH_COOKIE),
                key_in: Some("cookie"),
                scheme: None,
                bearer_format: None,
                flows: None,
                openid_connect_url: None,
            },
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["bearerAuth", "cookieAuth"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(authenticate::<L>(req).await?, PhantomData))
    }
}
