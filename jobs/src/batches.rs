//! Requests served many at a time. A worker finishing jobs, or an API taking payments, wants
//! the same kind of round trip for many callers at once; the requests that arrive while one
//! batch is in flight go together in the next, so a busy process pays a round trip (and a
//! commit) per batch instead of per request. No batch waits to fill, so a lone request costs
//! no latency.

use std::{future::Future, sync::Arc};

use sea_orm::{DatabaseConnection, DbBackend};
use tokio::sync::{Mutex, mpsc};

/// How many batches that write may be in flight at once against `db`: on PostgreSQL, while one
/// waits on a round trip another runs; SQLite takes one writer at a time.
pub fn writers(db: &DatabaseConnection) -> usize {
    if db.get_database_backend() == DbBackend::Postgres { 4 } else { 1 }
}

/// Starts `tasks` tasks that each take the requests waiting (at least one, at most `max`) and
/// hand them to `serve`, and returns where to send requests. The tasks end when every sender
/// is dropped.
pub fn serve<R, F, Fut>(tasks: usize, max: usize, serve: F) -> mpsc::UnboundedSender<R>
where
    R: Send + 'static,
    F: Fn(Vec<R>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let (requests, pending) = mpsc::unbounded_channel();
    let pending = Arc::new(Mutex::new(pending));
    for _ in 0..tasks.max(1) {
        let (pending, serve) = (Arc::clone(&pending), serve.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(max);
            loop {
                if pending.lock().await.recv_many(&mut batch, max).await == 0 {
                    return;
                }
                serve(std::mem::take(&mut batch)).await;
            }
        });
    }
    requests
}
