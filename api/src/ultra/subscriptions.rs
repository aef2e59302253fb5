//! `GET/POST subscriptions`, `GET/PATCH/DELETE subscriptions/{id}`,
//! `POST subscriptions/{id}/renew`.

use chrono::{DateTime, Days, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, DatabaseTransaction, EntityTrait, IntoActiveModel,
    QueryFilter, Set,
};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, Actor, AuditEvent},
    dates,
    money::format_amount,
    msisdn,
    provider_configs::Provider,
    subscriptions::{self, anchor_day, first_period_after},
};
use ultra_entity::{
    jobs, payments as payment_rows,
    subscriptions::{self as rows, SubscriptionInterval, SubscriptionStatus},
};
use ultra_jobs::kinds::subscriptions::{payment_expiry, start_renewal};

use super::{
    ApiTags,
    payments::{JobRef, PaymentView, ProviderName, usable_provider, validated_metadata, whole_ariary},
};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent, PendingPush},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

/// How far in the past a first renewal date may be: a little, for a subscription that starts
/// now; more is far likelier a typo than a wish to charge at once.
const MAX_PAST_RENEWAL: chrono::Duration = chrono::Duration::days(1);

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "SubscriptionInterval")]
pub enum Interval {
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Annual,
}

impl From<Interval> for SubscriptionInterval {
    fn from(interval: Interval) -> Self {
        match interval {
            Interval::Daily => Self::Daily,
            Interval::Weekly => Self::Weekly,
            Interval::Monthly => Self::Monthly,
            Interval::Quarterly => Self::Quarterly,
            Interval::Annual => Self::Annual,
        }
    }
}

impl From<SubscriptionInterval> for Interval {
    fn from(interval: SubscriptionInterval) -> Self {
        match interval {
            SubscriptionInterval::Daily => Self::Daily,
            SubscriptionInterval::Weekly => Self::Weekly,
            SubscriptionInterval::Monthly => Self::Monthly,
            SubscriptionInterval::Quarterly => Self::Quarterly,
            SubscriptionInterval::Annual => Self::Annual,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "SubscriptionStatus")]
pub enum Status {
    Active,
    Paused,
    Cancelled,
}

impl From<Status> for SubscriptionStatus {
    fn from(status: Status) -> Self {
        match status {
            Status::Active => Self::Active,
            Status::Paused => Self::Paused,
            Status::Cancelled => Self::Cancelled,
        }
    }
}

impl From<SubscriptionStatus> for Status {
    fn from(status: SubscriptionStatus) -> Self {
        match status {
            SubscriptionStatus::Active => Self::Active,
            SubscriptionStatus::Paused => Self::Paused,
            SubscriptionStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// `due=today`: the only value the seed defines.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "SubscriptionDue")]
pub enum Due {
    Today,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateSubscriptionRequest {
    #[oai(validator(min_length = 1, max_length = 255))]
    pub label: String,
    /// The customer's mobile money number, charged at each renewal.
    #[oai(validator(min_length = 10, max_length = 30))]
    pub customer_phone: String,
    /// Numeric string, e.g. "10000": digits with at most 2 decimals (`^\d+(\.\d{1,2})?$`).
    #[oai(validator(max_length = 18))]
    pub amount: String,
    /// Only MGA: the providers collect Ariary.
    #[oai(validator(max_length = 10))]
    pub currency: Option<String>,
    #[oai(validator(max_length = 500))]
    pub description: Option<String>,
    pub interval: Interval,
    /// Defaults to mvola.
    pub provider: Option<ProviderName>,
    /// When the first renewal is charged; later ones follow the interval, keeping this day of
    /// the month (falling back to a shorter month's last day).
    pub next_renewal_at: DateTime<Utc>,
    pub metadata: Option<Value>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateSubscriptionRequest {
    #[oai(validator(min_length = 1, max_length = 255))]
    pub label: Option<String>,
    pub status: Option<Status>,
    #[oai(validator(max_length = 18))]
    pub amount: Option<String>,
    pub interval: Option<Interval>,
    pub provider: Option<ProviderName>,
    pub next_renewal_at: Option<DateTime<Utc>>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct SubscriptionView {
    pub id: String,
    pub merchant_id: String,
    pub label: String,
    pub customer_phone: String,
    pub amount: String,
    pub currency: String,
    pub description: Option<String>,
    pub interval: Interval,
    pub provider: String,
    pub status: Status,
    /// The start of the next period to be charged.
    pub next_renewal_at: DateTime<Utc>,
    /// Every attempt to renew the current period failed; the schedule stops trying until the
    /// merchant renews by hand, reschedules, or pauses and resumes the subscription.
    pub overdue: bool,
    /// Failed attempts for the current period.
    pub renewal_attempts: i32,
    /// When the failed period is tried again.
    pub retry_at: Option<DateTime<Utc>>,
    /// The renewal payment in flight, if any.
    pub renewal_payment_id: Option<String>,
    pub last_payment_id: Option<String>,
    pub last_renewed_at: Option<DateTime<Utc>>,
    pub renewal_count: i32,
    pub metadata: Option<Value>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<rows::Model> for SubscriptionView {
    fn from(row: rows::Model) -> Self {
        Self {
            amount: format_amount(row.amount_minor),
            interval: row.interval.into(),
            status: row.status.into(),
            id: row.id,
            merchant_id: row.merchant_id,
            label: row.label,
            customer_phone: row.customer_phone,
            currency: row.currency,
            description: row.description,
            provider: row.provider,
            next_renewal_at: row.next_renewal_at,
            overdue: row.overdue,
            renewal_attempts: row.renewal_attempts,
            retry_at: row.retry_at,
            renewal_payment_id: row.renewal_payment_id,
            last_payment_id: row.last_payment_id,
            last_renewed_at: row.last_renewed_at,
            renewal_count: row.renewal_count,
            metadata: row.metadata,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// A renewal payment started (or already running) for the subscription's current period.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct RenewalAccepted {
    pub subscription: SubscriptionView,
    pub payment: PaymentView,
    pub job: Option<JobRef>,
    /// The period's renewal was already running; no new payment was started.
    pub already_in_progress: bool,
}

pub struct SubscriptionsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Subscriptions")]
impl SubscriptionsApi {
    /// List subscriptions
    ///
    /// The merchant's own subscriptions, or all for admins (`userId` narrows them), newest
    /// first. `due=today`: active subscriptions whose next renewal falls before the end of the
    /// current UTC day, including any still waiting for a retry.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/subscriptions", method = "get", operation_id = "listSubscriptions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
        due: Query<Option<Due>>,
        /// Filter by merchant user ID (admin only).
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Reply<Vec<SubscriptionView>>> {
        let principal = auth.0;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = rows::Entity::find();
        if let Some(id) = principal.merchant_scope(user_id.0, "userId")? {
            select = select.filter(rows::Column::MerchantId.eq(id));
        }
        if due.0.is_some() {
            let tomorrow = Utc::now().date_naive() + Days::new(1);
            let end_of_today = tomorrow.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
            select = select
                .filter(rows::Column::Status.eq(SubscriptionStatus::Active))
                .filter(rows::Column::NextRenewalAt.lt(end_of_today));
        }
        let (found, meta) = paginate(&state.db, select, rows::Column::Id, |s| &s.id, &request).await?;
        Ok(Reply::with_meta(found.into_iter().map(SubscriptionView::from).collect(), meta))
    }

    /// Create a subscription
    ///
    /// The first renewal is charged at `nextRenewalAt` (at once if that is now), through the
    /// chosen provider, which must be enabled for the merchant. Idempotent with
    /// `Idempotency-Key`.
    #[oai(path = "/subscriptions", method = "post", operation_id = "createSubscription")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateSubscriptionRequest>,
    ) -> ApiResult<Reply<SubscriptionView, 201>> {
        let principal = auth.0;
        let merchant = principal.merchant()?.clone();
        let request = body.value;
        let provider = Provider::from(request.provider.unwrap_or(ProviderName::Mvola));
        let amount_minor = whole_ariary(&request.amount)?;
        if let Some(currency) = request.currency.as_deref()
            && currency != "MGA"
        {
            return Err(ApiError::validation("currency", "must be MGA: the providers collect Ariary"));
        }
        let phone = msisdn::normalize(provider, &request.customer_phone)?;
        let metadata = validated_metadata(request.metadata)?;
        usable_provider(&state, provider, &merchant.id).await?;
        let now = Utc::now();
        let next_renewal_at = checked_renewal_date(request.next_renewal_at, now)?;
        let actor = actor(req, Some(&principal.user.id));
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/subscriptions",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let subscription = rows::ActiveModel {
                        id: Set(subscriptions::new_id()),
                        merchant_id: Set(merchant.id.clone()),
                        label: Set(request.label),
                        customer_phone: Set(phone),
                        amount_minor: Set(amount_minor),
                        currency: Set("MGA".to_owned()),
                        description: Set(request.description),
                        interval: Set(request.interval.into()),
                        provider: Set(provider.name().to_owned()),
                        status: Set(SubscriptionStatus::Active),
                        next_renewal_at: Set(next_renewal_at),
                        anchor_day: Set(anchor_day(next_renewal_at)),
                        overdue: Set(false),
                        renewal_attempts: Set(0),
                        retry_at: Set(None),
                        renewal_payment_id: Set(None),
                        last_payment_id: Set(None),
                        last_renewed_at: Set(None),
                        renewal_count: Set(0),
                        metadata: Set(metadata),
                        created_at: Set(now),
                        updated_at: Set(now),
                    }
                    .insert(txn)
                    .await?;
                    audited(txn, &actor, "subscription.created", &subscription).await?;
                    Ok(Reply::new(subscription.into()))
                })
            },
        )
        .await
    }

    /// Get a subscription by ID
    #[oai(path = "/subscriptions/:id", method = "get", operation_id = "getSubscription")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<SubscriptionView>> {
        Ok(Reply::new(visible_subscription(&state, &auth.0, &id.0).await?.into()))
    }

    /// Update a subscription
    ///
    /// A cancelled subscription no longer changes. Resuming a paused one skips the periods it
    /// was paused for, and clears a failed period's retries and `overdue`; so does a new
    /// `nextRenewalAt`, which also sets the day of the month later renewals keep to. The
    /// schedule cannot change while a renewal payment is in flight.
    #[oai(path = "/subscriptions/:id", method = "patch", operation_id = "updateSubscription")]
    async fn update(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: JsonBody<UpdateSubscriptionRequest>,
    ) -> ApiResult<Reply<SubscriptionView>> {
        let principal = auth.0;
        let current = visible_subscription(&state, &principal, &id.0).await?;
        let request = body.value;
        if request.label.is_none()
            && request.status.is_none()
            && request.amount.is_none()
            && request.interval.is_none()
            && request.provider.is_none()
            && request.next_renewal_at.is_none()
        {
            return Err(ApiError::bad_request("the body must change at least one field"));
        }
        if current.status == SubscriptionStatus::Cancelled {
            return Err(ApiError::conflict(
                "subscription_cancelled",
                "a cancelled subscription cannot change",
            ));
        }
        let now = Utc::now();
        let amount_minor = match request.amount.as_deref() {
            Some(amount) => Some(whole_ariary(amount)?),
            None => None,
        };
        let provider = request.provider.map(Provider::from);
        let phone = match provider {
            Some(provider) => {
                usable_provider(&state, provider, &current.merchant_id).await?;
                Some(msisdn::normalize(provider, &current.customer_phone).map_err(|_| {
                    ApiError::validation(
                        "provider",
                        format!(
                            "the customer's number {} is not a {} number",
                            current.customer_phone,
                            provider.name()
                        ),
                    )
                })?)
            }
            None => None,
        };
        let next_renewal_at = request.next_renewal_at.map(|at| checked_renewal_date(at, now)).transpose()?;
        let resuming = current.status == SubscriptionStatus::Paused && request.status == Some(Status::Active);
        let reschedules = next_renewal_at.is_some() || request.interval.is_some() || resuming;
        if reschedules && current.renewal_payment_id.is_some() {
            return Err(ApiError::conflict(
                "renewal_in_progress",
                "a renewal payment is in flight; change the schedule once it has ended",
            ));
        }

        let mut changed = current.clone().into_active_model();
        if let Some(label) = request.label {
            changed.label = Set(label);
        }
        if let Some(status) = request.status {
            changed.status = Set(status.into());
        }
        if let Some(amount_minor) = amount_minor {
            changed.amount_minor = Set(amount_minor);
        }
        if let Some(interval) = request.interval {
            changed.interval = Set(interval.into());
        }
        if let (Some(provider), Some(phone)) = (provider, phone) {
            changed.provider = Set(provider.name().to_owned());
            changed.customer_phone = Set(phone);
        }
        if let Some(at) = next_renewal_at {
            changed.next_renewal_at = Set(at);
            changed.anchor_day = Set(anchor_day(at));
        } else if resuming {
            let resumed = first_period_after(current.next_renewal_at, &current, now);
            changed.next_renewal_at = Set(dates::check("nextRenewalAt", resumed)?);
        }
        if next_renewal_at.is_some() || resuming {
            changed.renewal_attempts = Set(0);
            changed.retry_at = Set(None);
            changed.overdue = Set(false);
        }
        changed.updated_at = Set(now);

        let actor = actor(req, Some(&principal.user.id));
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "PATCH /api/v1/subscriptions/{id}",
                fingerprint: &format!("{}:{}", current.id, body.fingerprint),
            },
            move |txn| {
                Box::pin(async move {
                    let updated = save_unchanged_since(txn, &current, changed).await?;
                    audited(txn, &actor, "subscription.updated", &updated).await?;
                    Ok(Reply::new(updated.into()))
                })
            },
        )
        .await
    }

    /// Delete a subscription
    ///
    /// Its payments stay, still naming it. Refused while a renewal payment is in flight.
    #[oai(path = "/subscriptions/:id", method = "delete", operation_id = "deleteSubscription")]
    async fn delete(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<SubscriptionView>> {
        let principal = auth.0;
        let current = visible_subscription(&state, &principal, &id.0).await?;
        let actor = actor(req, Some(&principal.user.id));
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let deleted = rows::Entity::delete_many()
            .filter(rows::Column::Id.eq(current.id.as_str()))
            .filter(rows::Column::RenewalPaymentId.is_null())
            .exec(&txn)
            .await?;
        if deleted.rows_affected == 0 {
            return Err(ApiError::conflict(
                "renewal_in_progress",
                "a renewal payment is in flight; delete the subscription once it has ended",
            ));
        }
        audited(&txn, &actor, "subscription.deleted", &current).await?;
        txn.commit().await?;
        Ok(Reply::new(current.into()))
    }

    /// Manually trigger a subscription renewal
    ///
    /// Starts the renewal payment of the current period (`nextRenewalAt`) now, through the
    /// same path as the schedule: the period is charged once however the two race. If its
    /// renewal is already running, answers with that payment instead. Completion advances
    /// `nextRenewalAt` and records `subscription.renewed`. Idempotent with `Idempotency-Key`.
    #[oai(path = "/subscriptions/:id/renew", method = "post", operation_id = "renewSubscription")]
    async fn renew(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Reply<RenewalAccepted, 202>> {
        let principal = auth.0;
        let current = visible_subscription(&state, &principal, &id.0).await?;
        if current.status != SubscriptionStatus::Active {
            return Err(ApiError::conflict(
                "subscription_not_active",
                format!("a {} subscription is not renewed", current.status.to_value()),
            ));
        }
        let provider = Provider::parse(&current.provider)
            .ok_or_else(|| ApiError::internal(format!("unknown provider {}", current.provider)))?;
        let config = usable_provider(&state, provider, &current.merchant_id).await?;
        let expiry = payment_expiry(&*state.runtime.current().await?);
        let actor = actor(req, Some(&principal.user.id));
        let outbox = PendingPush::default();
        let pending_push = outbox.clone();
        let fingerprint = current.id.clone();
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/subscriptions/{id}/renew",
                fingerprint: &fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let started = match current.renewal_payment_id {
                        Some(_) => None,
                        None => start_renewal(txn, &current, config.mode, expiry, &actor).await?,
                    };
                    let subscription = rows::Entity::find_by_id(current.id.as_str())
                        .one(txn)
                        .await?
                        .ok_or_else(|| ApiError::not_found("subscription"))?;
                    let Some((payment, enqueued)) = started else {
                        return in_progress(txn, subscription).await;
                    };
                    audit::record(
                        txn,
                        &actor,
                        AuditEvent {
                            action: "subscription.renewal_requested",
                            entity_type: "subscription",
                            entity_id: Some(&subscription.id),
                            details: Some(
                                json!({ "paymentId": payment.id, "period": current.next_renewal_at }),
                            ),
                        },
                    )
                    .await?;
                    let job = JobRef::from(&enqueued.job);
                    pending_push.hold(enqueued);
                    Ok(Reply::new(RenewalAccepted {
                        subscription: subscription.into(),
                        payment: payment.into(),
                        job: Some(job),
                        already_in_progress: false,
                    }))
                })
            },
        )
        .await?;
        outbox.dispatch(&state.queue).await;
        Ok(reply)
    }
}

/// The answer when the period's renewal is already running: its payment and job.
async fn in_progress(
    txn: &DatabaseTransaction,
    subscription: rows::Model,
) -> ApiResult<Reply<RenewalAccepted, 202>> {
    let payment_id = subscription.renewal_payment_id.clone().ok_or_else(|| {
        ApiError::conflict(
            "renewal_not_due",
            "the subscription changed while the renewal was being started; try again",
        )
    })?;
    let payment = payment_rows::Entity::find_by_id(payment_id.as_str())
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::internal("a subscription's renewal payment is missing"))?;
    let job = match payment.job_id.as_deref() {
        Some(job_id) => jobs::Entity::find_by_id(job_id).one(txn).await?.as_ref().map(JobRef::from),
        None => None,
    };
    Ok(Reply::new(RenewalAccepted {
        subscription: subscription.into(),
        payment: payment.into(),
        job,
        already_in_progress: true,
    }))
}

/// The subscription `id` if the caller may see it; another merchant's is a 404.
async fn visible_subscription(state: &AppState, principal: &Principal, id: &str) -> ApiResult<rows::Model> {
    rows::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|subscription| principal.may_see(&subscription.merchant_id))
        .ok_or_else(|| ApiError::not_found("subscription"))
}

fn checked_renewal_date(at: DateTime<Utc>, now: DateTime<Utc>) -> ApiResult<DateTime<Utc>> {
    if at < now - MAX_PAST_RENEWAL {
        return Err(ApiError::validation("nextRenewalAt", "must not be more than a day in the past"));
    }
    Ok(dates::check("nextRenewalAt", at)?)
}

/// Saves `changed` only if nothing else (a renewal claiming the subscription, another edit)
/// wrote the row since it was read; otherwise the caller is told to read it again.
async fn save_unchanged_since(
    txn: &DatabaseTransaction,
    read: &rows::Model,
    changed: rows::ActiveModel,
) -> ApiResult<rows::Model> {
    let saved = rows::Entity::update_many()
        .set(changed)
        .filter(rows::Column::Id.eq(read.id.as_str()))
        .filter(rows::Column::UpdatedAt.eq(read.updated_at))
        .exec(txn)
        .await?;
    if saved.rows_affected == 0 {
        return Err(ApiError::conflict(
            "subscription_changed",
            "the subscription changed while this update was made; read it again and retry",
        ));
    }
    rows::Entity::find_by_id(read.id.as_str())
        .one(txn)
        .await?
        .ok_or_else(|| ApiError::not_found("subscription"))
}

async fn audited(
    txn: &DatabaseTransaction,
    actor: &Actor,
    action: &str,
    subscription: &rows::Model,
) -> ApiResult<()> {
    audit::record(
        txn,
        actor,
        AuditEvent {
            action,
            entity_type: "subscription",
            entity_id: Some(&subscription.id),
            details: Some(json!({
                "status": subscription.status,
                "amountMinor": subscription.amount_minor,
                "interval": subscription.interval,
                "nextRenewalAt": subscription.next_renewal_at,
            })),
        },
    )
    .await?;
    Ok(())
}
