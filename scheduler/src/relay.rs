//! The relay: re-pushes jobs that are due but that Redis no longer carries (Redis restarted or
//! was flushed, or the push after commit failed). The job row is the truth; a job is lost when
//! the metadata of its current push is gone from Redis, or when Redis has finished that push
//! while the row, due and unfinished past the grace period, still names it.

use std::collections::BTreeMap;

use chrono::Utc;
use sea_orm::{
    ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use tokio_util::sync::CancellationToken;
use ultra_entity::jobs::{self, JobStatus};
use ultra_jobs::{QueueClient, queue::Push};

use crate::{SchedulerSettings, leader::Leadership};

/// Rows examined per round; the relay walks the due jobs by id across rounds.
const ROUND: u64 = 500;

pub async fn run(
    db: DatabaseConnection,
    queue: QueueClient,
    leadership: Leadership,
    settings: SchedulerSettings,
    shutdown: CancellationToken,
) {
    let mut cursor = String::new();
    while !shutdown.is_cancelled() {
        if leadership.is_leader() {
            match relay_round(&db, &queue, &settings, &cursor).await {
                Ok(next) => cursor = next,
                Err(err) => tracing::warn!(error = %err, "relay round failed"),
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(settings.relay_interval) => {}
        }
    }
}

/// Examines the next due jobs after `cursor` and re-pushes the lost ones; returns the cursor
/// for the next round (empty to start over).
async fn relay_round(
    db: &DatabaseConnection,
    queue: &QueueClient,
    settings: &SchedulerSettings,
    cursor: &str,
) -> anyhow::Result<String> {
    let due_before = Utc::now() - chrono::Duration::from_std(settings.relay_grace)?;
    let rows: Vec<(String, String, Option<String>)> = jobs::Entity::find()
        .select_only()
        .columns([jobs::Column::Id, jobs::Column::Queue, jobs::Column::PushId])
        .filter(jobs::Column::Status.is_in([JobStatus::Queued, JobStatus::Running]))
        .filter(jobs::Column::RunAt.lte(due_before))
        .filter(jobs::Column::Id.gt(cursor))
        .order_by_asc(jobs::Column::Id)
        .limit(ROUND)
        .into_tuple()
        .all(db)
        .await?;
    let next = if (rows.len() as u64) < ROUND {
        String::new()
    } else {
        rows.last().map(|r| r.0.clone()).unwrap_or_default()
    };

    let mut by_queue: BTreeMap<String, Vec<(String, Option<String>)>> = BTreeMap::new();
    for (id, queue_name, push_id) in rows {
        by_queue.entry(queue_name).or_default().push((id, push_id));
    }
    let mut pushes = Vec::new();
    for (queue_name, jobs_in_queue) in by_queue {
        let push_ids: Vec<String> =
            jobs_in_queue.iter().map(|(_, p)| p.clone().unwrap_or_default()).collect();
        let live = queue.live_pushes(&queue_name, &push_ids).await?;
        for ((job_id, old_push), live) in jobs_in_queue.into_iter().zip(live) {
            if live && old_push.is_some() {
                continue;
            }
            let new_push = ulid::Ulid::new().to_string();
            let mut claim = jobs::Entity::update_many()
                .col_expr(jobs::Column::PushId, Expr::value(new_push.clone()))
                .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(jobs::Column::Id.eq(&job_id))
                .filter(jobs::Column::Status.is_in([JobStatus::Queued, JobStatus::Running]));
            claim = match &old_push {
                Some(old) => claim.filter(jobs::Column::PushId.eq(old)),
                None => claim.filter(jobs::Column::PushId.is_null()),
            };
            if claim.exec(db).await?.rows_affected == 1 {
                pushes.push(Push {
                    queue: queue_name.clone(),
                    push_id: new_push,
                    job_id,
                    run_at: Utc::now(),
                });
            }
        }
    }
    if !pushes.is_empty() {
        queue.push(&pushes).await?;
        metrics::counter!("jobs_relayed_total").increment(pushes.len() as u64);
        tracing::info!(count = pushes.len(), "relayed jobs Redis had lost");
    }
    Ok(next)
}
