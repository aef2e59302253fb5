//! Deliveries: created for each event and subscribed endpoint, updated by each attempt, and
//! repeated by retries and replays as new rows that point at the one they repeat.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use serde_json::json;
use ultra_entity::{
    events, webhook_attempts,
    webhook_deliveries::{self, DeliveryStatus, DeliveryTrigger},
    webhook_endpoints,
};

use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    backoff, ids,
    runtime_config::WebhookSettings,
};

/// Response bodies are kept up to this many bytes.
pub const MAX_RESPONSE_BODY: usize = 2048;

fn new_delivery(
    endpoint_id: &str,
    merchant_id: &str,
    event_id: &str,
    event_type: &str,
    trigger: DeliveryTrigger,
    source: Option<&str>,
) -> webhook_deliveries::ActiveModel {
    let now = Utc::now();
    webhook_deliveries::ActiveModel {
        id: Set(ids::new_id("whd")),
        endpoint_id: Set(endpoint_id.to_owned()),
        merchant_id: Set(merchant_id.to_owned()),
        event_id: Set(event_id.to_owned()),
        event_type: Set(event_type.to_owned()),
        status: Set(DeliveryStatus::Pending),
        trigger: Set(trigger),
        source_delivery_id: Set(source.map(str::to_owned)),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        claimed_until: Set(None),
        last_status_code: Set(None),
        last_error: Set(None),
        last_attempt_at: Set(None),
        delivered_at: Set(None),
        dead_lettered_at: Set(None),
        replayed_at: Set(None),
        replayed_by: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Creates one delivery per active endpoint of the event's merchant that subscribes to it, in
/// the transaction that records the event: an event is never recorded without its deliveries.
pub async fn fan_out(db: &impl ConnectionTrait, event: &events::Model) -> DomainResult<usize> {
    let endpoints = webhook_endpoints::Entity::find()
        .filter(webhook_endpoints::Column::UserId.eq(&event.merchant_id))
        .filter(webhook_endpoints::Column::IsActive.eq(true))
        .all(db)
        .await?;
    let rows: Vec<_> = endpoints
        .iter()
        .filter(|endpoint| endpoint.subscribes_to(&event.event_type))
        .map(|endpoint| {
            new_delivery(
                &endpoint.id,
                &event.merchant_id,
                &event.id,
                &event.event_type,
                DeliveryTrigger::Event,
                None,
            )
        })
        .collect();
    let count = rows.len();
    if count > 0 {
        webhook_deliveries::Entity::insert_many(rows).exec_without_returning(db).await?;
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            // Delivered at commit, once per transaction however many events it records.
            db.execute_unprepared(&format!("NOTIFY {}", super::DUE_CHANNEL)).await?;
        }
    }
    Ok(count)
}

/// What one POST of a delivery came to.
pub struct AttemptOutcome {
    pub started_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub latency: Duration,
    pub error: Option<String>,
    pub response_body: Option<String>,
    /// The receiver's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
}

impl AttemptOutcome {
    pub fn succeeded(&self) -> bool {
        self.error.is_none() && self.status_code.is_some_and(|code| (200..300).contains(&code))
    }

    /// One line saying what went wrong, for the delivery and the endpoint.
    pub fn problem(&self) -> Option<String> {
        if self.succeeded() {
            return None;
        }
        Some(match (&self.error, self.status_code) {
            (Some(error), _) => error.clone(),
            (None, Some(code)) if (300..400).contains(&code) => {
                format!("the endpoint answered HTTP {code}; redirects are not followed")
            }
            (None, Some(code)) => format!("the endpoint answered HTTP {code}"),
            (None, None) => "no response".to_owned(),
        })
    }
}

/// When a failed delivery is tried again, or `None` once its attempts are spent: the
/// receiver's `Retry-After` up to its cap, else exponential backoff with jitter.
fn next_attempt_at(
    attempt: i32,
    outcome: &AttemptOutcome,
    settings: &WebhookSettings,
) -> Option<DateTime<Utc>> {
    let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
    if attempt >= settings.max_attempts.max(1) {
        return None;
    }
    let delay = match outcome.retry_after {
        Some(asked) => asked.min(Duration::from_secs(settings.retry_after_max_seconds)),
        None => backoff::delay(
            Duration::from_secs(settings.backoff_base_seconds.max(1)),
            Duration::from_secs(settings.backoff_max_seconds.max(settings.backoff_base_seconds).max(1)),
            attempt,
        ),
    };
    Some(Utc::now() + chrono::Duration::from_std(delay).unwrap_or_else(|_| chrono::Duration::hours(12)))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// What recording an attempt did to its delivery.
pub struct Recorded {
    pub delivery_id: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<String>,
}

/// Records a batch of one endpoint's attempts and their consequences in `db` (the caller's
/// transaction, one commit for the batch): each delivery's new state, every attempt, and the
/// endpoint's health once, disabling an endpoint that has failed without a success for the
/// configured window. A delivery no longer pending (its endpoint was deleted meanwhile) is
/// left out of the answer.
pub async fn record_attempts(
    db: &impl ConnectionTrait,
    endpoint: &webhook_endpoints::Model,
    attempts: &[(&webhook_deliveries::Model, &AttemptOutcome)],
    settings: &WebhookSettings,
) -> DomainResult<Vec<Recorded>> {
    if attempts.is_empty() {
        return Ok(Vec::new());
    }
    let now = Utc::now();
    let rows = attempts.iter().map(|(delivery, outcome)| webhook_attempts::ActiveModel {
        id: Set(ids::new_id("wha")),
        delivery_id: Set(delivery.id.clone()),
        attempt: Set(delivery.attempts + 1),
        status_code: Set(outcome.status_code.map(i32::from)),
        latency_ms: Set(i64::try_from(outcome.latency.as_millis()).unwrap_or(i64::MAX)),
        error: Set(outcome.problem().map(|p| truncate(&p, 500))),
        response_body: Set(outcome.response_body.as_deref().map(|b| truncate(b, MAX_RESPONSE_BODY))),
        started_at: Set(outcome.started_at),
    });
    webhook_attempts::Entity::insert_many(rows).exec_without_returning(db).await?;

    let mut recorded = Vec::with_capacity(attempts.len());
    let mut last_problem = None;
    for (delivery, outcome) in attempts {
        let attempt = delivery.attempts + 1;
        let problem = outcome.problem().map(|p| truncate(&p, 500));
        let (status, next_attempt_at) = if outcome.succeeded() {
            (DeliveryStatus::Succeeded, None)
        } else {
            match next_attempt_at(attempt, outcome, settings) {
                Some(at) => (DeliveryStatus::Pending, Some(at)),
                None => (DeliveryStatus::DeadLettered, None),
            }
        };
        let mut update = webhook_deliveries::Entity::update_many()
            .col_expr(webhook_deliveries::Column::Attempts, Expr::value(attempt))
            .col_expr(webhook_deliveries::Column::Status, Expr::value(status))
            .col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(next_attempt_at))
            .col_expr(
                webhook_deliveries::Column::LastStatusCode,
                Expr::value(outcome.status_code.map(i32::from)),
            )
            .col_expr(webhook_deliveries::Column::LastError, Expr::value(problem.clone()))
            .col_expr(webhook_deliveries::Column::LastAttemptAt, Expr::value(outcome.started_at))
            .col_expr(webhook_deliveries::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(webhook_deliveries::Column::UpdatedAt, Expr::value(now));
        update = match status {
            DeliveryStatus::Succeeded => {
                update.col_expr(webhook_deliveries::Column::DeliveredAt, Expr::value(now))
            }
            DeliveryStatus::DeadLettered => {
                update.col_expr(webhook_deliveries::Column::DeadLetteredAt, Expr::value(now))
            }
            _ => update,
        };
        let updated = update
            .filter(webhook_deliveries::Column::Id.eq(&delivery.id))
            .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
            .exec(db)
            .await?;
        if updated.rows_affected == 0 {
            continue;
        }
        if problem.is_some() {
            last_problem.clone_from(&problem);
        }
        recorded.push(Recorded {
            delivery_id: delivery.id.clone(),
            status,
            attempts: attempt,
            next_attempt_at,
            error: problem,
        });
    }

    // The endpoint's health, once per batch: the last attempt decides whether it is failing.
    // A healthy endpoint's last success is refreshed at most once a second, so a busy
    // endpoint's row is not rewritten by every batch.
    let last_succeeded = attempts.last().is_some_and(|(_, outcome)| outcome.succeeded());
    let fresh = endpoint.failing_since.is_none()
        && endpoint.last_success_at.is_some_and(|at| now - at < chrono::Duration::seconds(1));
    let endpoint_id = endpoint.id.as_str();
    if last_succeeded && !fresh {
        webhook_endpoints::Entity::update_many()
            .col_expr(webhook_endpoints::Column::LastSuccessAt, Expr::value(now))
            .col_expr(webhook_endpoints::Column::FailingSince, Expr::value(Option::<DateTime<Utc>>::None))
            .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
            .exec(db)
            .await?;
    } else if let (false, Some(problem)) = (last_succeeded, last_problem) {
        record_endpoint_failure(db, endpoint_id, &problem, settings).await?;
    }
    Ok(recorded)
}

async fn record_endpoint_failure(
    db: &impl ConnectionTrait,
    endpoint_id: &str,
    problem: &str,
    settings: &WebhookSettings,
) -> DomainResult<()> {
    let now = Utc::now();
    webhook_endpoints::Entity::update_many()
        .col_expr(
            webhook_endpoints::Column::FailingSince,
            sea_orm::sea_query::ExprTrait::if_null(Expr::col(webhook_endpoints::Column::FailingSince), now),
        )
        .col_expr(webhook_endpoints::Column::LastFailureAt, Expr::value(now))
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .exec(db)
        .await?;
    let window =
        chrono::Duration::seconds(i64::try_from(settings.disable_after_seconds).unwrap_or(i64::MAX / 2));
    let Some(endpoint) = webhook_endpoints::Entity::find_by_id(endpoint_id).one(db).await? else {
        return Ok(());
    };
    let Some(since) = endpoint.failing_since.filter(|since| *since + window <= now) else {
        return Ok(());
    };
    if !endpoint.is_active {
        return Ok(());
    }
    let reason = truncate(
        &format!(
            "disabled after failing without a success since {}; last error: {problem}",
            since.to_rfc3339()
        ),
        500,
    );
    webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::IsActive, Expr::value(false))
        .col_expr(webhook_endpoints::Column::DisabledReason, Expr::value(reason.clone()))
        .col_expr(webhook_endpoints::Column::DisabledAt, Expr::value(now))
        .col_expr(webhook_endpoints::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .exec(db)
        .await?;
    tracing::warn!(endpoint_id, %reason, "webhook endpoint disabled");
    audit::record(
        db,
        &Actor::default(),
        AuditEvent {
            action: "webhook_endpoint.disabled",
            entity_type: "webhook_endpoint",
            entity_id: Some(endpoint_id),
            details: Some(json!({ "reason": reason })),
        },
    )
    .await
}

/// Dead-letters the pending deliveries of an endpoint that is no longer active, so they can
/// be replayed once it is turned back on.
pub async fn dead_letter_inactive(
    db: &impl ConnectionTrait,
    endpoint: &webhook_endpoints::Model,
) -> DomainResult<u64> {
    let now = Utc::now();
    let reason = endpoint.disabled_reason.clone().unwrap_or_else(|| "the endpoint is inactive".to_owned());
    let updated = webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::Status, Expr::value(DeliveryStatus::DeadLettered))
        .col_expr(webhook_deliveries::Column::DeadLetteredAt, Expr::value(now))
        .col_expr(webhook_deliveries::Column::LastError, Expr::value(truncate(&reason, 500)))
        .col_expr(webhook_deliveries::Column::NextAttemptAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(webhook_deliveries::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(webhook_deliveries::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_deliveries::Column::EndpointId.eq(&endpoint.id))
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .exec(db)
        .await?;
    Ok(updated.rows_affected)
}

/// Why `delivery` cannot be sent again to `endpoint` now, if it cannot.
fn resend_blocker(
    delivery: &webhook_deliveries::Model,
    endpoint: Option<&webhook_endpoints::Model>,
) -> Option<DomainError> {
    let conflict = |code, message: &str| Some(DomainError::Conflict { code, message: message.to_owned() });
    match endpoint {
        None => conflict("endpoint_deleted", "the delivery's endpoint has been deleted"),
        Some(endpoint) if !endpoint.is_active => {
            conflict("endpoint_inactive", "the delivery's endpoint is inactive; turn it on first")
        }
        Some(_) if delivery.status == DeliveryStatus::Pending => conflict(
            "delivery_pending",
            "the delivery is still being attempted; retry it once it has succeeded or been dead-lettered",
        ),
        Some(_) => None,
    }
}

/// Why a replay of `delivery` would be refused, or `None` if it would go ahead.
pub fn replay_blocker(
    delivery: &webhook_deliveries::Model,
    endpoint: Option<&webhook_endpoints::Model>,
) -> Option<DomainError> {
    if delivery.status != DeliveryStatus::DeadLettered {
        return Some(DomainError::Conflict {
            code: "not_dead_lettered",
            message: "only dead-lettered deliveries can be replayed".to_owned(),
        });
    }
    if delivery.replayed_at.is_some() {
        return Some(DomainError::Conflict {
            code: "already_replayed",
            message: format!(
                "the delivery was already replayed as {}",
                delivery.replayed_by.as_deref().unwrap_or("another delivery")
            ),
        });
    }
    resend_blocker(delivery, endpoint)
}

/// A new delivery of the same event to the same endpoint, due now; the original keeps its
/// history.
pub async fn retry(
    db: &impl ConnectionTrait,
    actor: &Actor,
    delivery: &webhook_deliveries::Model,
    endpoint: Option<&webhook_endpoints::Model>,
) -> DomainResult<webhook_deliveries::Model> {
    if let Some(blocker) = resend_blocker(delivery, endpoint) {
        return Err(blocker);
    }
    let retried = resend(db, delivery, DeliveryTrigger::Retry).await?;
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "webhook_delivery.retried",
            entity_type: "webhook_delivery",
            entity_id: Some(&delivery.id),
            details: Some(json!({ "newDeliveryId": retried.id })),
        },
    )
    .await?;
    Ok(retried)
}

/// Replays a dead-lettered delivery: the original is marked replayed (once, even under
/// concurrent replays) and a new delivery is created.
pub async fn replay(
    db: &impl ConnectionTrait,
    actor: &Actor,
    delivery: &webhook_deliveries::Model,
    endpoint: Option<&webhook_endpoints::Model>,
) -> DomainResult<webhook_deliveries::Model> {
    if let Some(blocker) = replay_blocker(delivery, endpoint) {
        return Err(blocker);
    }
    let replayed = resend(db, delivery, DeliveryTrigger::Replay).await?;
    let now = Utc::now();
    let marked = webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::ReplayedAt, Expr::value(now))
        .col_expr(webhook_deliveries::Column::ReplayedBy, Expr::value(replayed.id.clone()))
        .col_expr(webhook_deliveries::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_deliveries::Column::Id.eq(&delivery.id))
        .filter(webhook_deliveries::Column::ReplayedAt.is_null())
        .exec(db)
        .await?;
    if marked.rows_affected == 0 {
        return Err(DomainError::Conflict {
            code: "already_replayed",
            message: "the delivery was replayed by a concurrent request".to_owned(),
        });
    }
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "webhook_delivery.replayed",
            entity_type: "webhook_delivery",
            entity_id: Some(&delivery.id),
            details: Some(json!({ "newDeliveryId": replayed.id })),
        },
    )
    .await?;
    Ok(replayed)
}

async fn resend(
    db: &impl ConnectionTrait,
    delivery: &webhook_deliveries::Model,
    trigger: DeliveryTrigger,
) -> DomainResult<webhook_deliveries::Model> {
    Ok(new_delivery(
        &delivery.endpoint_id,
        &delivery.merchant_id,
        &delivery.event_id,
        &delivery.event_type,
        trigger,
        Some(&delivery.id),
    )
    .insert(db)
    .await?)
}
