//! Payment-link housekeeping the scheduler fires.

use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::payment_links;

use crate::job::{Completed, Job, JobContext, JobError};

/// Flips active links past their expiry to `expired`. Payers are refused at the expiry itself
/// either way; this makes the stored status, which lists and reports filter on, catch up.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExpirePaymentLinks;

impl Job for ExpirePaymentLinks {
    const KIND: &'static str = "payment_links.expire";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        ctx.finish(|txn| {
            Box::pin(async move {
                let expired = payment_links::expire_due(txn, Utc::now()).await?;
                Ok(json!({ "expired": expired }))
            })
        })
        .await
    }
}
