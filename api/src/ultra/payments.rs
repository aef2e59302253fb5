//! `POST payments`, `GET payments`, `GET payments/{id}`, `POST payments/{id}/poll`.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Map, Value};
use ultra_domain::{
    DomainError,
    money::{format_amount, parse_amount},
    msisdn,
    payments::NewPayment,
    provider_configs::Provider,
};
use ultra_entity::{
    jobs,
    payments::{self as payment_rows, PaymentStatus},
    provider_configs as provider_config_rows,
};
use ultra_jobs::{
    NewJob, enqueue_now,
    kinds::payments::{CheckPayment, Opening, Trigger, open as open_payment},
};

use super::{
    ApiTags,
    jobs::{JobState, preferred_wait},
};
use crate::{
    AppState,
    http::{
        auth::{Auth, Payments, Principal},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent, PendingPush},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

/// The largest metadata object accepted, serialized.
const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Mobile money provider.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "Provider")]
pub enum ProviderName {
    Mvola,
    Airtel,
    Orange,
}

impl From<ProviderName> for Provider {
    fn from(name: ProviderName) -> Self {
        match name {
            ProviderName::Mvola => Self::Mvola,
            ProviderName::Airtel => Self::Airtel,
            ProviderName::Orange => Self::Orange,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "PaymentStatus")]
pub enum Status {
    Pending,
    Completed,
    Failed,
    Cancelled,
    Refunding,
    Refunded,
    Expired,
    /// The collection may have reached the provider, which cannot say how it ended: held for
    /// reconciliation, neither paid nor written off, until the provider's answer or an
    /// operator resolves it.
    Unknown,
}

impl From<PaymentStatus> for Status {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Pending => Self::Pending,
            PaymentStatus::Completed => Self::Completed,
            PaymentStatus::Failed => Self::Failed,
            PaymentStatus::Cancelled => Self::Cancelled,
            PaymentStatus::Refunding => Self::Refunding,
            PaymentStatus::Refunded => Self::Refunded,
            PaymentStatus::Expired => Self::Expired,
            PaymentStatus::Unknown => Self::Unknown,
        }
    }
}

impl From<Status> for PaymentStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Pending => Self::Pending,
            Status::Completed => Self::Completed,
            Status::Failed => Self::Failed,
            Status::Cancelled => Self::Cancelled,
            Status::Refunding => Self::Refunding,
            Status::Refunded => Self::Refunded,
            Status::Expired => Self::Expired,
            Status::Unknown => Self::Unknown,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatePaymentRequest {
    pub provider: ProviderName,
    /// Numeric string, e.g. "10000": digits with at most 2 decimals (`^\d+(\.\d{1,2})?$`).
    #[oai(validator(max_length = 18))]
    pub amount: String,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    /// Customer mobile money phone number, e.g. 0340000000 for MVola.
    #[oai(validator(max_length = 30))]
    pub customer_phone: String,
    /// Arbitrary metadata attached to the payment.
    pub metadata: Option<Value>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct JobRef {
    pub id: String,
    pub kind: String,
    pub status: JobState,
    pub status_url: String,
}

impl From<&jobs::Model> for JobRef {
    fn from(job: &jobs::Model) -> Self {
        Self {
            id: job.id.clone(),
            kind: job.kind.clone(),
            status: job.status.into(),
            status_url: format!("/api/v1/jobs/{}", job.id),
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PaymentView {
    pub id: String,
    pub merchant_id: String,
    pub provider: String,
    pub amount: String,
    pub currency: String,
    pub status: Status,
    pub customer_phone: String,
    pub description: Option<String>,
    pub metadata: Option<Value>,
    pub reference: String,
    pub provider_transaction_id: Option<String>,
    pub failure_reason: Option<String>,
    pub refunded_amount: String,
    pub job_id: Option<String>,
    /// Where to send the customer to pay, for redirect flows (Orange Money WebPay); set once
    /// the provider has accepted the payment.
    pub checkout_url: Option<String>,
    /// The payment link the customer paid through.
    pub payment_link_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub expires_at: DateTime<Utc>,
}

impl From<payment_rows::Model> for PaymentView {
    fn from(payment: payment_rows::Model) -> Self {
        Self {
            amount: format_amount(payment.amount_minor),
            refunded_amount: format_amount(payment.refunded_minor),
            status: payment.status.into(),
            id: payment.id,
            merchant_id: payment.merchant_id,
            provider: payment.provider,
            currency: payment.currency,
            customer_phone: payment.customer_phone,
            description: payment.description,
            metadata: payment.metadata,
            reference: payment.reference,
            provider_transaction_id: payment.provider_transaction_id,
            failure_reason: payment.failure_reason,
            job_id: payment.job_id,
            checkout_url: payment.checkout_url,
            payment_link_id: payment.payment_link_id,
            created_at: payment.created_at,
            updated_at: payment.updated_at,
            completed_at: payment.completed_at,
            expires_at: payment.expires_at,
        }
    }
}

/// A payment accepted for collection, with the job carrying it out.
#[derive(Object)]
pub struct PaymentAccepted {
    #[oai(flatten)]
    pub payment: PaymentView,
    pub job: JobRef,
}

/// Minor units of `amount`, which must be whole Ariary.
pub(crate) fn whole_ariary(amount: &str) -> ApiResult<i64> {
    let amount_minor = parse_amount("amount", amount)?;
    if amount_minor % 100 != 0 {
        return Err(ApiError::validation(
            "amount",
            "must be a whole number of Ariary: mobile money in Madagascar has no minor unit",
        ));
    }
    Ok(amount_minor)
}

/// The provider's configuration for the merchant (theirs, else the global one), if it can
/// take payments.
pub(crate) async fn usable_provider(
    state: &AppState,
    provider: Provider,
    merchant_id: &str,
) -> ApiResult<provider_config_rows::Model> {
    let config =
        state.caches.provider_config(&state.db, provider, merchant_id).await?.ok_or_else(|| {
            ApiError::validation("provider", format!("{} is not configured", provider.name()))
        })?;
    if !config.enabled {
        return Err(ApiError::validation("provider", format!("{} is disabled", provider.name())));
    }
    Ok(config)
}

fn accepted(payment: payment_rows::Model, job: &jobs::Model) -> Reply<PaymentAccepted, 202> {
    Reply::new(PaymentAccepted { payment: payment.into(), job: JobRef::from(job) })
}

pub(crate) fn validated_metadata(metadata: Option<Value>) -> ApiResult<Option<Value>> {
    match metadata {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if serde_json::to_vec(&map).map(|b| b.len()).unwrap_or(usize::MAX) > MAX_METADATA_BYTES {
                return Err(ApiError::validation("metadata", "must be at most 8 KiB of JSON"));
            }
            Ok(Some(Value::Object(map)))
        }
        Some(_) => Err(ApiError::validation("metadata", "must be a JSON object")),
    }
}

pub struct PaymentsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Payments")]
impl PaymentsApi {
    /// Initiate a payment
    ///
    /// Answers 202 with the pending payment and the job that collects it. Idempotent with
    /// `Idempotency-Key`; rate-limited per merchant by its SLA tier (runtime config
    /// `rateLimits.<tier>.payments`, 30 requests per 60 seconds unless changed); `Prefer: wait=N`
    /// waits up to N seconds for the collection to finish.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/payments", method = "post", operation_id = "createPayment")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth<Payments>,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        /// RFC 7240 preferences; `wait=N` waits for the payment to settle.
        #[oai(name = "Prefer")]
        prefer: Header<Option<String>>,
        body: JsonBody<CreatePaymentRequest>,
    ) -> ApiResult<Reply<PaymentAccepted, 202>> {
        let principal = auth.0;
        let merchant = principal.merchant()?.clone();
        let config = state.runtime.current().await?;

        let request = body.value;
        let provider = Provider::from(request.provider);
        let amount_minor = whole_ariary(&request.amount)?;
        let phone = msisdn::normalize(provider, &request.customer_phone)?;
        let metadata = validated_metadata(request.metadata)?;
        let provider_config = usable_provider(&state, provider, &merchant.id).await?;

        let expiry =
            chrono::Duration::seconds(i64::try_from(config.payment_expiry_seconds).unwrap_or(i64::MAX / 2));
        let new = NewPayment {
            id: NewPayment::new_id(),
            merchant_id: merchant.id.clone(),
            provider,
            mode: provider_config.mode,
            amount_minor,
            currency: "MGA",
            customer_phone: phone,
            description: request.description,
            metadata,
            merchant_reference: None,
            payment_link_id: None,
            subscription_id: None,
            expires_at: Utc::now() + expiry,
        };
        let actor = actor(req, Some(&principal.user.id));
        let keyed = Idempotent {
            scope: &principal.user.id,
            key: idempotency_key.0.as_deref(),
            endpoint: "POST /api/v1/payments",
            fingerprint: &body.fingerprint,
        };
        let (reply, job) = match idempotency_key.0.as_deref() {
            // The payment's writes are all or none on their own, one statement on PostgreSQL,
            // and written together with other requests' (`Opener`); a transaction of its own
            // would add nothing unless a key's response must be stored with them.
            None => {
                let (payment, job) = state.opener.open(Opening { new, actor, details: Map::new() }).await?;
                (accepted(payment, &job), Some(job))
            }
            Some(key) => {
                let outbox = PendingPush::default();
                let pending_push = outbox.clone();
                let reply = idempotency::run(&state, Idempotent { key: Some(key), ..keyed }, move |txn| {
                    Box::pin(async move {
                        let (payment, enqueued) = open_payment(txn, new, &actor, Map::new()).await?;
                        let reply = accepted(payment, &enqueued.job);
                        pending_push.hold(enqueued);
                        Ok(reply)
                    })
                })
                .await?;
                (reply, outbox.dispatch(&state.queue).await)
            }
        };
        let Some(job) = job else {
            return Ok(reply);
        };
        match preferred_wait(prefer.0.as_deref()) {
            None => Ok(reply),
            Some(wait) => {
                let answered = answer_after_wait(&state, job, wait).await?;
                idempotency::restate(&state, &keyed, &answered).await?;
                Ok(answered)
            }
        }
    }

    /// List payments
    ///
    /// The merchant's own payments, or all payments for admins (`merchantId` narrows them).
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/payments", method = "get", operation_id = "listPayments")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        status: Query<Option<Status>>,
        /// Filter by merchant (admins only).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
        /// Payments made through this payment link.
        #[oai(name = "paymentLinkId")]
        payment_link_id: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<PaymentView>>> {
        let principal = auth.0;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = payment_rows::Entity::find();
        if let Some(id) = principal.merchant_scope(merchant_id.0, "merchantId")? {
            select = select.filter(payment_rows::Column::MerchantId.eq(id));
        }
        if let Some(status) = status.0 {
            select = select.filter(payment_rows::Column::Status.eq(PaymentStatus::from(status)));
        }
        if let Some(link) = payment_link_id.0 {
            select = select.filter(payment_rows::Column::PaymentLinkId.eq(link));
        }
        let (rows, meta) = paginate(&state.db, select, payment_rows::Column::Id, |p| &p.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(PaymentView::from).collect(), meta))
    }

    /// Get a payment by ID
    #[oai(path = "/payments/:id", method = "get", operation_id = "getPayment")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<PaymentView>> {
        Ok(Reply::new(visible_payment(&state, &auth.0, &id.0).await?.into()))
    }

    /// Poll payment status from provider
    ///
    /// Queries the provider for the latest payment status and updates the record; terminal
    /// transitions record their events for webhook delivery. The query runs on a worker:
    /// answers 202 with the payment and the job, and `Prefer: wait=N` waits for it.
    #[oai(path = "/payments/:id/poll", method = "post", operation_id = "pollPayment")]
    async fn poll(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        /// RFC 7240 preferences; `wait=N` waits for the provider's answer.
        #[oai(name = "Prefer")]
        prefer: Header<Option<String>>,
    ) -> ApiResult<Reply<PaymentAccepted, 202>> {
        let payment = visible_payment(&state, &auth.0, &id.0).await?;
        let check = CheckPayment { payment_id: payment.id.clone(), trigger: Trigger::Manual };
        let job = enqueue_now(
            &state.db,
            &state.queue,
            NewJob::new(&check).owner(payment.merchant_id.clone()).resource("payments", payment.id.clone()),
        )
        .await?;
        match preferred_wait(prefer.0.as_deref()) {
            None => Ok(Reply::new(PaymentAccepted { payment: payment.into(), job: JobRef::from(&job) })),
            Some(wait) => answer_after_wait(&state, job, wait).await,
        }
    }
}

/// The payment `id` if the caller may see it: their own, or any for an admin. Another
/// merchant's payment is a 404, indistinguishable from one that does not exist.
pub async fn visible_payment(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> ApiResult<payment_rows::Model> {
    payment_rows::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|payment| principal.may_see(&payment.merchant_id))
        .ok_or_else(|| ApiError::not_found("payment"))
}

/// Waits up to `wait` for the payment to settle, then answers with it as it is. The job that
/// started it may finish first (a live collection ends once the provider has the request), so
/// after the job the payment itself is watched until it leaves `pending` or time runs out.
async fn answer_after_wait(
    state: &AppState,
    job: jobs::Model,
    wait: std::time::Duration,
) -> ApiResult<Reply<PaymentAccepted, 202>> {
    let payment_id =
        job.resource_id.clone().ok_or_else(|| ApiError::internal("payment job without its payment"))?;
    let payment =
        ultra_jobs::wait::until_settled(&state.db, &state.pubsub, &state.queue, &job.id, wait, || async {
            let payment = payment_rows::Entity::find_by_id(payment_id.as_str())
                .one(&state.db)
                .await?
                .ok_or(DomainError::NotFound("payment"))?;
            let settled = payment.status != PaymentStatus::Pending;
            Ok((payment, settled))
        })
        .await?;
    let job = jobs::Entity::find_by_id(job.id.as_str()).one(&state.db).await?.unwrap_or(job);
    Ok(Reply::new(PaymentAccepted { payment: payment.into(), job: JobRef::from(&job) })
        .with_header("Preference-Applied", format!("wait={}", wait.as_secs())))
}
