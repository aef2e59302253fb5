//! Job rows, many at a time. Every delivery a worker runs starts by reading its job's row, and
//! most end by recording a completion with no other effect. Under load, the reads (and the
//! completions) wanted while one round trip is in flight go together in the next, so a busy
//! worker pays a round trip, and a commit, per batch instead of per job. Neither ever waits to
//! fill a batch, so a lone job costs no latency.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, Statement,
    UpdateMany, sea_query::Expr,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use ultra_entity::jobs::{self, JobStatus};

type Reply = oneshot::Sender<Result<Option<jobs::Model>, String>>;

/// Most rows read in one query.
const MAX_BATCH: usize = 128;

#[derive(Clone)]
pub struct RowReader {
    requests: mpsc::UnboundedSender<(String, Reply)>,
}

impl RowReader {
    /// Starts the task that reads for every clone of the reader.
    pub fn new(db: DatabaseConnection) -> Self {
        let (requests, pending) = mpsc::unbounded_channel();
        tokio::spawn(read_batches(db, pending));
        Self { requests }
    }

    /// The job row `id`, or `None` if there is no such job.
    pub async fn read(&self, id: &str) -> Result<Option<jobs::Model>, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((id.to_owned(), reply))
            .map_err(|_| DbErr::Custom("the job row reader has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the job row reader has stopped".to_owned()))?
            .map_err(DbErr::Custom)
    }
}

/// Waits for the first request, takes every other one already waiting, and answers them all
/// from one query.
async fn read_batches(db: DatabaseConnection, mut pending: mpsc::UnboundedReceiver<(String, Reply)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        match jobs::Entity::find().filter(jobs::Column::Id.is_in(ids)).all(&db).await {
            Ok(rows) => {
                let mut rows: HashMap<String, jobs::Model> =
                    rows.into_iter().map(|r| (r.id.clone(), r)).collect();
                for (id, reply) in batch.drain(..) {
                    let _ = reply.send(Ok(rows.remove(&id)));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

type Written = oneshot::Sender<Result<bool, String>>;

/// A run's success, to be recorded on its job row: the status, the attempt count and log, the
/// result and the times. It is recorded only for the run that owns the job's current push and
/// while the job is not finished, so of two concurrent deliveries exactly one records it.
pub struct Completion {
    pub job_id: String,
    pub push_id: String,
    pub attempts: i32,
    pub result: Value,
    pub attempt_log: Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl Completion {
    /// The conditional update that records this completion alone.
    pub fn update(&self) -> UpdateMany<jobs::Entity> {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(JobStatus::Succeeded))
            .col_expr(jobs::Column::Attempts, Expr::value(self.attempts))
            .col_expr(jobs::Column::Result, Expr::value(self.result.clone()))
            .col_expr(jobs::Column::AttemptLog, Expr::value(self.attempt_log.clone()))
            .col_expr(jobs::Column::StartedAt, Expr::value(self.started_at))
            .col_expr(jobs::Column::FinishedAt, Expr::value(self.finished_at))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(self.finished_at))
            .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
            .filter(jobs::Column::Id.eq(&self.job_id))
            .filter(jobs::Column::PushId.eq(&self.push_id))
            .filter(jobs::Column::Status.is_in([JobStatus::Queued, JobStatus::Running]))
    }
}

/// Records effect-free completions many at a time.
#[derive(Clone)]
pub struct CompletionWriter {
    requests: mpsc::UnboundedSender<(Completion, Written)>,
}

impl CompletionWriter {
    pub fn new(db: DatabaseConnection) -> Self {
        let (requests, pending) = mpsc::unbounded_channel();
        tokio::spawn(write_batches(db, pending));
        Self { requests }
    }

    /// Records `completion`, answering whether it was this run's to record.
    pub async fn write(&self, completion: Completion) -> Result<bool, DbErr> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((completion, reply))
            .map_err(|_| DbErr::Custom("the completion writer has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("the completion writer has stopped".to_owned()))?
            .map_err(DbErr::Custom)
    }
}

/// Each batch at once. If the write fails, every completion in it fails and its job is
/// retried, as a lone failed one would be.
async fn write_batches(db: DatabaseConnection, mut pending: mpsc::UnboundedReceiver<(Completion, Written)>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while pending.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let completions: Vec<&Completion> = batch.iter().map(|(completion, _)| completion).collect();
        match record(&db, &completions).await {
            Ok(recorded) => {
                for (completion, reply) in batch.drain(..) {
                    let _ = reply.send(Ok(recorded.contains(&completion.job_id)));
                }
            }
            Err(err) => {
                let message = err.to_string();
                for (_, reply) in batch.drain(..) {
                    let _ = reply.send(Err(message.clone()));
                }
            }
        }
    }
}

/// Records `completions` and returns the ids of the jobs whose completion was recorded. On
/// PostgreSQL that is one `UPDATE … FROM (VALUES …)` for the whole batch, so the batch costs
/// one statement to plan and one round trip; SQLite, whose writes are serialised anyway, runs
/// the conditional updates one by one in a transaction.
async fn record(db: &DatabaseConnection, completions: &[&Completion]) -> Result<HashSet<String>, DbErr> {
    let backend = db.get_database_backend();
    if backend == DbBackend::Postgres {
        let rows = db.query_all_raw(batch_update(completions)).await?;
        return rows.iter().map(|row| row.try_get::<String>("", "id")).collect();
    }
    let txn = ultra_domain::db::begin_write(db).await?;
    let mut recorded = HashSet::new();
    for completion in completions {
        if completion.update().exec(&txn).await?.rows_affected == 1 {
            recorded.insert(completion.job_id.clone());
        }
    }
    txn.commit().await?;
    Ok(recorded)
}

fn batch_update(completions: &[&Completion]) -> Statement {
    const COLUMNS: usize = 7;
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(completions.len() * COLUMNS);
    let mut rows = Vec::with_capacity(completions.len());
    for (index, completion) in completions.iter().enumerate() {
        let n = index * COLUMNS;
        rows.push(format!(
            "(${}, ${}, ${}::integer, ${}::json, ${}::json, ${}::timestamptz, ${}::timestamptz)",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5,
            n + 6,
            n + 7
        ));
        values.extend([
            completion.job_id.clone().into(),
            completion.push_id.clone().into(),
            completion.attempts.into(),
            completion.result.clone().into(),
            completion.attempt_log.clone().into(),
            completion.started_at.into(),
            completion.finished_at.into(),
        ]);
    }
    let sql = format!(
        "UPDATE jobs SET status = 'succeeded', attempts = v.attempts, result = v.result, \
         attempt_log = v.attempt_log, started_at = v.started_at, finished_at = v.finished_at, \
         updated_at = v.finished_at, locked_by = NULL \
         FROM (VALUES {}) AS v(id, push_id, attempts, result, attempt_log, started_at, finished_at) \
         WHERE jobs.id = v.id AND jobs.push_id = v.push_id AND jobs.status IN ('queued', 'running') \
         RETURNING jobs.id",
        rows.join(", ")
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
