//! What a job kind is, and what its handler may do.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use ultra_entity::jobs;

use crate::{
    JobEnv, QueueClient,
    enqueue::{Enqueued, NewJob, dispatch_all, enqueue},
    rows::{Completion, CompletionWriter},
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

    /// Does the work. A handler that changes the database calls [`JobContext::complete`] inside
    /// the transaction that makes the change, and commits it; the [`Completed`] it gets back is
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

/// Proof that a handler recorded its job's completion; only [`JobContext::complete`] makes one.
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
    completions: CompletionWriter,
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
        completions: CompletionWriter,
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
        }
    }

    /// Where a handler's effect puts the jobs it enqueues; [`JobContext::finish`] pushes them
    /// after its commit.
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Marks the job succeeded inside the handler's transaction. It only succeeds for the run
    /// that owns the current push and while the job is not yet finished, so of two concurrent
    /// deliveries exactly one commits its effect.
    pub async fn complete(&self, db: &impl ConnectionTrait, result: Value) -> Result<Completed, JobError> {
        let updated = self.completion(result).update().exec(db).await?;
        if updated.rows_affected == 1 { Ok(Completed(())) } else { Err(JobError::AlreadyCompleted) }
    }

    /// This run's success with `result`.
    fn completion(&self, result: Value) -> Completion {
        let now = Utc::now();
        Completion {
            job_id: self.job.id.clone(),
            push_id: self.push_id.clone(),
            attempts: self.attempt,
            result,
            attempt_log: self.attempt_log(now, None),
            started_at: self.job.started_at.unwrap_or(self.started_at),
            finished_at: now,
        }
    }

    /// Records the job's completion with `result` and no other effect, for handlers that found
    /// nothing to change: written together with other jobs' completions.
    pub async fn conclude(&self, result: Value) -> Result<Completed, JobError> {
        if self.completions.write(self.completion(result)).await? {
            Ok(Completed(()))
        } else {
            Err(JobError::AlreadyCompleted)
        }
    }

    /// Runs `effect` in a write transaction and records the job's completion, with the effect's
    /// result, in that same transaction: the usual shape of a handler that changes the database.
    pub async fn finish<F>(&self, effect: F) -> Result<Completed, JobError>
    where
        F: for<'t> FnOnce(
            &'t DatabaseTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send + 't>>,
    {
        let txn = ultra_domain::db::begin_write(&self.db).await?;
        let result = effect(&txn).await?;
        let completed = self.complete(&txn, result).await?;
        txn.commit().await?;
        dispatch_all(&self.queue, &self.outbox.take()).await;
        Ok(completed)
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
