//! Sending payouts. The amount was reserved when the payout was requested; the handler
//! settles it once the money has gone, or releases it.

use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::payouts;
use ultra_entity::payouts::PayoutKind;

use crate::job::{Completed, Job, JobContext, JobError};

/// Sends one payout.
#[derive(Debug, Serialize, Deserialize)]
pub struct SendPayout {
    pub payout_id: String,
}

impl Job for SendPayout {
    const KIND: &'static str = "payouts.send";
    const QUEUE: &'static str = "payments";

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let payout = payouts::find(&ctx.db, &self.payout_id).await?;
        ctx.finish(move |txn| {
            Box::pin(async move {
                if payout.status.is_final() {
                    return Ok(json!({ "status": payout.status, "note": "already final" }));
                }
                let done = match payout.kind {
                    // Between two balances in the ledger: nothing can fail once the amount
                    // is reserved.
                    PayoutKind::Sellapay => payouts::complete(txn, &payout, None).await?,
                    PayoutKind::Mobile | PayoutKind::Bank => {
                        payouts::fail(txn, &payout, "no rail is configured for this kind of payout").await?
                    }
                };
                Ok(json!({ "status": done.map(|p| p.status) }))
            })
        })
        .await
    }
}
