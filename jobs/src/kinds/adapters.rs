//! Building the adapter a payment's or payout's provider calls go through, from the
//! configuration that applies to its merchant now, and the URLs providers call back on.

use std::collections::BTreeMap;

use ultra_domain::{
    DomainError,
    provider_configs::{self, Provider},
    secrets::SecretBox,
};
use ultra_entity::{provider_configs::Model as ProviderConfig, provider_configs::ProviderMode};
use ultra_providers::{Adapter, Platform, ProviderError, Settings, Simulation, SocialAdapter};

use crate::{JobContext, JobError};

/// The adapter for a payment made in `mode` through `provider` for `merchant_id`. Credentials
/// are read at call time, so a merchant who fixes a wrong secret unblocks retries at once.
pub async fn adapter_for(
    ctx: &JobContext,
    provider: &str,
    mode: ProviderMode,
    merchant_id: &str,
) -> Result<Result<Adapter, ProviderError>, JobError> {
    if mode == ProviderMode::Simulation {
        return Ok(Ok(Adapter::Simulation(Simulation)));
    }
    match effective(ctx, provider, merchant_id).await? {
        Ok(config) => live(ctx, provider, &config),
        Err(err) => Ok(Err(err)),
    }
}

/// The adapter for work that takes the mode its configuration has when it runs, rather than
/// the mode recorded at creation as a payment does: payouts, and Maxtera's fundings and
/// purchases.
pub async fn configured_adapter_for(
    ctx: &JobContext,
    provider: &str,
    merchant_id: &str,
) -> Result<Result<Adapter, ProviderError>, JobError> {
    match effective(ctx, provider, merchant_id).await? {
        Ok(config) if !config.enabled => {
            Ok(Err(ProviderError::Configuration(format!("{provider} is disabled"))))
        }
        Ok(config) if config.mode == ProviderMode::Simulation => Ok(Ok(Adapter::Simulation(Simulation))),
        Ok(config) => live(ctx, provider, &config),
        Err(err) => Ok(Err(err)),
    }
}

async fn effective(
    ctx: &JobContext,
    provider: &str,
    merchant_id: &str,
) -> Result<Result<ProviderConfig, ProviderError>, JobError> {
    let Some(known) = Provider::parse(provider) else {
        return Ok(Err(ProviderError::Configuration(format!("unknown provider {provider}"))));
    };
    Ok(provider_configs::effective(&ctx.db, known, merchant_id)
        .await?
        .ok_or_else(|| ProviderError::Configuration(format!("{provider} is no longer configured"))))
}

fn live(
    ctx: &JobContext,
    provider: &str,
    config: &ProviderConfig,
) -> Result<Result<Adapter, ProviderError>, JobError> {
    Ok(ctx.env.providers.adapter(provider, settings_of(&ctx.env.sealer, config)?))
}

/// The adapter for the social platform's app as configured for `user_id` (their own app, else
/// the global one). The platforms have no simulation mode: this always calls them.
pub async fn social_adapter_for(
    ctx: &JobContext,
    platform: Platform,
    user_id: &str,
) -> Result<Result<SocialAdapter, ProviderError>, JobError> {
    let config = match effective(ctx, platform.as_str(), user_id).await? {
        Ok(config) if !config.enabled => {
            return Ok(Err(ProviderError::Configuration(format!("{} is disabled", platform.as_str()))));
        }
        Ok(config) => config,
        Err(err) => return Ok(Err(err)),
    };
    Ok(ctx.env.providers.social(platform, settings_of(&ctx.env.sealer, &config)?))
}

/// A configuration's settings with its secrets revealed, as adapters take them.
pub fn settings_of(sealer: &SecretBox, config: &ProviderConfig) -> Result<Settings, DomainError> {
    let mut values: BTreeMap<String, String> = config
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
        .collect();
    values.extend(provider_configs::reveal(sealer, config)?);
    Ok(Settings(values))
}

/// Where a provider that takes a per-request notification URL should send it: a path naming
/// the payment and a token only we can make, since these providers do not sign callbacks.
pub fn callback_url(ctx: &JobContext, provider: &str, payment_id: &str) -> Option<String> {
    match provider {
        "mvola" | "orange" | "mpesa" => Some(signed_url(ctx, provider, "callback", payment_id)),
        _ => None,
    }
}

/// Where a payout's rail posts its outcome (`mpesa-b2c` or `bank`), signed the same way.
pub fn payout_result_url(ctx: &JobContext, rail: &str, payout_id: &str) -> String {
    signed_url(ctx, rail, "payout-result", payout_id)
}

fn signed_url(ctx: &JobContext, path: &str, purpose: &str, id: &str) -> String {
    let token = ctx.env.sealer.path_token(purpose, id);
    format!("{}/api/v1/callbacks/{path}/{id}/{token}", ctx.env.public_url.trim_end_matches('/'))
}
