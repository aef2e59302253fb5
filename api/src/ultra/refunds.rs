//! Refunds: `GET payments/refund-capabilities`, `POST/GET payments/{id}/refunds`,
//! `GET payments/refunds/{refundId}` and its `poll` and `retry`.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use sea_orm::{ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, sea_query::Expr};
use ultra_domain::{
    money::{format_amount, parse_amount},
    provider_configs::{self, Provider},
    refunds::{self, NewRefund},
};
use ultra_entity::{
    provider_configs::ProviderMode,
    refunds::{self as refund_rows, RefundStatus},
};
use ultra_jobs::{
    Enqueued, NewJob, enqueue, enqueue_now,
    kinds::refunds::{CheckRefund, ProcessRefund},
};

use super::{
    ApiTags,
    payments::{JobRef, ProviderName, visible_payment},
};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent, PendingPush},
        json_body::OptionalJsonBody,
        pagination::{PageRequest, paginate},
    },
};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "RefundStatus")]
pub enum Status {
    Pending,
    Processing,
    Completed,
    Failed,
    Cancelled,
    /// The request may have reached the provider, which cannot say whether it refunded: the
    /// amount stays held until the provider's answer or an operator resolves it.
    Unknown,
}

impl From<RefundStatus> for Status {
    fn from(status: RefundStatus) -> Self {
        match status {
            RefundStatus::Pending => Self::Pending,
            RefundStatus::Processing => Self::Processing,
            RefundStatus::Completed => Self::Completed,
            RefundStatus::Failed => Self::Failed,
            RefundStatus::Cancelled => Self::Cancelled,
            RefundStatus::Unknown => Self::Unknown,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateRefundRequest {
    /// Refund amount (defaults to what remains refundable: the full payment at first).
    #[oai(validator(max_length = 18))]
    pub amount: Option<String>,
    #[oai(validator(min_length = 3, max_length = 255))]
    pub reason: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct RefundView {
    pub id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub provider: String,
    pub amount: String,
    pub currency: String,
    pub status: Status,
    pub reason: Option<String>,
    pub provider_refund_id: Option<String>,
    pub failure_reason: Option<String>,
    /// 1 for the first try, bumped by each retry.
    pub attempt: i32,
    pub job_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
}

impl From<refund_rows::Model> for RefundView {
    fn from(refund: refund_rows::Model) -> Self {
        Self {
            amount: format_amount(refund.amount_minor),
            status: refund.status.into(),
            id: refund.id,
            payment_id: refund.payment_id,
            merchant_id: refund.merchant_id,
            provider: refund.provider,
            currency: refund.currency,
            reason: refund.reason,
            provider_refund_id: refund.provider_refund_id,
            failure_reason: refund.failure_reason,
            attempt: refund.attempt,
            job_id: refund.job_id,
            created_at: refund.created_at,
            updated_at: refund.updated_at,
            completed_at: refund.completed_at,
        }
    }
}

/// A refund, with the job sending it to the provider (none in simulation mode, where it is
/// final at once).
#[derive(Object)]
pub struct RefundAccepted {
    #[oai(flatten)]
    pub refund: RefundView,
    pub job: Option<JobRef>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct RefundCapability {
    pub provider: ProviderName,
    pub supported: bool,
    /// `api` (through the provider), `manual` (outside Ultra) or `simulation`.
    pub mode: String,
    /// Whether less than the whole payment can be refunded.
    pub partial: bool,
    pub note: String,
}

/// The refund `id` if the caller may see it; another merchant's is a 404.
pub async fn visible_refund(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<refund_rows::Model> {
    refund_rows::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|refund| principal.may_see(&refund.merchant_id))
        .ok_or_else(|| ApiError::not_found("refund"))
}

/// In simulation mode a refund is final at once; in live mode a job sends it.
async fn dispatch_or_settle(
    txn: &DatabaseTransaction,
    refund: refund_rows::Model,
) -> ApiResult<(refund_rows::Model, Option<Enqueued>)> {
    if refund.mode == ProviderMode::Simulation {
        let settled = refunds::settle(txn, &refund, Some(format!("SIM-{}", refund.id))).await?;
        return Ok((settled.unwrap_or(refund), None));
    }
    let enqueued = enqueue(
        txn,
        NewJob::new(&ProcessRefund { refund_id: refund.id.clone() })
            .owner(refund.merchant_id.clone())
            .resource("refunds", refund.id.clone())
            .unique_key(format!("refund:{}:attempt:{}", refund.id, refund.attempt)),
    )
    .await?;
    refund_rows::Entity::update_many()
        .col_expr(refund_rows::Column::JobId, Expr::value(enqueued.job.id.clone()))
        .filter(refund_rows::Column::Id.eq(&refund.id))
        .exec(txn)
        .await?;
    let refund = refunds::find(txn, &refund.id).await?;
    Ok((refund, Some(enqueued)))
}

fn accepted(
    refund: refund_rows::Model,
    enqueued: Option<Enqueued>,
    outbox: &PendingPush,
) -> Reply<RefundAccepted, 202> {
    let job = enqueued.as_ref().map(|e| JobRef::from(&e.job));
    if let Some(enqueued) = enqueued {
        outbox.hold(enqueued);
    }
    Reply::new(RefundAccepted { refund: refund.into(), job })
}

pub struct RefundsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Payments")]
impl RefundsApi {
    /// List refund capabilities by provider
    ///
    /// Refund support and mode for each provider as configured for the caller. Pass
    /// `?provider=mvola` for a single provider.
    #[oai(path = "/payments/refund-capabilities", method = "get", operation_id = "listRefundCapabilities")]
    async fn capabilities(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        provider: Query<Option<ProviderName>>,
    ) -> ApiResult<Reply<Vec<RefundCapability>>> {
        let principal = auth.0;
        let scope = match principal.merchant() {
            Ok(merchant) => merchant.id.clone(),
            Err(_) => provider_configs::GLOBAL.to_owned(),
        };
        let mut list = Vec::new();
        for name in [ProviderName::Mvola, ProviderName::Airtel, ProviderName::Orange] {
            if provider.0.is_some_and(|wanted| wanted != name) {
                continue;
            }
            let known = Provider::from(name);
            let mode = state
                .caches
                .provider_config(&state.db, known, &scope)
                .await?
                .map_or(ProviderMode::Simulation, |config| config.mode);
            let capability = refunds::capability(known, mode);
            list.push(RefundCapability {
                provider: name,
                supported: capability.supported,
                mode: capability.mode.to_owned(),
                partial: capability.partial,
                note: capability.note.to_owned(),
            });
        }
        Ok(Reply::new(list))
    }

    /// Create a refund request for a payment
    ///
    /// Refunds a completed payment, by default in full. In simulation mode the refund is
    /// final at once; in live mode a job sends it to the provider. Never more than what
    /// remains refundable, even under concurrent requests. Idempotent with `Idempotency-Key`.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/payments/:id/refunds", method = "post", operation_id = "createRefund")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: OptionalJsonBody<CreateRefundRequest>,
    ) -> ApiResult<Reply<RefundAccepted, 202>> {
        let principal = auth.0;
        let payment = visible_payment(&state, &principal, &id.0).await?;
        let body = body.0;
        let amount_minor =
            body.value.amount.as_deref().map(|text| parse_amount("amount", text)).transpose()?;
        let reason = body.value.reason;
        let actor = actor(req, Some(&principal.user.id));
        let outbox = PendingPush::default();
        let pending = outbox.clone();
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/payments/{id}/refunds",
                fingerprint: &format!("{}:{}", payment.id, body.fingerprint),
            },
            move |txn| {
                Box::pin(async move {
                    let refund =
                        refunds::create(txn, &payment, NewRefund { amount_minor, reason }, &actor).await?;
                    let (refund, enqueued) = dispatch_or_settle(txn, refund).await?;
                    Ok(accepted(refund, enqueued, &pending))
                })
            },
        )
        .await?;
        outbox.dispatch(&state.queue).await;
        Ok(reply)
    }

    /// List refunds for a payment
    #[oai(path = "/payments/:id/refunds", method = "get", operation_id = "listRefunds")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<RefundView>>> {
        let payment = visible_payment(&state, &auth.0, &id.0).await?;
        let request = PageRequest::from_query(page.0, per_page.0, None, None, None)?;
        let select = refund_rows::Entity::find().filter(refund_rows::Column::PaymentId.eq(payment.id));
        let (rows, meta) = paginate(&state.db, select, refund_rows::Column::Id, |r| &r.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(RefundView::from).collect(), meta))
    }

    /// Get a refund by ID
    #[oai(path = "/payments/refunds/:refundId", method = "get", operation_id = "getRefund")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "refundId")] refund_id: Path<String>,
    ) -> ApiResult<Reply<RefundView>> {
        Ok(Reply::new(visible_refund(&state, &auth.0, &refund_id.0).await?.into()))
    }

    /// Poll refund status from provider
    ///
    /// Asks the provider about a refund it is still processing, or one held as `unknown`; the
    /// answer is applied by a job. A refund in any other status is returned as it is, without
    /// a job.
    #[oai(path = "/payments/refunds/:refundId/poll", method = "post", operation_id = "pollRefund")]
    async fn poll(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "refundId")] refund_id: Path<String>,
    ) -> ApiResult<Reply<RefundAccepted, 202>> {
        let refund = visible_refund(&state, &auth.0, &refund_id.0).await?;
        if !matches!(refund.status, RefundStatus::Processing | RefundStatus::Unknown) {
            return Ok(Reply::new(RefundAccepted { refund: refund.into(), job: None }));
        }
        let job = enqueue_now(
            &state.db,
            &state.queue,
            NewJob::new(&CheckRefund { refund_id: refund.id.clone() })
                .owner(refund.merchant_id.clone())
                .resource("refunds", refund.id.clone()),
        )
        .await?;
        Ok(Reply::new(RefundAccepted { refund: refund.into(), job: Some(JobRef::from(&job)) }))
    }

    /// Retry a failed or cancelled refund
    ///
    /// Sends the same refund again, reserving its amount again; refused if that would now
    /// exceed what remains refundable.
    #[oai(path = "/payments/refunds/:refundId/retry", method = "post", operation_id = "retryRefund")]
    async fn retry(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "refundId")] refund_id: Path<String>,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Reply<RefundAccepted, 202>> {
        let principal = auth.0;
        let refund = visible_refund(&state, &principal, &refund_id.0).await?;
        let actor = actor(req, Some(&principal.user.id));
        let outbox = PendingPush::default();
        let pending = outbox.clone();
        let fingerprint = refund.id.clone();
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/payments/refunds/{refundId}/retry",
                fingerprint: &fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let retried = refunds::retry(txn, &refund, &actor).await?;
                    let (refund, enqueued) = dispatch_or_settle(txn, retried).await?;
                    Ok(accepted(refund, enqueued, &pending))
                })
            },
        )
        .await?;
        outbox.dispatch(&state.queue).await;
        Ok(reply)
    }
}
