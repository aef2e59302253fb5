//! Job rows, many at a time. Every delivery a worker runs starts by reading its job's row; under
//! load, the reads wanted while one query is in flight go together in the next, so a busy
//! worker pays a round trip per batch instead of per job. No batch waits to fill, so a lone job
//! costs no latency.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tokio::sync::{mpsc, oneshot};
use ultra_entity::jobs;

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
