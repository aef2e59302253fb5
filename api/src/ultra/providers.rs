//! `merchant/providers` (the merchant's own provider configurations) and `admin/providers`
//! (the global ones, or a merchant's with `?userId`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Path, Query},
};
use sea_orm::EntityTrait;
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, AuditEvent},
    db::begin_write,
    provider_configs::{self, ConfigInput, GLOBAL, Provider},
};
use ultra_entity::{
    provider_configs::{Model as ConfigRow, ProviderMode},
    users,
};

use super::{ApiTags, views::Deleted};
use crate::{
    AppState,
    caches::Change,
    http::{
        auth::Auth,
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

/// The `{name}` path segment, read as text and checked here so that a wrong name gets an error
/// naming `name` and the choices (poem-openapi's own names the segment `param0`).
fn provider(name: &Path<String>) -> ApiResult<Provider> {
    Provider::parse(&name.0).ok_or_else(|| {
        let names: Vec<&str> = Provider::ALL.iter().map(|provider| provider.name()).collect();
        ApiError::validation("name", format!("must be one of {}", names.join(", ")))
    })
}

/// `simulation` decides outcomes in-process without calling the provider; `live` calls it.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum Mode {
    Simulation,
    Live,
}

impl From<Mode> for ProviderMode {
    fn from(mode: Mode) -> Self {
        match mode {
            Mode::Simulation => Self::Simulation,
            Mode::Live => Self::Live,
        }
    }
}

impl From<ProviderMode> for Mode {
    fn from(mode: ProviderMode) -> Self {
        match mode {
            ProviderMode::Simulation => Self::Simulation,
            ProviderMode::Live => Self::Live,
        }
    }
}

/// A provider's settings. Each provider takes its own: MVola `baseUrl`, `consumerKey`,
/// `consumerSecret`, `merchantMsisdn`, `partnerName`; Airtel `baseUrl`, `clientId`,
/// `clientSecret`, `country`, `currency`; Orange `baseUrl`, `clientId`, `clientSecret`,
/// `merchantKey`, `countrySegment`, `currency`, `returnUrl`, `cancelUrl`; M-Pesa `baseUrl`,
/// `consumerKey`, `consumerSecret`, `shortcode`, `passkey`, `transactionType`, `partyB` and,
/// for B2C payouts, `b2cShortcode`, `initiatorName`, `securityCredential`; the bank rail
/// `baseUrl`, `clientId`, `clientSecret`; VTpass `baseUrl` (ending in `/api`), `apiKey`,
/// `publicKey`, `secretKey`; OnePipe `baseUrl`, `apiKey`, `clientSecret`, `mockMode`; Meta
/// `baseUrl`, `authUrl`, `apiVersion`, `clientId`, `clientSecret`; TikTok `baseUrl`,
/// `authUrl`, `clientId`, `clientSecret`. Secrets
/// are stored encrypted and returned masked; sending a masked value back keeps the stored
/// secret.
#[derive(Object)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfigInput {
    /// Defaults to true; a disabled provider refuses new payments.
    pub enabled: Option<bool>,
    /// Defaults to `simulation`.
    pub mode: Option<Mode>,
    pub base_url: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
    pub merchant_msisdn: Option<String>,
    pub partner_name: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub country: Option<String>,
    pub currency: Option<String>,
    pub country_segment: Option<String>,
    pub merchant_key: Option<String>,
    pub return_url: Option<String>,
    pub cancel_url: Option<String>,
    /// M-Pesa: the Lipa-na-M-Pesa shortcode STK pushes pay into.
    pub shortcode: Option<String>,
    /// M-Pesa: the shortcode's passkey (secret).
    pub passkey: Option<String>,
    /// M-Pesa: `CustomerPayBillOnline` (default) or `CustomerBuyGoodsOnline`.
    pub transaction_type: Option<String>,
    /// M-Pesa: the till or paybill receiving STK payments, when not the shortcode itself.
    pub party_b: Option<String>,
    /// M-Pesa: the shortcode B2C payouts are paid from, when not the shortcode itself.
    pub b2c_shortcode: Option<String>,
    /// M-Pesa: the B2C initiator's user name.
    pub initiator_name: Option<String>,
    /// M-Pesa: the initiator's password encrypted with Safaricom's certificate (secret).
    pub security_credential: Option<String>,
    /// VTpass: the API key, sent on every call. OnePipe: the bearer API key (secret).
    pub api_key: Option<String>,
    /// VTpass: the public key its GET calls (plan catalogue, balance) carry.
    pub public_key: Option<String>,
    /// VTpass: the secret key its POST calls (purchases, requeries, verification) carry
    /// (secret).
    pub secret_key: Option<String>,
    /// OnePipe: `Live` (default) moves real money; `Inspect` is OnePipe's simulated mode.
    pub mock_mode: Option<String>,
    /// Meta and TikTok: where users log in and consent, when not the API host.
    pub auth_url: Option<String>,
    /// Meta: the Graph API version calls are made against, such as `v21.0`.
    pub api_version: Option<String>,
}

impl From<ProviderConfigInput> for ConfigInput {
    fn from(input: ProviderConfigInput) -> Self {
        let fields = [
            ("baseUrl", input.base_url),
            ("consumerKey", input.consumer_key),
            ("consumerSecret", input.consumer_secret),
            ("merchantMsisdn", input.merchant_msisdn),
            ("partnerName", input.partner_name),
            ("clientId", input.client_id),
            ("clientSecret", input.client_secret),
            ("country", input.country),
            ("currency", input.currency),
            ("countrySegment", input.country_segment),
            ("merchantKey", input.merchant_key),
            ("returnUrl", input.return_url),
            ("cancelUrl", input.cancel_url),
            ("shortcode", input.shortcode),
            ("passkey", input.passkey),
            ("transactionType", input.transaction_type),
            ("partyB", input.party_b),
            ("b2cShortcode", input.b2c_shortcode),
            ("initiatorName", input.initiator_name),
            ("securityCredential", input.security_credential),
            ("apiKey", input.api_key),
            ("publicKey", input.public_key),
            ("secretKey", input.secret_key),
            ("mockMode", input.mock_mode),
            ("authUrl", input.auth_url),
            ("apiVersion", input.api_version),
        ];
        let values: BTreeMap<String, String> =
            fields.into_iter().filter_map(|(name, value)| value.map(|v| (name.to_owned(), v))).collect();
        Self { enabled: input.enabled, mode: input.mode.map(Into::into), values }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ProviderConfigView {
    pub provider: String,
    /// `global`, or `merchant` for one merchant's own configuration.
    pub scope: String,
    pub user_id: Option<String>,
    pub enabled: bool,
    pub mode: Mode,
    /// The provider's settings, secrets masked.
    pub config: Value,
    pub updated_at: DateTime<Utc>,
}

fn view(state: &AppState, row: ConfigRow) -> ApiResult<ProviderConfigView> {
    let config = provider_configs::masked(&state.sealer, &row)?;
    let global = row.scope == GLOBAL;
    Ok(ProviderConfigView {
        provider: row.provider,
        scope: if global { "global" } else { "merchant" }.to_owned(),
        user_id: (!global).then_some(row.scope),
        enabled: row.enabled,
        mode: row.mode.into(),
        config: Value::Object(config),
        updated_at: row.updated_at,
    })
}

async fn save(
    state: &AppState,
    req: &Request,
    actor_id: &str,
    provider: Provider,
    scope: &str,
    input: ProviderConfigInput,
) -> ApiResult<Reply<ProviderConfigView>> {
    let input = ConfigInput::from(input);
    provider_configs::check_hosts(provider, scope, &input, state.config.provider_reach).await?;
    let txn = begin_write(&state.db).await?;
    let row =
        provider_configs::upsert(&txn, &state.sealer, provider, scope, input, Some(actor_id.to_owned()))
            .await?;
    let event = AuditEvent {
        action: "provider_config.updated",
        entity_type: "provider_config",
        entity_id: Some(&row.id),
        details: Some(
            json!({ "provider": provider.name(), "scope": scope, "mode": row.mode, "enabled": row.enabled }),
        ),
    };
    audit::record(&txn, &actor(req, Some(actor_id)), event).await?;
    txn.commit().await?;
    state.caches.announce(&state.redis, Change::ProviderConfigs).await;
    Ok(Reply::new(view(state, row)?))
}

async fn remove(
    state: &AppState,
    req: &Request,
    actor_id: &str,
    provider: Provider,
    scope: &str,
) -> ApiResult<Reply<Deleted>> {
    let txn = begin_write(&state.db).await?;
    if !provider_configs::delete(&txn, provider, scope).await? {
        return Err(ApiError::not_found("provider config"));
    }
    let event = AuditEvent {
        action: "provider_config.deleted",
        entity_type: "provider_config",
        entity_id: None,
        details: Some(json!({ "provider": provider.name(), "scope": scope })),
    };
    audit::record(&txn, &actor(req, Some(actor_id)), event).await?;
    txn.commit().await?;
    state.caches.announce(&state.redis, Change::ProviderConfigs).await;
    Ok(Reply::new(Deleted { deleted: true }))
}

pub struct MerchantProvidersApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::MerchantProviders")]
impl MerchantProvidersApi {
    /// List merchant payment provider configs
    ///
    /// The calling merchant's own configurations, credentials masked.
    #[oai(path = "/merchant/providers", method = "get", operation_id = "listMerchantProviders")]
    async fn list(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<Vec<ProviderConfigView>>> {
        let merchant = auth.0.merchant()?;
        let rows = provider_configs::list(&state.db, &merchant.id).await?;
        Ok(Reply::new(rows.into_iter().map(|row| view(&state, row)).collect::<ApiResult<_>>()?))
    }

    /// Get a merchant provider config by name
    #[oai(path = "/merchant/providers/:name", method = "get", operation_id = "getMerchantProvider")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// `mvola`, `airtel`, `orange`, `mpesa`, `bank`, `vtpass` or `onepipe`.
        name: Path<String>,
    ) -> ApiResult<Reply<ProviderConfigView>> {
        let merchant = auth.0.merchant()?;
        let row = provider_configs::find(&state.db, provider(&name)?, &merchant.id)
            .await?
            .ok_or_else(|| ApiError::not_found("provider config"))?;
        Ok(Reply::new(view(&state, row)?))
    }

    /// Create or update a merchant provider config
    ///
    /// Replaces the merchant's configuration of this provider. Secrets are encrypted at rest
    /// and never returned; a masked value (`****…`) keeps the stored secret.
    #[oai(path = "/merchant/providers/:name", method = "put", operation_id = "putMerchantProvider")]
    async fn put(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// `mvola`, `airtel`, `orange`, `mpesa`, `bank`, `vtpass` or `onepipe`.
        name: Path<String>,
        body: JsonBody<ProviderConfigInput>,
    ) -> ApiResult<Reply<ProviderConfigView>> {
        let merchant_id =
            auth.0.merchant_in_person("change where the merchant's payments are collected")?.id.clone();
        save(&state, req, &auth.0.user.id, provider(&name)?, &merchant_id, body.value).await
    }

    /// Delete a merchant provider config
    ///
    /// The merchant falls back to the global configuration of this provider.
    #[oai(path = "/merchant/providers/:name", method = "delete", operation_id = "deleteMerchantProvider")]
    async fn delete(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// `mvola`, `airtel`, `orange`, `mpesa`, `bank`, `vtpass` or `onepipe`.
        name: Path<String>,
    ) -> ApiResult<Reply<Deleted>> {
        let merchant_id =
            auth.0.merchant_in_person("change where the merchant's payments are collected")?.id.clone();
        remove(&state, req, &auth.0.user.id, provider(&name)?, &merchant_id).await
    }
}

pub struct AdminProvidersApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminProvidersApi {
    /// List all provider configs (global)
    #[oai(path = "/admin/providers", method = "get", operation_id = "listAdminProviders")]
    async fn list(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<Vec<ProviderConfigView>>> {
        auth.0.require_admin()?;
        let rows = provider_configs::list(&state.db, GLOBAL).await?;
        Ok(Reply::new(rows.into_iter().map(|row| view(&state, row)).collect::<ApiResult<_>>()?))
    }

    /// Get provider config
    ///
    /// The global configuration, or with `userId` that merchant's own.
    #[oai(path = "/admin/providers/:name", method = "get", operation_id = "getAdminProvider")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// `mvola`, `airtel`, `orange`, `mpesa`, `bank`, `vtpass` or `onepipe`.
        name: Path<String>,
        /// Get this merchant's configuration instead of the global one.
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Reply<ProviderConfigView>> {
        auth.0.require_admin()?;
        let scope = match user_id.0 {
            Some(id) => {
                users::Entity::find_by_id(id)
                    .one(&state.db)
                    .await?
                    .ok_or_else(|| ApiError::not_found("user"))?
                    .id
            }
            None => GLOBAL.to_owned(),
        };
        let row = provider_configs::find(&state.db, provider(&name)?, &scope)
            .await?
            .ok_or_else(|| ApiError::not_found("provider config"))?;
        Ok(Reply::new(view(&state, row)?))
    }

    /// Create or update provider config (global)
    ///
    /// Secrets are encrypted at rest. Masked values (`****…`) in the request keep the stored ones.
    #[oai(path = "/admin/providers/:name", method = "put", operation_id = "putAdminProvider")]
    async fn put(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// `mvola`, `airtel`, `orange`, `mpesa`, `bank`, `vtpass` or `onepipe`.
        name: Path<String>,
        body: JsonBody<ProviderConfigInput>,
    ) -> ApiResult<Reply<ProviderConfigView>> {
        auth.0.require_admin()?;
        save(&state, req, &auth.0.user.id, provider(&name)?, GLOBAL, body.value).await
    }

    /// Delete provider config (global)
    #[oai(path = "/admin/providers/:name", method = "delete", operation_id = "deleteAdminProvider")]
    async fn delete(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// `mvola`, `airtel`, `orange`, `mpesa`, `bank`, `vtpass` or `onepipe`.
        name: Path<String>,
    ) -> ApiResult<Reply<Deleted>> {
        auth.0.require_admin()?;
        remove(&state, req, &auth.0.user.id, provider(&name)?, GLOBAL).await
    }
}
