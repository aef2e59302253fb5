//! Subscriptions: when each period falls, and what a renewal payment does to its subscription
//! when it ends.
//!
//! A subscription is charged for the period starting at `next_renewal_at`. A renewal takes the
//! subscription by setting `renewal_payment_id` (conditional on nothing else holding it), so
//! however many schedulers, reruns or manual renewals race, one payment per period is made at
//! a time. Completion advances the period; failure schedules a retry, and after the last retry
//! marks the subscription overdue.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    sea_query::{Expr, ExprTrait},
};
use serde_json::{Value, json};
use ultra_entity::{
    payments::{self, PaymentStatus},
    subscriptions::{self, SubscriptionInterval, SubscriptionStatus},
};

use crate::{
    DomainResult,
    audit::{self, Actor, AuditEvent},
    dates,
    events::{self, NewEvent},
    ids,
    money::format_amount,
    runtime_config::RuntimeConfig,
};

pub fn new_id() -> String {
    ids::new_id("sub")
}

/// A retry is never put off by more than a year, whatever the runtime config says.
const MAX_RETRY_DELAY_SECONDS: i64 = 366 * 24 * 3600;

/// The day of the month a schedule starting at `at` keeps to.
pub fn anchor_day(at: DateTime<Utc>) -> i16 {
    i16::try_from(at.day()).unwrap_or(1)
}

/// The start of the period after the one starting at `at`, in UTC. Month-based intervals keep
/// to `anchor_day`, falling back to a shorter month's last day: Jan 31 renews Feb 28 (29 in a
/// leap year) and then Mar 31 again.
pub fn next_period(at: DateTime<Utc>, interval: SubscriptionInterval, anchor_day: i16) -> DateTime<Utc> {
    let months = match interval {
        SubscriptionInterval::Daily => return at + Days::new(1),
        SubscriptionInterval::Weekly => return at + Days::new(7),
        SubscriptionInterval::Monthly => 1,
        SubscriptionInterval::Quarterly => 3,
        SubscriptionInterval::Annual => 12,
    };
    let first_of_month = at.with_day(1).expect("every month has a first day") + Months::new(months);
    let last_day = last_day_of_month(first_of_month.year(), first_of_month.month());
    let day = u32::try_from(anchor_day).unwrap_or(1).clamp(1, last_day);
    first_of_month.with_day(day).expect("the day is within the month")
}

fn last_day_of_month(year: i32, month: u32) -> u32 {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    };
    first_of_next.and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// Takes the subscription for a renewal payment of the period at `period`, attempt `attempt`
/// (1 for the first try of a period). `false` when the subscription has moved on, is paused or
/// cancelled, or another renewal holds it: the caller then charges nothing.
pub async fn claim_renewal(
    db: &impl ConnectionTrait,
    subscription_id: &str,
    period: DateTime<Utc>,
    attempt: i32,
    payment_id: &str,
) -> DomainResult<bool> {
    let claimed = subscriptions::Entity::update_many()
        .col_expr(subscriptions::Column::RenewalPaymentId, Expr::value(payment_id))
        .col_expr(subscriptions::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(subscriptions::Column::Id.eq(subscription_id))
        .filter(subscriptions::Column::Status.eq(SubscriptionStatus::Active))
        .filter(subscriptions::Column::NextRenewalAt.eq(period))
        .filter(subscriptions::Column::RenewalAttempts.eq(attempt - 1))
        .filter(subscriptions::Column::RenewalPaymentId.is_null())
        .exec(db)
        .await?;
    Ok(claimed.rows_affected == 1)
}

/// What happens to the subscription when its renewal payment ends, in the transaction that
/// ends the payment.
pub async fn payment_ended(db: &impl ConnectionTrait, payment: &payments::Model) -> DomainResult<()> {
    let Some(subscription_id) = payment.subscription_id.as_deref() else {
        return Ok(());
    };
    let Some(subscription) = subscriptions::Entity::find_by_id(subscription_id)
        .one(db)
        .await?
        .filter(|s| s.renewal_payment_id.as_deref() == Some(payment.id.as_str()))
    else {
        return Ok(());
    };
    let now = Utc::now();
    let held_by_this_payment = subscriptions::Entity::update_many()
        .col_expr(subscriptions::Column::RenewalPaymentId, Expr::value(Option::<String>::None))
        .col_expr(subscriptions::Column::LastPaymentId, Expr::value(payment.id.clone()))
        .col_expr(subscriptions::Column::UpdatedAt, Expr::value(now))
        .filter(subscriptions::Column::Id.eq(subscription_id))
        .filter(subscriptions::Column::RenewalPaymentId.eq(payment.id.as_str()));
    if payment.status != PaymentStatus::Completed {
        return record_failed_attempt(db, held_by_this_payment, &subscription, now).await;
    }
    let next = following_period(&subscription, now);
    if !dates::in_range(next) {
        // The schedule has no period left before year 10000: the subscription ends here rather
        // than store a date the database could not order.
        held_by_this_payment
            .col_expr(subscriptions::Column::Status, Expr::value(SubscriptionStatus::Cancelled))
            .col_expr(subscriptions::Column::LastRenewedAt, Expr::value(now))
            .col_expr(
                subscriptions::Column::RenewalCount,
                Expr::col(subscriptions::Column::RenewalCount).add(1),
            )
            .exec(db)
            .await?;
        let reason = "the schedule has no renewal before year 10000";
        return audited(
            db,
            &subscription,
            "subscription.ended",
            json!({ "paymentId": payment.id, "reason": reason }),
        )
        .await;
    }
    held_by_this_payment
        .col_expr(subscriptions::Column::NextRenewalAt, Expr::value(next))
        .col_expr(subscriptions::Column::RenewalAttempts, Expr::value(0))
        .col_expr(subscriptions::Column::RetryAt, Expr::value(Option::<DateTime<Utc>>::None))
        .col_expr(subscriptions::Column::Overdue, Expr::value(false))
        .col_expr(subscriptions::Column::LastRenewedAt, Expr::value(now))
        .col_expr(subscriptions::Column::RenewalCount, Expr::col(subscriptions::Column::RenewalCount).add(1))
        .exec(db)
        .await?;
    audited(
        db,
        &subscription,
        "subscription.renewed",
        json!({ "paymentId": payment.id, "nextRenewalAt": next }),
    )
    .await?;
    events::record(
        db,
        NewEvent {
            merchant_id: &subscription.merchant_id,
            event_type: "subscription.renewed",
            resource_type: "subscription",
            resource_id: &subscription.id,
            payload: renewed_payload(&subscription, payment, next),
        },
    )
    .await?;
    Ok(())
}

/// Counts a renewal attempt that could not even start a payment (the provider is no longer
/// configured for the merchant) as a failed one, so it is retried and then flagged like any
/// other; conditional on the attempt still being the current one.
pub async fn renewal_refused(
    db: &impl ConnectionTrait,
    subscription: &subscriptions::Model,
    attempt: i32,
) -> DomainResult<()> {
    let now = Utc::now();
    let current_attempt = subscriptions::Entity::update_many()
        .col_expr(subscriptions::Column::UpdatedAt, Expr::value(now))
        .filter(subscriptions::Column::Id.eq(subscription.id.as_str()))
        .filter(subscriptions::Column::NextRenewalAt.eq(subscription.next_renewal_at))
        .filter(subscriptions::Column::RenewalAttempts.eq(attempt - 1))
        .filter(subscriptions::Column::RenewalPaymentId.is_null());
    record_failed_attempt(db, current_attempt, subscription, now).await
}

/// The period after the one just paid. When renewals fell behind (the subscription was due
/// long ago, or the platform was down), it skips to the first period still ahead rather than
/// charging the customer for every missed one in a row.
fn following_period(subscription: &subscriptions::Model, now: DateTime<Utc>) -> DateTime<Utc> {
    let next = next_period(subscription.next_renewal_at, subscription.interval, subscription.anchor_day);
    first_period_after(next, subscription, now)
}

/// `start`, or the first period of the subscription's schedule after `now` if `start` is not
/// ahead of it: where a resumed subscription picks up, skipping the periods it was paused for.
pub fn first_period_after(
    start: DateTime<Utc>,
    subscription: &subscriptions::Model,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut period = start;
    while period <= now {
        period = next_period(period, subscription.interval, subscription.anchor_day);
    }
    period
}

/// Schedules the next retry of the period, or marks the subscription overdue once the runtime
/// config's retries are used up.
async fn record_failed_attempt(
    db: &impl ConnectionTrait,
    update: sea_orm::UpdateMany<subscriptions::Entity>,
    subscription: &subscriptions::Model,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let retries = RuntimeConfig::load(db).await?.subscriptions.retry_delays_seconds;
    let attempts = subscription.renewal_attempts + 1;
    let update = update.col_expr(subscriptions::Column::RenewalAttempts, Expr::value(attempts));
    let exhausted = retries.len() < usize::try_from(attempts).unwrap_or(usize::MAX);
    let update = match retries.get(usize::try_from(attempts - 1).unwrap_or(usize::MAX)) {
        Some(delay) => {
            let delay = Ord::min(i64::try_from(*delay).unwrap_or(i64::MAX), MAX_RETRY_DELAY_SECONDS);
            let retry_at = now + chrono::Duration::seconds(delay);
            update.col_expr(subscriptions::Column::RetryAt, Expr::value(retry_at))
        }
        None => update
            .col_expr(subscriptions::Column::RetryAt, Expr::value(Option::<DateTime<Utc>>::None))
            .col_expr(subscriptions::Column::Overdue, Expr::value(true)),
    };
    if update.exec(db).await?.rows_affected == 0 {
        return Ok(());
    }
    let action = if exhausted { "subscription.overdue" } else { "subscription.renewal_failed" };
    audited(db, subscription, action, json!({ "attempts": attempts, "period": subscription.next_renewal_at }))
        .await
}

/// What the platform did to a subscription on its own, in the audit trail.
async fn audited(
    db: &impl ConnectionTrait,
    subscription: &subscriptions::Model,
    action: &str,
    details: Value,
) -> DomainResult<()> {
    audit::record(
        db,
        &Actor::default(),
        AuditEvent {
            action,
            entity_type: "subscription",
            entity_id: Some(&subscription.id),
            details: Some(details),
        },
    )
    .await
}

fn renewed_payload(
    subscription: &subscriptions::Model,
    payment: &payments::Model,
    next: DateTime<Utc>,
) -> Value {
    json!({
        "id": subscription.id,
        "label": subscription.label,
        "customerPhone": subscription.customer_phone,
        "amount": format_amount(payment.amount_minor),
        "currency": payment.currency,
        "interval": subscription.interval,
        "provider": subscription.provider,
        "periodStart": subscription.next_renewal_at,
        "nextRenewalAt": next,
        "renewalCount": subscription.renewal_count + 1,
        "payment": {
            "id": payment.id,
            "reference": payment.reference,
            "providerTransactionId": payment.provider_transaction_id,
            "completedAt": payment.completed_at,
        },
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 9, 30, 0).unwrap()
    }

    fn walk(start: DateTime<Utc>, interval: SubscriptionInterval, steps: usize) -> Vec<DateTime<Utc>> {
        let anchor = anchor_day(start);
        std::iter::successors(Some(start), |p| Some(next_period(*p, interval, anchor)))
            .skip(1)
            .take(steps)
            .collect()
    }

    #[test]
    fn monthly_from_the_31st_keeps_to_month_ends() {
        use SubscriptionInterval::Monthly;
        assert_eq!(
            walk(at(2027, 1, 31), Monthly, 4),
            [at(2027, 2, 28), at(2027, 3, 31), at(2027, 4, 30), at(2027, 5, 31)]
        );
        assert_eq!(walk(at(2028, 1, 31), Monthly, 2), [at(2028, 2, 29), at(2028, 3, 31)]);
        assert_eq!(walk(at(2027, 12, 31), Monthly, 2), [at(2028, 1, 31), at(2028, 2, 29)]);
    }

    #[test]
    fn quarterly_and_annual_keep_their_anchor() {
        use SubscriptionInterval::{Annual, Quarterly};
        assert_eq!(walk(at(2027, 11, 30), Quarterly, 3), [at(2028, 2, 29), at(2028, 5, 30), at(2028, 8, 30)]);
        assert_eq!(
            walk(at(2028, 2, 29), Annual, 4),
            [at(2029, 2, 28), at(2030, 2, 28), at(2031, 2, 28), at(2032, 2, 29)]
        );
    }

    #[test]
    fn daily_and_weekly_count_days_across_month_and_year_ends() {
        use SubscriptionInterval::{Daily, Weekly};
        assert_eq!(walk(at(2027, 12, 31), Daily, 2), [at(2028, 1, 1), at(2028, 1, 2)]);
        assert_eq!(walk(at(2028, 2, 26), Weekly, 2), [at(2028, 3, 4), at(2028, 3, 11)]);
    }
}
