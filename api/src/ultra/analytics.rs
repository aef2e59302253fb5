//! `GET analytics/overview`, `GET analytics/providers`, `GET analytics/subscriptions`,
//! `GET analytics/daily`: figures over a window of whole UTC days, for a merchant's own data
//! or, for admins, every merchant's or one merchant's (`merchantId`).

use std::borrow::Cow;

use chrono::{DateTime, NaiveDate, Utc};
use poem::web::Data;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::Query,
    registry::{MetaSchema, MetaSchemaRef},
    types::{ParseError, ParseFromJSON, ParseFromParameter, ParseResult, ToJSON, Type},
};
use sea_orm::EntityTrait;
use serde_json::Value;
use ultra_domain::{
    analytics::{self, DayFigures, LinkFigures, PaymentFigures, RefundFigures, SubscriptionFigures, Window},
    dates,
    money::format_amount,
};
use ultra_entity::users::{self, UserRole};

use super::ApiTags;
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal},
        envelope::Reply,
        error::{ApiError, ApiResult},
    },
};

/// The window's length when no dates are given; it ends today (UTC).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "AnalyticsPeriod", rename_all = "lowercase")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl From<Period> for analytics::Period {
    fn from(period: Period) -> Self {
        match period {
            Period::Day => Self::Day,
            Period::Week => Self::Week,
            Period::Month => Self::Month,
        }
    }
}

fn month() -> Period {
    Period::Month
}

/// A calendar day written `YYYY-MM-DD`, documented in OpenAPI's own `date` format (the
/// `NaiveDate` of poem-openapi documents a format of its own, which client generators do not
/// know), and read strictly: `2026-1-5` is refused rather than guessed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Date(pub NaiveDate);

impl Date {
    fn parse(text: &str) -> ParseResult<Self> {
        let shaped = text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
        let range = dates::earliest().date_naive()..=dates::latest().date_naive();
        shaped
            .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
            .flatten()
            .filter(|date| range.contains(date))
            .map(Self)
            .ok_or_else(|| {
                ParseError::custom(
                    "must be a calendar date written YYYY-MM-DD, from 1970-01-01 to 9999-12-31",
                )
            })
    }
}

impl Type for Date {
    const IS_REQUIRED: bool = true;

    type RawValueType = Self;

    type RawElementValueType = Self;

    fn name() -> Cow<'static, str> {
        "string_date".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema::new_with_format("string", "date")))
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(self)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self::RawElementValueType> + 'a> {
        Box::new(self.as_raw_value().into_iter())
    }
}

impl ParseFromParameter for Date {
    fn parse_from_parameter(value: &str) -> ParseResult<Self> {
        Self::parse(value)
    }
}

impl ParseFromJSON for Date {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        match value {
            Some(Value::String(text)) => Self::parse(&text),
            other => Err(ParseError::expected_type(other.unwrap_or_default())),
        }
    }
}

impl ToJSON for Date {
    fn to_json(&self) -> Option<Value> {
        Some(Value::String(self.0.format("%Y-%m-%d").to_string()))
    }
}

/// The days the figures cover, as resolved from `period`, `from` and `to`.
#[derive(Object)]
#[oai(rename = "AnalyticsWindow", rename_all = "camelCase")]
pub struct WindowView {
    /// The first day (UTC), included.
    pub from: Date,
    /// The last day (UTC), included.
    pub to: Date,
    /// 00:00 UTC on `from`: the first instant counted.
    pub start: DateTime<Utc>,
    /// 00:00 UTC on the day after `to`: the first instant not counted.
    pub end: DateTime<Utc>,
    pub days: i64,
    /// The merchant whose data is counted; null for every merchant (admins only).
    pub merchant_id: Option<String>,
}

impl WindowView {
    fn new(window: &Window, merchant_id: Option<String>) -> Self {
        Self {
            from: Date(window.from()),
            to: Date(window.to()),
            start: window.start(),
            end: window.end(),
            days: window.day_count(),
            merchant_id,
        }
    }
}

/// Payments created in the window, by their status now.
#[derive(Object)]
#[oai(rename = "AnalyticsPaymentCounts")]
pub struct PaymentCountsView {
    pub pending: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub refunding: i64,
    pub refunded: i64,
    pub expired: i64,
    /// Held for reconciliation: the provider may have collected them but cannot say.
    pub unknown: i64,
}

/// What succeeded payments collected in one currency. Amounts are decimal strings, like every
/// amount of this API.
#[derive(Object)]
#[oai(rename = "AnalyticsCurrencyVolume", rename_all = "camelCase")]
pub struct VolumeView {
    pub currency: String,
    /// Succeeded payments in this currency.
    pub payments: i64,
    /// Their amounts.
    pub gross: String,
    /// Refunded from them, or being refunded (refunds neither failed nor cancelled).
    pub refunded: String,
    /// `gross` minus `refunded`.
    pub net: String,
}

/// Payments created in the window. A payment *succeeded* when its money was collected: status
/// `completed`, or `refunding`/`refunded`, which only a completed payment becomes. It is
/// *finished* when it is neither `pending` nor `unknown`.
#[derive(Object)]
#[oai(rename = "AnalyticsPayments", rename_all = "camelCase")]
pub struct PaymentsView {
    pub total: i64,
    pub by_status: PaymentCountsView,
    pub succeeded: i64,
    pub finished: i64,
    /// `succeeded` out of `finished`, in percent with two decimals, rounded half up
    /// (`"66.67"`); null when no payment has finished.
    pub success_rate: Option<String>,
    /// Per currency, in code order; currencies without a succeeded payment are left out.
    pub volumes: Vec<VolumeView>,
}

impl From<PaymentFigures> for PaymentsView {
    fn from(figures: PaymentFigures) -> Self {
        let counts = &figures.counts;
        Self {
            total: counts.total(),
            succeeded: counts.succeeded(),
            finished: counts.finished(),
            success_rate: counts.success_rate(),
            by_status: PaymentCountsView {
                pending: counts.pending,
                completed: counts.completed,
                failed: counts.failed,
                cancelled: counts.cancelled,
                refunding: counts.refunding,
                refunded: counts.refunded,
                expired: counts.expired,
                unknown: counts.unknown,
            },
            volumes: figures
                .volumes
                .into_iter()
                .map(|(currency, volume)| VolumeView {
                    currency,
                    payments: volume.payments,
                    gross: format_amount(volume.gross_minor),
                    refunded: format_amount(volume.refunded_minor),
                    net: format_amount(volume.net_minor()),
                })
                .collect(),
        }
    }
}

/// Refunds created in the window, by their status now.
#[derive(Object)]
#[oai(rename = "AnalyticsRefundCounts")]
pub struct RefundCountsView {
    pub pending: i64,
    pub processing: i64,
    pub completed: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Held for reconciliation: the provider may have refunded them but cannot say.
    pub unknown: i64,
}

/// Completed refunds in one currency.
#[derive(Object)]
#[oai(rename = "AnalyticsRefundVolume")]
pub struct RefundVolumeView {
    pub currency: String,
    pub refunds: i64,
    pub amount: String,
}

/// Refunds created in the window (from the refunds themselves; a payment's own `refunded`
/// amount is in the payment volumes).
#[derive(Object)]
#[oai(rename = "AnalyticsRefunds", rename_all = "camelCase")]
pub struct RefundsView {
    pub total: i64,
    pub by_status: RefundCountsView,
    /// Completed refunds per currency, in code order.
    pub volumes: Vec<RefundVolumeView>,
}

impl From<RefundFigures> for RefundsView {
    fn from(figures: RefundFigures) -> Self {
        let counts = &figures.counts;
        Self {
            total: counts.total(),
            by_status: RefundCountsView {
                pending: counts.pending,
                processing: counts.processing,
                completed: counts.completed,
                failed: counts.failed,
                cancelled: counts.cancelled,
                unknown: counts.unknown,
            },
            volumes: figures
                .volumes
                .into_iter()
                .map(|(currency, volume)| RefundVolumeView {
                    currency,
                    refunds: volume.refunds,
                    amount: format_amount(volume.amount_minor),
                })
                .collect(),
        }
    }
}

/// Active subscriptions now, by renewal interval.
#[derive(Object)]
#[oai(rename = "AnalyticsSubscriptionIntervals")]
pub struct IntervalCountsView {
    pub daily: i64,
    pub weekly: i64,
    pub monthly: i64,
    pub quarterly: i64,
    pub annual: i64,
}

/// Subscription states as they are now (a state has no history to place in a window), and
/// what the window saw created and renewed.
#[derive(Object)]
#[oai(rename = "AnalyticsSubscriptions", rename_all = "camelCase")]
pub struct SubscriptionsView {
    /// Status `active`, overdue ones included.
    pub active: i64,
    /// Active, with the current period's renewal failed through every retry.
    pub overdue: i64,
    pub paused: i64,
    pub cancelled: i64,
    pub active_by_interval: IntervalCountsView,
    /// Subscriptions created in the window.
    pub created_in_window: i64,
    /// Renewal payments created in the window; `succeeded` counts the renewals that went
    /// through.
    pub renewals: PaymentsView,
}

impl From<SubscriptionFigures> for SubscriptionsView {
    fn from(figures: SubscriptionFigures) -> Self {
        let intervals = figures.active_by_interval;
        Self {
            active: figures.active,
            overdue: figures.overdue,
            paused: figures.paused,
            cancelled: figures.cancelled,
            active_by_interval: IntervalCountsView {
                daily: intervals.daily,
                weekly: intervals.weekly,
                monthly: intervals.monthly,
                quarterly: intervals.quarterly,
                annual: intervals.annual,
            },
            created_in_window: figures.created,
            renewals: figures.renewals.into(),
        }
    }
}

/// Payment links and the payments made through them.
#[derive(Object)]
#[oai(rename = "AnalyticsPaymentLinks", rename_all = "camelCase")]
pub struct PaymentLinksView {
    /// Links created in the window.
    pub created: i64,
    /// Payments started through a link in the window, whenever the link was created.
    pub payments_started: i64,
    /// Those that succeeded.
    pub payments_completed: i64,
    /// `paymentsCompleted` out of `paymentsStarted`, in percent with two decimals; null when
    /// no payment started through a link.
    pub conversion_rate: Option<String>,
}

impl From<LinkFigures> for PaymentLinksView {
    fn from(figures: LinkFigures) -> Self {
        Self {
            created: figures.created,
            payments_started: figures.payments.counts.total(),
            payments_completed: figures.payments.counts.succeeded(),
            conversion_rate: figures.conversion_rate(),
        }
    }
}

#[derive(Object)]
#[oai(rename = "AnalyticsOverview", rename_all = "camelCase")]
pub struct OverviewView {
    pub window: WindowView,
    pub payments: PaymentsView,
    pub refunds: RefundsView,
    pub subscriptions: SubscriptionsView,
    pub payment_links: PaymentLinksView,
}

#[derive(Object)]
#[oai(rename = "AnalyticsProvider")]
pub struct ProviderView {
    pub provider: String,
    pub payments: PaymentsView,
    pub refunds: RefundsView,
}

#[derive(Object)]
#[oai(rename = "AnalyticsProviders")]
pub struct ProvidersView {
    pub window: WindowView,
    /// By provider name; a provider is listed once it has a payment or a refund in the window.
    pub providers: Vec<ProviderView>,
}

#[derive(Object)]
#[oai(rename = "AnalyticsSubscriptionReport")]
pub struct SubscriptionReportView {
    pub window: WindowView,
    pub subscriptions: SubscriptionsView,
}

/// One UTC day.
#[derive(Object)]
#[oai(rename = "AnalyticsDay", rename_all = "camelCase")]
pub struct DayView {
    pub date: Date,
    pub payments: PaymentsView,
    pub refunds: RefundsView,
    pub new_subscriptions: i64,
}

impl DayView {
    fn new(date: NaiveDate, figures: DayFigures) -> Self {
        Self {
            date: Date(date),
            payments: figures.payments.into(),
            refunds: figures.refunds.into(),
            new_subscriptions: figures.subscriptions_created,
        }
    }
}

#[derive(Object)]
#[oai(rename = "AnalyticsDaily")]
pub struct DailyView {
    pub window: WindowView,
    /// Every day of the window, oldest first, days without activity included (with zeros).
    pub days: Vec<DayView>,
}

/// Whose data the figures cover: a merchant's own (an admin under `X-App-Context: merchant`
/// gets the primary merchant's); an admin's, every merchant's or the one `merchantId` names.
async fn figures_scope(
    state: &AppState,
    principal: &Principal,
    merchant_id: Option<String>,
) -> ApiResult<Option<String>> {
    let scope = principal.merchant_scope(merchant_id, "merchantId")?;
    let (true, Some(id)) = (principal.is_admin(), scope.clone()) else {
        return Ok(scope);
    };
    users::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|user| user.role == UserRole::User)
        .map(|merchant| Some(merchant.id))
        .ok_or_else(|| ApiError::not_found("merchant"))
}

/// The scope and the window a request asks for.
async fn request(
    state: &AppState,
    principal: &Principal,
    period: Period,
    from: Option<Date>,
    to: Option<Date>,
    merchant_id: Option<String>,
) -> ApiResult<(Option<String>, Window)> {
    let scope = figures_scope(state, principal, merchant_id).await?;
    let date = |day: Option<Date>| day.map(|Date(day)| day);
    let window = Window::resolve(period.into(), date(from), date(to), Utc::now().date_naive())?;
    Ok((scope, window))
}

pub struct AnalyticsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Analytics")]
impl AnalyticsApi {
    /// Overall analytics overview
    ///
    /// Returns aggregated payment, subscription, and payment link stats. Accessible to merchants
    /// (their own data) and admins (every merchant's, or one merchant's with `merchantId`).
    /// The window is made of whole UTC days, both ends included: `period` `day` is today,
    /// `week` the 7 days and `month` the 30 days ending today; `from` and `to` override it
    /// (`from` alone runs to today, `to` alone goes back `period`'s days), for at most 366
    /// days. Payments, refunds, subscriptions and links count in the window by their creation
    /// time; subscription states are as they are now.
    #[oai(path = "/analytics/overview", method = "get", operation_id = "getAnalyticsOverview")]
    async fn overview(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// `day`, `week` or `month`: today, or the 7 or 30 days ending today (UTC).
        #[oai(default = "month")]
        period: Query<Period>,
        /// First day (`YYYY-MM-DD`, UTC), included.
        from: Query<Option<Date>>,
        /// Last day (`YYYY-MM-DD`, UTC), included.
        to: Query<Option<Date>>,
        /// One merchant's figures (admins only).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
    ) -> ApiResult<Reply<OverviewView>> {
        let (scope, window) = request(&state, &auth.0, period.0, from.0, to.0, merchant_id.0).await?;
        let figures = analytics::overview(&state.db, scope.as_deref(), &window).await?;
        Ok(Reply::new(OverviewView {
            window: WindowView::new(&window, scope),
            payments: figures.payments.into(),
            refunds: figures.refunds.into(),
            subscriptions: figures.subscriptions.into(),
            payment_links: figures.links.into(),
        }))
    }

    /// Payment analytics by provider
    ///
    /// Payments and refunds per provider over the window (see the overview for how it is
    /// defined).
    #[oai(path = "/analytics/providers", method = "get", operation_id = "getAnalyticsProviders")]
    async fn providers(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// `day`, `week` or `month`: today, or the 7 or 30 days ending today (UTC).
        #[oai(default = "month")]
        period: Query<Period>,
        /// First day (`YYYY-MM-DD`, UTC), included.
        from: Query<Option<Date>>,
        /// Last day (`YYYY-MM-DD`, UTC), included.
        to: Query<Option<Date>>,
        /// One merchant's figures (admins only).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
    ) -> ApiResult<Reply<ProvidersView>> {
        let (scope, window) = request(&state, &auth.0, period.0, from.0, to.0, merchant_id.0).await?;
        let providers = analytics::by_provider(&state.db, scope.as_deref(), &window).await?;
        Ok(Reply::new(ProvidersView {
            window: WindowView::new(&window, scope),
            providers: providers
                .into_iter()
                .map(|(provider, figures)| ProviderView {
                    provider,
                    payments: figures.payments.into(),
                    refunds: figures.refunds.into(),
                })
                .collect(),
        }))
    }

    /// Subscription analytics
    ///
    /// Subscription states now; subscriptions created and renewal payments made in the window
    /// (see the overview for how it is defined).
    #[oai(path = "/analytics/subscriptions", method = "get", operation_id = "getAnalyticsSubscriptions")]
    async fn subscriptions(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// `day`, `week` or `month`: today, or the 7 or 30 days ending today (UTC).
        #[oai(default = "month")]
        period: Query<Period>,
        /// First day (`YYYY-MM-DD`, UTC), included.
        from: Query<Option<Date>>,
        /// Last day (`YYYY-MM-DD`, UTC), included.
        to: Query<Option<Date>>,
        /// One merchant's figures (admins only).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
    ) -> ApiResult<Reply<SubscriptionReportView>> {
        let (scope, window) = request(&state, &auth.0, period.0, from.0, to.0, merchant_id.0).await?;
        let figures = analytics::subscription_figures(&state.db, scope.as_deref(), &window).await?;
        Ok(Reply::new(SubscriptionReportView {
            window: WindowView::new(&window, scope),
            subscriptions: figures.into(),
        }))
    }

    /// Daily analytics buckets
    ///
    /// One bucket per UTC day of the window, oldest first, days without activity included
    /// with zeros (see the overview for how the window is defined).
    #[oai(path = "/analytics/daily", method = "get", operation_id = "getAnalyticsDaily")]
    async fn daily(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// `day`, `week` or `month`: today, or the 7 or 30 days ending today (UTC).
        #[oai(default = "month")]
        period: Query<Period>,
        /// First day (`YYYY-MM-DD`, UTC), included.
        from: Query<Option<Date>>,
        /// Last day (`YYYY-MM-DD`, UTC), included.
        to: Query<Option<Date>>,
        /// One merchant's figures (admins only).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
    ) -> ApiResult<Reply<DailyView>> {
        let (scope, window) = request(&state, &auth.0, period.0, from.0, to.0, merchant_id.0).await?;
        let days = analytics::daily(&state.db, scope.as_deref(), &window).await?;
        Ok(Reply::new(DailyView {
            window: WindowView::new(&window, scope),
            days: days.into_iter().map(|(date, figures)| DayView::new(date, figures)).collect(),
        }))
    }
}
