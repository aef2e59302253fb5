//! Webhook delivery. The scheduler's dispatcher finds endpoints with deliveries due and hands
//! each one lane to a `webhooks.drain` job, which sends that endpoint's due deliveries a few
//! at a time and records every attempt. Deliveries, their schedule and the lanes are rows, so
//! a killed worker or a flushed Redis loses none: claims and leases lapse and the dispatcher
//! starts the lane again.

mod sender;

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream::FuturesUnordered};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::{
    runtime_config::{RuntimeConfig, WebhookSettings},
    webhooks::{
        self,
        deliveries::{self, AttemptOutcome},
        endpoints, lanes,
    },
};
use ultra_entity::{events, webhook_deliveries, webhook_endpoints};

use sender::Signed;
pub use sender::WebhookSender;

use crate::{
    Job, JobContext, JobError, NewJob, QueueClient,
    enqueue::{dispatch_all, enqueue},
    job::Completed,
};

/// A drain gives its lane back after this long, so lanes take turns on the worker slots.
const DRAIN_BUDGET: Duration = Duration::from_secs(20);
/// Lanes the dispatcher starts per round.
const DISPATCH_ROUND: u64 = 200;
/// A drain claims this many times `endpointConcurrency` deliveries at once and keeps that many
/// in flight until they are sent, so a fast endpoint's claims, event reads and attempt records
/// are shared by many deliveries.
const ROUND_WAVES: usize = 8;
/// Time kept between the end of the last send a round starts and the end of its claims.
const CLAIM_MARGIN: Duration = Duration::from_secs(1);

/// How long a lane lease or a delivery claim lasts: one attempt's timeout and some margin.
fn lease(settings: &WebhookSettings) -> Duration {
    settings.timeout() + Duration::from_secs(10)
}

/// Sends one endpoint's due deliveries while holding its lane.
#[derive(Debug, Serialize, Deserialize)]
pub struct DrainEndpoint {
    pub endpoint_id: String,
    /// The lane lease token the dispatcher took for this drain.
    pub lane: String,
}

impl Job for DrainEndpoint {
    const KIND: &'static str = "webhooks.drain";
    const QUEUE: &'static str = "webhooks";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let settings = RuntimeConfig::load(&ctx.db).await?.webhooks;
        let lease = lease(&settings);
        let started = Instant::now();
        let mut attempts = 0usize;
        while started.elapsed() < DRAIN_BUDGET {
            let Some(endpoint) = lanes::hold(&ctx.db, &self.endpoint_id, &self.lane, lease).await? else {
                break;
            };
            if !endpoint.is_active {
                deliveries::dead_letter_inactive(&ctx.db, &endpoint).await?;
                break;
            }
            let concurrency = settings.endpoint_concurrency.max(1) as usize;
            let batch =
                lanes::claim_due(&ctx.db, &endpoint.id, (concurrency * ROUND_WAVES) as u64, lease).await?;
            if batch.is_empty() {
                break;
            }
            // No send starts so late that it could outlive the claims.
            let last_start = Instant::now() + lease.saturating_sub(settings.timeout() + CLAIM_MARGIN);
            let secret = endpoints::secret(&ctx.env.sealer, &endpoint)?;
            let ids: Vec<&str> = batch.iter().map(|delivery| delivery.event_id.as_str()).collect();
            let events: HashMap<String, events::Model> = events::Entity::find()
                .filter(events::Column::Id.is_in(ids))
                .all(&ctx.db)
                .await?
                .into_iter()
                .map(|event| (event.id.clone(), event))
                .collect();
            // Up to `concurrency` sends in flight until the batch is sent or it is too late to
            // start another.
            let mut next = 0;
            let mut in_flight = FuturesUnordered::new();
            let mut outcomes = Vec::with_capacity(batch.len());
            loop {
                while in_flight.len() < concurrency && next < batch.len() && Instant::now() < last_start {
                    let (index, delivery) = (next, &batch[next]);
                    let event = events.get(&delivery.event_id);
                    let (ctx, endpoint, secret, settings) = (&ctx, &endpoint, &secret, &settings);
                    in_flight.push(async move {
                        (index, attempt(ctx, endpoint, secret, delivery, event, settings).await)
                    });
                    next += 1;
                }
                let Some((index, outcome)) = in_flight.next().await else { break };
                outcomes.push((index, outcome?));
            }
            outcomes.sort_by_key(|(index, _)| *index);
            let sent: Vec<_> = outcomes.iter().map(|(index, outcome)| (&batch[*index], outcome)).collect();
            let unsent: Vec<&str> = batch
                .iter()
                .enumerate()
                .filter(|(index, _)| outcomes.binary_search_by_key(index, |(i, _)| *i).is_err())
                .map(|(_, delivery)| delivery.id.as_str())
                .collect();
            let txn = ultra_domain::db::begin_write(&ctx.db).await?;
            let recorded = deliveries::record_attempts(&txn, &endpoint, &sent, &settings).await?;
            lanes::unclaim(&txn, &unsent).await?;
            txn.commit().await?;
            report(&endpoint, &recorded);
            attempts += sent.len();
        }
        lanes::release(&ctx.db, &self.endpoint_id, &self.lane).await?;
        ctx.conclude(json!({ "attempts": attempts })).await
    }
}

/// Sends one delivery and says how it went.
async fn attempt(
    ctx: &JobContext,
    endpoint: &webhook_endpoints::Model,
    secret: &str,
    delivery: &webhook_deliveries::Model,
    event: Option<&events::Model>,
    settings: &WebhookSettings,
) -> Result<AttemptOutcome, JobError> {
    let event = event.ok_or_else(|| {
        JobError::Permanent(format!("event {} of delivery {} is gone", delivery.event_id, delivery.id))
    })?;
    let message = Signed { url: &endpoint.url, message_id: &event.id, secret, body: webhooks::body(event) };
    let outcome = ctx.env.webhooks.send(message, settings.timeout(), settings.allow_private_urls).await;
    let label = if outcome.succeeded() { "succeeded" } else { "failed" };
    metrics::counter!("webhook_attempts_total", "outcome" => label).increment(1);
    metrics::histogram!("webhook_attempt_duration_seconds", "outcome" => label)
        .record(outcome.latency.as_secs_f64());
    Ok(outcome)
}

/// Logs what a batch's failures came to.
fn report(endpoint: &webhook_endpoints::Model, recorded: &[deliveries::Recorded]) {
    for done in recorded {
        match done.status {
            webhook_deliveries::DeliveryStatus::DeadLettered => {
                metrics::counter!("webhook_dead_lettered_total").increment(1);
                tracing::warn!(delivery_id = %done.delivery_id, endpoint_id = %endpoint.id, error = ?done.error, "webhook delivery dead-lettered");
            }
            webhook_deliveries::DeliveryStatus::Pending => {
                tracing::info!(delivery_id = %done.delivery_id, attempt = done.attempts, next = ?done.next_attempt_at, error = ?done.error, "webhook attempt failed; retrying later");
            }
            _ => {}
        }
    }
}

/// Starts a drain for every endpoint that has deliveries due and no drain; returns how many.
pub async fn dispatch_waiting(db: &DatabaseConnection, queue: &QueueClient) -> Result<usize, JobError> {
    let waiting = lanes::waiting_endpoints(db, DISPATCH_ROUND).await?;
    if waiting.is_empty() {
        return Ok(0);
    }
    let lease = lease(&RuntimeConfig::load(db).await?.webhooks);
    let txn = ultra_domain::db::begin_write(db).await?;
    let mut started = Vec::new();
    for endpoint_id in waiting {
        let lane = ulid::Ulid::new().to_string();
        if lanes::acquire(&txn, &endpoint_id, &lane, lease).await? {
            let job = DrainEndpoint { endpoint_id: endpoint_id.clone(), lane };
            started.push(enqueue(&txn, NewJob::new(&job).resource("webhook_endpoints", endpoint_id)).await?);
        }
    }
    txn.commit().await?;
    dispatch_all(queue, &started).await;
    Ok(started.len())
}
