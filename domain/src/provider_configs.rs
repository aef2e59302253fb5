//! Provider configurations: which settings each provider takes, which of them are secret, and
//! storing them with the secrets sealed.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
    Set,
};
use serde_json::{Map, Value};
use ultra_entity::provider_configs::{self, ProviderMode};
use ultra_outbound::{Reach, addresses};

use crate::{
    DomainError, DomainResult, ids,
    secrets::{MASK, SecretBox, mask},
};

/// The scope of the configuration every merchant without their own uses.
pub const GLOBAL: &str = "global";
const MAX_VALUE_LEN: usize = 500;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Provider {
    Mvola,
    Airtel,
    Orange,
    /// Safaricom M-Pesa Daraja: STK push collections and B2C payouts, in Kenya.
    Mpesa,
    /// The Kenyan bank-transfer rail that bank payouts go through.
    Bank,
    /// The VTU aggregator (VTpass protocol) Maxtera buys airtime, data and bills from.
    Vtpass,
    /// OnePipe PayWithTransfer, through which Maxtera wallets are funded by bank transfer.
    Onepipe,
    /// Meta's app (Facebook Login and Graph) that merchants connect Pages and Instagram through.
    Meta,
    /// TikTok's app (Login Kit and Content Posting API).
    Tiktok,
}

/// The settings a provider takes; `required_live` must all be present before it can go live.
pub struct Spec {
    pub settings: &'static [&'static str],
    pub secrets: &'static [&'static str],
    pub required_live: &'static [&'static str],
}

impl Provider {
    pub const ALL: [Self; 9] = [
        Self::Mvola,
        Self::Airtel,
        Self::Orange,
        Self::Mpesa,
        Self::Bank,
        Self::Vtpass,
        Self::Onepipe,
        Self::Meta,
        Self::Tiktok,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Mvola => "mvola",
            Self::Airtel => "airtel",
            Self::Orange => "orange",
            Self::Mpesa => "mpesa",
            Self::Bank => "bank",
            Self::Vtpass => "vtpass",
            Self::Onepipe => "onepipe",
            Self::Meta => "meta",
            Self::Tiktok => "tiktok",
        }
    }

    /// The social platforms have no simulation mode: posts always go to the platform, which
    /// for tests is the sandbox named by `baseUrl`.
    pub fn is_social(self) -> bool {
        matches!(self, Self::Meta | Self::Tiktok)
    }

    /// The hosts each provider publishes for its API and, for the social platforms, its login
    /// pages: the only hosts a merchant's own configuration may name unless the operator allows
    /// private provider URLs. Cited from each provider's documentation (providers.md, Hosts).
    pub fn published_hosts(self) -> &'static [&'static str] {
        match self {
            // MVola API guide: sandbox and production.
            Self::Mvola => &["devapi.mvola.mg", "api.mvola.mg"],
            // Airtel Africa developer portal: UAT and production, and the country hosts Zambia
            // and Tanzania publish.
            Self::Airtel => &[
                "openapiuat.airtel.africa",
                "openapi.airtel.africa",
                "openapiuat.airtel.co.zm",
                "openapi.airtel.co.zm",
                "openapiuat.airtel.co.tz",
                "openapi.airtel.co.tz",
            ],
            // Orange Developer: every WebPay country and the dev API share one host.
            Self::Orange => &["api.orange.com"],
            // Safaricom Daraja: sandbox and production.
            Self::Mpesa => &["sandbox.safaricom.co.ke", "api.safaricom.co.ke"],
            // PesaLink through Co-op Bank's and Equity's (Jenga) APIs.
            Self::Bank => &["developer.co-opbank.co.ke", "uat.finserve.africa"],
            // VTpass API docs: sandbox and live, and the older live host.
            Self::Vtpass => &["sandbox.vtpass.com", "vtpass.com", "api-service.vtpass.com"],
            // OnePipe v2: production and dev.
            Self::Onepipe => &["api.onepipe.io", "api.dev.onepipe.io"],
            // Graph API (Facebook and Instagram Login) and the Facebook login dialog.
            Self::Meta => &["graph.facebook.com", "graph.instagram.com", "www.facebook.com"],
            // Content Posting API and Login Kit's authorization page.
            Self::Tiktok => &["open.tiktokapis.com", "www.tiktok.com"],
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Per the providers' own credential models: MVola's consumer key pair and merchant
    /// MSISDN, Airtel's OAuth client and country/currency headers, Orange WebPay's OAuth client
    /// and merchant key with its country path segment, Daraja's app credentials with the
    /// Lipa-na-M-Pesa shortcode and passkey (and, for B2C, the initiator and its encrypted
    /// credential), the bank rail's OAuth client, VTpass's API, public and secret keys (the
    /// public key only for its GET calls), and OnePipe's API key and client secret with the
    /// `mock_mode` its calls carry. The social platforms take the app's id and secret, the API
    /// host and the host users log in at (`authUrl`, defaulting to the API host), and for Meta
    /// the Graph version.
    pub fn spec(self) -> Spec {
        match self {
            Self::Mvola => Spec {
                settings: &["baseUrl", "consumerKey", "merchantMsisdn", "partnerName"],
                secrets: &["consumerSecret"],
                required_live: &["baseUrl", "consumerKey", "consumerSecret", "merchantMsisdn", "partnerName"],
            },
            Self::Airtel => Spec {
                settings: &["baseUrl", "clientId", "country", "currency"],
                secrets: &["clientSecret"],
                required_live: &["baseUrl", "clientId", "clientSecret", "country", "currency"],
            },
            Self::Orange => Spec {
                settings: &["baseUrl", "clientId", "countrySegment", "currency", "returnUrl", "cancelUrl"],
                secrets: &["clientSecret", "merchantKey"],
                required_live: &[
                    "baseUrl",
                    "clientId",
                    "clientSecret",
                    "merchantKey",
                    "countrySegment",
                    "currency",
                ],
            },
            Self::Mpesa => Spec {
                settings: &[
                    "baseUrl",
                    "consumerKey",
                    "shortcode",
                    "transactionType",
                    "partyB",
                    "b2cShortcode",
                    "initiatorName",
                ],
                secrets: &["consumerSecret", "passkey", "securityCredential"],
                required_live: &["baseUrl", "consumerKey", "consumerSecret", "shortcode", "passkey"],
            },
            Self::Bank => Spec {
                settings: &["baseUrl", "clientId"],
                secrets: &["clientSecret"],
                required_live: &["baseUrl", "clientId", "clientSecret"],
            },
            Self::Vtpass => Spec {
                settings: &["baseUrl", "apiKey", "publicKey"],
                secrets: &["secretKey"],
                required_live: &["baseUrl", "apiKey", "secretKey"],
            },
            Self::Onepipe => Spec {
                settings: &["baseUrl", "mockMode"],
                secrets: &["apiKey", "clientSecret"],
                required_live: &["baseUrl", "apiKey", "clientSecret"],
            },
            Self::Meta => Spec {
                settings: &["baseUrl", "authUrl", "apiVersion", "clientId"],
                secrets: &["clientSecret"],
                required_live: &["baseUrl", "clientId", "clientSecret"],
            },
            Self::Tiktok => Spec {
                settings: &["baseUrl", "authUrl", "clientId"],
                secrets: &["clientSecret"],
                required_live: &["baseUrl", "clientId", "clientSecret"],
            },
        }
    }
}

/// What a client sends: the switches, and the provider's settings by name.
pub struct ConfigInput {
    pub enabled: Option<bool>,
    pub mode: Option<ProviderMode>,
    pub values: BTreeMap<String, String>,
}

fn check_value(field: &str, value: &str) -> DomainResult<()> {
    let invalid = |message: &str| Err(DomainError::validation(field, message));
    if value.chars().count() > MAX_VALUE_LEN {
        return invalid("is longer than 500 characters");
    }
    if value.contains('\0') {
        return invalid("must not contain NUL characters");
    }
    match field {
        "baseUrl" | "authUrl" | "returnUrl" | "cancelUrl"
            if !(value.starts_with("https://") || value.starts_with("http://")) =>
        {
            invalid("must be an http(s) URL")
        }
        "merchantMsisdn"
            if !(value.len() == 10
                && value.starts_with("03")
                && value.bytes().all(|b| b.is_ascii_digit())) =>
        {
            invalid("must be a local Malagasy number such as 0343500004")
        }
        "country" if !(value.len() == 2 && value.bytes().all(|b| b.is_ascii_uppercase())) => {
            invalid("must be an ISO 3166 alpha-2 code such as MG")
        }
        "shortcode" | "b2cShortcode" | "partyB"
            if !((5..=7).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit())) =>
        {
            invalid("must be an M-Pesa shortcode of 5 to 7 digits such as 174379")
        }
        "transactionType" if !["CustomerPayBillOnline", "CustomerBuyGoodsOnline"].contains(&value) => {
            invalid("must be CustomerPayBillOnline or CustomerBuyGoodsOnline")
        }
        "currency" if !(value.len() == 3 && value.bytes().all(|b| b.is_ascii_uppercase())) => {
            invalid("must be an ISO 4217 code such as MGA")
        }
        "mockMode" if !["Live", "Inspect"].contains(&value) => invalid("must be Live or Inspect"),
        "apiVersion"
            if !value.strip_prefix('v').is_some_and(|number| {
                !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            }) =>
        {
            invalid("must be a Graph API version such as v21.0")
        }
        _ => Ok(()),
    }
}

/// The settings that name a host Ultra's workers call or sends browsers to.
const URL_SETTINGS: [&str; 2] = ["baseUrl", "authUrl"];

/// Checks where a configuration would send calls. Unless private addresses are within
/// `reach`, URLs must use https; a merchant's own configuration may name only the provider's
/// published hosts, and the platform's may name any host that resolves to public addresses
/// only. Workers check the addresses again on every connection.
pub async fn check_hosts(
    provider: Provider,
    scope: &str,
    input: &ConfigInput,
    reach: Reach,
) -> DomainResult<()> {
    if reach == Reach::Private {
        return Ok(());
    }
    for field in URL_SETTINGS {
        let Some(value) = input.values.get(field) else { continue };
        let invalid = |message: String| DomainError::validation(field, message);
        let url = url::Url::parse(value.trim()).map_err(|err| invalid(format!("is not a URL: {err}")))?;
        if url.scheme() != "https" {
            return Err(invalid("must use https".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid("must not carry credentials".into()));
        }
        let host = url.host_str().ok_or_else(|| invalid("has no host".into()))?;
        let published = provider.published_hosts();
        if published.contains(&host) {
            continue;
        }
        if scope != GLOBAL {
            return Err(invalid(format!(
                "must be on a host {} publishes: {}",
                provider.name(),
                published.join(", ")
            )));
        }
        if let Some(refusal) = reach.refusal(&url) {
            return Err(invalid(refusal));
        }
        addresses::resolve(host, url.port_or_known_default().unwrap_or(443), false).await.map_err(invalid)?;
    }
    Ok(())
}

/// Creates or replaces the configuration of `provider` in `scope`. Settings not sent are
/// removed; a secret sent masked (`****…`) keeps the stored one.
pub async fn upsert(
    db: &impl ConnectionTrait,
    sealer: &SecretBox,
    provider: Provider,
    scope: &str,
    input: ConfigInput,
    updated_by: Option<String>,
) -> DomainResult<provider_configs::Model> {
    let spec = provider.spec();
    let existing = find(db, provider, scope).await?;
    let stored_secrets = match &existing {
        Some(model) => reveal(sealer, model)?,
        None => BTreeMap::new(),
    };
    let mut settings = Map::new();
    let mut secrets = BTreeMap::new();
    for (field, value) in input.values {
        if spec.secrets.contains(&field.as_str()) {
            if value.starts_with(MASK) {
                let kept = stored_secrets.get(&field).cloned().ok_or_else(|| {
                    DomainError::validation(&field, "no stored secret to keep: send the secret itself")
                })?;
                secrets.insert(field, kept);
            } else {
                check_value(&field, &value)?;
                secrets.insert(field, value);
            }
        } else if spec.settings.contains(&field.as_str()) {
            check_value(&field, &value)?;
            settings.insert(field, Value::String(value));
        } else {
            return Err(DomainError::validation(&field, format!("is not a setting of {}", provider.name())));
        }
    }
    if provider.is_social() && input.mode == Some(ProviderMode::Simulation) {
        return Err(DomainError::validation(
            "mode",
            format!("{} has no simulation mode: point baseUrl at the sandbox instead", provider.name()),
        ));
    }
    let default_mode = if provider.is_social() { ProviderMode::Live } else { ProviderMode::Simulation };
    let mode = input.mode.or(existing.as_ref().map(|m| m.mode)).unwrap_or(default_mode);
    let enabled = input.enabled.or(existing.as_ref().map(|m| m.enabled)).unwrap_or(true);
    if mode == ProviderMode::Live
        && let Some(missing) =
            spec.required_live.iter().find(|f| !settings.contains_key(**f) && !secrets.contains_key(**f))
    {
        return Err(DomainError::validation(*missing, "is required in live mode"));
    }
    let sealed = (!secrets.is_empty())
        .then(|| sealer.seal(&serde_json::to_vec(&secrets).expect("a map of strings serializes")));
    let now = Utc::now();
    let model = match existing {
        Some(model) => {
            let mut active = model.into_active_model();
            active.enabled = Set(enabled);
            active.mode = Set(mode);
            active.settings = Set(Value::Object(settings));
            active.sealed_secrets = Set(sealed);
            active.updated_by = Set(updated_by);
            active.updated_at = Set(now);
            active.update(db).await?
        }
        None => {
            provider_configs::ActiveModel {
                id: Set(ids::new_id("pcfg")),
                provider: Set(provider.name().to_owned()),
                scope: Set(scope.to_owned()),
                enabled: Set(enabled),
                mode: Set(mode),
                settings: Set(Value::Object(settings)),
                sealed_secrets: Set(sealed),
                updated_by: Set(updated_by),
                created_at: Set(now),
                updated_at: Set(now),
            }
            .insert(db)
            .await?
        }
    };
    Ok(model)
}

pub async fn find(
    db: &impl ConnectionTrait,
    provider: Provider,
    scope: &str,
) -> DomainResult<Option<provider_configs::Model>> {
    Ok(provider_configs::Entity::find()
        .filter(provider_configs::Column::Provider.eq(provider.name()))
        .filter(provider_configs::Column::Scope.eq(scope))
        .one(db)
        .await?)
}

/// The configuration that applies to a merchant: their own, else the global one. Both are read
/// in one query, since every payment asks.
pub async fn effective(
    db: &impl ConnectionTrait,
    provider: Provider,
    merchant_id: &str,
) -> DomainResult<Option<provider_configs::Model>> {
    let mut found = provider_configs::Entity::find()
        .filter(provider_configs::Column::Provider.eq(provider.name()))
        .filter(provider_configs::Column::Scope.is_in([merchant_id, GLOBAL]))
        .all(db)
        .await?;
    let own = found.iter().position(|config| config.scope == merchant_id);
    Ok(match own {
        Some(index) => Some(found.swap_remove(index)),
        None => found.pop(),
    })
}

pub async fn list(db: &impl ConnectionTrait, scope: &str) -> DomainResult<Vec<provider_configs::Model>> {
    Ok(provider_configs::Entity::find()
        .filter(provider_configs::Column::Scope.eq(scope))
        .order_by_asc(provider_configs::Column::Provider)
        .all(db)
        .await?)
}

/// Deletes the configuration; `false` if there was none.
pub async fn delete(db: &impl ConnectionTrait, provider: Provider, scope: &str) -> DomainResult<bool> {
    let deleted = provider_configs::Entity::delete_many()
        .filter(provider_configs::Column::Provider.eq(provider.name()))
        .filter(provider_configs::Column::Scope.eq(scope))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected > 0)
}

/// The decrypted secrets of a configuration.
pub fn reveal(sealer: &SecretBox, model: &provider_configs::Model) -> DomainResult<BTreeMap<String, String>> {
    match &model.sealed_secrets {
        None => Ok(BTreeMap::new()),
        Some(sealed) => serde_json::from_slice(&sealer.open(sealed)?)
            .map_err(|err| DomainError::Internal(format!("stored secrets are not a map: {err}"))),
    }
}

/// The settings with every secret masked, as clients see them.
pub fn masked(sealer: &SecretBox, model: &provider_configs::Model) -> DomainResult<Map<String, Value>> {
    let mut view = model.settings.as_object().cloned().unwrap_or_default();
    for (field, secret) in reveal(sealer, model)? {
        view.insert(field, Value::String(mask(&secret)));
    }
    Ok(view)
}
