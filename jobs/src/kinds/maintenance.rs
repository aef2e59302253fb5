//! Housekeeping the scheduler fires: nothing here is urgent, and each run only deletes or
//! expires what is past its time, so a repeated run is harmless.

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect, sea_query::Expr};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::runtime_config::RuntimeConfig;
use ultra_entity::{
    exports, idempotency_keys,
    jobs::{self, JobStatus},
    tokens::{self, TokenStatus},
};

use super::exports::delete_chunks;
use crate::job::{Completed, Job, JobContext, JobError};

/// Deletes idempotency keys past their TTL.
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeIdempotencyKeys;

impl Job for PurgeIdempotencyKeys {
    const KIND: &'static str = "maintenance.purge_idempotency_keys";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        ctx.finish(|txn| {
            Box::pin(async move {
                let deleted = idempotency_keys::Entity::delete_many()
                    .filter(idempotency_keys::Column::ExpiresAt.lte(Utc::now()))
                    .exec(txn)
                    .await?;
                Ok(json!({ "deleted": deleted.rows_affected }))
            })
        })
        .await
    }
}

/// Marks active tokens past their expiry as `expired`, so listings show what holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExpireTokens;

impl Job for ExpireTokens {
    const KIND: &'static str = "maintenance.expire_tokens";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        ctx.finish(|txn| {
            Box::pin(async move {
                let expired = tokens::Entity::update_many()
                    .col_expr(tokens::Column::Status, Expr::value(TokenStatus::Expired))
                    .filter(tokens::Column::Status.eq(TokenStatus::Active))
                    .filter(tokens::Column::ExpiresAt.lte(Utc::now()))
                    .exec(txn)
                    .await?;
                Ok(json!({ "expired": expired.rows_affected }))
            })
        })
        .await
    }
}

/// Deletes finished job rows older than the retention in runtime config.
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeFinishedJobs;

impl Job for PurgeFinishedJobs {
    const KIND: &'static str = "maintenance.purge_finished_jobs";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let retention_days = RuntimeConfig::load(&ctx.db).await?.job_retention_days;
        let cutoff = Utc::now() - chrono::Duration::days(i64::from(retention_days));
        // A job's id is a ULID, which begins with the job's creation time, and a job finished
        // before the cutoff was created before it: bounding the ids lets the purge read only
        // the oldest rows, through the primary key, however many the retention keeps.
        let created_before =
            ulid::Ulid::from_parts(u64::try_from(cutoff.timestamp_millis()).unwrap_or_default(), 0)
                .to_string();
        let own_id = ctx.job.id.clone();
        ctx.finish(move |txn| {
            Box::pin(async move {
                let deleted = jobs::Entity::delete_many()
                    .filter(jobs::Column::Status.is_in([
                        JobStatus::Succeeded,
                        JobStatus::Failed,
                        JobStatus::Dead,
                        JobStatus::Cancelled,
                    ]))
                    .filter(jobs::Column::FinishedAt.lte(cutoff))
                    .filter(jobs::Column::Id.lt(created_before))
                    .filter(jobs::Column::Id.ne(own_id))
                    .exec(txn)
                    .await?;
                Ok(json!({ "deleted": deleted.rows_affected }))
            })
        })
        .await
    }
}

/// Deletes exports past their expiry, with their files.
#[derive(Debug, Serialize, Deserialize)]
pub struct PurgeExpiredExports;

/// Exports deleted per transaction: a file can be hundreds of chunks, and a short transaction
/// per batch keeps a purge from holding locks that chunk writes wait on.
const EXPORTS_PER_PURGE: u64 = 50;

impl Job for PurgeExpiredExports {
    const KIND: &'static str = "maintenance.purge_expired_exports";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let now = Utc::now();
        let (mut deleted, mut chunks) = (0, 0);
        loop {
            let txn = ultra_domain::db::begin_write(&ctx.db).await?;
            let expired: Vec<String> = exports::Entity::find()
                .select_only()
                .column(exports::Column::Id)
                .filter(exports::Column::ExpiresAt.lte(now))
                .limit(EXPORTS_PER_PURGE)
                .into_tuple()
                .all(&txn)
                .await?;
            if expired.is_empty() {
                break;
            }
            chunks += delete_chunks(&txn, &expired).await?;
            deleted += exports::Entity::delete_many()
                .filter(exports::Column::Id.is_in(expired))
                .exec(&txn)
                .await?
                .rows_affected;
            txn.commit().await?;
        }
        ctx.conclude(json!({ "deleted": deleted, "chunks": chunks })).await
    }
}
