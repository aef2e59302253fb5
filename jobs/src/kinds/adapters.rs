//! Building the adapter a payment's provider calls go through, from the configuration that
//! applies to its merchant now.

use std::collections::BTreeMap;

use ultra_domain::provider_configs::{self, Provider};
use ultra_entity::provider_configs::ProviderMode;
use ultra_providers::{Adapter, ProviderError, Settings, Simulation};

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
    let Some(known) = Provider::parse(provider) else {
        return Ok(Err(ProviderError::Configuration(format!("unknown provider {provider}"))));
    };
    let Some(config) = provider_configs::effective(&ctx.db, known, merchant_id).await? else {
        return Ok(Err(ProviderError::Configuration(format!("{provider} is no longer configured"))));
    };
    let mut values: BTreeMap<String, String> = config
        .settings
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| value.as_str().map(|v| (name.clone(), v.to_owned())))
        .collect();
    values.extend(provider_configs::reveal(&ctx.env.sealer, &config)?);
    Ok(ctx.env.providers.adapter(provider, Settings(values)))
}

/// Where a provider that takes a per-request notification URL should send it: a path naming
/// the payment and a token only we can make, since these providers do not sign callbacks.
pub fn callback_url(ctx: &JobContext, provider: &str, payment_id: &str) -> Option<String> {
    match provider {
        "mvola" | "orange" => {
            let token = ctx.env.sealer.path_token("callback", payment_id);
            Some(format!(
                "{}/api/v1/callbacks/{provider}/{payment_id}/{token}",
                ctx.env.public_url.trim_end_matches('/')
            ))
        }
        _ => None,
    }
}
