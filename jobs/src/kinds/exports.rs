//! Building an export's CSV file into `export_chunks`, a chunk at a time, so that a worker's
//! memory is one batch of rows and one chunk however large the file grows, and any API replica
//! can serve the file.
//!
//! A run starts the file over: it deletes whatever chunks an earlier run (a worker killed
//! mid-export) left, and fences the export with its own start time, which every chunk write
//! checks. Of two runs of one export only the latest writes, and the file is whole or absent,
//! never a mix of two runs.

use std::time::{Duration, Instant};

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    sea_query::Expr,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::csv_export::{AuditLogs, CsvReader, CsvTable, ExportFilter, Payments, Subscriptions};
use ultra_entity::{
    export_chunks,
    exports::{self, ExportStatus},
};

use crate::job::{Completed, Job, JobContext, JobError};

/// A chunk is written once the buffer holds this much: the unit a download holds in memory,
/// and how often progress moves.
const CHUNK_BYTES: usize = 1 << 20;

/// What a client reads in `error` when the file could not be built; the cause is on the job.
const FAILED: &str = "the file could not be built; ask for a new export";

/// Writes the CSV file of one export.
#[derive(Debug, Serialize, Deserialize)]
pub struct BuildExport {
    pub export_id: String,
}

impl Job for BuildExport {
    const KIND: &'static str = "exports.build";
    /// Its own queue, with few slots per worker: an export runs for minutes and holds a chunk
    /// of memory, and must not keep payments or webhooks waiting.
    const QUEUE: &'static str = "exports";
    const MAX_ATTEMPTS: i32 = 5;
    const BASE_BACKOFF: Duration = Duration::from_secs(5);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let Some(export) = exports::Entity::find_by_id(self.export_id.as_str()).one(&ctx.db).await? else {
            return ctx.conclude(json!({ "note": "the export no longer exists" })).await;
        };
        if matches!(export.status, ExportStatus::Completed | ExportStatus::Failed) {
            return ctx.conclude(json!({ "status": export.status, "note": "already finished" })).await;
        }
        let built = match ExportFilter::from_stored(export.kind, &export.filters) {
            Ok(ExportFilter::Payments(filter)) => build::<Payments>(&ctx, &export.id, &filter).await,
            Ok(ExportFilter::Subscriptions(filter)) => {
                build::<Subscriptions>(&ctx, &export.id, &filter).await
            }
            Ok(ExportFilter::AuditLogs(filter)) => build::<AuditLogs>(&ctx, &export.id, &filter).await,
            Err(err) => Err(JobError::Permanent(err.to_string())),
        };
        if let Err(err) = &built {
            let last_attempt = ctx.attempt >= ctx.job.max_attempts;
            if matches!(err, JobError::Permanent(_))
                || (last_attempt && !matches!(err, JobError::AlreadyCompleted))
            {
                give_up(&ctx.db, &export.id).await?;
            }
        }
        built
    }
}

/// This run's hold on an export, and what it has written so far.
#[derive(Clone)]
struct Run {
    export_id: String,
    /// The run's start time as stored in `started_at`: a chunk is written only while the
    /// export still carries it, so a newer run of the same export stops this one.
    fence: DateTime<Utc>,
    chunks: i32,
    rows: i64,
    bytes: i64,
}

/// Starts the file over for this run: `None` when the export is no longer waiting to be built.
async fn start(db: &DatabaseConnection, export_id: &str) -> Result<Option<Run>, JobError> {
    // Stored timestamps keep microseconds; the fence must compare equal after a round trip.
    let fence = Utc::now().trunc_subsecs(6);
    let txn = ultra_domain::db::begin_write(db).await?;
    let claimed = exports::Entity::update_many()
        .col_expr(exports::Column::Status, Expr::value(ExportStatus::Running))
        .col_expr(exports::Column::StartedAt, Expr::value(fence))
        .col_expr(exports::Column::RowsWritten, Expr::value(0i64))
        .col_expr(exports::Column::BytesWritten, Expr::value(0i64))
        .filter(exports::Column::Id.eq(export_id))
        .filter(exports::Column::Status.is_in([ExportStatus::Queued, ExportStatus::Running]))
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        return Ok(None);
    }
    delete_chunks(&txn, &[export_id.to_owned()]).await?;
    txn.commit().await?;
    Ok(Some(Run { export_id: export_id.to_owned(), fence, chunks: 0, rows: 0, bytes: 0 }))
}

impl Run {
    /// Appends `data`, holding `rows` rows, as the next chunk and moves the progress on, in
    /// `txn`; `completed` also ends the export.
    async fn write(
        &mut self,
        txn: &DatabaseTransaction,
        data: Vec<u8>,
        rows: u64,
        completed: bool,
    ) -> Result<(), JobError> {
        let rows = self.rows + i64::try_from(rows).unwrap_or(i64::MAX);
        let bytes = self.bytes + i64::try_from(data.len()).unwrap_or(i64::MAX);
        let mut progress = exports::Entity::update_many()
            .col_expr(exports::Column::RowsWritten, Expr::value(rows))
            .col_expr(exports::Column::BytesWritten, Expr::value(bytes));
        if completed {
            progress = progress
                .col_expr(exports::Column::Status, Expr::value(ExportStatus::Completed))
                .col_expr(exports::Column::CompletedAt, Expr::value(Utc::now()));
        }
        let held = progress
            .filter(exports::Column::Id.eq(self.export_id.as_str()))
            .filter(exports::Column::Status.eq(ExportStatus::Running))
            .filter(exports::Column::StartedAt.eq(self.fence))
            .exec(txn)
            .await?;
        if held.rows_affected == 0 {
            // A newer run took the export over (or it was deleted): its file is the one kept.
            return Err(JobError::AlreadyCompleted);
        }
        if !data.is_empty() {
            export_chunks::Entity::insert(export_chunks::ActiveModel {
                export_id: Set(self.export_id.clone()),
                seq: Set(self.chunks),
                data: Set(data),
            })
            .exec_without_returning(txn)
            .await?;
            self.chunks += 1;
        }
        self.rows = rows;
        self.bytes = bytes;
        Ok(())
    }
}

async fn build<T: CsvTable>(
    ctx: &JobContext,
    export_id: &str,
    filter: &T::Filter,
) -> Result<Completed, JobError> {
    let Some(mut run) = start(&ctx.db, export_id).await? else {
        return ctx.conclude(json!({ "note": "the export is no longer waiting to be built" })).await;
    };
    let clock = Instant::now();
    let mut reader = CsvReader::<T>::new(ctx.db.clone(), filter);
    let mut buffer = Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4);
    let mut buffered_rows = 0;
    while let Some(rows) = reader.next_part(&mut buffer).await? {
        buffered_rows += rows;
        if buffer.len() >= CHUNK_BYTES {
            let data = std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK_BYTES + CHUNK_BYTES / 4));
            let txn = ultra_domain::db::begin_write(&ctx.db).await?;
            run.write(&txn, data, std::mem::take(&mut buffered_rows), false).await?;
            txn.commit().await?;
        }
    }
    let completed = ctx
        .finish(move |txn| {
            Box::pin(async move {
                run.write(txn, buffer, buffered_rows, true).await?;
                Ok(json!({ "rows": run.rows, "bytes": run.bytes, "chunks": run.chunks }))
            })
        })
        .await?;
    tracing::info!(export_id, seconds = clock.elapsed().as_secs_f64(), "export built");
    Ok(completed)
}

/// Ends an export that will not be built, dropping what was written of its file.
async fn give_up(db: &DatabaseConnection, export_id: &str) -> Result<(), JobError> {
    let txn = ultra_domain::db::begin_write(db).await?;
    exports::Entity::update_many()
        .col_expr(exports::Column::Status, Expr::value(ExportStatus::Failed))
        .col_expr(exports::Column::Error, Expr::value(FAILED))
        .col_expr(exports::Column::CompletedAt, Expr::value(Utc::now()))
        .filter(exports::Column::Id.eq(export_id))
        .filter(exports::Column::Status.is_in([ExportStatus::Queued, ExportStatus::Running]))
        .exec(&txn)
        .await?;
    delete_chunks(&txn, &[export_id.to_owned()]).await?;
    txn.commit().await?;
    Ok(())
}

/// Deletes the files of `export_ids`.
pub(crate) async fn delete_chunks(db: &impl ConnectionTrait, export_ids: &[String]) -> Result<u64, JobError> {
    let deleted = export_chunks::Entity::delete_many()
        .filter(export_chunks::Column::ExportId.is_in(export_ids.iter().map(String::as_str)))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}
