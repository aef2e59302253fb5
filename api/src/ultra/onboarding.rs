//! `GET merchant/onboarding`, `POST merchant/onboarding/uat/confirm`: the Pro+ onboarding
//! wizard, read from the merchant's live data.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{Enum, Object, OpenApi};
use ultra_domain::{
    onboarding::{self, Progress},
    tiers::Feature,
};
use ultra_entity::{audit_logs, users};

use super::ApiTags;
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal, require_feature},
        client::actor,
        envelope::Reply,
        error::ApiResult,
    },
};

const TOTAL_STEPS: u32 = 4;

/// A step of the wizard, in its order.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "OnboardingStep", rename_all = "camelCase")]
pub enum Step {
    ProviderCredentials,
    WebhookEndpoint,
    FirstPaymentLink,
    Uat,
}

/// Step 1: at least one enabled provider configuration of the merchant's own.
#[derive(Object)]
#[oai(rename = "OnboardingProviderCredentials", rename_all = "camelCase")]
pub struct ProviderCredentialsView {
    pub completed: bool,
    /// Providers enabled in the merchant's own configurations (global ones do not count).
    pub enabled_providers: Vec<String>,
}

/// Step 2: at least one active webhook endpoint.
#[derive(Object)]
#[oai(rename = "OnboardingWebhookEndpoint", rename_all = "camelCase")]
pub struct WebhookEndpointView {
    pub completed: bool,
    pub active_endpoints: u64,
}

/// Step 3: at least one payment link.
#[derive(Object)]
#[oai(rename = "OnboardingFirstPaymentLink", rename_all = "camelCase")]
pub struct FirstPaymentLinkView {
    pub completed: bool,
    pub payment_links: u64,
    pub first_created_at: Option<DateTime<Utc>>,
}

/// Step 4: UAT signals present (at least one completed payment) and confirmation submitted.
#[derive(Object)]
#[oai(rename = "OnboardingUat", rename_all = "camelCase")]
pub struct UatView {
    pub completed: bool,
    /// At least one payment has completed (`completed`, `refunding` or `refunded`).
    pub signals_present: bool,
    pub completed_payments: u64,
    pub confirmed: bool,
    pub confirmed_at: Option<DateTime<Utc>>,
    /// The user who confirmed.
    pub confirmed_by: Option<String>,
    /// What confirming still needs: `providerCredentials`, `webhookEndpoint`,
    /// `firstPaymentLink`, `completedPayment`. Empty once confirmation is possible.
    pub missing: Vec<String>,
}

#[derive(Object)]
#[oai(rename = "OnboardingSteps", rename_all = "camelCase")]
pub struct StepsView {
    pub provider_credentials: ProviderCredentialsView,
    pub webhook_endpoint: WebhookEndpointView,
    pub first_payment_link: FirstPaymentLinkView,
    pub uat: UatView,
}

#[derive(Object)]
#[oai(rename = "OnboardingStatus", rename_all = "camelCase")]
pub struct OnboardingView {
    pub merchant_id: String,
    pub steps: StepsView,
    pub completed_steps: u32,
    pub total_steps: u32,
    /// `completedSteps` out of `totalSteps`, in whole percent rounded down.
    pub progress_percent: u32,
    /// The first step not completed yet; null when all are.
    pub next_step: Option<Step>,
    pub completed: bool,
}

impl OnboardingView {
    fn new(merchant_id: String, progress: Progress) -> Self {
        let done = [
            (Step::ProviderCredentials, progress.provider_credentials()),
            (Step::WebhookEndpoint, progress.webhook_endpoint()),
            (Step::FirstPaymentLink, progress.first_payment_link()),
            (Step::Uat, progress.uat()),
        ];
        let completed_steps = done.iter().filter(|(_, completed)| *completed).map(|_| 1).sum();
        let next_step = done.iter().find(|(_, completed)| !completed).map(|(step, _)| *step);
        let missing = progress.missing().iter().map(|item| item.name().to_owned()).collect();
        let confirmation = progress.confirmation.as_ref();
        Self {
            merchant_id,
            steps: StepsView {
                provider_credentials: ProviderCredentialsView {
                    completed: progress.provider_credentials(),
                    enabled_providers: progress.enabled_providers.clone(),
                },
                webhook_endpoint: WebhookEndpointView {
                    completed: progress.webhook_endpoint(),
                    active_endpoints: progress.active_webhook_endpoints,
                },
                first_payment_link: FirstPaymentLinkView {
                    completed: progress.first_payment_link(),
                    payment_links: progress.payment_links,
                    first_created_at: progress.first_payment_link_at,
                },
                uat: UatView {
                    completed: progress.uat(),
                    signals_present: progress.uat_signals(),
                    completed_payments: progress.completed_payments,
                    confirmed: confirmation.is_some(),
                    confirmed_at: confirmation.map(|row| row.created_at),
                    confirmed_by: confirmation.and_then(|row| row.actor_id.clone()),
                    missing,
                },
            },
            completed_steps,
            total_steps: TOTAL_STEPS,
            progress_percent: completed_steps * 100 / TOTAL_STEPS,
            next_step,
            completed: next_step.is_none(),
        }
    }
}

#[derive(Object)]
#[oai(rename = "UatConfirmation", rename_all = "camelCase")]
pub struct ConfirmationView {
    /// True when UAT had been confirmed before this request; nothing new was recorded.
    pub already_confirmed: bool,
    pub confirmed_at: DateTime<Utc>,
    pub confirmed_by: Option<String>,
    /// The wizard after the confirmation.
    pub onboarding: OnboardingView,
}

impl ConfirmationView {
    fn new(record: audit_logs::Model, already_confirmed: bool, onboarding: OnboardingView) -> Self {
        Self { already_confirmed, confirmed_at: record.created_at, confirmed_by: record.actor_id, onboarding }
    }
}

/// The merchant whose wizard this is, on the tier that includes it.
fn wizard_merchant(principal: &Principal) -> ApiResult<&users::Model> {
    let merchant = principal.merchant()?;
    require_feature(merchant, Feature::OnboardingWizard)?;
    Ok(merchant)
}

pub struct OnboardingApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::MerchantOnboarding")]
impl OnboardingApi {
    /// Get Pro+ onboarding wizard status
    ///
    /// Returns the current state of the 4-step Pro+ onboarding wizard for the authenticated
    /// merchant. Steps are derived from live data (no separate state table) and are
    /// automatically marked completed when the underlying data is present (and no longer
    /// when it is gone, except the UAT confirmation, which is permanent):
    /// 1. `providerCredentials`: at least one enabled provider config of the merchant's own.
    /// 2. `webhookEndpoint`: at least one active webhook endpoint.
    /// 3. `firstPaymentLink`: at least one payment link has been created.
    /// 4. `uat`: UAT signals are present (a completed payment) and confirmation has been
    ///    submitted.
    #[oai(path = "/merchant/onboarding", method = "get", operation_id = "getMerchantOnboarding")]
    async fn status(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<OnboardingView>> {
        let merchant = wizard_merchant(&auth.0)?;
        let progress = onboarding::progress(&state.db, &merchant.id).await?;
        Ok(Reply::new(OnboardingView::new(merchant.id.clone(), progress)))
    }

    /// Confirm Pro+ UAT completion
    ///
    /// Validates that UAT prerequisites are met and records a permanent
    /// `onboarding.uat.confirmed` audit entry. Idempotent: returns `alreadyConfirmed: true` if
    /// called more than once, and concurrent calls record one entry. Prerequisites: provider
    /// credentials configured (step 1), a webhook endpoint active (step 2), at least one
    /// payment link created (step 3), at least one completed payment (the UAT signal). Returns
    /// 409 `uat_prerequisites_missing`, naming every one missing, otherwise.
    #[oai(path = "/merchant/onboarding/uat/confirm", method = "post", operation_id = "confirmMerchantUat")]
    async fn confirm(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
    ) -> ApiResult<Reply<ConfirmationView>> {
        let merchant = wizard_merchant(&auth.0)?;
        let actor = actor(req, Some(&auth.0.user.id));
        let confirmation = onboarding::confirm_uat(&state.db, &merchant.id, &actor).await?;
        let progress = onboarding::progress(&state.db, &merchant.id).await?;
        let view = OnboardingView::new(merchant.id.clone(), progress);
        Ok(Reply::new(ConfirmationView::new(confirmation.record, confirmation.already_confirmed, view)))
    }
}
