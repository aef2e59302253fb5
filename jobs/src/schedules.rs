//! The schedules the scheduler fires, each enqueueing one job per tick. The unique key names
//! the tick, so a tick enqueued twice (two schedulers, a restart) still makes one job.

use sea_orm::{ConnectionTrait, DbErr};

use crate::{
    enqueue::{Enqueued, NewJob, enqueue},
    kinds::{
        maintenance::{ExpireTokens, PurgeExpiredExports, PurgeFinishedJobs, PurgeIdempotencyKeys},
        payment_links::ExpirePaymentLinks,
        payments::ExpirePayments,
        refunds::PollRefunds,
        social::{PublishDuePosts, RefreshDueAccounts},
        subscriptions::RenewDueSubscriptions,
    },
};

pub struct Schedule {
    pub name: &'static str,
    /// cron expression with a seconds field; runtime config `schedules.<name>` overrides it.
    pub default_cron: &'static str,
}

pub const SCHEDULES: [Schedule; 10] = [
    Schedule { name: "expire-payments", default_cron: "0 * * * * *" },
    Schedule { name: "expire-payment-links", default_cron: "0 * * * * *" },
    Schedule { name: "poll-refunds", default_cron: "*/15 * * * * *" },
    Schedule { name: "renew-subscriptions", default_cron: "*/30 * * * * *" },
    Schedule { name: "purge-idempotency-keys", default_cron: "0 */10 * * * *" },
    Schedule { name: "expire-tokens", default_cron: "0 */5 * * * *" },
    Schedule { name: "purge-finished-jobs", default_cron: "0 30 3 * * *" },
    Schedule { name: "purge-expired-exports", default_cron: "0 15 * * * *" },
    Schedule { name: "publish-social-posts", default_cron: "*/10 * * * * *" },
    Schedule { name: "refresh-social-tokens", default_cron: "0 */5 * * * *" },
];

/// Enqueues the job of schedule `name` for the tick at `tick` (Unix seconds).
pub async fn enqueue_tick(db: &impl ConnectionTrait, name: &str, tick: i64) -> Result<Enqueued, DbErr> {
    let key = format!("schedule:{name}:{tick}");
    match name {
        "expire-payments" => enqueue(db, NewJob::new(&ExpirePayments).unique_key(key)).await,
        "expire-payment-links" => enqueue(db, NewJob::new(&ExpirePaymentLinks).unique_key(key)).await,
        "poll-refunds" => enqueue(db, NewJob::new(&PollRefunds).unique_key(key)).await,
        "renew-subscriptions" => enqueue(db, NewJob::new(&RenewDueSubscriptions).unique_key(key)).await,
        "purge-idempotency-keys" => enqueue(db, NewJob::new(&PurgeIdempotencyKeys).unique_key(key)).await,
        "expire-tokens" => enqueue(db, NewJob::new(&ExpireTokens).unique_key(key)).await,
        "purge-finished-jobs" => enqueue(db, NewJob::new(&PurgeFinishedJobs).unique_key(key)).await,
        "purge-expired-exports" => enqueue(db, NewJob::new(&PurgeExpiredExports).unique_key(key)).await,
        "publish-social-posts" => enqueue(db, NewJob::new(&PublishDuePosts).unique_key(key)).await,
        "refresh-social-tokens" => enqueue(db, NewJob::new(&RefreshDueAccounts).unique_key(key)).await,
        other => Err(DbErr::Custom(format!("no schedule named {other}"))),
    }
}
