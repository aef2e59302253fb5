//! Refunds in live mode: sending them to the provider, and following up on those the provider
//! is still working on. (Simulation-mode refunds are finalised by the API at once.)

use chrono::{Duration as TimeDelta, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::{refunds, runtime_config::RuntimeConfig};
use ultra_entity::{
    payments as payment_rows,
    refunds::{self as refund_rows, RefundStatus},
};
use ultra_providers::{ProviderError, RefundRequest, RefundState};

use super::{adapters::adapter_for, held::Held};
use crate::{
    enqueue::NewJob,
    job::{Completed, Job, JobContext, JobError},
};

/// Sends a pending refund to the provider.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProcessRefund {
    pub refund_id: String,
}

/// Asks the provider about a refund it is working on.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckRefund {
    pub refund_id: String,
}

/// Enqueues a check for every refund whose next check is due; the `poll-refunds` schedule
/// fires it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PollRefunds;

const POLL_BATCH: u64 = 500;

enum Call {
    Send,
    Ask,
}

async fn run_call(ctx: JobContext, refund_id: &str, call: Call) -> Result<Completed, JobError> {
    let refund = refunds::find(&ctx.db, refund_id).await.map_err(|e| JobError::Permanent(e.to_string()))?;
    let due = match call {
        Call::Send => refund.status == RefundStatus::Pending,
        Call::Ask => matches!(refund.status, RefundStatus::Processing | RefundStatus::Unknown),
    };
    if !due {
        return ctx.conclude(json!({ "status": refund.status, "note": "nothing to do" })).await;
    }
    let payment = payment_rows::Entity::find_by_id(refund.payment_id.as_str())
        .one(&ctx.db)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("payment {} does not exist", refund.payment_id)))?;
    // Once the provider has accepted the refund (it is processing), or an earlier attempt may
    // have sent it, only the provider's own answer may release its amount.
    let reached = refund.sent_at.is_some() || !matches!(call, Call::Send);
    let outcome = match adapter_for(&ctx, &refund.provider, refund.mode, &refund.merchant_id).await? {
        Err(err) => Err(err),
        Ok(adapter) => {
            let request = RefundRequest {
                refund_id: &refund.id,
                transaction_id: payment.provider_transaction_id.as_deref().unwrap_or_default(),
                amount_minor: refund.amount_minor,
                currency: &refund.currency,
            };
            match call {
                Call::Send => {
                    refunds::mark_sent(&ctx.db, &refund.id).await?;
                    adapter.refund(&request).await
                }
                Call::Ask => adapter.refund_status(&request).await,
            }
        }
    };
    let last_attempt = ctx.attempt >= ctx.job.max_attempts;
    let state = match outcome {
        Ok(state) => Ok(state),
        Err(err) if err.is_transient() && !last_attempt => return Err(JobError::Provider(err)),
        Err(err) if err.is_transient() => Err(format!("the provider could not be asked: {err}")),
        Err(ProviderError::Rejected { message, .. }) => Ok(RefundState::Failed { reason: message }),
        Err(err) if reached => Err(format!("the provider could not be asked: {err}")),
        Err(err) => {
            ctx.keep_provider_detail(&err);
            Ok(RefundState::Failed { reason: err.to_string() })
        }
    };
    if refund.status == RefundStatus::Unknown && state.is_err() {
        return ctx.conclude(json!({ "status": "unknown", "note": "the provider still cannot say" })).await;
    }
    let held_unknown = Held::default();
    let marked = held_unknown.clone();
    let provider = refund.provider.clone();
    let completed = ctx
        .finish(move |txn| {
            Box::pin(async move {
                match state {
                    Err(reason) => {
                        let held = refunds::hold_unknown(txn, &refund, &reason).await?;
                        marked.set(held.is_some());
                        Ok(json!({ "status": "unknown", "reason": reason }))
                    }
                    Ok(RefundState::Completed { refund_id }) => {
                        refunds::settle(txn, &refund, refund_id).await?;
                        Ok(json!({ "status": "completed" }))
                    }
                    Ok(RefundState::Failed { reason }) => {
                        refunds::fail(txn, &refund, RefundStatus::Failed, &reason).await?;
                        Ok(json!({ "status": "failed", "reason": reason }))
                    }
                    Ok(RefundState::Processing) => {
                        let seconds = RuntimeConfig::load(txn).await?.refunds.recheck_seconds;
                        let recheck_after =
                            TimeDelta::seconds(i64::try_from(seconds).unwrap_or(i64::MAX / 2));
                        refunds::mark_processing(txn, &refund, Utc::now() + recheck_after).await?;
                        Ok(json!({ "status": "processing" }))
                    }
                }
            })
        })
        .await?;
    held_unknown.report("refund", provider, refund_id);
    Ok(completed)
}

impl Job for ProcessRefund {
    const KIND: &'static str = "refunds.process";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 6;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        run_call(ctx, &self.refund_id, Call::Send).await
    }
}

impl Job for CheckRefund {
    const KIND: &'static str = "refunds.check";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 4;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        run_call(ctx, &self.refund_id, Call::Ask).await
    }
}

impl Job for PollRefunds {
    const KIND: &'static str = "refunds.poll";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move {
                let due = refund_rows::Entity::find()
                    .filter(refund_rows::Column::Status.eq(RefundStatus::Processing))
                    .filter(refund_rows::Column::NextCheckAt.lte(Utc::now()))
                    .order_by_asc(refund_rows::Column::NextCheckAt)
                    .limit(POLL_BATCH)
                    .all(txn)
                    .await?;
                for refund in &due {
                    let due_at = refund.next_check_at.map_or(0, |at| at.timestamp());
                    outbox
                        .enqueue(
                            txn,
                            NewJob::new(&CheckRefund { refund_id: refund.id.clone() })
                                .owner(refund.merchant_id.clone())
                                .resource("refunds", refund.id.clone())
                                .unique_key(format!("refund:{}:check:{due_at}", refund.id)),
                        )
                        .await?;
                }
                Ok(json!({ "checked": due.len() }))
            })
        })
        .await
    }
}
