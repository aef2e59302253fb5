//! Job rows, many at a time: every delivery a worker runs starts by reading its job's row, and
//! the reads are served in batches ([`crate::batches`]), one query each.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use tokio::sync::{mpsc, oneshot};
use ultra_entity::jobs;

use crate::batches;

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
        Self { requests: batches::serve(1, MAX_BATCH, move |batch| read_batch(db.clone(), batch)) }
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

/// Answers a batch of reads from one query.
async fn read_batch(db: DatabaseConnection, batch: Vec<(String, Reply)>) {
    let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
    match jobs::Entity::find().filter(jobs::Column::Id.is_in(ids)).all(&db).await {
        Ok(rows) => {
            let mut rows: HashMap<String, jobs::Model> =
                rows.into_iter().map(|r| (r.id.clone(), r)).collect();
            for (id, reply) in batch {
                let _ = reply.send(Ok(rows.remove(&id)));
            }
        }
        Err(err) => {
            let message = err.to_string();
            for (_, reply) in batch {
                let _ = reply.send(Err(message.clone()));
            }
        }
    }
}
