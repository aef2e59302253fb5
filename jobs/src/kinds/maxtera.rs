//! Maxtera's wallet work: buying airtime, data and bills from the VTU aggregator, and funding
//! wallets through OnePipe. Both go through the platform's own provider accounts (the global
//! configurations), since Maxtera customers are not merchants.
//!
//! A purchase was debited when requested. Its aggregator `request_id` is committed before the
//! call, so a run after a lost answer (a timeout, a worker killed mid-call) asks about that
//! request before buying again; a refusal refunds the wallet, once, in the transaction that
//! marks the purchase failed.

use std::ops::ControlFlow;

use chrono::Utc;
use rand::{Rng, distr::Alphanumeric};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use ultra_domain::{maxtera::transactions as wallet, provider_configs::GLOBAL};
use ultra_entity::{
    maxtera_transactions::{MaxteraKind, Model as Transaction},
    users,
};
use ultra_providers::{
    Adapter, BillerCheck, FundingOrder, FundingState, ProviderError, PurchaseOrder, PurchaseState,
    Verification, vtpass_request_id,
};

use super::{adapters::configured_adapter_for, poll_delay};
use crate::{
    enqueue::NewJob,
    job::{Completed, Job, JobContext, JobError, Outbox},
};

const VTU: &str = "vtpass";
const ONEPIPE: &str = "onepipe";
/// A day of requeries at one a minute; a purchase still pending after that needs an operator.
const MAX_PURCHASE_CHECKS: u32 = 1_440;
/// How long a funding's virtual account stays open for the customer's transfer.
const FUNDING_WINDOW_MINUTES: u32 = 60;
/// Status queries of an open funding: past the account's expiry, with room for a late
/// notification, the funding is over.
const MAX_FUNDING_CHECKS: u32 = 80;

/// Buys what a purchase names.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuyVtu {
    pub transaction_id: i64,
}

/// Asks the aggregator what became of a purchase it has not finished.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckVtu {
    pub transaction_id: i64,
    pub round: u32,
}

/// Opens the OnePipe invoice a funding is paid into.
#[derive(Debug, Serialize, Deserialize)]
pub struct OpenFunding {
    pub transaction_id: i64,
}

/// Why a funding's state is being asked for.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum FundingTrigger {
    /// The n-th scheduled query; each schedules the next while the invoice is open.
    Poll { round: u32 },
    /// OnePipe's notification arrived. It is unsigned, so it only prompts the query.
    Notification,
}

/// Asks OnePipe where a funding stands and credits the wallet when the transfer arrived.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckFunding {
    pub transaction_id: i64,
    #[serde(flatten)]
    pub trigger: FundingTrigger,
}

/// The aggregator's adapter; `Err` when the platform has no usable VTU or OnePipe account.
async fn platform_adapter(
    ctx: &JobContext,
    provider: &str,
) -> Result<Result<Adapter, ProviderError>, JobError> {
    configured_adapter_for(ctx, provider, GLOBAL).await
}

fn order_of<'a>(row: &'a Transaction, request_id: &'a str) -> PurchaseOrder<'a> {
    PurchaseOrder {
        request_id,
        service_id: row.service_id.as_deref().unwrap_or_default(),
        amount_minor: row.amount_minor,
        phone: row.phone.as_deref().unwrap_or_default(),
        billers_code: row.billers_code.as_deref(),
        variation_code: row.variation_code.as_deref(),
        subscription_type: (row.kind == MaxteraKind::Bills && row.variation_code.is_none())
            .then_some("renew"),
    }
}

/// A request id for `row`: the one already sent, while the aggregator still takes it (its
/// date part must be today in Lagos), so a request that arrives late is not bought twice;
/// else a new one. The random part keeps two installations on one account apart.
fn request_id_for(row: &Transaction) -> String {
    let suffix: String = rand::rng().sample_iter(Alphanumeric).take(8).map(char::from).collect();
    let fresh = vtpass_request_id(Utc::now(), &format!("MX{}{suffix}", row.id));
    match &row.provider_request_id {
        Some(sent) if sent.get(..8) == fresh.get(..8) => sent.clone(),
        _ => fresh,
    }
}

/// Applies what the aggregator said, in the completing transaction.
async fn apply_purchase(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &Outbox,
    row: &Transaction,
    state: PurchaseState,
    next_check: u32,
) -> Result<Value, JobError> {
    let done = match state {
        PurchaseState::Pending => {
            if next_check <= MAX_PURCHASE_CHECKS {
                let check = CheckVtu { transaction_id: row.id, round: next_check };
                outbox
                    .enqueue(
                        txn,
                        NewJob::new(&check)
                            .owner(row.user_id.clone())
                            .resource("maxtera_transactions", row.id.to_string())
                            .unique_key(format!("maxtera:{}:check:{next_check}", row.id))
                            .run_at(Utc::now() + poll_delay(next_check)),
                    )
                    .await?;
            }
            return Ok(json!({ "status": row.status, "next_check": next_check }));
        }
        PurchaseState::Delivered { provider_reference, token } => {
            let details = token.map(|token| json!({ "token": token }));
            wallet::deliver(txn, row, provider_reference, details).await?
        }
        PurchaseState::Failed { reason } => wallet::fail(txn, row, &reason).await?,
    };
    Ok(json!({ "status": done.map_or(row.status, |d| d.status) }))
}

/// Ends a transaction that cannot go ahead: a purchase's debit goes back to the wallet, once;
/// a funding, which moved nothing yet, simply ends.
async fn give_up(ctx: &JobContext, row: Transaction, reason: String) -> Result<Completed, JobError> {
    ctx.finish(move |txn| {
        Box::pin(async move {
            wallet::fail(txn, &row, &reason).await?;
            Ok(json!({ "status": "failed", "reason": reason }))
        })
    })
    .await
}

/// Reads the transaction and builds `provider`'s adapter. A transaction nothing was sent for yet
/// ends `failed` when the provider is not usable (`service` names it in the reason); one that
/// may be with the provider already waits for it to come back. `Break` carries the completion of
/// a job that is over.
async fn prepare(
    ctx: &JobContext,
    id: i64,
    provider: &str,
    service: &str,
) -> Result<ControlFlow<Completed, (Transaction, Adapter)>, JobError> {
    let row = wallet::find(&ctx.db, id).await?;
    if row.status.is_final() {
        return Ok(ControlFlow::Break(
            ctx.conclude(json!({ "status": row.status, "note": "already final" })).await?,
        ));
    }
    match platform_adapter(ctx, provider).await? {
        Ok(adapter) => Ok(ControlFlow::Continue((row, adapter))),
        Err(err) if row.sent_at.is_none() => {
            Ok(ControlFlow::Break(give_up(ctx, row, format!("{service} is unavailable: {err}")).await?))
        }
        Err(err) => Err(JobError::Provider(err)),
    }
}

impl Job for BuyVtu {
    const KIND: &'static str = "maxtera.purchase";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 8;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let (row, adapter) = match prepare(&ctx, self.transaction_id, VTU, "The VTU service").await? {
            ControlFlow::Continue((row, adapter)) => (row, adapter),
            ControlFlow::Break(completed) => return Ok(completed),
        };
        let outbox = ctx.outbox();
        if let Some(sent) = row.provider_request_id.clone() {
            match adapter.requery_purchase(&sent).await {
                Ok(state) => {
                    return ctx
                        .finish(move |txn| {
                            Box::pin(async move { apply_purchase(txn, &outbox, &row, state, 1).await })
                        })
                        .await;
                }
                // The earlier request never arrived: it is sent now.
                Err(ProviderError::NotFound) => {}
                Err(err) => return Err(JobError::Provider(err)),
            }
        }
        if row.kind == MaxteraKind::Bills {
            let check = BillerCheck {
                service_id: row.service_id.as_deref().unwrap_or_default(),
                billers_code: row.billers_code.as_deref().unwrap_or_default(),
                kind: row.variation_code.as_deref(),
            };
            match adapter.verify_biller(&check).await {
                Ok(Verification::Valid { customer_name }) => {
                    wallet::set_details(&ctx.db, row.id, json!({ "customerName": customer_name })).await?;
                }
                Ok(Verification::Invalid { reason }) => return give_up(&ctx, row, reason).await,
                Err(ProviderError::Rejected { message, .. }) => return give_up(&ctx, row, message).await,
                Err(err) => return Err(JobError::Provider(err)),
            }
        }
        let request_id = request_id_for(&row);
        // Committed before the call: a run after a lost answer must ask, not buy again.
        wallet::mark_sent(&ctx.db, row.id, &request_id).await?;
        let state = match adapter.purchase(&order_of(&row, &request_id)).await {
            Ok(state) => state,
            Err(ProviderError::Rejected { message, .. }) => return give_up(&ctx, row, message).await,
            // The aggregator has this request id already: an earlier call got there.
            Err(ProviderError::Duplicate(_)) => PurchaseState::Pending,
            Err(err) if err.is_transient() => return Err(JobError::Provider(err)),
            Err(err) => {
                ctx.keep_provider_detail(&err);
                return give_up(&ctx, row, err.to_string()).await;
            }
        };
        ctx.finish(move |txn| Box::pin(async move { apply_purchase(txn, &outbox, &row, state, 1).await }))
            .await
    }
}

impl Job for CheckVtu {
    const KIND: &'static str = "maxtera.purchase_check";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 6;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let row = wallet::find(&ctx.db, self.transaction_id).await?;
        let Some(sent) = row.provider_request_id.clone().filter(|_| !row.status.is_final()) else {
            return ctx.conclude(json!({ "status": row.status, "note": "nothing to ask" })).await;
        };
        let adapter = match platform_adapter(&ctx, VTU).await? {
            Ok(adapter) => adapter,
            Err(err) => return Err(JobError::Provider(err)),
        };
        let outbox = ctx.outbox();
        let round = self.round;
        match adapter.requery_purchase(&sent).await {
            Ok(state) => {
                ctx.finish(move |txn| {
                    Box::pin(async move { apply_purchase(txn, &outbox, &row, state, round + 1).await })
                })
                .await
            }
            // The request never arrived after all: buying it is the purchase job's to do.
            Err(ProviderError::NotFound) => {
                ctx.finish(move |txn| {
                    Box::pin(async move {
                        let buy = BuyVtu { transaction_id: row.id };
                        outbox
                            .enqueue(
                                txn,
                                NewJob::new(&buy)
                                    .owner(row.user_id.clone())
                                    .resource("maxtera_transactions", row.id.to_string())
                                    .unique_key(format!("maxtera:{}:resend:{round}", row.id)),
                            )
                            .await?;
                        Ok(json!({ "status": row.status, "note": "not received; sending again" }))
                    })
                })
                .await
            }
            Err(err) => Err(JobError::Provider(err)),
        }
    }
}

/// The invoice a funding is paid into, as OnePipe is asked for it.
struct Invoice {
    email: String,
    mobile: String,
    customer_ref: String,
    description: String,
}

async fn invoice_of(ctx: &JobContext, row: &Transaction) -> Result<Invoice, JobError> {
    use sea_orm::EntityTrait;
    let user = users::Entity::find_by_id(&row.user_id)
        .one(&ctx.db)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("user {} is gone", row.user_id)))?;
    let local = user.phone.clone().unwrap_or_default();
    Ok(Invoice {
        email: user.email,
        mobile: format!("234{}", local.strip_prefix('0').unwrap_or(&local)),
        customer_ref: row.user_id.clone(),
        description: format!("Maxtera wallet funding {}", row.reference.as_deref().unwrap_or_default()),
    })
}

fn funding_order<'a>(row: &'a Transaction, invoice: &'a Invoice) -> FundingOrder<'a> {
    FundingOrder {
        reference: row.reference.as_deref().unwrap_or_default(),
        amount_minor: row.amount_minor,
        customer_ref: &invoice.customer_ref,
        email: &invoice.email,
        mobile: &invoice.mobile,
        description: &invoice.description,
        expires_in_minutes: FUNDING_WINDOW_MINUTES,
    }
}

/// Applies what OnePipe said, in the completing transaction.
async fn apply_funding(
    txn: &sea_orm::DatabaseTransaction,
    outbox: &Outbox,
    row: &Transaction,
    state: FundingState,
    next_poll: Option<u32>,
) -> Result<Value, JobError> {
    let done = match state {
        FundingState::AwaitingTransfer { account } => {
            if let Some(account) = account {
                let details = json!({ "account": {
                    "accountNumber": account.number,
                    "accountName": account.name,
                    "bankName": account.bank_name,
                    "bankCode": account.bank_code,
                    "expiresAt": account.expires_at,
                }});
                wallet::set_details(txn, row.id, details).await?;
            }
            match next_poll {
                Some(round) if round > MAX_FUNDING_CHECKS => {
                    wallet::fail(txn, row, "The transfer did not arrive before the account expired").await?
                }
                Some(round) => {
                    let check =
                        CheckFunding { transaction_id: row.id, trigger: FundingTrigger::Poll { round } };
                    outbox
                        .enqueue(
                            txn,
                            NewJob::new(&check)
                                .owner(row.user_id.clone())
                                .resource("maxtera_transactions", row.id.to_string())
                                .unique_key(format!("maxtera:{}:poll:{round}", row.id))
                                .run_at(Utc::now() + poll_delay(round)),
                        )
                        .await?;
                    return Ok(json!({ "status": row.status, "next_poll": round }));
                }
                None => return Ok(json!({ "status": row.status })),
            }
        }
        FundingState::Completed { provider_reference, amount_minor } => {
            wallet::credit(txn, row, provider_reference, amount_minor).await?
        }
        FundingState::Failed { reason } => wallet::fail(txn, row, &reason).await?,
    };
    Ok(json!({ "status": done.map_or(row.status, |d| d.status) }))
}

impl Job for OpenFunding {
    const KIND: &'static str = "maxtera.funding";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 8;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let (row, adapter) =
            match prepare(&ctx, self.transaction_id, ONEPIPE, "Funding through OnePipe").await? {
                ControlFlow::Continue((row, adapter)) => (row, adapter),
                ControlFlow::Break(completed) => return Ok(completed),
            };
        let invoice = invoice_of(&ctx, &row).await?;
        let reference = row.reference.clone().unwrap_or_default();
        // The invoice is keyed by our reference, so opening it again returns the same one.
        wallet::mark_sent(&ctx.db, row.id, &reference).await?;
        let state = match adapter.open_funding(&funding_order(&row, &invoice)).await {
            Ok(state) => state,
            Err(err) if err.is_transient() || matches!(err, ProviderError::Duplicate(_)) => {
                return Err(JobError::Provider(err));
            }
            Err(err) => {
                ctx.keep_provider_detail(&err);
                return give_up(&ctx, row, err.to_string()).await;
            }
        };
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move { apply_funding(txn, &outbox, &row, state, Some(1)).await })
        })
        .await
    }
}

impl Job for CheckFunding {
    const KIND: &'static str = "maxtera.funding_check";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 6;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let row = wallet::find(&ctx.db, self.transaction_id).await?;
        if row.status.is_final() || row.sent_at.is_none() {
            return ctx.conclude(json!({ "status": row.status, "note": "nothing to ask" })).await;
        }
        let adapter = match platform_adapter(&ctx, ONEPIPE).await? {
            Ok(adapter) => adapter,
            Err(err) => return Err(JobError::Provider(err)),
        };
        let invoice = invoice_of(&ctx, &row).await?;
        let next_poll = match self.trigger {
            FundingTrigger::Poll { round } => Some(round + 1),
            FundingTrigger::Notification => None,
        };
        let state = match adapter.funding_status(&funding_order(&row, &invoice)).await {
            Ok(state) => state,
            Err(err) if err.is_transient() => return Err(JobError::Provider(err)),
            Err(err) => {
                return ctx.conclude(json!({ "status": row.status, "ignored": err.to_string() })).await;
            }
        };
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move { apply_funding(txn, &outbox, &row, state, next_poll).await })
        })
        .await
    }
}
