//! Collecting payments, and expiring those the customer never confirmed.

use chrono::Utc;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::payments;
use ultra_entity::{
    payments::{self as payment_rows, PaymentStatus},
    provider_configs::ProviderMode,
};

use crate::job::{Completed, Job, JobContext, JobError};

/// Asks the provider to collect a pending payment and records the outcome.
///
/// In simulation mode the outcome comes from the customer number's last two digits, like a
/// card network's test cards: `01` is declined for insufficient funds, `02` is never confirmed
/// (the payment expires), `03` fails once as a provider outage would and then succeeds, and any
/// other number succeeds.
#[derive(Debug, Serialize, Deserialize)]
pub struct CollectPayment {
    pub payment_id: String,
}

impl Job for CollectPayment {
    const KIND: &'static str = "payments.collect";
    const QUEUE: &'static str = "payments";
    const MAX_ATTEMPTS: i32 = 6;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        let payment = payment_rows::Entity::find_by_id(self.payment_id.as_str())
            .one(&ctx.db)
            .await?
            .ok_or_else(|| JobError::Permanent(format!("payment {} does not exist", self.payment_id)))?;
        if payment.status != PaymentStatus::Pending {
            let status = payment.status;
            return ctx
                .finish(|_| {
                    Box::pin(async move { Ok(json!({ "status": status, "note": "already settled" })) })
                })
                .await;
        }
        if payment.mode == ProviderMode::Live {
            return Err(JobError::Permanent(format!(
                "live collection through {} is not available",
                payment.provider
            )));
        }
        let test_number = &payment.customer_phone[payment.customer_phone.len().saturating_sub(2)..];
        match test_number {
            "01" => {
                ctx.finish(|txn| {
                    Box::pin(async move {
                        payments::end_unpaid(txn, &payment, PaymentStatus::Failed, "insufficient funds")
                            .await?;
                        Ok(json!({ "status": "failed" }))
                    })
                })
                .await
            }
            "02" => {
                ctx.finish(|_| Box::pin(async { Ok(json!({ "status": "pending", "awaiting": "customer" })) }))
                    .await
            }
            "03" if ctx.attempt == 1 => Err(JobError::Transient("provider answered 500".to_owned())),
            _ => {
                let transaction_id = format!("SIM-{}", payment.reference);
                ctx.finish(|txn| {
                    Box::pin(async move {
                        payments::complete(txn, &payment, Some(transaction_id)).await?;
                        Ok(json!({ "status": "completed" }))
                    })
                })
                .await
            }
        }
    }
}

/// Expires payments still pending past their expiry.
#[derive(Debug, Serialize, Deserialize)]
pub struct ExpirePayments;

/// Payments expired per run; the next tick takes the rest.
const EXPIRE_BATCH: u64 = 500;

impl Job for ExpirePayments {
    const KIND: &'static str = "payments.expire";
    const QUEUE: &'static str = "maintenance";
    const MAX_ATTEMPTS: i32 = 3;

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        ctx.finish(|txn| {
            Box::pin(async move {
                let due = payment_rows::Entity::find()
                    .filter(payment_rows::Column::Status.eq(PaymentStatus::Pending))
                    .filter(payment_rows::Column::ExpiresAt.lte(Utc::now()))
                    .order_by_asc(payment_rows::Column::ExpiresAt)
                    .limit(EXPIRE_BATCH)
                    .all(txn)
                    .await?;
                let mut expired = 0;
                for payment in &due {
                    if payments::end_unpaid(
                        txn,
                        payment,
                        PaymentStatus::Expired,
                        "the customer did not confirm in time",
                    )
                    .await?
                    .is_some()
                    {
                        expired += 1;
                    }
                }
                Ok(json!({ "expired": expired }))
            })
        })
        .await
    }
}
