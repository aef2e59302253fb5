//! Figures over payments, refunds, subscriptions and payment links, for one merchant or for
//! every merchant, in a window of whole UTC days.
//!
//! The database does the counting and summing (`COUNT`, `SUM … GROUP BY`); Rust only folds the
//! handful of groups that come back into figures, so a window of a million payments costs no
//! more memory than one of ten. The statements are the same on PostgreSQL and SQLite except
//! for the one expression that names the day a row was created ([`day_of_creation`]).
//!
//! A payment, refund, subscription or link belongs to a window by its `created_at`, so a
//! payment started at 23:59 and completed after midnight counts on the day it started.
//! Subscription states (active, overdue, paused, cancelled) are as they stand now: a state has
//! no history to place it in a window.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait, QueryFilter,
    QuerySelect, QueryTrait,
    sea_query::{Expr, Func},
};
use ultra_entity::{
    payment_links,
    payments::{self, PaymentStatus},
    refunds::{self, RefundStatus},
    subscriptions::{self, SubscriptionInterval, SubscriptionStatus},
};

use crate::{DomainError, DomainResult};

/// The longest window: a year, leap day included. Daily figures list every day, and a longer
/// window would make an answer of thousands of days.
const MAX_WINDOW_DAYS: i64 = 366;

/// The dates a window may name. Before 1970 nothing can have happened on the platform, and
/// past 9999 a timestamp no longer sorts as text, which SQLite compares it as.
const FIRST_DAY: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
const LAST_DAY: NaiveDate = NaiveDate::from_ymd_opt(9999, 12, 30).expect("a valid date");

/// How many days a window covers when the client names no dates; it ends today (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn days(self) -> u64 {
        match self {
            Self::Day => 1,
            Self::Week => 7,
            Self::Month => 30,
        }
    }
}

/// Whole UTC days from `from` to `to`, both included: the instants from `from` at 00:00 UTC up
/// to, not including, the day after `to` at 00:00 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    from: NaiveDate,
    to: NaiveDate,
    day_after: NaiveDate,
}

impl Window {
    /// The window a request asks for. Without dates it is the `period`'s days ending `today`;
    /// `from` alone runs to `today`; `to` alone goes back the `period`'s days. Refusals name
    /// the field at fault.
    pub fn resolve(
        period: Period,
        from: Option<NaiveDate>,
        to: Option<NaiveDate>,
        today: NaiveDate,
    ) -> DomainResult<Self> {
        for (field, date) in [("from", from), ("to", to)] {
            if let Some(date) = date
                && !(FIRST_DAY..=LAST_DAY).contains(&date)
            {
                return Err(DomainError::validation(
                    field,
                    format!("must be between {FIRST_DAY} and {LAST_DAY}"),
                ));
            }
        }
        let last = to.unwrap_or(today);
        let first = from.unwrap_or_else(|| {
            last.checked_sub_days(Days::new(period.days() - 1)).unwrap_or(FIRST_DAY).max(FIRST_DAY)
        });
        if first > last {
            return Err(DomainError::validation("from", format!("must not be later than `to` ({last})")));
        }
        let days = (last - first).num_days() + 1;
        if days > MAX_WINDOW_DAYS {
            let field = if from.is_some() { "from" } else { "to" };
            return Err(DomainError::validation(
                field,
                format!(
                    "the window {first} to {last} covers {days} days; it may cover at most {MAX_WINDOW_DAYS}"
                ),
            ));
        }
        let day_after = last.succ_opt().ok_or_else(|| DomainError::validation("to", "is too late"))?;
        Ok(Self { from: first, to: last, day_after })
    }

    pub fn from(&self) -> NaiveDate {
        self.from
    }

    pub fn to(&self) -> NaiveDate {
        self.to
    }

    /// The first instant of the window.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(NaiveTime::MIN).and_utc()
    }

    /// The first instant after the window.
    pub fn end(&self) -> DateTime<Utc> {
        self.day_after.and_time(NaiveTime::MIN).and_utc()
    }

    pub fn day_count(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// Every day of the window, oldest first.
    pub fn days(&self) -> impl Iterator<Item = NaiveDate> + use<> {
        self.from.iter_days().take(usize::try_from(self.day_count()).unwrap_or(0))
    }
}

/// `part` of `whole` as a percentage with two decimals, rounded half up (`"66.67"`); `None`
/// when `whole` is zero. Integer arithmetic, so both databases and every client agree to the
/// last digit.
fn percentage(part: i64, whole: i64) -> Option<String> {
    if whole <= 0 {
        return None;
    }
    let hundredths = (part * 20_000 + whole) / (2 * whole);
    Some(format!("{}.{:02}", hundredths / 100, hundredths % 100))
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentCounts {
    pub pending: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub refunding: i64,
    pub refunded: i64,
    pub expired: i64,
    /// Held for reconciliation: no outcome yet, like `pending`.
    pub unknown: i64,
}

impl PaymentCounts {
    fn add(&mut self, status: PaymentStatus, count: i64) {
        let slot = match status {
            PaymentStatus::Pending => &mut self.pending,
            PaymentStatus::Completed => &mut self.completed,
            PaymentStatus::Failed => &mut self.failed,
            PaymentStatus::Cancelled => &mut self.cancelled,
            PaymentStatus::Refunding => &mut self.refunding,
            PaymentStatus::Refunded => &mut self.refunded,
            PaymentStatus::Expired => &mut self.expired,
            PaymentStatus::Unknown => &mut self.unknown,
        };
        *slot += count;
    }

    pub fn total(&self) -> i64 {
        self.pending + self.unknown + self.finished()
    }

    /// Payments whose money was collected: `completed`, and `refunding` and `refunded`, which
    /// only a completed payment can become.
    pub fn succeeded(&self) -> i64 {
        self.completed + self.refunding + self.refunded
    }

    /// Payments with an outcome: every status but `pending` and `unknown`.
    pub fn finished(&self) -> i64 {
        self.succeeded() + self.failed + self.cancelled + self.expired
    }

    /// Succeeded out of finished: a payment still pending has no outcome to count either way.
    pub fn success_rate(&self) -> Option<String> {
        percentage(self.succeeded(), self.finished())
    }
}

/// What succeeded payments in one currency collected.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Volume {
    pub payments: i64,
    pub gross_minor: i64,
    /// Refunded or being refunded (every refund not failed or cancelled).
    pub refunded_minor: i64,
}

impl Volume {
    pub fn net_minor(&self) -> i64 {
        self.gross_minor - self.refunded_minor
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentFigures {
    pub counts: PaymentCounts,
    /// By currency code, in code order.
    pub volumes: BTreeMap<String, Volume>,
}

impl PaymentFigures {
    fn add(&mut self, group: &PaymentGroup) {
        self.counts.add(group.status, group.count);
        if matches!(
            group.status,
            PaymentStatus::Completed | PaymentStatus::Refunding | PaymentStatus::Refunded
        ) {
            let volume = self.volumes.entry(group.currency.clone()).or_default();
            volume.payments += group.count;
            volume.gross_minor += group.amount_minor;
            volume.refunded_minor += group.refunded_minor;
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefundCounts {
    pub pending: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub unknown: i64,
}

impl RefundCounts {
    pub fn total(&self) -> i64 {
        self.pending + self.processing + self.completed + self.failed + self.cancelled + self.unknown
    }
}

/// Completed refunds in one currency.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefundVolume {
    pub refunds: i64,
    pub amount_minor: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RefundFigures {
    pub counts: RefundCounts,
    /// Completed refunds by currency code, in code order.
    pub volumes: BTreeMap<String, RefundVolume>,
}

impl RefundFigures {
    fn add(&mut self, group: &RefundGroup) {
        let slot = match group.status {
            RefundStatus::Pending => &mut self.counts.pending,
            RefundStatus::Processing => &mut self.counts.processing,
            RefundStatus::Completed => &mut self.counts.completed,
            RefundStatus::Failed => &mut self.counts.failed,
            RefundStatus::Cancelled => &mut self.counts.cancelled,
            RefundStatus::Unknown => &mut self.counts.unknown,
        };
        *slot += group.count;
        if group.status == RefundStatus::Completed {
            let volume = self.volumes.entry(group.currency.clone()).or_default();
            volume.refunds += group.count;
            volume.amount_minor += group.amount_minor;
        }
    }
}

/// Active subscriptions by how often they renew.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IntervalCounts {
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub quarterly: i64,
    pub annual: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionFigures {
    /// Status `active` now, overdue ones included.
    pub active: i64,
    /// Active now, with the current period's renewal failed through every retry.
    pub overdue: i64,
    pub paused: i64,
    pub cancelled: i64,
    pub active_by_interval: IntervalCounts,
    /// Subscriptions created in the window.
    pub created: i64,
    /// Renewal payments (payments carrying a subscription) created in the window.
    pub renewals: PaymentFigures,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkFigures {
    /// Links created in the window.
    pub created: i64,
    /// Payments started through a link in the window, whenever the link was created.
    pub payments: PaymentFigures,
}

impl LinkFigures {
    /// Payments completed through links out of payments started through them.
    pub fn conversion_rate(&self) -> Option<String> {
        percentage(self.payments.counts.succeeded(), self.payments.counts.total())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overview {
    pub payments: PaymentFigures,
    pub refunds: RefundFigures,
    pub subscriptions: SubscriptionFigures,
    pub links: LinkFigures,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderFigures {
    pub payments: PaymentFigures,
    pub refunds: RefundFigures,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayFigures {
    pub payments: PaymentFigures,
    pub refunds: RefundFigures,
    pub subscriptions_created: i64,
}

/// Everything at a glance: payments, refunds, subscriptions and payment links.
pub async fn overview(
    db: &impl ConnectionTrait,
    merchant: Option<&str>,
    window: &Window,
) -> DomainResult<Overview> {
    let mut overview = Overview::default();
    for group in payment_groups(db, merchant, window, PaymentSet::All, Key::Provider).await? {
        overview.payments.add(&group);
    }
    for group in refund_groups(db, merchant, window, Key::Provider).await? {
        overview.refunds.add(&group);
    }
    overview.subscriptions = subscription_figures(db, merchant, window).await?;
    overview.links.created = payment_links::Entity::find()
        .apply_if(merchant, |query, id| query.filter(payment_links::Column::MerchantId.eq(id)))
        .filter(payment_links::Column::CreatedAt.gte(window.start()))
        .filter(payment_links::Column::CreatedAt.lt(window.end()))
        .count(db)
        .await?
        .try_into()
        .unwrap_or(i64::MAX);
    for group in payment_groups(db, merchant, window, PaymentSet::ThroughLinks, Key::Provider).await? {
        overview.links.payments.add(&group);
    }
    Ok(overview)
}

/// Payments and refunds per provider, by provider name; a provider appears once it has a
/// payment or a refund in the window.
pub async fn by_provider(
    db: &impl ConnectionTrait,
    merchant: Option<&str>,
    window: &Window,
) -> DomainResult<BTreeMap<String, ProviderFigures>> {
    let mut providers: BTreeMap<String, ProviderFigures> = BTreeMap::new();
    for group in payment_groups(db, merchant, window, PaymentSet::All, Key::Provider).await? {
        providers.entry(group.key.clone()).or_default().payments.add(&group);
    }
    for group in refund_groups(db, merchant, window, Key::Provider).await? {
        providers.entry(group.key.clone()).or_default().refunds.add(&group);
    }
    Ok(providers)
}

/// Subscription states now, and what was created and renewed in the window.
pub async fn subscription_figures(
    db: &impl ConnectionTrait,
    merchant: Option<&str>,
    window: &Window,
) -> DomainResult<SubscriptionFigures> {
    let mut figures = SubscriptionFigures::default();
    let states: Vec<(String, bool, String, i64)> = subscriptions::Entity::find()
        .select_only()
        .column(subscriptions::Column::Status)
        .column(subscriptions::Column::Overdue)
        .column(subscriptions::Column::Interval)
        .expr_as(Func::count(Expr::col(subscriptions::Column::Id)), "count")
        .apply_if(merchant, |query, id| query.filter(subscriptions::Column::MerchantId.eq(id)))
        .group_by(subscriptions::Column::Status)
        .group_by(subscriptions::Column::Overdue)
        .group_by(subscriptions::Column::Interval)
        .into_tuple()
        .all(db)
        .await?;
    for (status, overdue, interval, count) in states {
        match decode::<SubscriptionStatus>(status)? {
            SubscriptionStatus::Active => {
                figures.active += count;
                if overdue {
                    figures.overdue += count;
                }
                let by_interval = &mut figures.active_by_interval;
                let slot = match decode::<SubscriptionInterval>(interval)? {
                    SubscriptionInterval::Daily => &mut by_interval.daily,
                    SubscriptionInterval::Weekly => &mut by_interval.weekly,
                    SubscriptionInterval::Monthly => &mut by_interval.monthly,
                    SubscriptionInterval::Quarterly => &mut by_interval.quarterly,
                    SubscriptionInterval::Annual => &mut by_interval.annual,
                };
                *slot += count;
            }
            SubscriptionStatus::Paused => figures.paused += count,
            SubscriptionStatus::Cancelled => figures.cancelled += count,
        }
    }
    figures.created = subscriptions::Entity::find()
        .apply_if(merchant, |query, id| query.filter(subscriptions::Column::MerchantId.eq(id)))
        .filter(subscriptions::Column::CreatedAt.gte(window.start()))
        .filter(subscriptions::Column::CreatedAt.lt(window.end()))
        .count(db)
        .await?
        .try_into()
        .unwrap_or(i64::MAX);
    for group in payment_groups(db, merchant, window, PaymentSet::Renewals, Key::Provider).await? {
        figures.renewals.add(&group);
    }
    Ok(figures)
}

/// One entry per day of the window, oldest first, days without activity included.
pub async fn daily(
    db: &impl ConnectionTrait,
    merchant: Option<&str>,
    window: &Window,
) -> DomainResult<Vec<(NaiveDate, DayFigures)>> {
    let mut days: BTreeMap<NaiveDate, DayFigures> =
        window.days().map(|day| (day, DayFigures::default())).collect();
    for group in payment_groups(db, merchant, window, PaymentSet::All, Key::Day).await? {
        day_entry(&mut days, &group.key)?.payments.add(&group);
    }
    for group in refund_groups(db, merchant, window, Key::Day).await? {
        day_entry(&mut days, &group.key)?.refunds.add(&group);
    }
    let created: Vec<(String, i64)> = subscriptions::Entity::find()
        .select_only()
        .expr_as(day_of_creation(db.get_database_backend()), "day")
        .expr_as(Func::count(Expr::col(subscriptions::Column::Id)), "count")
        .apply_if(merchant, |query, id| query.filter(subscriptions::Column::MerchantId.eq(id)))
        .filter(subscriptions::Column::CreatedAt.gte(window.start()))
        .filter(subscriptions::Column::CreatedAt.lt(window.end()))
        .group_by(day_of_creation(db.get_database_backend()))
        .into_tuple()
        .all(db)
        .await?;
    for (day, count) in created {
        day_entry(&mut days, &day)?.subscriptions_created += count;
    }
    Ok(days.into_iter().collect())
}

fn day_entry<'a>(
    days: &'a mut BTreeMap<NaiveDate, DayFigures>,
    key: &str,
) -> DomainResult<&'a mut DayFigures> {
    NaiveDate::parse_from_str(key, "%Y-%m-%d")
        .ok()
        .and_then(|day| days.get_mut(&day))
        .ok_or_else(|| DomainError::Internal(format!("the database named day {key:?}, outside the window")))
}

/// What groups are keyed by, besides status and currency.
#[derive(Clone, Copy)]
enum Key {
    Provider,
    Day,
}

/// Which payments are counted.
#[derive(Clone, Copy)]
enum PaymentSet {
    All,
    /// Paid through a payment link.
    ThroughLinks,
    /// Renewing a subscription.
    Renewals,
}

struct PaymentGroup {
    key: String,
    status: PaymentStatus,
    currency: String,
    count: i64,
    amount_minor: i64,
    refunded_minor: i64,
}

struct RefundGroup {
    key: String,
    status: RefundStatus,
    currency: String,
    count: i64,
    amount_minor: i64,
}

/// The UTC day a row was created on, as `YYYY-MM-DD` text. PostgreSQL stores a `timestamptz`
/// and formats it in UTC whatever the session's time zone; SQLite stores RFC 3339 text, which
/// its `strftime` reads with the offset applied.
fn day_of_creation(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Sqlite => Expr::cust("strftime('%Y-%m-%d', created_at)"),
        _ => Expr::cust("to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"),
    }
}

/// `SUM` of a `BIGINT` column as a `BIGINT`: PostgreSQL widens the sum to `numeric`, which
/// does not decode as an integer, while SQLite keeps an integer.
fn sum_bigint(column: impl sea_orm::sea_query::IntoColumnRef) -> Expr {
    Func::cast_as(Func::sum(Expr::col(column)), "BIGINT").into()
}

async fn payment_groups(
    db: &impl ConnectionTrait,
    merchant: Option<&str>,
    window: &Window,
    set: PaymentSet,
    key: Key,
) -> DomainResult<Vec<PaymentGroup>> {
    let key = match key {
        Key::Provider => Expr::col(payments::Column::Provider),
        Key::Day => day_of_creation(db.get_database_backend()),
    };
    let query = payments::Entity::find()
        .select_only()
        .expr_as(key.clone(), "key")
        .column(payments::Column::Status)
        .column(payments::Column::Currency)
        .expr_as(Func::count(Expr::col(payments::Column::Id)), "count")
        .expr_as(sum_bigint(payments::Column::AmountMinor), "amount")
        .expr_as(sum_bigint(payments::Column::RefundedMinor), "refunded")
        .apply_if(merchant, |query, id| query.filter(payments::Column::MerchantId.eq(id)))
        .filter(payments::Column::CreatedAt.gte(window.start()))
        .filter(payments::Column::CreatedAt.lt(window.end()));
    let query = match set {
        PaymentSet::All => query,
        PaymentSet::ThroughLinks => query.filter(payments::Column::PaymentLinkId.is_not_null()),
        PaymentSet::Renewals => query.filter(payments::Column::SubscriptionId.is_not_null()),
    };
    let rows: Vec<(String, String, String, i64, i64, i64)> = query
        .group_by(key)
        .group_by(payments::Column::Status)
        .group_by(payments::Column::Currency)
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(key, status, currency, count, amount_minor, refunded_minor)| {
            Ok(PaymentGroup { key, status: decode(status)?, currency, count, amount_minor, refunded_minor })
        })
        .collect()
}

async fn refund_groups(
    db: &impl ConnectionTrait,
    merchant: Option<&str>,
    window: &Window,
    key: Key,
) -> DomainResult<Vec<RefundGroup>> {
    let key = match key {
        Key::Provider => Expr::col(refunds::Column::Provider),
        Key::Day => day_of_creation(db.get_database_backend()),
    };
    let rows: Vec<(String, String, String, i64, i64)> = refunds::Entity::find()
        .select_only()
        .expr_as(key.clone(), "key")
        .column(refunds::Column::Status)
        .column(refunds::Column::Currency)
        .expr_as(Func::count(Expr::col(refunds::Column::Id)), "count")
        .expr_as(sum_bigint(refunds::Column::AmountMinor), "amount")
        .apply_if(merchant, |query, id| query.filter(refunds::Column::MerchantId.eq(id)))
        .filter(refunds::Column::CreatedAt.gte(window.start()))
        .filter(refunds::Column::CreatedAt.lt(window.end()))
        .group_by(key)
        .group_by(refunds::Column::Status)
        .group_by(refunds::Column::Currency)
        .into_tuple()
        .all(db)
        .await?;
    rows.into_iter()
        .map(|(key, status, currency, count, amount_minor)| {
            Ok(RefundGroup { key, status: decode(status)?, currency, count, amount_minor })
        })
        .collect()
}

fn decode<T: ActiveEnum<Value = String>>(text: String) -> DomainResult<T> {
    T::try_from_value(&text)
        .map_err(|err| DomainError::Internal(format!("unknown stored value {text:?}: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn field_of(result: DomainResult<Window>) -> String {
        match result {
            Err(DomainError::Validation { field, .. }) => field,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_period_is_whole_days_ending_today() {
        let today = date("2026-03-01");
        let month = Window::resolve(Period::Month, None, None, today).unwrap();
        assert_eq!((month.from(), month.to()), (date("2026-01-31"), today));
        assert_eq!(month.start().to_rfc3339(), "2026-01-31T00:00:00+00:00");
        assert_eq!(month.end().to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(month.days().count(), 30);
        let day = Window::resolve(Period::Day, None, None, today).unwrap();
        assert_eq!(day.days().collect::<Vec<_>>(), [today]);
        let week = Window::resolve(Period::Week, None, Some(date("2026-02-10")), today).unwrap();
        assert_eq!((week.from(), week.to()), (date("2026-02-04"), date("2026-02-10")));
        let since = Window::resolve(Period::Day, Some(date("2026-02-20")), None, today).unwrap();
        assert_eq!((since.from(), since.to()), (date("2026-02-20"), today));
    }

    #[test]
    fn bad_windows_name_the_field() {
        let today = date("2026-03-01");
        let resolve = |from: Option<&str>, to: Option<&str>| {
            Window::resolve(Period::Month, from.map(date), to.map(date), today)
        };
        assert_eq!(field_of(resolve(Some("2026-02-02"), Some("2026-02-01"))), "from");
        assert_eq!(field_of(resolve(Some("2026-03-02"), None)), "from");
        assert_eq!(field_of(resolve(Some("2025-01-01"), Some("2026-01-02"))), "from");
        assert_eq!(field_of(resolve(Some("1969-12-31"), None)), "from");
        assert_eq!(field_of(resolve(None, Some("9999-12-31"))), "to");
        assert!(resolve(Some("2024-01-01"), Some("2024-12-31")).is_ok(), "a leap year fits");
        assert!(resolve(None, Some("1970-01-05")).is_ok(), "a window is cut at the first day");
    }

    #[test]
    fn percentages_round_half_up_to_two_decimals() {
        assert_eq!(percentage(2, 3).as_deref(), Some("66.67"));
        assert_eq!(percentage(1, 3).as_deref(), Some("33.33"));
        assert_eq!(percentage(1, 8).as_deref(), Some("12.50"));
        assert_eq!(percentage(1, 16).as_deref(), Some("6.25"));
        assert_eq!(percentage(1, 32).as_deref(), Some("3.13"));
        assert_eq!(percentage(5, 5).as_deref(), Some("100.00"));
        assert_eq!(percentage(0, 0), None);
    }
}
