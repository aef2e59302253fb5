//! Sending payouts. The amount was reserved when the payout was requested; a handler settles
//! it once the rail says the money has gone, and releases it when the rail refuses.
//!
//! Mobile payouts go through M-Pesa B2C, which posts its outcome to the payout's signed result
//! URL and offers nothing to ask; bank payouts go through the bank rail, whose unsigned
//! callback is only a hint to ask it.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ultra_domain::payouts;
use ultra_entity::payouts::{self as payout_rows, PayoutKind, PayoutStatus};
use ultra_providers::{PayoutOrder, PayoutState, ProviderError};

use super::{
    adapters::{configured_adapter_for, payout_result_url},
    held::Held,
    poll_delay,
};
use crate::{
    enqueue::NewJob,
    job::{Completed, Job, JobContext, JobError, Outbox},
};

/// Sends one payout.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendPayout {
    pub payout_id: String,
}

/// Why a payout's state is being looked at.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum PayoutTrigger {
    /// The n-th scheduled status query; each schedules the next while the rail is busy.
    Poll { round: u32 },
    /// The rail's callback arrived: ask the rail.
    Callback,
    /// M-Pesa posted a B2C `Result` to the payout's signed URL.
    Result(B2cResult),
}

/// What a B2C `Result` says. Daraja signs nothing and offers no query, so the signed result
/// URL, known only to Ultra and Daraja, and the ids it must repeat are what make it count.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct B2cResult {
    pub result_code: i64,
    pub description: String,
    pub originator_conversation_id: String,
    pub conversation_id: Option<String>,
    pub transaction_id: Option<String>,
}

/// Looks at a payout the rail is working on, and settles or releases it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckPayout {
    pub payout_id: String,
    #[serde(flatten)]
    pub trigger: PayoutTrigger,
}

/// A day of polling at one a minute; a transfer still unsettled after that is held as `unknown`
/// for an operator.
const MAX_POLL_ROUNDS: u32 = 1_440;

/// The provider configuration a payout kind goes through, and the callback path of its rail.
fn rail(kind: PayoutKind) -> Option<(&'static str, &'static str)> {
    match kind {
        PayoutKind::Mobile => Some(("mpesa", "mpesa-b2c")),
        PayoutKind::Bank => Some(("bank", "bank")),
        PayoutKind::Sellapay => None,
    }
}

fn order_of<'a>(payout: &'a payout_rows::Model, result_url: Option<&'a str>) -> PayoutOrder<'a> {
    PayoutOrder {
        reference: &payout.id,
        amount_minor: payout.amount_minor,
        currency: &payout.currency,
        msisdn: payout.phone.as_deref(),
        bank_code: payout.bank_code.as_deref(),
        account_number: payout.account_number.as_deref(),
        account_name: payout.account_name.as_deref(),
        narrative: payout.narrative.as_deref(),
        result_url,
    }
}

/// Applies what the rail said, in the completing transaction.
async fn apply(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &Outbox,
    payout: &payout_rows::Model,
    state: PayoutState,
    next_poll: Option<u32>,
) -> Result<Value, JobError> {
    let done = match state {
        PayoutState::Processing { handle } => {
            let payout = payouts::mark_processing(txn, payout, handle).await?;
            match next_poll {
                Some(round) if round <= MAX_POLL_ROUNDS => schedule_poll(txn, outbox, &payout, round).await?,
                Some(_) => {
                    let reason = "the rail still reported the transfer in progress after a day of polling";
                    let held = payouts::hold_unknown(txn, &payout, reason).await?;
                    return Ok(
                        json!({ "status": held.map_or(payout.status, |p| p.status), "reason": reason }),
                    );
                }
                None => {}
            }
            return Ok(json!({ "status": payout.status }));
        }
        PayoutState::Completed { receipt } => payouts::complete(txn, payout, receipt).await?,
        PayoutState::Failed { reason } => payouts::fail(txn, payout, &reason).await?,
    };
    Ok(json!({ "status": done.map_or(payout.status, |p| p.status) }))
}

async fn schedule_poll(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &Outbox,
    payout: &payout_rows::Model,
    round: u32,
) -> Result<(), JobError> {
    let check = CheckPayout { payout_id: payout.id.clone(), trigger: PayoutTrigger::Poll { round } };
    outbox
        .enqueue(
            txn,
            NewJob::new(&check)
                .owner(payout.merchant_id.clone())
                .resource("payouts", payout.id.clone())
                .unique_key(format!("payout:{}:poll:{round}", payout.id))
                .run_at(Utc::now() + poll_delay(round)),
        )
        .await?;
    Ok(())
}

/// Ends a payout the rail refused, or that cannot go out as configured, and gives the money
/// back.
async fn release(
    ctx: &JobContext,
    payout: payout_rows::Model,
    reason: String,
) -> Result<Completed, JobError> {
    ctx.finish(move |txn| {
        Box::pin(async move {
            payouts::fail(txn, &payout, &reason).await?;
            Ok(json!({ "status": "failed", "reason": reason }))
        })
    })
    .await
}

impl Job for SendPayout {
    const KIND: &'static str = "payouts.send";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 8;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let payout = payouts::find(&ctx.db, &self.payout_id).await?;
        if payout.status != PayoutStatus::Pending {
            return ctx.conclude(json!({ "status": payout.status, "note": "already sent" })).await;
        }
        let Some((provider, path)) = rail(payout.kind) else {
            // Between two balances in the ledger: nothing can fail once the amount is reserved.
            return ctx
                .finish(move |txn| {
                    Box::pin(async move {
                        let done = payouts::complete(txn, &payout, None).await?;
                        Ok(json!({ "status": done.map(|p| p.status) }))
                    })
                })
                .await;
        };
        let sent_before = payout.sent_at.is_some();
        let last_attempt = ctx.attempt >= ctx.job.max_attempts;
        let adapter = match configured_adapter_for(&ctx, provider, &payout.merchant_id).await? {
            Ok(adapter) => adapter,
            Err(err) if !sent_before => {
                ctx.keep_provider_detail(&err);
                return release(&ctx, payout, err.to_string()).await;
            }
            Err(err) if !last_attempt => return Err(JobError::Provider(err)),
            Err(err) => return hold(&ctx, payout, format!("the rail cannot be asked: {err}")).await,
        };
        let result_url = payout_result_url(&ctx, path, &payout.id);
        if !sent_before {
            // Committed before the call: a retry after a lost answer must not take the rail's
            // silence for a refusal.
            payouts::mark_sent(&ctx.db, &payout.id).await?;
        }
        let state = match adapter.send_payout(&order_of(&payout, Some(&result_url))).await {
            Ok(state) => state,
            // The rail has this payout from an earlier attempt whose answer was lost.
            Err(ProviderError::Duplicate(_)) => PayoutState::Processing { handle: None },
            Err(err) if err.is_transient() && !last_attempt => {
                return Err(JobError::Provider(err));
            }
            Err(err) if err.is_transient() => {
                return hold(&ctx, payout, format!("the rail may have the payout and cannot say: {err}"))
                    .await;
            }
            // A refusal of the request itself is the same refusal the earlier attempt got.
            Err(ProviderError::Rejected { message, .. }) => return release(&ctx, payout, message).await,
            Err(err) if !sent_before => {
                ctx.keep_provider_detail(&err);
                return release(&ctx, payout, err.to_string()).await;
            }
            Err(err) => {
                // An earlier attempt may have gone through: only the rail or an operator can
                // tell now.
                return hold(&ctx, payout, format!("the rail may have the payout and cannot say: {err}"))
                    .await;
            }
        };
        let outbox = ctx.outbox();
        let poll = (payout.kind == PayoutKind::Bank).then_some(1);
        ctx.finish(move |txn| Box::pin(async move { apply(txn, &outbox, &payout, state, poll).await })).await
    }
}

/// Holds a payout the rail may have, but about which it cannot say, as `unknown`: its amount
/// stays reserved, never released on a guess.
async fn hold(ctx: &JobContext, payout: payout_rows::Model, reason: String) -> Result<Completed, JobError> {
    let (payout_id, provider) =
        (payout.id.clone(), rail(payout.kind).map_or("ledger", |(provider, _)| provider));
    let held_unknown = Held::default();
    let marked = held_unknown.clone();
    let completed = ctx
        .finish(move |txn| {
            Box::pin(async move {
                let held = payouts::hold_unknown(txn, &payout, &reason).await?;
                marked.set(held.is_some());
                Ok(json!({ "status": held.map_or(payout.status, |p| p.status), "reason": reason }))
            })
        })
        .await?;
    held_unknown.report("payout", provider.to_owned(), &payout_id);
    Ok(completed)
}

impl Job for CheckPayout {
    const KIND: &'static str = "payouts.check";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 6;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let payout = payouts::find(&ctx.db, &self.payout_id).await?;
        if payout.status.is_final() {
            return ctx.conclude(json!({ "status": payout.status, "note": "already final" })).await;
        }
        let outbox = ctx.outbox();
        let (state, next_poll) = match self.trigger {
            PayoutTrigger::Result(result) => match b2c_state(&payout, result) {
                Ok(state) => (state, None),
                Err(ignored) => {
                    return ctx.conclude(json!({ "status": payout.status, "ignored": ignored })).await;
                }
            },
            trigger => {
                let Some((provider, _)) = rail(payout.kind) else {
                    return ctx.conclude(json!({ "status": payout.status, "note": "nothing to ask" })).await;
                };
                let adapter = match configured_adapter_for(&ctx, provider, &payout.merchant_id).await? {
                    Ok(adapter) => adapter,
                    Err(err) => return Err(JobError::Provider(err)),
                };
                let next_poll = match trigger {
                    PayoutTrigger::Poll { round } => Some(round + 1),
                    _ => None,
                };
                match adapter.payout_status(&order_of(&payout, None)).await {
                    Ok(state) => (state, next_poll),
                    Err(err) if err.is_transient() => return Err(JobError::Provider(err)),
                    Err(err) => {
                        return ctx
                            .conclude(json!({ "status": payout.status, "ignored": err.to_string() }))
                            .await;
                    }
                }
            }
        };
        ctx.finish(move |txn| Box::pin(async move { apply(txn, &outbox, &payout, state, next_poll).await }))
            .await
    }
}

/// What a B2C `Result` means for `payout`, or why it is not about this payout.
fn b2c_state(payout: &payout_rows::Model, result: B2cResult) -> Result<PayoutState, String> {
    if payout.kind != PayoutKind::Mobile || result.originator_conversation_id != payout.id {
        return Err("the result names another payout".to_owned());
    }
    if let (Some(ours), Some(theirs)) = (&payout.provider_handle, &result.conversation_id)
        && ours != theirs
    {
        return Err("the result names another conversation".to_owned());
    }
    Ok(if result.result_code == 0 {
        PayoutState::Completed { receipt: result.transaction_id }
    } else {
        PayoutState::Failed { reason: format!("{} ({})", result.description, result.result_code) }
    })
}
