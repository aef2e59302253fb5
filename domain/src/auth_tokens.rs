//! Bearer tokens: HS256 JWTs whose `jti` is recorded in `tokens`, so that logout and revocation
//! are checked against the database rather than trusted to the token's own expiry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, Set,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use ultra_entity::{
    tokens::{self, TokenStatus},
    users::{self, UserRole},
};

use crate::{DomainError, DomainResult, ids};

/// The claims Ultra signs. Role and tier are informative for clients; authorisation always uses
/// the user row read at request time, so a demoted admin loses access at once.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    pub role: UserRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<serde_json::Value>,
}

/// The `scope` custom claim of tokens that belong to one surface only: a Sellapay token, issued
/// by `authorize` for an API key, opens the Sellapay surface and nothing else.
pub const SELLAPAY_SCOPE: &str = "sellapay";
/// Maxtera's `access` tokens open the Maxtera surface; its `refresh` tokens open nothing and
/// are good for one refresh.
pub const MAXTERA_SCOPE: &str = "maxtera";
pub const MAXTERA_REFRESH_SCOPE: &str = "maxtera-refresh";

impl Claims {
    pub fn scope(&self) -> Option<&str> {
        self.custom.as_ref()?.get("scope")?.as_str()
    }

    /// The API key a Sellapay token was issued for.
    pub fn api_key(&self) -> Option<&str> {
        self.custom.as_ref()?.get("apiKey")?.as_str()
    }
}

#[derive(Clone)]
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl TokenSigner {
    /// Refuses secrets shorter than 32 bytes: HS256 is only as strong as its key.
    pub fn new(secret: &str) -> DomainResult<Self> {
        if secret.len() < 32 {
            return Err(DomainError::validation("ULTRA_JWT_SECRET", "must be at least 32 bytes long"));
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        })
    }

    /// Verifies signature and expiry. `None` for anything malformed, forged or expired: the
    /// caller answers 401 either way.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub", "jti"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).ok().map(|data| data.claims)
    }
}

pub struct IssuedToken {
    pub jwt: String,
    pub row: tokens::Model,
}

pub struct TokenRequest<'a> {
    pub user: &'a users::Model,
    pub name: &'a str,
    pub ttl: Duration,
    pub custom_claims: Option<serde_json::Value>,
    pub created_by: Option<String>,
}

pub async fn issue(
    db: &impl ConnectionTrait,
    signer: &TokenSigner,
    request: TokenRequest<'_>,
) -> DomainResult<IssuedToken> {
    let now = Utc::now();
    let ttl = chrono::Duration::from_std(request.ttl)
        .map_err(|_| DomainError::validation("ttl", "is too large"))?;
    let expires_at = now + ttl;
    let jti = ulid::Ulid::new().to_string();
    let claims = Claims {
        sub: request.user.id.clone(),
        jti: jti.clone(),
        iat: now.timestamp(),
        exp: expires_at.timestamp(),
        role: request.user.role,
        custom: request.custom_claims.clone(),
    };
    let jwt = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &signer.encoding)
        .map_err(|err| DomainError::Internal(format!("token signing failed: {err}")))?;
    let row = tokens::ActiveModel {
        id: Set(ids::new_id("tok")),
        jti: Set(jti),
        user_id: Set(request.user.id.clone()),
        name: Set(request.name.to_owned()),
        status: Set(TokenStatus::Active),
        expires_at: Set(DateTime::from_timestamp(expires_at.timestamp(), 0).unwrap_or(expires_at)),
        custom_claims: Set(request.custom_claims),
        created_by: Set(request.created_by),
        created_at: Set(now),
        revoked_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(IssuedToken { jwt, row })
}

/// The token row and its user, if the token is still active and unexpired.
pub async fn authenticate(
    db: &impl ConnectionTrait,
    claims: &Claims,
) -> DomainResult<Option<(tokens::Model, users::Model)>> {
    let found = tokens::Entity::find()
        .filter(tokens::Column::Jti.eq(&claims.jti))
        .find_also_related(users::Entity)
        .one(db)
        .await?;
    Ok(match found {
        Some((token, Some(user)))
            if token.user_id == claims.sub && token.effective_status(Utc::now()) == TokenStatus::Active =>
        {
            Some((token, user))
        }
        _ => None,
    })
}

/// Spends a single-use token: revokes it if it is still active and returns its user. Of two
/// concurrent redemptions of one token exactly one gets the user; a spent, revoked or expired
/// token gets `None`.
pub async fn redeem(db: &impl ConnectionTrait, claims: &Claims) -> DomainResult<Option<users::Model>> {
    let Some((token, user)) = authenticate(db, claims).await? else { return Ok(None) };
    let spent = tokens::Entity::update_many()
        .col_expr(tokens::Column::Status, Expr::value(TokenStatus::Revoked))
        .col_expr(tokens::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(tokens::Column::Id.eq(&token.id))
        .filter(tokens::Column::Status.eq(TokenStatus::Active))
        .exec(db)
        .await?;
    Ok((spent.rows_affected == 1).then_some(user))
}

pub async fn revoke(db: &impl ConnectionTrait, token: tokens::Model) -> DomainResult<tokens::Model> {
    let mut active = token.into_active_model();
    active.status = Set(TokenStatus::Revoked);
    active.revoked_at = Set(Some(Utc::now()));
    Ok(active.update(db).await?)
}

/// Claim names a caller may not set: the registered claims Ultra signs itself, and the custom
/// claims that decide which surface a token opens (`scope`, `apiKey`) or what it claims to be.
pub const RESERVED_CLAIMS: [&str; 10] =
    ["sub", "jti", "iat", "exp", "nbf", "iss", "aud", "role", "scope", "apiKey"];
/// Custom claims travel in every request's token; a few small values are what they are for.
const MAX_CUSTOM_CLAIMS_BYTES: usize = 2048;

/// Checks claims an admin asks to put in a token: an object of at most 2 KiB whose names are
/// not reserved.
pub fn check_custom_claims(claims: &serde_json::Value) -> DomainResult<()> {
    let field = "customClaims";
    let serde_json::Value::Object(map) = claims else {
        return Err(DomainError::validation(field, "must be a JSON object"));
    };
    if let Some(name) = map.keys().find(|name| RESERVED_CLAIMS.contains(&name.as_str())) {
        return Err(DomainError::validation(
            format!("{field}.{name}"),
            format!("is a reserved claim; reserved are {}", RESERVED_CLAIMS.join(", ")),
        ));
    }
    if map.keys().any(|name| name.is_empty() || name.len() > 64) {
        return Err(DomainError::validation(field, "claim names must be 1 to 64 characters"));
    }
    if claims.to_string().len() > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(DomainError::validation(field, "must be at most 2048 bytes of JSON"));
    }
    if holds_nul(claims) {
        return Err(DomainError::validation(field, "must not contain NUL characters"));
    }
    Ok(())
}

/// PostgreSQL text cannot hold NUL.
fn holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(holds_nul),
        serde_json::Value::Object(map) => {
            map.iter().any(|(key, value)| key.contains('\0') || holds_nul(value))
        }
        _ => false,
    }
}
