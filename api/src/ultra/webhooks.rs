//! Webhooks: `GET/POST webhooks/endpoints`, `PATCH/DELETE webhooks/endpoints/{id}`, the
//! deliveries with their attempts and retry, and the dead-letter queue with replay. Delivery
//! itself is the workers' business; everything here reads or writes rows.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Select};
use ultra_domain::{
    tiers::Feature,
    webhooks::{
        deliveries,
        endpoints::{self, EndpointChanges, NewEndpoint},
    },
};
use ultra_entity::{
    webhook_attempts,
    webhook_deliveries::{self, DeliveryStatus, DeliveryTrigger},
    webhook_endpoints,
};

use super::{ApiTags, views::Deleted};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal, require_feature},
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

const MAX_BULK_REPLAY: usize = 100;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookEvent {
    #[oai(rename = "payment.completed")]
    PaymentCompleted,
    #[oai(rename = "payment.failed")]
    PaymentFailed,
    #[oai(rename = "payment.refunded")]
    PaymentRefunded,
    #[oai(rename = "subscription.renewed")]
    SubscriptionRenewed,
    #[oai(rename = "payment_link.paid")]
    PaymentLinkPaid,
    /// A payment held for reconciliation: the provider may have collected it but cannot say.
    #[oai(rename = "payment.unknown")]
    PaymentUnknown,
}

impl WebhookEvent {
    fn name(self) -> &'static str {
        match self {
            Self::PaymentCompleted => "payment.completed",
            Self::PaymentFailed => "payment.failed",
            Self::PaymentRefunded => "payment.refunded",
            Self::SubscriptionRenewed => "subscription.renewed",
            Self::PaymentLinkPaid => "payment_link.paid",
            Self::PaymentUnknown => "payment.unknown",
        }
    }
}

fn event_names(events: &[WebhookEvent]) -> Vec<String> {
    events.iter().map(|e| e.name().to_owned()).collect()
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreateEndpointRequest {
    #[oai(validator(max_length = 2048))]
    pub url: String,
    /// HMAC signing secret (min 16 chars). A Standard Webhooks `whsec_…` secret is used as the
    /// base64 key it holds; any other as its UTF-8 bytes.
    #[oai(validator(min_length = 16, max_length = 256))]
    pub secret: String,
    #[oai(validator(min_items = 1, max_items = 16))]
    pub events: Vec<WebhookEvent>,
    /// Defaults to true.
    pub is_active: Option<bool>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UpdateEndpointRequest {
    #[oai(validator(max_length = 2048))]
    pub url: Option<String>,
    #[oai(validator(min_length = 16, max_length = 256))]
    pub secret: Option<String>,
    #[oai(validator(min_items = 1, max_items = 16))]
    pub events: Option<Vec<WebhookEvent>>,
    pub is_active: Option<bool>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct EndpointView {
    pub id: String,
    pub user_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub is_active: bool,
    /// The secret's last characters; the secret itself is never returned.
    pub secret_hint: String,
    /// Why Ultra disabled the endpoint, when it did.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Set while the endpoint fails without a success; it is disabled once this is older than
    /// the configured window.
    pub failing_since: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub last_failure_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<webhook_endpoints::Model> for EndpointView {
    fn from(endpoint: webhook_endpoints::Model) -> Self {
        let events = endpoint
            .events
            .as_array()
            .map(|events| events.iter().filter_map(|e| e.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        Self {
            id: endpoint.id,
            user_id: endpoint.user_id,
            url: endpoint.url,
            events,
            is_active: endpoint.is_active,
            secret_hint: endpoint.secret_hint,
            disabled_reason: endpoint.disabled_reason,
            disabled_at: endpoint.disabled_at,
            failing_since: endpoint.failing_since,
            last_success_at: endpoint.last_success_at,
            last_failure_at: endpoint.last_failure_at,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case", rename = "WebhookDeliveryStatus")]
pub enum Status {
    Pending,
    Succeeded,
    DeadLettered,
    Cancelled,
}

impl From<DeliveryStatus> for Status {
    fn from(status: DeliveryStatus) -> Self {
        match status {
            DeliveryStatus::Pending => Self::Pending,
            DeliveryStatus::Succeeded => Self::Succeeded,
            DeliveryStatus::DeadLettered => Self::DeadLettered,
            DeliveryStatus::Cancelled => Self::Cancelled,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "WebhookDeliveryTrigger")]
pub enum Trigger {
    Event,
    Retry,
    Replay,
}

impl From<DeliveryTrigger> for Trigger {
    fn from(trigger: DeliveryTrigger) -> Self {
        match trigger {
            DeliveryTrigger::Event => Self::Event,
            DeliveryTrigger::Retry => Self::Retry,
            DeliveryTrigger::Replay => Self::Replay,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    pub endpoint_id: String,
    pub merchant_id: String,
    /// Also the `webhook-id` header of every attempt, retry and replay of this event.
    pub event_id: String,
    pub event: String,
    pub status: Status,
    /// True once delivered; false once it failed (dead-lettered, cancelled, or pending after a
    /// failed attempt); absent before its first attempt.
    pub success: Option<bool>,
    pub dlq: bool,
    pub trigger: Trigger,
    /// The delivery this one retries or replays.
    pub source_delivery_id: Option<String>,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub dead_lettered_at: Option<DateTime<Utc>>,
    pub replayed_at: Option<DateTime<Utc>>,
    /// The delivery that replayed this one.
    pub replayed_by: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<webhook_deliveries::Model> for DeliveryView {
    fn from(delivery: webhook_deliveries::Model) -> Self {
        let success = match delivery.status {
            DeliveryStatus::Succeeded => Some(true),
            DeliveryStatus::DeadLettered | DeliveryStatus::Cancelled => Some(false),
            DeliveryStatus::Pending => (delivery.attempts > 0).then_some(false),
        };
        Self {
            success,
            dlq: delivery.status == DeliveryStatus::DeadLettered,
            status: delivery.status.into(),
            trigger: delivery.trigger.into(),
            id: delivery.id,
            endpoint_id: delivery.endpoint_id,
            merchant_id: delivery.merchant_id,
            event_id: delivery.event_id,
            event: delivery.event_type,
            source_delivery_id: delivery.source_delivery_id,
            attempts: delivery.attempts,
            next_attempt_at: delivery.next_attempt_at,
            last_status_code: delivery.last_status_code,
            last_error: delivery.last_error,
            last_attempt_at: delivery.last_attempt_at,
            delivered_at: delivery.delivered_at,
            dead_lettered_at: delivery.dead_lettered_at,
            replayed_at: delivery.replayed_at,
            replayed_by: delivery.replayed_by,
            created_at: delivery.created_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AttemptView {
    pub attempt: i32,
    /// Absent when no response came (timeout, refused connection, blocked address).
    pub status_code: Option<i32>,
    pub latency_ms: i64,
    pub error: Option<String>,
    /// The first 2 KiB of the response body.
    pub response_body: Option<String>,
    pub started_at: DateTime<Utc>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct DeliveryDetail {
    #[oai(flatten)]
    pub delivery: DeliveryView,
    pub attempt_log: Vec<AttemptView>,
}

#[derive(Object)]
pub struct Replayed {
    /// The dead-lettered delivery, now marked replayed.
    pub original: DeliveryView,
    /// The new delivery.
    pub delivery: DeliveryView,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct BulkReplayRequest {
    #[oai(validator(min_items = 1, max_items = 100))]
    pub ids: Vec<String>,
    /// Report what would be replayed without replaying anything.
    pub dry_run: Option<bool>,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case", rename = "BulkReplayOutcome")]
pub enum Outcome {
    Replayed,
    WouldReplay,
    Skipped,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct BulkReplayItem {
    pub id: String,
    pub outcome: Outcome,
    /// The new delivery, for a replayed id.
    pub delivery_id: Option<String>,
    /// Why an id was skipped: `not_found`, `not_dead_lettered`, `already_replayed`,
    /// `endpoint_deleted` or `endpoint_inactive`.
    pub code: Option<String>,
    pub reason: Option<String>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct BulkReplayResult {
    pub dry_run: bool,
    /// Replayed, or that would be in a dry run.
    pub replayed: u32,
    pub skipped: u32,
    pub results: Vec<BulkReplayItem>,
}

/// The endpoint `id` if the caller may see it; another merchant's is a 404.
async fn visible_endpoint(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> ApiResult<webhook_endpoints::Model> {
    webhook_endpoints::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|endpoint| principal.may_see(&endpoint.user_id))
        .ok_or_else(|| ApiError::not_found("webhook endpoint"))
}

async fn visible_delivery(
    db: &impl ConnectionTrait,
    principal: &Principal,
    id: &str,
) -> ApiResult<webhook_deliveries::Model> {
    webhook_deliveries::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|delivery| principal.may_see(&delivery.merchant_id))
        .ok_or_else(|| ApiError::not_found("webhook delivery"))
}

async fn endpoint_of(
    db: &impl ConnectionTrait,
    delivery: &webhook_deliveries::Model,
) -> ApiResult<Option<webhook_endpoints::Model>> {
    Ok(webhook_endpoints::Entity::find_by_id(&delivery.endpoint_id).one(db).await?)
}

/// Deliveries the caller may see: a merchant's own, everyone's for an admin.
fn deliveries_of(principal: &Principal) -> ApiResult<Select<webhook_deliveries::Entity>> {
    let select = webhook_deliveries::Entity::find();
    if principal.is_admin() {
        return Ok(select);
    }
    Ok(select.filter(webhook_deliveries::Column::MerchantId.eq(&principal.merchant()?.id)))
}

/// The URL checks resolve names, so they run before the transaction opens.
async fn checked_url(state: &AppState, url: &str) -> ApiResult<String> {
    let settings = state.runtime.current().await?;
    Ok(endpoints::check_url(url, &settings.webhooks).await?)
}

pub struct WebhooksApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// List webhook endpoints
    ///
    /// A merchant's own endpoints; admins see every merchant's and filter with `userId`.
    #[oai(path = "/webhooks/endpoints", method = "get", operation_id = "listWebhookEndpoints")]
    async fn list_endpoints(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// Filter by owner (admin only)
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
    ) -> ApiResult<Reply<Vec<EndpointView>>> {
        let principal = auth.0;
        let mut select = webhook_endpoints::Entity::find();
        if let Some(id) = principal.merchant_scope(user_id.0, "userId")? {
            select = select.filter(webhook_endpoints::Column::UserId.eq(id));
        }
        let request = PageRequest::from_query(page.0, per_page.0, None, None, None)?;
        let (rows, meta) =
            paginate(&state.db, select, webhook_endpoints::Column::Id, |e| &e.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(EndpointView::from).collect(), meta))
    }

    /// Create a webhook endpoint
    ///
    /// The URL must use https and reach only public addresses (runtime config
    /// `webhooks.allowPrivateUrls` lifts both, for development). Idempotent with
    /// `Idempotency-Key`.
    #[oai(path = "/webhooks/endpoints", method = "post", operation_id = "createWebhookEndpoint")]
    async fn create_endpoint(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateEndpointRequest>,
    ) -> ApiResult<Reply<EndpointView, 201>> {
        let principal = auth.0;
        let owner = principal.merchant()?.id.clone();
        let request = body.value;
        let url = checked_url(&state, &request.url).await?;
        let actor = actor(req, Some(&principal.user.id));
        let sealer = state.sealer.clone();
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/webhooks/endpoints",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let events = event_names(&request.events);
                    let new = NewEndpoint {
                        owner_id: &owner,
                        url,
                        secret: &request.secret,
                        events: &events,
                        is_active: request.is_active.unwrap_or(true),
                    };
                    let endpoint = endpoints::create(txn, &sealer, &actor, new).await?;
                    Ok(Reply::new(endpoint.into()))
                })
            },
        )
        .await
    }

    /// Update a webhook endpoint
    ///
    /// Changes any of url, secret, events and isActive. Turning a disabled endpoint back on
    /// clears why it was disabled.
    #[oai(path = "/webhooks/endpoints/:id", method = "patch", operation_id = "updateWebhookEndpoint")]
    async fn update_endpoint(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: JsonBody<UpdateEndpointRequest>,
    ) -> ApiResult<Reply<EndpointView>> {
        let principal = auth.0;
        let endpoint = visible_endpoint(&state.db, &principal, &id.0).await?;
        let request = body.value;
        let url = match request.url.as_deref() {
            Some(url) => Some(checked_url(&state, url).await?),
            None => None,
        };
        let changes = EndpointChanges {
            url,
            secret: request.secret,
            events: request.events.as_deref().map(event_names),
            is_active: request.is_active,
        };
        let actor = actor(req, Some(&principal.user.id));
        let sealer = state.sealer.clone();
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "PATCH /api/v1/webhooks/endpoints/{id}",
                fingerprint: &format!("{}:{}", endpoint.id, body.fingerprint),
            },
            move |txn| {
                Box::pin(async move {
                    let endpoint = endpoints::update(txn, &sealer, &actor, endpoint, changes).await?;
                    Ok(Reply::new(endpoint.into()))
                })
            },
        )
        .await
    }

    /// Delete a webhook endpoint
    ///
    /// Its deliveries stay listed; those still pending are cancelled.
    #[oai(path = "/webhooks/endpoints/:id", method = "delete", operation_id = "deleteWebhookEndpoint")]
    async fn delete_endpoint(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<Deleted>> {
        let principal = auth.0;
        let endpoint = visible_endpoint(&state.db, &principal, &id.0).await?;
        let actor = actor(req, Some(&principal.user.id));
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        endpoints::delete(&txn, &actor, &endpoint).await?;
        txn.commit().await?;
        Ok(Reply::new(Deleted { deleted: true }))
    }

    /// List webhook deliveries
    ///
    /// Newest first. `success=false` lists deliveries that have failed at least once and not
    /// succeeded since; `dlq=true` the dead-lettered ones.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/webhooks/deliveries", method = "get", operation_id = "listWebhookDeliveries")]
    async fn list_deliveries(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        /// `cursor` switches to cursor pagination.
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
        #[oai(name = "endpointId")] endpoint_id: Query<Option<String>>,
        event: Query<Option<WebhookEvent>>,
        success: Query<Option<bool>>,
        /// Filter dead-lettered deliveries
        dlq: Query<Option<bool>>,
    ) -> ApiResult<Reply<Vec<DeliveryView>>> {
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let mut select = deliveries_of(&auth.0)?;
        select = filter_common(select, endpoint_id.0, event.0);
        if let Some(success) = success.0 {
            let failed = Condition::any()
                .add(
                    webhook_deliveries::Column::Status
                        .is_in([DeliveryStatus::DeadLettered, DeliveryStatus::Cancelled]),
                )
                .add(
                    Condition::all()
                        .add(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
                        .add(webhook_deliveries::Column::Attempts.gt(0)),
                );
            select = if success {
                select.filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Succeeded))
            } else {
                select.filter(failed)
            };
        }
        if let Some(dlq) = dlq.0 {
            select = if dlq {
                select.filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::DeadLettered))
            } else {
                select.filter(webhook_deliveries::Column::Status.ne(DeliveryStatus::DeadLettered))
            };
        }
        let (rows, meta) =
            paginate(&state.db, select, webhook_deliveries::Column::Id, |d| &d.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(DeliveryView::from).collect(), meta))
    }

    /// Get a webhook delivery with its attempts
    #[oai(path = "/webhooks/deliveries/:id", method = "get", operation_id = "getWebhookDelivery")]
    async fn get_delivery(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<DeliveryDetail>> {
        let delivery = visible_delivery(&state.db, &auth.0, &id.0).await?;
        let attempts = webhook_attempts::Entity::find()
            .filter(webhook_attempts::Column::DeliveryId.eq(&delivery.id))
            .order_by_asc(webhook_attempts::Column::Attempt)
            .all(&state.db)
            .await?;
        let attempt_log = attempts
            .into_iter()
            .map(|a| AttemptView {
                attempt: a.attempt,
                status_code: a.status_code,
                latency_ms: a.latency_ms,
                error: a.error,
                response_body: a.response_body,
                started_at: a.started_at,
            })
            .collect();
        Ok(Reply::new(DeliveryDetail { delivery: delivery.into(), attempt_log }))
    }

    /// Retry a webhook delivery
    ///
    /// Creates a new delivery attempt for the given delivery: a new delivery of the same event
    /// (same `webhook-id`) to the same endpoint, sent now. The original keeps its history. A
    /// delivery still being attempted cannot be retried (409).
    #[oai(path = "/webhooks/deliveries/:id/retry", method = "post", operation_id = "retryWebhookDelivery")]
    async fn retry_delivery(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Reply<DeliveryView, 202>> {
        let principal = auth.0;
        let delivery = visible_delivery(&state.db, &principal, &id.0).await?;
        let actor = actor(req, Some(&principal.user.id));
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/webhooks/deliveries/{id}/retry",
                fingerprint: &delivery.id.clone(),
            },
            move |txn| {
                Box::pin(async move {
                    let endpoint = endpoint_of(txn, &delivery).await?;
                    let retried = deliveries::retry(txn, &actor, &delivery, endpoint.as_ref()).await?;
                    Ok(Reply::new(retried.into()))
                })
            },
        )
        .await
    }

    /// List dead-letter queue entries
    ///
    /// Returns deliveries that have been dead-lettered (exhausted all retries) and not yet
    /// replayed.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/webhooks/dlq", method = "get", operation_id = "listWebhookDlq")]
    async fn list_dlq(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
        #[oai(name = "endpointId")] endpoint_id: Query<Option<String>>,
        event: Query<Option<WebhookEvent>>,
    ) -> ApiResult<Reply<Vec<DeliveryView>>> {
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let select = filter_common(deliveries_of(&auth.0)?, endpoint_id.0, event.0)
            .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::DeadLettered))
            .filter(webhook_deliveries::Column::ReplayedAt.is_null());
        let (rows, meta) =
            paginate(&state.db, select, webhook_deliveries::Column::Id, |d| &d.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(DeliveryView::from).collect(), meta))
    }

    /// Replay a DLQ delivery
    ///
    /// Re-dispatches a dead-lettered delivery. The original delivery is marked replayed and a
    /// new delivery is created. Admin only.
    #[oai(path = "/webhooks/dlq/:id/replay", method = "post", operation_id = "replayWebhookDelivery")]
    async fn replay(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
    ) -> ApiResult<Reply<Replayed, 202>> {
        let principal = auth.0;
        principal.require_admin()?;
        let delivery = visible_delivery(&state.db, &principal, &id.0).await?;
        let actor = actor(req, Some(&principal.user.id));
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/webhooks/dlq/{id}/replay",
                fingerprint: &delivery.id.clone(),
            },
            move |txn| {
                Box::pin(async move {
                    let endpoint = endpoint_of(txn, &delivery).await?;
                    let replayed = deliveries::replay(txn, &actor, &delivery, endpoint.as_ref()).await?;
                    let original = webhook_deliveries::Entity::find_by_id(&delivery.id)
                        .one(txn)
                        .await?
                        .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
                    Ok(Reply::new(Replayed { original: original.into(), delivery: replayed.into() }))
                })
            },
        )
        .await
    }

    /// Bulk replay DLQ deliveries
    ///
    /// Replays multiple dead-lettered deliveries at once. Supports dry-run mode. Admin only,
    /// requires Pro+ tier minimum. Each id is reported as replayed (or, in a dry run,
    /// would_replay) or skipped with the reason.
    #[oai(path = "/webhooks/dlq/bulk-replay", method = "post", operation_id = "bulkReplayWebhookDeliveries")]
    async fn bulk_replay(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
        body: JsonBody<BulkReplayRequest>,
    ) -> ApiResult<Reply<BulkReplayResult>> {
        let principal = auth.0;
        principal.require_admin()?;
        require_feature(&principal.user, Feature::DlqBulkReplay)?;
        let request = body.value;
        if request.ids.is_empty() || request.ids.len() > MAX_BULK_REPLAY {
            return Err(ApiError::validation("ids", format!("must hold 1 to {MAX_BULK_REPLAY} ids")));
        }
        let mut seen = BTreeSet::new();
        let ids: Vec<String> = request.ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        let dry_run = request.dry_run.unwrap_or(false);
        let actor = actor(req, Some(&principal.user.id));
        idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/webhooks/dlq/bulk-replay",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let mut results = Vec::with_capacity(ids.len());
                    for id in ids {
                        let Some(delivery) = webhook_deliveries::Entity::find_by_id(&id).one(txn).await?
                        else {
                            results.push(skipped(id, "not_found", "no such delivery".to_owned()));
                            continue;
                        };
                        let endpoint = endpoint_of(txn, &delivery).await?;
                        let item =
                            if let Some(blocker) = deliveries::replay_blocker(&delivery, endpoint.as_ref()) {
                                let ultra_domain::DomainError::Conflict { code, message } = blocker else {
                                    return Err(blocker.into());
                                };
                                skipped(id, code, message)
                            } else if dry_run {
                                BulkReplayItem {
                                    id,
                                    outcome: Outcome::WouldReplay,
                                    delivery_id: None,
                                    code: None,
                                    reason: None,
                                }
                            } else {
                                let replayed =
                                    deliveries::replay(txn, &actor, &delivery, endpoint.as_ref()).await?;
                                BulkReplayItem {
                                    id,
                                    outcome: Outcome::Replayed,
                                    delivery_id: Some(replayed.id),
                                    code: None,
                                    reason: None,
                                }
                            };
                        results.push(item);
                    }
                    let skipped_count = results.iter().filter(|r| r.outcome == Outcome::Skipped).count();
                    Ok(Reply::new(BulkReplayResult {
                        dry_run,
                        replayed: u32::try_from(results.len() - skipped_count).unwrap_or(u32::MAX),
                        skipped: u32::try_from(skipped_count).unwrap_or(u32::MAX),
                        results,
                    }))
                })
            },
        )
        .await
    }
}

fn skipped(id: String, code: &str, reason: String) -> BulkReplayItem {
    BulkReplayItem {
        id,
        outcome: Outcome::Skipped,
        delivery_id: None,
        code: Some(code.to_owned()),
        reason: Some(reason),
    }
}

fn filter_common(
    select: Select<webhook_deliveries::Entity>,
    endpoint_id: Option<String>,
    event: Option<WebhookEvent>,
) -> Select<webhook_deliveries::Entity> {
    let mut select = select;
    if let Some(endpoint_id) = endpoint_id {
        select = select.filter(webhook_deliveries::Column::EndpointId.eq(endpoint_id));
    }
    if let Some(event) = event {
        select = select.filter(webhook_deliveries::Column::EventType.eq(event.name()));
    }
    select
}
