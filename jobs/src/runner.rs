//! What a worker does with one delivery: check it is the job's current push, run the handler
//! with panics caught, and record the outcome on the job row.

use std::{panic::AssertUnwindSafe, sync::Arc, time::Instant};

use chrono::Utc;
use futures::FutureExt;
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect, QueryTrait,
    sea_query::{Expr, LockBehavior, LockType},
};
use tokio::sync::mpsc;
use ultra_domain::backoff;
use ultra_entity::jobs::{self, JobStatus};

use crate::{
    JobEnv,
    completions::Completions,
    job::{JobContext, JobError, attempt_log},
    queue::{Push, QueueClient},
    registry::Registry,
    rows::RowReader,
};

pub struct Runner {
    pub db: DatabaseConnection,
    pub queue: QueueClient,
    pub registry: Registry,
    pub worker_id: String,
    pub env: Arc<JobEnv>,
    progress: mpsc::UnboundedSender<Progress>,
    rows: RowReader,
    completions: Completions,
}

/// Why a delivery did not run its handler.
#[derive(Debug, PartialEq, Eq)]
pub enum Skipped {
    UnknownJob,
    AlreadyFinished,
    StalePush,
}

impl Runner {
    /// Builds a runner and the task that marks started jobs `running` in batches, so that
    /// starting a job costs no commit of its own, and a job that finishes before its batch is
    /// written costs no write at all.
    pub fn new(
        db: DatabaseConnection,
        queue: QueueClient,
        registry: Registry,
        worker_id: String,
        env: Arc<JobEnv>,
    ) -> Arc<Self> {
        let (progress, batch) = mpsc::unbounded_channel();
        tokio::spawn(mark_running(db.clone(), worker_id.clone(), batch));
        let rows = RowReader::new(db.clone());
        let completions = Completions::new(db.clone(), queue.clone());
        Arc::new(Self { db, queue, registry, worker_id, env, progress, rows, completions })
    }

    /// Runs the delivery `push_id` of job `job_id`. An `Err` means the outcome could not be
    /// recorded (the database is unreachable), and apalis should deliver it again later.
    pub async fn execute(&self, job_id: &str, push_id: &str) -> Result<Option<Skipped>, JobError> {
        let Some(job) = self.rows.read(job_id).await? else {
            tracing::warn!(job_id, "delivery for a job that does not exist");
            return Ok(Some(Skipped::UnknownJob));
        };
        if job.status.is_terminal() {
            return Ok(Some(Skipped::AlreadyFinished));
        }
        if job.push_id.as_deref() != Some(push_id) {
            tracing::debug!(job_id, push_id, "stale delivery; the job was pushed again since");
            return Ok(Some(Skipped::StalePush));
        }
        let kind = job.kind.clone();
        metrics::counter!("jobs_started_total", "kind" => kind.clone()).increment(1);
        let started_at = Utc::now();
        if let Ok(wait) = (started_at - job.run_at).to_std() {
            metrics::histogram!("job_queue_wait_seconds", "kind" => kind.clone()).record(wait.as_secs_f64());
        }
        let _ = self.progress.send(Progress::Started(Started {
            job_id: job.id.clone(),
            push_id: push_id.to_owned(),
            first: job.started_at.is_none(),
        }));

        let ctx = JobContext::new(
            self.db.clone(),
            job.clone(),
            push_id.to_owned(),
            started_at,
            self.worker_id.clone(),
            Arc::clone(&self.env),
            self.queue.clone(),
            self.completions.clone(),
        );
        let clock = Instant::now();
        let outcome = match self.registry.get(&kind) {
            None => Err(JobError::Permanent(format!("no handler for job kind {kind}"))),
            Some(handler) => {
                let handler = handler.clone();
                AssertUnwindSafe(handler.run(ctx, job.payload.clone())).catch_unwind().await.unwrap_or_else(
                    |panic| Err(JobError::Transient(format!("handler panicked: {}", panic_message(&panic)))),
                )
            }
        };
        let elapsed = clock.elapsed().as_secs_f64();
        let _ = self.progress.send(Progress::Finished { push_id: push_id.to_owned() });
        match outcome {
            Ok(_completed) => {
                metrics::counter!("jobs_succeeded_total", "kind" => kind.clone()).increment(1);
                metrics::histogram!("job_duration_seconds", "kind" => kind, "outcome" => "succeeded")
                    .record(elapsed);
            }
            Err(JobError::AlreadyCompleted) => {
                tracing::info!(job_id, "another delivery completed this job first; this run rolled back");
            }
            Err(err) => {
                metrics::histogram!("job_duration_seconds", "kind" => kind.clone(), "outcome" => "failed")
                    .record(elapsed);
                self.record_failure(&job, push_id, started_at, &err).await?;
            }
        }
        Ok(None)
    }

    async fn record_failure(
        &self,
        job: &jobs::Model,
        push_id: &str,
        started_at: chrono::DateTime<Utc>,
        err: &JobError,
    ) -> Result<(), JobError> {
        let attempt = job.attempts + 1;
        let message = err.to_string();
        let now = Utc::now();
        let (status, retry) = match err {
            JobError::Permanent(_) => (JobStatus::Failed, None),
            _ if attempt >= job.max_attempts => (JobStatus::Dead, None),
            _ => {
                let (base, cap) = self
                    .registry
                    .get(&job.kind)
                    .map(|h| (h.base_backoff, h.max_backoff))
                    .unwrap_or((std::time::Duration::from_secs(1), std::time::Duration::from_secs(600)));
                let delay = backoff::delay(base, cap, u32::try_from(attempt).unwrap_or(u32::MAX));
                let run_at = now + chrono::Duration::from_std(delay).unwrap_or_default();
                (JobStatus::Queued, Some((ulid::Ulid::new().to_string(), run_at)))
            }
        };
        let log = attempt_log(job, attempt, started_at, &self.worker_id, now, Some(&err.for_operators()));
        let mut update = jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(status))
            .col_expr(jobs::Column::Attempts, Expr::value(attempt))
            .col_expr(jobs::Column::LastError, Expr::value(message.clone()))
            .col_expr(jobs::Column::AttemptLog, Expr::value(log))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
            .col_expr(jobs::Column::StartedAt, Expr::value(job.started_at.unwrap_or(started_at)))
            .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None));
        update = match &retry {
            Some((next_push, run_at)) => update
                .col_expr(jobs::Column::PushId, Expr::value(next_push.clone()))
                .col_expr(jobs::Column::RunAt, Expr::value(*run_at)),
            None => update.col_expr(jobs::Column::FinishedAt, Expr::value(now)),
        };
        let updated = update
            .filter(jobs::Column::Id.eq(&job.id))
            .filter(jobs::Column::PushId.eq(push_id))
            .filter(jobs::Column::Status.is_in([JobStatus::Queued, JobStatus::Running]))
            .exec(&self.db)
            .await?;
        if updated.rows_affected == 0 {
            return Ok(());
        }
        let kind = job.kind.clone();
        match retry {
            Some((next_push, run_at)) => {
                metrics::counter!("jobs_retried_total", "kind" => kind).increment(1);
                tracing::info!(job_id = %job.id, attempt, error = %err.for_operators(), %run_at, "job failed; retrying");
                let push =
                    Push { queue: job.queue.clone(), push_id: next_push, job_id: job.id.clone(), run_at };
                if let Err(err) = self.queue.push(&[push]).await {
                    tracing::warn!(error = %err, job_id = %job.id, "retry push failed; the relay will re-push");
                }
            }
            None => {
                let counter = if status == JobStatus::Dead { "jobs_dead_total" } else { "jobs_failed_total" };
                metrics::counter!(counter, "kind" => kind).increment(1);
                tracing::warn!(job_id = %job.id, attempt, error = %err.for_operators(), status = ?status, "job gave up");
                self.queue.announce_done(std::slice::from_ref(&job.id)).await;
            }
        }
        Ok(())
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned())
}

/// What the batch marker hears of a delivery: its handler started, or is done.
enum Progress {
    Started(Started),
    Finished { push_id: String },
}

/// A delivery whose handler has started.
struct Started {
    job_id: String,
    push_id: String,
    /// The job's first attempt: its `started_at` is set now.
    first: bool,
}

/// Marks started jobs `running` a batch at a time. Only rows still `queued` under the push
/// that started them change, so a job that already finished or was rescheduled is left alone.
/// Rows locked by a transaction recording their completion are skipped rather than waited
/// for: that transaction finishes them anyway, and it locks a whole group of rows, so waiting
/// while holding this batch's could deadlock with it.
async fn mark_running(
    db: DatabaseConnection,
    worker_id: String,
    mut progress: mpsc::UnboundedReceiver<Progress>,
) {
    let mut batch = Vec::new();
    while progress.recv_many(&mut batch, 1000).await > 0 {
        let now = Utc::now();
        let mut started = Vec::new();
        let mut finished = std::collections::HashSet::new();
        for item in batch.drain(..) {
            match item {
                Progress::Started(delivery) => started.push(delivery),
                Progress::Finished { push_id } => {
                    finished.insert(push_id);
                }
            }
        }
        // A delivery already done has recorded its outcome; marking it would only be refused.
        started.retain(|delivery| !finished.contains(&delivery.push_id));
        let (first, again): (Vec<Started>, Vec<Started>) = started.into_iter().partition(|s| s.first);
        for (rows, set_started) in [(first, true), (again, false)] {
            if rows.is_empty() {
                continue;
            }
            let mut matching = Condition::any();
            for row in rows {
                matching = matching.add(
                    Condition::all()
                        .add(jobs::Column::Id.eq(row.job_id))
                        .add(jobs::Column::PushId.eq(row.push_id)),
                );
            }
            let mut update = jobs::Entity::update_many()
                .col_expr(jobs::Column::Status, Expr::value(JobStatus::Running))
                .col_expr(jobs::Column::LockedBy, Expr::value(worker_id.clone()))
                .col_expr(jobs::Column::UpdatedAt, Expr::value(now));
            if set_started {
                update = update.col_expr(jobs::Column::StartedAt, Expr::value(now));
            }
            let unlocked = jobs::Entity::find()
                .select_only()
                .column(jobs::Column::Id)
                .filter(jobs::Column::Status.eq(JobStatus::Queued))
                .filter(matching)
                .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                .into_query();
            let marked = update
                .filter(jobs::Column::Status.eq(JobStatus::Queued))
                .filter(jobs::Column::Id.in_subquery(unlocked))
                .exec(&db)
                .await;
            if let Err(err) = marked {
                tracing::debug!(error = %err, "could not mark jobs running; their status catches up when they finish");
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
