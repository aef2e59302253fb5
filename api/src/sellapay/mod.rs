//! The Sellapay surface, mounted at `/sellapay/api/v1`: plain JSON objects, errors as
//! `{error, message, details}`, and the seed's exact bodies where it gives them.

pub mod auth;
pub mod fields;
pub mod payouts;
pub mod stk;
pub mod transactions;

use std::collections::BTreeMap;

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{Object, OpenApi, Tags, param::Header, payload::Json};
use serde_json::json;
use ultra_domain::{
    api_keys,
    audit::{self, AuditEvent},
    auth_tokens::{self, SELLAPAY_SCOPE, TokenRequest},
    ledger, money,
};

use self::auth::SellapayAuth;
use crate::{
    AppState,
    http::{
        client::actor,
        error::{ApiError, ApiResult},
    },
};

/// Where `authorize` is served; its limit is per client IP, every other route's per token.
pub const AUTHORIZE_PATH: &str = "/sellapay/api/v1/authorize";
/// The only currency Sellapay accounts hold.
const PRIMARY_CURRENCY: &str = "KES";
const TOKEN_LIFETIME_SECONDS: u64 = 3600;

#[derive(Tags)]
pub enum SellapayTags {
    /// Sellapay API v1 (Kenya, KES): API-key auth, balances, M-Pesa STK push, payouts
    Sellapay,
}

#[derive(Object)]
pub struct Authorized {
    pub message: String,
    /// The Sellapay account id, which other accounts send funds to.
    pub account: String,
    pub access_token: String,
    /// Seconds the token is valid for.
    pub expires_in: u64,
}

#[derive(Object)]
pub struct Balance {
    pub message: String,
    /// The balance in KES, and its value in each currency runtime config gives a rate for.
    pub balance: BTreeMap<String, f64>,
    pub primary_currency: String,
    /// Unix seconds.
    pub timestamp: i64,
}

pub struct SellapayApi;

#[OpenApi(prefix_path = "/sellapay/api/v1", tag = "SellapayTags::Sellapay")]
impl SellapayApi {
    /// Authorize
    ///
    /// Obtain an access token using API credentials (created with `POST /api/v1/api-keys`).
    /// The token lasts one hour. 10 requests per minute per IP.
    #[oai(path = "/authorize", method = "post", operation_id = "sellapayAuthorize")]
    async fn authorize(
        &self,
        req: &Request,
        state: Data<&AppState>,
        #[oai(name = "X-API-KEY")] key: Header<Option<String>>,
        #[oai(name = "X-API-SECRET")] secret: Header<Option<String>>,
    ) -> ApiResult<Json<Authorized>> {
        let (Some(key), Some(secret)) = (key.0.filter(|k| !k.is_empty()), secret.0.filter(|s| !s.is_empty()))
        else {
            return Err(ApiError::with_body(
                StatusCode::BAD_REQUEST,
                "missing_credentials",
                json!({ "error": "Missing API key or secret code" }),
            ));
        };
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let Some((api_key, user)) = api_keys::verify(&txn, &key, &secret).await? else {
            return Err(ApiError::with_body(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                json!({ "error": "Unauthorized", "message": "Invalid API key or secret code" }),
            ));
        };
        let account = api_keys::account_of(&txn, &user.id).await?;
        let issued = auth_tokens::issue(
            &txn,
            &state.signer,
            TokenRequest {
                user: &user,
                name: &format!("sellapay:{}", api_key.name),
                ttl: std::time::Duration::from_secs(TOKEN_LIFETIME_SECONDS),
                custom_claims: Some(json!({ "scope": SELLAPAY_SCOPE, "apiKey": api_key.id })),
                created_by: None,
            },
        )
        .await?;
        audit::record(
            &txn,
            &actor(req, Some(&user.id)),
            AuditEvent {
                action: "sellapay.authorized",
                entity_type: "api_key",
                entity_id: Some(&api_key.id),
                details: None,
            },
        )
        .await?;
        txn.commit().await?;
        Ok(Json(Authorized {
            message: "User authorized".to_owned(),
            account,
            access_token: issued.jwt,
            expires_in: TOKEN_LIFETIME_SECONDS,
        }))
    }

    /// Get Balance
    ///
    /// The account's balance from the ledger in KES, and its value in USD, EUR and GBP at the
    /// rates in runtime config (`sellapay.fxRates`).
    #[oai(path = "/getBalance", method = "get", operation_id = "sellapayGetBalance")]
    async fn get_balance(&self, state: Data<&AppState>, auth: SellapayAuth) -> ApiResult<Json<Balance>> {
        let merchant = auth.0;
        let code = ledger::merchant_code(&merchant.id, PRIMARY_CURRENCY);
        let minor = ledger::find_account(&state.db, &code).await?.map_or(0, |account| account.balance_minor);
        let config = state.runtime.current().await?;
        let mut balance = BTreeMap::from([(PRIMARY_CURRENCY.to_owned(), money::major_number(minor))]);
        for (currency, rate) in &config.sellapay.fx_rates {
            balance.insert(currency.clone(), money::convert(minor, rate)?);
        }
        Ok(Json(Balance {
            message: "Balance retrieved".to_owned(),
            balance,
            primary_currency: PRIMARY_CURRENCY.to_owned(),
            timestamp: chrono::Utc::now().timestamp(),
        }))
    }
}
