//! What each SLA tier includes. Every feature gate asks [`allows`], and `GET admin/tiers` lists
//! the same table, so what an admin is shown is what the API enforces. The rate limits that
//! come with a tier are runtime config (`rateLimits`), since operators tune them while Ultra runs.

use ultra_entity::users::Tier;

/// The tiers from the cheapest up.
pub const TIERS: [Tier; 4] = [Tier::Starter, Tier::Pro, Tier::ProPlus, Tier::Enterprise];

/// A feature sold from some tier up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    /// `GET payments/export`, `GET subscriptions/export` and `POST exports`.
    CsvExports,
    /// `POST webhooks/dlq/bulk-replay`.
    DlqBulkReplay,
    /// The merchant onboarding wizard and its UAT confirmation.
    OnboardingWizard,
}

impl Feature {
    pub const ALL: [Feature; 3] = [Self::CsvExports, Self::DlqBulkReplay, Self::OnboardingWizard];

    /// The feature's flag name in `GET admin/tiers`.
    pub fn key(self) -> &'static str {
        match self {
            Self::CsvExports => "csvExports",
            Self::DlqBulkReplay => "dlqBulkReplay",
            Self::OnboardingWizard => "onboardingWizard",
        }
    }

    /// How an error message names the feature.
    pub fn label(self) -> &'static str {
        match self {
            Self::CsvExports => "CSV export",
            Self::DlqBulkReplay => "bulk replay",
            Self::OnboardingWizard => "the onboarding wizard",
        }
    }

    /// The cheapest tier that includes the feature: the seed sells each of these from Pro+.
    pub fn minimum_tier(self) -> Tier {
        match self {
            Self::CsvExports | Self::DlqBulkReplay | Self::OnboardingWizard => Tier::ProPlus,
        }
    }
}

pub fn allows(tier: Tier, feature: Feature) -> bool {
    tier >= feature.minimum_tier()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_feature_is_included_from_its_minimum_tier_up() {
        for feature in Feature::ALL {
            let included: Vec<Tier> = TIERS.into_iter().filter(|tier| allows(*tier, feature)).collect();
            assert_eq!(included, [Tier::ProPlus, Tier::Enterprise], "{feature:?}");
        }
    }
}
