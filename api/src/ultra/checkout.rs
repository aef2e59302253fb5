//! What a payer touches, without logging in: the hosted checkout page `GET /pay/{id}`, and the
//! two public operations it calls, `GET public/payment-links/{id}` and
//! `POST public/payment-links/{id}/pay`.
//!
//! Anyone holding a link's URL can call these, so they show only what the page needs (never the
//! link's metadata, its counts or anything else of the merchant's) and are rate limited per
//! client IP with `checkoutRateLimit`.

use std::sync::LazyLock;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use poem::{Request, Response, handler, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
};
use sea_orm::EntityTrait;
use serde_json::Map;
use sha2::{Digest, Sha256};
use ultra_domain::{
    db::begin_write,
    money::format_amount,
    msisdn,
    payment_links::{self, effective_status, refusal, remaining_uses},
    payments::NewPayment,
    provider_configs::Provider,
    runtime_config::RateLimitRule,
};
use ultra_entity::{
    payment_links::{self as link_rows, PaymentLinkStatus},
    payments as payment_rows,
    provider_configs::ProviderMode,
};
use ultra_jobs::kinds::payments::open as open_payment;

use super::{
    ApiTags,
    payment_links::{LINK_PROVIDERS, LinkStatus, offered_providers},
    payments::{ProviderName, Status},
};
use crate::{
    AppState,
    http::{
        client::{actor, client_ip},
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
        rate_limit,
    },
};

const PAGE: &str = include_str!("checkout.html");

/// The page runs its own inline style and script, allowed by their digests, and may call
/// nothing but this origin: a page that takes payers' phone numbers loads no one else's code.
static PAGE_POLICY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; img-src 'self' data:; \
         base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        inline_digest("script"),
        inline_digest("style"),
    )
});

/// The CSP source expression of the page's one inline `<tag>` element.
fn inline_digest(tag: &str) -> String {
    let body = PAGE
        .split_once(&format!("<{tag}>"))
        .and_then(|(_, rest)| rest.split_once(&format!("</{tag}>")))
        .map_or("", |(body, _)| body);
    format!("sha256-{}", STANDARD.encode(Sha256::digest(body.as_bytes())))
}

/// `GET /pay/{id}`: the page fills itself from the public API, so nothing from the link is
/// ever written into its HTML.
#[handler]
pub fn page() -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .header("Content-Security-Policy", PAGE_POLICY.as_str())
        .header("X-Content-Type-Options", "nosniff")
        .header("Referrer-Policy", "no-referrer")
        .header("Cache-Control", "no-cache")
        .body(PAGE)
}

/// Why a link cannot be paid now.
#[derive(Object)]
pub struct Unavailable {
    /// `payment_link_disabled`, `payment_link_expired`, `payment_link_depleted` or
    /// `payment_link_unavailable` (none of its providers is open).
    pub code: String,
    pub message: String,
}

/// A payment made through a link, as its payer sees it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CheckoutPayment {
    pub id: String,
    pub provider: String,
    pub amount: String,
    pub currency: String,
    pub status: Status,
    /// The payer's number with all but its first three and last two digits masked.
    pub customer_phone: String,
    pub reference: String,
    pub failure_reason: Option<String>,
    /// Where the payer confirms the payment, for redirect flows (Orange Money).
    pub checkout_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

impl From<payment_rows::Model> for CheckoutPayment {
    fn from(payment: payment_rows::Model) -> Self {
        Self {
            amount: format_amount(payment.amount_minor),
            customer_phone: masked_phone(&payment.customer_phone),
            status: payment.status.into(),
            id: payment.id,
            provider: payment.provider,
            currency: payment.currency,
            reference: payment.reference,
            failure_reason: payment.failure_reason,
            checkout_url: payment.checkout_url,
            created_at: payment.created_at,
            completed_at: payment.completed_at,
            expires_at: payment.expires_at,
        }
    }
}

/// A payment link as its payers see it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CheckoutLink {
    pub id: String,
    pub title: String,
    pub amount: String,
    pub currency: String,
    pub status: LinkStatus,
    /// Whether a payer can start a payment now.
    pub payable: bool,
    /// Why not, when `payable` is false.
    pub unavailable: Option<Unavailable>,
    /// The providers the payer may choose among: those the link offers that the merchant has
    /// enabled.
    pub providers: Vec<ProviderName>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The payment named by `?payment=`.
    pub payment: Option<CheckoutPayment>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PayRequest {
    /// One of the link's `providers`.
    pub provider: ProviderName,
    /// The payer's mobile money number, e.g. 0340000000 for MVola.
    #[oai(validator(max_length = 30))]
    pub customer_phone: String,
}

fn masked_phone(phone: &str) -> String {
    const SHOWN_HEAD: usize = 3;
    const SHOWN_TAIL: usize = 2;
    let chars: Vec<char> = phone.chars().collect();
    if chars.len() <= SHOWN_HEAD + SHOWN_TAIL {
        return "*".repeat(chars.len());
    }
    let hidden = chars.len() - SHOWN_HEAD - SHOWN_TAIL;
    chars[..SHOWN_HEAD]
        .iter()
        .chain(std::iter::repeat_n(&'*', hidden))
        .chain(&chars[chars.len() - SHOWN_TAIL..])
        .collect()
}

/// Counts the request against the client IP's `counter`. Viewing (which the page repeats
/// while a payment is pending) and paying are counted apart, so that watching a payment
/// cannot use up the attempts to pay.
async fn admit(state: &AppState, req: &Request, counter: &str) -> ApiResult<()> {
    let config = state.runtime.current().await?;
    admit_key(state, &format!("{counter}:{}", client_ip(req)), config.checkout_rate_limit).await
}

/// Counts the request against `key` under `rule`: a 429 once the window's requests are spent.
async fn admit_key(state: &AppState, key: &str, rule: RateLimitRule) -> ApiResult<()> {
    let verdict = rate_limit::check(state, key, rule).await?;
    if verdict.allowed { Ok(()) } else { Err(ApiError::rate_limited(verdict.retry_after)) }
}

async fn find_link(state: &AppState, id: &str) -> ApiResult<link_rows::Model> {
    link_rows::Entity::find_by_id(id).one(&state.db).await?.ok_or_else(|| ApiError::not_found("payment link"))
}

/// The link's providers the merchant has enabled now, with the mode each collects in.
async fn open_providers(
    state: &AppState,
    link: &link_rows::Model,
) -> ApiResult<Vec<(ProviderName, ProviderMode)>> {
    let mut open = Vec::new();
    for provider in offered_providers(link).unwrap_or_else(|| LINK_PROVIDERS.to_vec()) {
        let config = state.caches.provider_config(&state.db, provider.into(), &link.merchant_id).await?;
        if let Some(config) = config.filter(|config| config.enabled) {
            open.push((provider, config.mode));
        }
    }
    Ok(open)
}

fn unavailable(err: ultra_domain::DomainError) -> Unavailable {
    let err = ApiError::from(err);
    Unavailable { code: err.code.to_owned(), message: err.message }
}

pub struct CheckoutApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::PaymentLinks")]
impl CheckoutApi {
    /// Get a payment link as its payers see it
    ///
    /// Public. With `?payment=<id>`, also the payment made through this link, for the checkout
    /// page to follow it to its end. Rate-limited per client IP (`checkoutRateLimit`).
    #[oai(path = "/public/payment-links/:id", method = "get", operation_id = "getPublicPaymentLink")]
    async fn get(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
        /// A payment made through this link.
        payment: Query<Option<String>>,
    ) -> ApiResult<Reply<CheckoutLink>> {
        admit(&state, req, "checkout-view").await?;
        let link = find_link(&state, &id.0).await?;
        let payment = match payment.0 {
            None => None,
            Some(payment_id) => {
                let payment = payment_rows::Entity::find_by_id(payment_id)
                    .one(&state.db)
                    .await?
                    .filter(|payment| payment.payment_link_id.as_deref() == Some(link.id.as_str()))
                    .ok_or_else(|| ApiError::not_found("payment"))?;
                Some(CheckoutPayment::from(payment))
            }
        };
        let now = Utc::now();
        let providers: Vec<ProviderName> =
            open_providers(&state, &link).await?.into_iter().map(|(provider, _)| provider).collect();
        let status = effective_status(&link, now);
        let unavailable = if status != PaymentLinkStatus::Active || remaining_uses(&link) == Some(0) {
            Some(unavailable(refusal(&link, now)))
        } else if providers.is_empty() {
            Some(Unavailable {
                code: "payment_link_unavailable".to_owned(),
                message: "no payment method is open for this link at the moment".to_owned(),
            })
        } else {
            None
        };
        Ok(Reply::new(CheckoutLink {
            payable: unavailable.is_none(),
            unavailable,
            status: status.into(),
            amount: format_amount(link.amount_minor),
            id: link.id,
            title: link.title,
            currency: link.currency,
            providers,
            expires_at: link.expires_at,
            payment,
        }))
    }

    /// Pay a payment link
    ///
    /// Public. Takes one of the link's uses and starts a payment of its amount through the
    /// chosen provider; answers 202 with the pending payment, which the payer confirms on their
    /// phone. The payment holds the use for `checkoutHoldSeconds` (5 minutes) at most. A link
    /// that is disabled, expired or out of uses answers 409 with the reason's code, as does a
    /// number that already has a payment waiting on this link (`payment_in_progress`).
    /// Rate-limited per client IP (`checkoutRateLimit`) and per link
    /// (`checkoutLinkRateLimit`).
    #[oai(path = "/public/payment-links/:id/pay", method = "post", operation_id = "payPaymentLink")]
    async fn pay(
        &self,
        req: &Request,
        state: Data<&AppState>,
        id: Path<String>,
        body: JsonBody<PayRequest>,
    ) -> ApiResult<Reply<CheckoutPayment, 202>> {
        admit(&state, req, "checkout-pay").await?;
        let link = find_link(&state, &id.0).await?;
        let now = Utc::now();
        if effective_status(&link, now) != PaymentLinkStatus::Active {
            return Err(refusal(&link, now).into());
        }
        let request = body.value;
        let open = open_providers(&state, &link).await?;
        let mode = open.iter().find(|(provider, _)| *provider == request.provider).map(|(_, mode)| *mode);
        let Some(mode) = mode else {
            let names: Vec<&str> =
                open.iter().map(|(provider, _)| Provider::from(*provider).name()).collect();
            return Err(ApiError::validation(
                "provider",
                format!(
                    "this link takes {}",
                    if names.is_empty() { "no provider now".to_owned() } else { names.join(", ") }
                ),
            ));
        };
        let provider = Provider::from(request.provider);
        let phone = msisdn::normalize(provider, &request.customer_phone)?;
        let config = state.runtime.current().await?;
        admit_key(&state, &format!("checkout-link:{}", link.id), config.checkout_link_rate_limit).await?;
        let hold = config.checkout_hold_seconds.min(config.payment_expiry_seconds);
        let expiry = chrono::Duration::seconds(i64::try_from(hold).unwrap_or(i64::MAX / 2));

        let txn = begin_write(&state.db).await?;
        payment_links::reserve(&txn, &link.id, now).await?;
        // The reservation locked the link's row, so concurrent payers of this link see each
        // other's payments here.
        payment_links::refuse_second_hold(&txn, &link.id, &phone).await?;
        // Read again under the reservation, so the payment is for the amount the link asks now
        // even if the merchant changed it a moment ago.
        let link = link_rows::Entity::find_by_id(link.id.as_str())
            .one(&txn)
            .await?
            .ok_or_else(|| ApiError::not_found("payment link"))?;
        let new = NewPayment {
            id: NewPayment::new_id(),
            merchant_id: link.merchant_id.clone(),
            provider,
            mode,
            amount_minor: link.amount_minor,
            currency: "MGA",
            customer_phone: phone,
            description: Some(link.title.clone()),
            metadata: None,
            merchant_reference: None,
            payment_link_id: Some(link.id.clone()),
            subscription_id: None,
            expires_at: now + expiry,
        };
        let details = Map::from_iter([("paymentLinkId".to_owned(), link.id.clone().into())]);
        let (payment, enqueued) = open_payment(&txn, new, &actor(req, None), details).await?;
        txn.commit().await?;
        enqueued.dispatch(&state.queue).await;
        Ok(Reply::new(payment.into()))
    }
}
