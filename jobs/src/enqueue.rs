//! The one enqueue path: a job row in the caller's transaction, pushed to Redis after commit.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryTrait,
    sea_query::{InsertStatement, OnConflict},
};
use ultra_entity::jobs::{self, JobStatus};

use crate::{
    job::Job,
    queue::{Push, QueueClient},
};

/// A job to enqueue, with what the row records besides its payload.
pub struct NewJob<'a, J: Job> {
    pub job: &'a J,
    /// Enqueueing the same key twice is a no-op that returns the first job.
    pub unique_key: Option<String>,
    /// The merchant the job works for; only they (and admins) see it.
    pub owner_id: Option<String>,
    /// The resource the job works on, linked from the job status.
    pub resource: Option<(&'static str, String)>,
    pub run_at: Option<DateTime<Utc>>,
    /// Overrides the kind's [`Job::MAX_ATTEMPTS`].
    pub max_attempts: Option<i32>,
}

impl<'a, J: Job> NewJob<'a, J> {
    pub fn new(job: &'a J) -> Self {
        Self { job, unique_key: None, owner_id: None, resource: None, run_at: None, max_attempts: None }
    }

    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    pub fn owner(mut self, owner_id: impl Into<String>) -> Self {
        self.owner_id = Some(owner_id.into());
        self
    }

    pub fn resource(mut self, resource_type: &'static str, id: impl Into<String>) -> Self {
        self.resource = Some((resource_type, id.into()));
        self
    }

    pub fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = Some(max_attempts.max(1));
        self
    }

    pub fn run_at(mut self, run_at: DateTime<Utc>) -> Self {
        self.run_at = Some(run_at);
        self
    }
}

/// A job row written in a transaction that has not been pushed yet. Push it with
/// [`Enqueued::dispatch`] once the transaction has committed; if that push is lost, the
/// scheduler's relay pushes the row again.
#[must_use = "an enqueued job must be dispatched after its transaction commits"]
pub struct Enqueued {
    pub job: jobs::Model,
    push: Option<Push>,
}

impl Enqueued {
    /// Pushes after commit. A failure is logged, not returned: the row is committed and the
    /// relay will carry it, so the caller's request has still succeeded.
    pub async fn dispatch(self, queue: &QueueClient) -> jobs::Model {
        dispatch_all(queue, std::slice::from_ref(&self)).await;
        self.job
    }
}

/// Pushes many enqueued jobs in as few Redis calls as possible.
pub async fn dispatch_all(queue: &QueueClient, enqueued: &[Enqueued]) {
    let pushes: Vec<Push> = enqueued.iter().filter_map(|e| e.push.clone()).collect();
    if pushes.is_empty() {
        return;
    }
    match tokio::time::timeout(PUSH_BUDGET, queue.push(&pushes)).await {
        Ok(Ok(())) => {
            for e in enqueued.iter().filter(|e| e.push.is_some()) {
                metrics::counter!("jobs_enqueued_total", "kind" => e.job.kind.clone()).increment(1);
            }
        }
        Ok(Err(err)) => {
            tracing::warn!(error = %err, count = pushes.len(), "push after commit failed; the relay will re-push")
        }
        Err(_) => {
            tracing::warn!(count = pushes.len(), "push after commit timed out; the relay will re-push")
        }
    }
}

/// The longest a push after commit may take. The rows are committed and the relay carries
/// whatever Redis did not take, so a request never waits on a Redis that is down or stalled
/// for more than this.
const PUSH_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// Enqueues a job on its own and pushes it at once: for a request whose only effect is the job.
pub async fn enqueue_now<J: Job>(
    db: &sea_orm::DatabaseConnection,
    queue: &QueueClient,
    new: NewJob<'_, J>,
) -> Result<jobs::Model, DbErr> {
    let txn = ultra_domain::db::begin_write(db).await.map_err(|err| DbErr::Custom(err.to_string()))?;
    let enqueued = enqueue(&txn, new).await?;
    txn.commit().await?;
    Ok(enqueued.dispatch(queue).await)
}

/// Writes the job row in `db` (normally the caller's transaction).
pub async fn enqueue<J: Job>(db: &impl ConnectionTrait, new: NewJob<'_, J>) -> Result<Enqueued, DbErr> {
    let unique_key = new.unique_key.clone();
    let enqueued = prepare(new)?;
    let mut insert = insert_rows([&enqueued]);
    insert.on_conflict(OnConflict::column(jobs::Column::UniqueKey).do_nothing().to_owned());
    if db.execute(&insert).await?.rows_affected() == 0 {
        let existing = jobs::Entity::find()
            .filter(jobs::Column::UniqueKey.eq(unique_key))
            .one(db)
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("job with this unique key".to_owned()))?;
        return Ok(Enqueued { job: existing, push: None });
    }
    Ok(enqueued)
}

/// The job's row, not yet written: [`insert_rows`] writes it, with a caller's own rows
/// ([`ultra_domain::db::insert_all`]).
pub fn prepare<J: Job>(new: NewJob<'_, J>) -> Result<Enqueued, DbErr> {
    let now = Utc::now();
    let id = ulid::Ulid::new().to_string();
    let push_id = ulid::Ulid::new().to_string();
    let run_at = new.run_at.unwrap_or(now);
    let payload =
        serde_json::to_value(new.job).map_err(|err| DbErr::Custom(format!("job payload: {err}")))?;
    let (resource_type, resource_id) =
        new.resource.map_or((None, None), |(t, id)| (Some(t.to_owned()), Some(id)));
    let job = jobs::Model {
        id: id.clone(),
        kind: J::KIND.to_owned(),
        queue: J::QUEUE.to_owned(),
        payload,
        status: JobStatus::Queued,
        run_at,
        attempts: 0,
        max_attempts: new.max_attempts.unwrap_or(J::MAX_ATTEMPTS),
        unique_key: new.unique_key.clone(),
        last_error: None,
        result: None,
        owner_id: new.owner_id,
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        push_id: Some(push_id.clone()),
        attempt_log: None,
        locked_by: None,
        resource_type,
        resource_id,
    };
    let push = Push { queue: J::QUEUE.to_owned(), push_id, job_id: id, run_at };
    Ok(Enqueued { job, push: Some(push) })
}

/// One insert of the rows of jobs [`prepare`]d. It has no conflict clause, so it is only for
/// jobs whose unique keys are new, such as ones that name rows written in the same statement:
/// a key that exists fails the statement instead of being skipped.
pub fn insert_rows<'a>(enqueued: impl IntoIterator<Item = &'a Enqueued>) -> InsertStatement {
    jobs::Entity::insert_many(
        enqueued.into_iter().map(|e| jobs::ActiveModel::from(e.job.clone()).reset_all()),
    )
    .into_query()
}
