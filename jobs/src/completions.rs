//! Job completions, recorded many at a time together with the effects that go with them.
//!
//! A handler's effect and its job's completion commit together, so that of two deliveries of
//! one job exactly one applies its effect. Committing each job on its own would cost every job
//! a `BEGIN`, a conditional update and a `COMMIT` (with its WAL flush). Instead completions are
//! committed in groups ([`crate::batches`]): one transaction claims the group's job rows, runs
//! the effects one after another, records every completion in one statement and commits once.
//!
//! An effect that fails must leave nothing behind, yet guarding each with a savepoint would
//! cost every job another round trip. So a group first runs bare; if one of its effects fails,
//! the whole transaction rolls back, that effect keeps its error, and the rest run again, this
//! time each behind its own savepoint. An effect may therefore run twice, and is written so
//! that it can ([`JobContext::finish`](crate::JobContext::finish)).
//!
//! The effects' credits are held and applied at the group's end in one global order
//! ([`held`]), so that groups committing at once never deadlock on balances.

use std::{collections::HashSet, future::Future, pin::Pin};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement, UpdateMany, sea_query::Expr,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use ultra_entity::jobs::{self, JobStatus};

use ultra_domain::ledger::held;

use crate::{QueueClient, batches, job::JobError};

/// A handler's database change, run in the transaction that records its job's completion; it
/// returns the job's result. It may be called again after a rolled-back run.
pub type Effect = Box<
    dyn for<'t> Fn(
            &'t DatabaseTransaction,
        ) -> Pin<Box<dyn Future<Output = Result<Value, JobError>> + Send + 't>>
        + Send
        + Sync,
>;

/// Most completions committed together. A group run again gives each effect a subtransaction,
/// and PostgreSQL tracks up to 64 of a transaction's subtransactions cheaply; past that every
/// snapshot taken anywhere slows down.
const MAX_GROUP: usize = 32;

/// A run's success, to be recorded on its job row: the status, the attempt count and log, the
/// result and the times. It is recorded only for the run that owns the job's current push and
/// while the job is not finished, so of two concurrent deliveries exactly one records it.
pub struct Completion {
    pub job_id: String,
    pub push_id: String,
    pub attempts: i32,
    /// What the job returned; a completion that comes with an effect takes the effect's.
    pub result: Value,
    pub attempt_log: Value,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
}

impl Completion {
    /// The conditional update that records this completion alone, with `result`.
    fn update(&self, result: Value) -> UpdateMany<jobs::Entity> {
        jobs::Entity::update_many()
            .col_expr(jobs::Column::Status, Expr::value(JobStatus::Succeeded))
            .col_expr(jobs::Column::Attempts, Expr::value(self.attempts))
            .col_expr(jobs::Column::Result, Expr::value(result))
            .col_expr(jobs::Column::AttemptLog, Expr::value(self.attempt_log.clone()))
            .col_expr(jobs::Column::StartedAt, Expr::value(self.started_at))
            .col_expr(jobs::Column::FinishedAt, Expr::value(self.finished_at))
            .col_expr(jobs::Column::UpdatedAt, Expr::value(self.finished_at))
            .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
            .filter(self.current())
    }

    /// The job row as this run found it: its push, and not finished.
    fn current(&self) -> Condition {
        Condition::all()
            .add(jobs::Column::Id.eq(&self.job_id))
            .add(jobs::Column::PushId.eq(&self.push_id))
            .add(jobs::Column::Status.is_in([JobStatus::Queued, JobStatus::Running]))
    }
}

struct Request {
    completion: Completion,
    effect: Option<Effect>,
    reply: oneshot::Sender<Outcome>,
}

/// What became of one completion: recorded, refused as no longer the run's, or its effect's
/// error.
type Outcome = Result<(), JobError>;

/// Where a worker's runs send their completions.
#[derive(Clone)]
pub struct Completions {
    requests: mpsc::UnboundedSender<Request>,
}

impl Completions {
    /// Starts the tasks that commit for every clone, and announce what they committed on
    /// `queue`.
    pub fn new(db: DatabaseConnection, queue: QueueClient) -> Self {
        let requests = batches::serve(batches::writers(&db), MAX_GROUP, move |group| {
            commit_group(db.clone(), queue.clone(), group)
        });
        Self { requests }
    }

    /// Records `completion`, after applying `effect` (whose result replaces the completion's)
    /// in the same transaction. It is refused with [`JobError::AlreadyCompleted`] when the
    /// run no longer owns its job, and then the effect is not applied.
    pub async fn record(&self, completion: Completion, effect: Option<Effect>) -> Outcome {
        let stopped = || JobError::Transient("the completion writer has stopped".to_owned());
        let (reply, answer) = oneshot::channel();
        self.requests.send(Request { completion, effect, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// Commits a group, answers each of its requests, and announces the jobs completed.
async fn commit_group(db: DatabaseConnection, queue: QueueClient, group: Vec<Request>) {
    metrics::histogram!("job_completion_group_size").record(group.len() as f64);
    let (work, replies): (Vec<_>, Vec<_>) =
        group.into_iter().map(|Request { completion, effect, reply }| ((completion, effect), reply)).unzip();
    match commit(&db, &work).await {
        Ok(outcomes) => {
            let completed: Vec<String> = work
                .iter()
                .zip(&outcomes)
                .filter(|(_, outcome)| outcome.is_ok())
                .map(|((completion, _), _)| completion.job_id.clone())
                .collect();
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(outcome);
            }
            if !completed.is_empty() {
                queue.announce_done(&completed).await;
            }
        }
        Err(err) => {
            let message = format!("database: {err}");
            for reply in replies {
                let _ = reply.send(Err(JobError::Transient(message.clone())));
            }
        }
    }
}

/// Commits one group: bare first, and if an effect fails, the others again behind savepoints.
/// An `Err` means a transaction itself failed and nothing of the group was recorded;
/// otherwise each completion's own outcome, in order.
async fn commit(
    db: &DatabaseConnection,
    work: &[(Completion, Option<Effect>)],
) -> Result<Vec<Outcome>, DbErr> {
    match held::holding(run(db, work, None)).await? {
        Run::Committed(outcomes) => Ok(outcomes),
        Run::Failed(_, err) if work.len() == 1 => Ok(vec![Err(err)]),
        Run::Failed(index, err) => {
            metrics::counter!("job_completion_groups_rerun_total").increment(1);
            let Run::Committed(mut outcomes) = held::holding(run(db, work, Some(index))).await? else {
                unreachable!("a run with savepoints commits whatever its effects do")
            };
            outcomes[index] = Err(err);
            Ok(outcomes)
        }
    }
}

/// How a run of a group ended.
enum Run {
    Committed(Vec<Outcome>),
    /// A bare run's effect at this index failed, and the transaction was rolled back.
    Failed(usize, JobError),
}

/// Runs the group in one transaction. Without `failed`, effects run bare and the first to fail
/// rolls everything back; with it, the effect at that index is left out and each of the others
/// runs behind its own savepoint, so one that fails is undone alone.
async fn run(
    db: &DatabaseConnection,
    work: &[(Completion, Option<Effect>)],
    failed: Option<usize>,
) -> Result<Run, DbErr> {
    let effectful =
        work.iter().enumerate().filter(|(index, (_, effect))| effect.is_some() && Some(*index) != failed);
    let matching =
        effectful.fold(Condition::any(), |any, (_, (completion, _))| any.add(completion.current()));
    if matching.is_empty() && db.get_database_backend() == DbBackend::Postgres {
        // No effect to run: the one statement that records the group's other completions is
        // atomic on its own. (The failed effect's completion is not among them.)
        let results: Vec<_> = work
            .iter()
            .filter(|(_, effect)| effect.is_none())
            .map(|(completion, _)| (completion, completion.result.clone()))
            .collect();
        let recorded = record(db, &results).await?;
        return Ok(Run::Committed(refusing_unrecorded(
            work,
            work.iter().map(|_| Ok(())).collect(),
            &recorded,
        )));
    }
    let txn = ultra_domain::db::begin_write(db).await?;
    let claimed = claim(&txn, matching).await?;
    let mut outcomes = Vec::with_capacity(work.len());
    let mut results = Vec::with_capacity(work.len());
    for (index, (completion, effect)) in work.iter().enumerate() {
        let Some(effect) = effect else {
            outcomes.push(Ok(()));
            results.push((completion, completion.result.clone()));
            continue;
        };
        if Some(index) == failed {
            outcomes.push(Ok(()));
            continue;
        }
        if !claimed.contains(&completion.job_id) {
            outcomes.push(Err(JobError::AlreadyCompleted));
            continue;
        }
        // Savepoints are never released: the commit releases them all, and a failed effect
        // rolls back to its own, which only ever follows those of effects that succeeded.
        let savepoint = failed.map(|_| (format!("effect_{index}"), held::mark()));
        if let Some((savepoint, _)) = &savepoint {
            txn.execute_unprepared(&format!("SAVEPOINT {savepoint}")).await?;
        }
        match (effect(&txn).await, savepoint) {
            (Ok(result), _) => {
                outcomes.push(Ok(()));
                results.push((completion, result));
            }
            (Err(err), Some((savepoint, credits))) => {
                txn.execute_unprepared(&format!("ROLLBACK TO SAVEPOINT {savepoint}")).await?;
                held::restore(credits);
                outcomes.push(Err(err));
            }
            (Err(err), None) => {
                txn.rollback().await?;
                return Ok(Run::Failed(index, err));
            }
        }
    }
    held::apply(&txn).await?;
    let recorded = record(&txn, &results).await?;
    txn.commit().await?;
    Ok(Run::Committed(refusing_unrecorded(work, outcomes, &recorded)))
}

/// Turns the outcome of each completion with no effect into a refusal unless its update
/// matched: its job had been finished by another run. (Claimed jobs always match.)
fn refusing_unrecorded(
    work: &[(Completion, Option<Effect>)],
    mut outcomes: Vec<Outcome>,
    recorded: &HashSet<String>,
) -> Vec<Outcome> {
    for ((completion, effect), outcome) in work.iter().zip(&mut outcomes) {
        if effect.is_none() && !recorded.contains(&completion.job_id) {
            *outcome = Err(JobError::AlreadyCompleted);
        }
    }
    outcomes
}

/// Locks the rows `matching` the jobs whose effects are about to run, in id order so that two
/// groups never wait on each other, and returns the ids of those still this run's to complete.
/// A concurrent delivery of one of them then waits for this transaction, and finds it finished.
async fn claim(txn: &DatabaseTransaction, matching: Condition) -> Result<HashSet<String>, DbErr> {
    if matching.is_empty() {
        return Ok(HashSet::new());
    }
    let ids: Vec<String> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(matching)
        .order_by_asc(jobs::Column::Id)
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?;
    Ok(ids.into_iter().collect())
}

/// Records `completions` and returns the ids of the jobs whose completion was recorded. On
/// PostgreSQL that is one `UPDATE … FROM (VALUES …)` for the whole group, so the group costs
/// one statement to plan and one round trip; SQLite, whose writes are serialised anyway, runs
/// the conditional updates one by one.
async fn record(
    db: &impl ConnectionTrait,
    completions: &[(&Completion, Value)],
) -> Result<HashSet<String>, DbErr> {
    if completions.is_empty() {
        return Ok(HashSet::new());
    }
    if db.get_database_backend() == DbBackend::Postgres {
        let rows = db.query_all_raw(batch_update(completions)).await?;
        return rows.iter().map(|row| row.try_get::<String>("", "id")).collect();
    }
    let mut recorded = HashSet::new();
    for (completion, result) in completions {
        if completion.update(result.clone()).exec(db).await?.rows_affected == 1 {
            recorded.insert(completion.job_id.clone());
        }
    }
    Ok(recorded)
}

fn batch_update(completions: &[(&Completion, Value)]) -> Statement {
    const COLUMNS: usize = 7;
    let mut values: Vec<sea_orm::Value> = Vec::with_capacity(completions.len() * COLUMNS);
    let mut rows = Vec::with_capacity(completions.len());
    for (index, (completion, result)) in completions.iter().enumerate() {
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
            result.clone().into(),
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
