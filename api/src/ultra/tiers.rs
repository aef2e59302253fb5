//! `GET admin/tiers`: the SLA tiers, what each includes and its rate limits, read from the
//! same table and runtime config that the feature gates and rate limits enforce.

use std::collections::BTreeMap;

use poem::web::Data;
use poem_openapi::{Object, OpenApi};
use ultra_domain::{
    runtime_config::{RateLimitRule, TierLimits},
    tiers::{self, Feature, TIERS},
};

use super::{ApiTags, views::Tier};
use crate::{
    AppState,
    http::{auth::Auth, envelope::Reply, error::ApiResult},
};

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct TierMatrix {
    /// From the cheapest up.
    pub tiers: Vec<TierView>,
    pub features: Vec<FeatureView>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct TierView {
    pub tier: Tier,
    /// The name the tier is sold under.
    pub label: String,
    /// Each feature flag (`csvExports`, `dlqBulkReplay`, `onboardingWizard`) and whether the
    /// tier includes it.
    pub features: BTreeMap<String, bool>,
    /// From runtime config `rateLimits.<tier>`.
    pub rate_limits: TierRateLimitsView,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct FeatureView {
    pub key: String,
    pub minimum_tier: Tier,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct TierRateLimitsView {
    /// `POST /api/v1/payments` per merchant.
    pub payments: RateLimitView,
    /// Authenticated requests to `/api/v1` per account, payments included.
    pub requests: RateLimitView,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct RateLimitView {
    pub limit: u32,
    pub window_seconds: u32,
}

impl From<RateLimitRule> for RateLimitView {
    fn from(rule: RateLimitRule) -> Self {
        Self { limit: rule.limit, window_seconds: rule.window_seconds }
    }
}

impl From<&TierLimits> for TierRateLimitsView {
    fn from(limits: &TierLimits) -> Self {
        Self { payments: limits.payments.into(), requests: limits.requests.into() }
    }
}

pub struct TiersApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl TiersApi {
    /// Get tier feature matrix
    ///
    /// Returns the SLA tier list, feature flags, and per-tier rate limits.
    #[oai(path = "/admin/tiers", method = "get", operation_id = "getTiers")]
    async fn tiers(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<TierMatrix>> {
        auth.0.require_admin()?;
        let config = state.runtime.current().await?;
        let tiers = TIERS
            .into_iter()
            .map(|tier| TierView {
                tier: tier.into(),
                label: tier.label().to_owned(),
                features: Feature::ALL
                    .into_iter()
                    .map(|feature| (feature.key().to_owned(), tiers::allows(tier, feature)))
                    .collect(),
                rate_limits: config.rate_limits.for_tier(tier).into(),
            })
            .collect();
        let features = Feature::ALL
            .into_iter()
            .map(|feature| FeatureView {
                key: feature.key().to_owned(),
                minimum_tier: feature.minimum_tier().into(),
            })
            .collect();
        Ok(Reply::new(TierMatrix { tiers, features }))
    }
}
