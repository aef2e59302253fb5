//! Collecting payments: initiation, status checks (polls, callback hints, manual polls and the
//! last look before expiry), and expiring those the customer never confirmed.
//!
//! Every state change happens in the transaction that records the job's completion, so a job
//! delivered twice moves a payment once; and a payment only completes on the provider's own
//! word, from a status query, never on a callback's.

use chrono::{Duration as TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait, TransactionTrait, sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};
use ultra_domain::{
    DomainError,
    audit::{self, Actor, AuditEvent},
    db, payments,
};
use ultra_entity::{
    audit_logs, jobs,
    payments::{self as payment_rows, PaymentStatus},
    provider_configs::ProviderMode,
};
use ultra_providers::{Collection, CollectionState, Earlier, Initiated, ProviderError, StatusQuery};

use super::{
    adapters::{adapter_for, callback_url},
    held::Held,
    poll_delay,
};
use crate::{
    QueueClient, batches,
    enqueue::{Enqueued, NewJob, dispatch_all, insert_rows, prepare},
    job::{Completed, Job, JobContext, JobError, Outbox},
};

/// A payment to open, and who opens it: `details` go into its `payment.created` audit entry
/// besides the provider and amount.
#[derive(Clone)]
pub struct Opening {
    pub new: payments::NewPayment,
    pub actor: Actor,
    pub details: Map<String, Value>,
}

/// Writes a pending payment, the job that collects it and its `payment.created` audit entry,
/// all or none, in the caller's transaction or, given a connection, on their own; the caller
/// dispatches the job once they have committed. Every surface that takes payments starts them
/// here or through an [`Opener`].
pub async fn open(
    db: &(impl ConnectionTrait + TransactionTrait),
    new: payments::NewPayment,
    actor: &Actor,
    details: Map<String, Value>,
) -> Result<(payment_rows::Model, Enqueued), DomainError> {
    let mut opened = open_all(db, vec![Opening { new, actor: actor.clone(), details }]).await?;
    Ok(opened.pop().expect("one payment opened"))
}

/// [`open`] for many payments at once: one insert per table, and on PostgreSQL one statement
/// for all three ([`db::insert_all`]).
async fn open_all(
    db: &(impl ConnectionTrait + TransactionTrait),
    openings: Vec<Opening>,
) -> Result<Vec<(payment_rows::Model, Enqueued)>, DomainError> {
    let mut opened = Vec::with_capacity(openings.len());
    let (mut rows, mut entries) = (Vec::with_capacity(openings.len()), Vec::with_capacity(openings.len()));
    for Opening { new, actor, mut details } in openings {
        let enqueued = prepare(
            NewJob::new(&CollectPayment { payment_id: new.id.clone() })
                .owner(new.merchant_id.clone())
                .resource("payments", new.id.clone())
                .unique_key(format!("payment:{}:collect", new.id)),
        )?;
        let payment = payments::pending(new, &enqueued.job.id);
        details.insert("provider".to_owned(), payment.provider.clone().into());
        details.insert("amountMinor".to_owned(), payment.amount_minor.into());
        entries.push(audit::row(
            &actor,
            AuditEvent {
                action: "payment.created",
                entity_type: "payment",
                entity_id: Some(&payment.id),
                details: Some(Value::Object(details)),
            },
        ));
        rows.push(payment_rows::ActiveModel::from(payment.clone()).reset_all());
        opened.push((payment, enqueued));
    }
    if opened.is_empty() {
        return Ok(opened);
    }
    let inserts = [
        insert_rows(opened.iter().map(|(_, enqueued)| enqueued)),
        payment_rows::Entity::insert_many(rows).into_query(),
        audit_logs::Entity::insert_many(entries).into_query(),
    ];
    db::insert_all(db, &inserts).await?;
    Ok(opened)
}

/// Most payments one [`Opener`] batch writes. Every batch size is a statement of its own, which
/// each pooled connection prepares and keeps: at 64 the API's resident size under load grew by
/// half, and batches of 16 wrote as fast.
const MAX_OPENINGS: usize = 16;

type Opened = Result<(payment_rows::Model, jobs::Model), DomainError>;

/// Opens payments that stand alone (no transaction of the caller's), many at a time: the
/// payments wanted while a batch is being written go together in the next
/// ([`crate::batches`]), in one statement, and their jobs in one push. Busy, the API pays a
/// round trip, a commit and a push per batch rather than per payment.
#[derive(Clone)]
pub struct Opener {
    requests: mpsc::UnboundedSender<(Opening, oneshot::Sender<Opened>)>,
}

impl Opener {
    pub fn new(db: DatabaseConnection, queue: QueueClient) -> Self {
        let requests = batches::serve(batches::writers(&db), MAX_OPENINGS, move |batch| {
            open_batch(db.clone(), queue.clone(), batch)
        });
        Self { requests }
    }

    /// Writes the payment, its collect job and its audit entry, all or none, and pushes the job.
    pub async fn open(&self, opening: Opening) -> Opened {
        let stopped = || DomainError::Internal("the payment opener has stopped".to_owned());
        let (reply, answer) = oneshot::channel();
        self.requests.send((opening, reply)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Writes a batch and pushes its jobs. A batch whose statement never ran, because its pooled
/// connection had been dropped, is written once more; one that cannot be written is then tried
/// payment by payment, so that one that cannot be written fails alone rather than with its
/// batch.
async fn open_batch(
    db: DatabaseConnection,
    queue: QueueClient,
    batch: Vec<(Opening, oneshot::Sender<Opened>)>,
) {
    let (openings, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
    let again = openings.clone();
    let written = match open_all(&db, openings).await {
        // The statement never ran (its connection had been dropped): once more, on another.
        Err(DomainError::Database(err)) if db::is_retryable(&err) => open_all(&db, again.clone()).await,
        written => written,
    };
    let alone = (again.len() > 1).then_some(again);
    let outcomes = match (written, alone) {
        (Ok(opened), _) => opened.into_iter().map(Ok).collect(),
        (Err(err), None) => vec![Err(err)],
        (Err(_), Some(openings)) => {
            let mut outcomes = Vec::with_capacity(openings.len());
            for Opening { new, actor, details } in openings {
                outcomes.push(open(&db, new, &actor, details).await);
            }
            outcomes
        }
    };
    let mut pushes = Vec::new();
    let mut answers = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        match outcome {
            Ok((payment, enqueued)) => {
                answers.push(Ok((payment, enqueued.job.clone())));
                pushes.push(enqueued);
            }
            Err(err) => answers.push(Err(err)),
        }
    }
    dispatch_all(&queue, &pushes).await;
    for (reply, answer) in replies.into_iter().zip(answers) {
        let _ = reply.send(answer);
    }
}

/// Starts collecting a pending payment: asks the provider to charge the customer, or, when an
/// earlier attempt's answer was lost, first asks the provider what became of it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CollectPayment {
    pub payment_id: String,
}

/// Why a payment's status is being checked.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "snake_case")]
pub enum Trigger {
    /// The n-th scheduled poll; each schedules the next while the payment is pending.
    Poll { round: u32 },
    /// A provider callback arrived; `handle` is the provider's id it named, if any.
    Callback { handle: Option<String> },
    /// The merchant asked (`POST payments/{id}/poll`).
    Manual,
    /// The payment is past its expiry: expire it unless the provider says otherwise.
    Expiry,
}

/// Asks the provider where a payment stands and applies what it says.
#[derive(Debug, Serialize, Deserialize)]
pub struct CheckPayment {
    pub payment_id: String,
    #[serde(flatten)]
    pub trigger: Trigger,
}

async fn load(ctx: &JobContext, id: &str) -> Result<payment_rows::Model, JobError> {
    payment_rows::Entity::find_by_id(id)
        .one(&ctx.db)
        .await?
        .ok_or_else(|| JobError::Permanent(format!("payment {id} does not exist")))
}

/// Schedules the poll after `round` in the completing transaction.
async fn schedule_poll(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    payment: &payment_rows::Model,
    round: u32,
) -> Result<(), JobError> {
    let run_at = Utc::now() + poll_delay(round);
    if run_at > payment.expires_at + TimeDelta::seconds(1) {
        // The expiry check takes over from here.
        return Ok(());
    }
    let check = CheckPayment { payment_id: payment.id.clone(), trigger: Trigger::Poll { round } };
    outbox
        .enqueue(
            txn,
            NewJob::new(&check)
                .owner(payment.merchant_id.clone())
                .resource("payments", payment.id.clone())
                .unique_key(format!("payment:{}:poll:{round}", payment.id))
                .run_at(run_at),
        )
        .await?;
    Ok(())
}

/// Applies a state the provider reported, inside the completing transaction.
async fn apply(
    txn: &DatabaseTransaction,
    payment: &payment_rows::Model,
    state: &CollectionState,
) -> Result<Value, JobError> {
    let moved = match state {
        CollectionState::Pending => return Ok(json!({ "status": "pending" })),
        CollectionState::Completed { transaction_id } => {
            payments::complete(txn, payment, transaction_id.clone()).await?
        }
        CollectionState::Failed { reason } => {
            payments::end_unpaid(txn, payment, PaymentStatus::Failed, reason).await?
        }
        CollectionState::Expired => {
            payments::end_unpaid(txn, payment, PaymentStatus::Expired, "the provider expired the request")
                .await?
        }
    };
    let status = moved.map_or(payment.status, |p| p.status);
    Ok(json!({ "status": status }))
}

/// Ends a payment the provider refused outright, or that cannot be collected as configured.
async fn refuse(
    ctx: &JobContext,
    payment: payment_rows::Model,
    err: ProviderError,
) -> Result<Completed, JobError> {
    ctx.keep_provider_detail(&err);
    let reason = match &err {
        ProviderError::Rejected { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ctx.finish(move |txn| {
        Box::pin(async move {
            payments::end_unpaid(txn, &payment, PaymentStatus::Failed, &reason).await?;
            Ok(json!({ "status": "failed", "reason": reason }))
        })
    })
    .await
}

impl Job for CollectPayment {
    const KIND: &'static str = "payments.collect";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 8;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let payment = load(&ctx, &self.payment_id).await?;
        if payment.status != PaymentStatus::Pending {
            return ctx.conclude(json!({ "status": payment.status, "note": "already settled" })).await;
        }
        if let Some(handle) = payment.provider_handle.clone() {
            // An earlier attempt stored the provider's answer, then died before recording the
            // rest: follow the collection from here.
            let initiated = Initiated {
                handle,
                data: payment.provider_data.clone().unwrap_or(Value::Null),
                checkout_url: payment.checkout_url.clone(),
                state: CollectionState::Pending,
            };
            return record_initiation(&ctx, payment, initiated).await;
        }
        let adapter = match adapter_for(&ctx, &payment.provider, payment.mode, &payment.merchant_id).await? {
            Ok(adapter) => adapter,
            Err(err) => return refuse(&ctx, payment, err).await,
        };
        let callback = callback_url(&ctx, &payment.provider, &payment.id);
        let attempt = u32::try_from(ctx.attempt).unwrap_or(1);
        // Order ids must be new per initiation for providers that refuse a reused one (Orange),
        // even for a delivery run again after its worker died, which keeps its attempt number:
        // a fresh ULID, within Orange's 30 characters.
        let order_id = ulid::Ulid::new().to_string();
        let collection = Collection {
            reference: &payment.reference,
            order_id: &order_id,
            amount_minor: payment.amount_minor,
            currency: &payment.currency,
            msisdn: &payment.customer_phone,
            merchant_reference: payment.merchant_reference.as_deref(),
            description: payment.description.as_deref(),
            callback_url: callback.as_deref(),
            return_url: Some(ctx.env.public_url.as_str()),
            attempt,
        };

        let initiated = if payment.initiated_at.is_some() {
            match adapter.find_earlier(&collection).await {
                Ok(Earlier::Found(found)) => Ok(found),
                Ok(Earlier::Absent | Earlier::AskByResending) => adapter.initiate(&collection).await,
                Ok(Earlier::Unknowable) => Err(ProviderError::Duplicate(
                    "an earlier request may have reached the customer; its callback will name it".to_owned(),
                )),
                Err(err) => Err(err),
            }
        } else {
            // Committed before the call: if this worker dies mid-call, the next attempt knows
            // the provider may already have the request.
            let marked = payment_rows::Entity::update_many()
                .col_expr(payment_rows::Column::InitiatedAt, Expr::value(Utc::now()))
                .filter(payment_rows::Column::Id.eq(&payment.id))
                .filter(payment_rows::Column::Status.eq(PaymentStatus::Pending))
                .exec(&ctx.db)
                .await?;
            if marked.rows_affected == 0 {
                // The payment expired (or was cancelled) while this job waited: never send it.
                return ctx.conclude(json!({ "note": "settled before it was sent" })).await;
            }
            adapter.initiate(&collection).await
        };
        match initiated {
            Ok(initiated) => {
                keep_handle(&ctx, &payment.id, &initiated).await?;
                record_initiation(&ctx, payment, initiated).await
            }
            Err(ProviderError::Duplicate(message)) => {
                // An earlier attempt reached the provider (or may have, where the provider
                // cannot be asked) but its answer, and the handle in it, was lost: the
                // provider's callback will name the transaction, and if none comes the expiry
                // check holds the payment as `unknown` rather than writing it off.
                ctx.conclude(json!({ "status": "pending", "awaiting": "callback", "provider": message }))
                    .await
            }
            Err(err) if err.is_transient() => Err(JobError::Provider(err)),
            Err(err) => refuse(&ctx, payment, err).await,
        }
    }
}

/// Stores the provider's handle the moment its answer arrives, in a commit of its own: a
/// worker that dies before the job's completion commits leaves the handle behind, so the
/// collection can still be asked about and is never left to expire on a guess.
async fn keep_handle(ctx: &JobContext, payment_id: &str, initiated: &Initiated) -> Result<(), JobError> {
    payment_rows::Entity::update_many()
        .col_expr(payment_rows::Column::ProviderHandle, Expr::value(initiated.handle.clone()))
        .col_expr(payment_rows::Column::ProviderData, Expr::value(initiated.data.clone()))
        .col_expr(payment_rows::Column::CheckoutUrl, Expr::value(initiated.checkout_url.clone()))
        .col_expr(payment_rows::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(payment_rows::Column::Id.eq(payment_id))
        .filter(payment_rows::Column::ProviderHandle.is_null())
        .exec(&ctx.db)
        .await?;
    Ok(())
}

async fn record_initiation(
    ctx: &JobContext,
    payment: payment_rows::Model,
    initiated: Initiated,
) -> Result<Completed, JobError> {
    let outbox = ctx.outbox();
    ctx.finish(move |txn| {
        Box::pin(async move {
            // The handle is already stored ([`keep_handle`]); the payment as it now stands.
            let payment = payment_rows::Entity::find_by_id(payment.id.as_str())
                .one(txn)
                .await?
                .ok_or_else(|| JobError::Permanent("the payment vanished".to_owned()))?;
            if initiated.state == CollectionState::Pending && payment.mode == ProviderMode::Live {
                schedule_poll(txn, &outbox, &payment, 1).await?;
            }
            let mut result = apply(txn, &payment, &initiated.state).await?;
            result["handle"] = json!(initiated.handle);
            Ok(result)
        })
    })
    .await
}

/// What asking the provider about a payment came to.
#[derive(Clone)]
enum Asked {
    State(CollectionState),
    /// The provider has no collection the customer could have paid.
    Absent,
    /// The provider cannot be asked about it.
    Unknowable(String),
}

impl Job for CheckPayment {
    const KIND: &'static str = "payments.check";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 6;
    const BASE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(2);
    const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let payment = load(&ctx, &self.payment_id).await?;
        if !payments::awaits_provider(payment.status) {
            return ctx.conclude(json!({ "status": payment.status, "note": "already settled" })).await;
        }
        let sent = payment.initiated_at.is_some();
        let held = payment.status == PaymentStatus::Unknown;
        let overdue = !held && (Utc::now() >= payment.expires_at || matches!(self.trigger, Trigger::Expiry));
        let query = StatusQuery {
            handle: payment.provider_handle.as_deref().unwrap_or_default(),
            reference: &payment.reference,
            data: payment.provider_data.as_ref().unwrap_or(&Value::Null),
            amount_minor: payment.amount_minor,
            msisdn: &payment.customer_phone,
        };
        let mut adopted = None;
        let asked = match adapter_for(&ctx, &payment.provider, payment.mode, &payment.merchant_id).await? {
            Err(err) => Err(err),
            Ok(adapter) => match (&payment.provider_handle, &self.trigger) {
                (Some(_), _) => adapter.status(&query).await.map(Asked::State),
                (None, Trigger::Callback { handle: Some(hint) }) if sent => {
                    adopted = Some(hint.clone());
                    adapter.confirm_hint(hint, &query).await.map(Asked::State)
                }
                (None, _) if sent && (overdue || held) => {
                    match adapter.find_earlier(&lookup(&payment)).await {
                        Ok(Earlier::Found(found)) => {
                            adopted = Some(found.handle);
                            Ok(Asked::State(found.state))
                        }
                        Ok(Earlier::Absent) => Ok(Asked::Absent),
                        Ok(Earlier::AskByResending | Earlier::Unknowable) => Ok(Asked::Unknowable(
                            "the provider may have the collection, and its answer naming it was lost"
                                .to_owned(),
                        )),
                        Err(err) => Err(err),
                    }
                }
                (None, _) => Ok(Asked::State(CollectionState::Pending)),
            },
        };
        let last_attempt = ctx.attempt >= ctx.job.max_attempts;
        let asked = match asked {
            Ok(asked) => asked,
            Err(ProviderError::NotFound) => Asked::Absent,
            Err(err) if err.is_transient() && !((overdue || held) && last_attempt) => {
                return Err(JobError::Provider(err));
            }
            Err(err) if overdue || held => {
                Asked::Unknowable(format!("the provider could not be asked: {err}"))
            }
            Err(err) => {
                // A callback naming someone else's transaction, or a refusal to say: nothing
                // the provider confirmed, so nothing changes.
                return ctx.conclude(json!({ "status": payment.status, "ignored": err.to_string() })).await;
            }
        };
        let trigger = self.trigger;
        let outbox = ctx.outbox();
        let provider = payment.provider.clone();
        let held_unknown = Held::default();
        let marked = held_unknown.clone();
        let completed = ctx
            .finish(move |txn| {
                Box::pin(async move {
                    if let (Some(handle), Asked::State(CollectionState::Completed { .. })) = (&adopted, &asked) {
                        payment_rows::Entity::update_many()
                            .col_expr(payment_rows::Column::ProviderHandle, Expr::value(handle.clone()))
                            .filter(payment_rows::Column::Id.eq(&payment.id))
                            .exec(txn)
                            .await?;
                    }
                    match asked {
                        Asked::State(state) if state.is_final() => apply(txn, &payment, &state).await,
                        Asked::Unknowable(reason) if overdue && sent => {
                            let held = payments::mark_unknown(txn, &payment, &reason).await?;
                            marked.set(held.is_some());
                            Ok(json!({ "status": held.map_or(payment.status, |p| p.status), "reason": reason }))
                        }
                        Asked::Absent if held => {
                            let reason = "the provider has no record of the collection";
                            payments::end_unpaid(txn, &payment, PaymentStatus::Expired, reason).await?;
                            Ok(json!({ "status": "expired", "reason": reason }))
                        }
                        _ if held => Ok(json!({ "status": "unknown" })),
                        _ if overdue => {
                            let reason = "the customer did not confirm in time";
                            let expired = if sent {
                                payments::end_unpaid(txn, &payment, PaymentStatus::Expired, reason).await?
                            } else {
                                payments::end_unsent(txn, &payment, PaymentStatus::Expired, reason).await?
                            };
                            Ok(json!({ "status": expired.map_or(payment.status, |p| p.status) }))
                        }
                        _ => {
                            if let Trigger::Poll { round } = trigger
                                && payment.mode == ProviderMode::Live
                            {
                                schedule_poll(txn, &outbox, &payment, round + 1).await?;
                            }
                            Ok(json!({ "status": "pending" }))
                        }
                    }
                })
            })
            .await?;
        held_unknown.report("payment", provider, &self.payment_id);
        Ok(completed)
    }
}

/// The collection a payment made, as far as asking the provider about it by our reference
/// needs (the order id and URLs serve only a new initiation).
fn lookup(payment: &payment_rows::Model) -> Collection<'_> {
    Collection {
        reference: &payment.reference,
        order_id: "",
        amount_minor: payment.amount_minor,
        currency: &payment.currency,
        msisdn: &payment.customer_phone,
        merchant_reference: payment.merchant_reference.as_deref(),
        description: payment.description.as_deref(),
        callback_url: None,
        return_url: None,
        attempt: 0,
    }
}

/// Expires payments still pending past their expiry. Simulated ones expire at once; a live
/// one gets a last status check first, since its customer may have paid at the last moment.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExpirePayments;

/// Payments handled per run; the next tick takes the rest.
const EXPIRE_BATCH: u64 = 500;

impl Job for ExpirePayments {
    const KIND: &'static str = "payments.expire";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let outbox = ctx.outbox();
        ctx.finish(move |txn| {
            Box::pin(async move {
                let due = payment_rows::Entity::find()
                    .filter(payment_rows::Column::Status.eq(PaymentStatus::Pending))
                    .filter(payment_rows::Column::ExpiresAt.lte(Utc::now()))
                    .order_by_asc(payment_rows::Column::ExpiresAt)
                    .limit(EXPIRE_BATCH)
                    .all(txn)
                    .await?;
                let (mut expired, mut checked) = (0, 0);
                for payment in &due {
                    if payment.mode == ProviderMode::Live {
                        let check = CheckPayment { payment_id: payment.id.clone(), trigger: Trigger::Expiry };
                        outbox
                            .enqueue(
                                txn,
                                NewJob::new(&check)
                                    .owner(payment.merchant_id.clone())
                                    .resource("payments", payment.id.clone())
                                    .unique_key(format!("payment:{}:expiry-check", payment.id)),
                            )
                            .await?;
                        checked += 1;
                    } else if payments::end_unpaid(
                        txn,
                        payment,
                        PaymentStatus::Expired,
                        "the customer did not confirm in time",
                    )
                    .await?
                    .is_some()
                    {
                        expired += 1;
                    }
                }
                Ok(json!({ "expired": expired, "checked": checked }))
            })
        })
        .await
    }
}
