//! Sellapay authentication: `X-API-KEY` and `X-API-SECRET` are exchanged at `authorize` for a
//! one-hour bearer token scoped to this surface, which every other endpoint requires.

use poem::{Request, RequestBody, http::StatusCode};
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions, registry::Registry};
use serde_json::json;
use ultra_domain::{api_keys, auth_tokens::SELLAPAY_SCOPE};
use ultra_entity::users;

use crate::{
    AppState,
    http::{
        auth::{bearer_scheme, bearer_token},
        error::ApiError,
    },
};

/// The seed's answer to a missing, invalid, expired or revoked token.
pub fn token_rejected() -> ApiError {
    ApiError::with_body(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        json!({ "error": "Invalid or expired access token", "message": "Please re-authorize to get a new token" }),
    )
}

/// The merchant a valid Sellapay token was issued to.
pub struct SellapayAuth(pub users::Model);

async fn authenticate(req: &Request) -> Result<users::Model, ApiError> {
    let state = req.data::<AppState>().ok_or_else(|| ApiError::internal("state missing"))?;
    let jwt = bearer_token(req).ok_or_else(token_rejected)?;
    let claims =
        state.signer.verify(&jwt).filter(|c| c.scope() == Some(SELLAPAY_SCOPE)).ok_or_else(token_rejected)?;
    let key = claims.api_key().ok_or_else(token_rejected)?;
    if !api_keys::is_live(&state.db, key).await? {
        return Err(token_rejected());
    }
    let session = state.caches.session(&state.db, &claims).await?.ok_or_else(token_rejected)?;
    Ok(session.1.clone())
}

impl<'a> ApiExtractor<'a> for SellapayAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        registry.create_security_scheme(
            "sellapayBearer",
            bearer_scheme("Access token from `POST /sellapay/api/v1/authorize`"),
        );
    }

    fn security_schemes() -> Vec<&'static str> {
        vec!["sellapayBearer"]
    }

    async fn from_request(
        req: &'a Request,
        _body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        Ok(Self(authenticate(req).await?))
    }
}
