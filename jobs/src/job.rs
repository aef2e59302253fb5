//! What a job kind is, and what its handler may do.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use ultra_entity::jobs;

use crate::{
    JobEnv, QueueClient,
    completions::{Completion, Completions, Effect},
    enqueue::{Enqueued, NewJob, dispatch_all, enqueue},
};

/// A kind of background work. The payload is the job itself, stored as JSON on the job row.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// Stable name stored on the row, e.g. `maintenance.purge_idempotency_keys`.
    const KIND: &'static str;
    /// The apalis queue that carries it; workers size their concurrency per queue.
    const QUEUE: &'static str = "default";
    const MAX_ATTEMPTS: i32 = 5;
    /// First retry delay; each further retry doubles it (with jitter) up to [`Job::MAX_BACKOFF`].
    const BASE_BACKOFF: Duration = Duration::from_secs(1);
    const MAX_BACKOFF: Duration = Duration::from_secs(600);

    /// Does the work. A handler ends with [`JobContext::finish`], which applies its database
    /// change in the transaction that records the job's completion, or with
    /// [`JobContext::conclude`] when it has nothing to change; the [`Completed`] it gets back is
    /// the proof it must return.
    fn run(self, ctx: JobContext) -> impl Future<Output = Result<Completed, JobError>> + Send;
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Worth retrying: a timeout, an unavailable dependency.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: the job ends `failed` at once.
    #[error("{0}")]
    Permanent(String),
    /// Another delivery of this job already recorded its completion; this run's transaction
    /// must roll back so its effect is not applied twice.
    #[error("the job was already completed by another delivery")]
    AlreadyCompleted,
    /// A provider call failed and the job tries again later. Its owner sees Ultra's words for
    /// it; what the provider answered goes to the attempt log only.
    #[error("{0}")]
    Provider(#[from] ultra_providers::ProviderError),
}

impl JobError {
    /// The error as the attempt log keeps it, for admins.
    pub fn for_operators(&self) -> String {
        match self {
            Self::Provider(err) => err.for_operators(),
            other => other.to_string(),
        }
    }
}

impl From<sea_orm::DbErr> for JobError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Transient(format!("database: {err}"))
    }
}

impl From<ultra_domain::DomainError> for JobError {
    fn from(err: ultra_domain::DomainError) -> Self {
        match err {
            ultra_domain::DomainError::Database(_)
            | ultra_domain::DomainError::Redis(_)
            | ultra_domain::DomainError::Internal(_) => Self::Transient(err.to_string()),
            other => Self::Permanent(other.to_string()),
        }
    }
}

/// Proof that a handler recorded its job's completion; only [`JobContext::finish`] and
/// [`JobContext::conclude`] make one.
#[derive(Debug)]
pub struct Completed(());

/// What a handler knows about the run it is in.
pub struct JobContext {
    pub db: DatabaseConnection,
    pub job: jobs::Model,
    /// The Redis push this run was started from.
    pub push_id: String,
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    pub worker_id: String,
    pub env: Arc<JobEnv>,
    pub queue: QueueClient,
    outbox: Outbox,
    completions: Completions,
    /// What a provider said when its refusal ended the job: the attempt log keeps it.
    provider_said: Mutex<Option<String>>,
}

/// Jobs a handler enqueued in its transaction, pushed once that transaction has committed.
#[derive(Clone, Default)]
pub struct Outbox(Arc<Mutex<Vec<Enqueued>>>);

impl Outbox {
    /// Writes the job row in `txn`; [`JobContext::finish`] pushes it after the commit.
    pub async fn enqueue<J: Job>(&self, txn: &DatabaseTransaction, new: NewJob<'_, J>) -> Result<(), DbErr> {
        let enqueued = enqueue(txn, new).await?;
        self.0.lock().expect("outbox lock").push(enqueued);
        Ok(())
    }

    /// Keeps a job already written in `txn` (by a shared helper such as
    /// [`crate::kinds::payments::open`]) for pushing after the commit.
    pub fn hold(&self, enqueued: Enqueued) {
        self.0.lock().expect("outbox lock").push(enqueued);
    }

    fn take(&self) -> Vec<Enqueued> {
        std::mem::take(&mut *self.0.lock().expect("outbox lock"))
    }

    fn clear(&self) {
        self.0.lock().expect("outbox lock").clear();
    }
}

impl JobContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        db: DatabaseConnection,
        job: jobs::Model,
        push_id: String,
        started_at: DateTime<Utc>,
        worker_id: String,
        env: Arc<JobEnv>,
        queue: QueueClient,
        completions: Completions,
    ) -> Self {
        Self {
            db,
            attempt: job.attempts + 1,
            job,
            push_id,
            started_at,
            worker_id,
            env,
            queue,
            outbox: Outbox::default(),
            completions,
            provider_said: Mutex::default(),
        }
    }

    /// Where a handler's effect puts the jobs it enqueues; [`JobContext::finish`] pushes them
    /// after its commit.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Keeps a provider error that ends the job for the attempt log: the job's result and the
    /// resource it ends carry only Ultra's words for it.
    pub fn keep_provider_detail(&self, err: &ultra_providers::ProviderError) {
        *self.provider_said.lock().expect("provider detail lock") = Some(err.for_operators());
    }

    /// This run's success with `result`.
    fn completion(&self, result: Value) -> Completion {
        let now = Utc::now();
        let provider_said = self.provider_said.lock().expect("provider detail lock").clone();
        Completion {
            job_id: self.job.id.clone(),
            push_id: self.push_id.clone(),
            attempts: self.attempt,
            result,
            attempt_log: self.attempt_log(now, provider_said.as_deref()),
            started_at: self.job.started_at.unwrap_or(self.started_at),
            finished_at: now,
        }
    }

    /// Records the job's completion with `result` and no other effect, for handlers that found
    /// nothing to change.
    pub async fn conclude(&self, result: Value) -> Result<Completed, JobError> {
        self.completions.record(self.completion(result), None).await?;
        Ok(Completed(()))
    }

    /// Runs `effect` and records the job's completion, with the effect's result, in the same
    /// transaction: the usual shape of a handler that changes the database. The transaction
    /// holds other jobs' effects too, and when one of them fails it rolls back and this effect
    /// runs again ([`crate::completions`]); so an effect is a clonable closure, run from a
    /// fresh clone each time, that only reads and writes through the transaction it is given.
    /// Jobs it enqueued in [`JobContext::outbox`] are pushed once it has committed.
    pub async fn finish<F>(&self, effect: F) -> Result<Completed, JobError>
    where
        F: for<'t> FnOnce(
                &'t DatabaseTransaction,
            ) -> Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send + 't>>
            + Clone
            + Send
            + Sync
            + 'static,
    {
        let outbox = self.outbox.clone();
        let rerunnable: Effect = Box::new(move |txn| {
            // What a rolled-back run enqueued was rolled back with it.
            outbox.clear();
            (effect.clone())(txn)
        });
        self.completions.record(self.completion(Value::Null), Some(rerunnable)).await?;
        dispatch_all(&self.queue, &self.outbox.take()).await;
        Ok(Completed(()))
    }

    fn attempt_log(&self, finished_at: DateTime<Utc>, error: Option<&str>) -> Value {
        attempt_log(&self.job, self.attempt, self.started_at, &self.worker_id, finished_at, error)
    }
}

/// The job's attempt log with this attempt appended; the last [`MAX_LOGGED_ATTEMPTS`] are kept.
pub fn attempt_log(
    job: &jobs::Model,
    attempt: i32,
    started_at: DateTime<Utc>,
    worker_id: &str,
    finished_at: DateTime<Utc>,
    error: Option<&str>,
) -> Value {
    let mut entries = match &job.attempt_log {
        Some(Value::Array(entries)) => entries.clone(),
        _ => Vec::new(),
    };
    entries.push(json!({
        "attempt": attempt,
        "startedAt": started_at,
        "finishedAt": finished_at,
        "worker": worker_id,
        "error": error,
    }));
    let excess = entries.len().saturating_sub(MAX_LOGGED_ATTEMPTS);
    entries.drain(..excess);
    Value::Array(entries)
}

pub const MAX_LOGGED_ATTEMPTS: usize = 25;
