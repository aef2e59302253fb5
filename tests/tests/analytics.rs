//! `GET /api/v1/analytics/{overview,providers,subscriptions,daily}`: every figure equals what
//! this test computes from the rows it wrote (two merchants, several days, providers and
//! currencies, empty days among them); a merchant sees only its own figures and an admin all
//! of them or one merchant's; bad windows are refused naming their field.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Timelike, Utc};
use reqwest::StatusCode;
use sea_orm::{ActiveEnum, ActiveValue::Set, DatabaseConnection, EntityTrait};
use serde_json::{Value, json};
use ultra_entity::{
    payment_links::{self, PaymentLinkStatus},
    payments::{self, PaymentStatus},
    provider_configs::ProviderMode,
    refunds::{self, RefundStatus},
    subscriptions::{self, SubscriptionInterval, SubscriptionStatus},
};
use ultra_tests::{MERCHANT_EMAIL, MERCHANT_PASSWORD, TestApp};

const OTHER_EMAIL: &str = "market@ultra.test";
const OTHER_PASSWORD: &str = "merchant-password-2";

const PROVIDERS: [&str; 4] = ["airtel", "mpesa", "mvola", "orange"];
const CURRENCIES: [&str; 3] = ["KES", "MGA", "NGN"];
const PAYMENT_STATUSES: [PaymentStatus; 8] = [
    PaymentStatus::Pending,
    PaymentStatus::Completed,
    PaymentStatus::Failed,
    PaymentStatus::Cancelled,
    PaymentStatus::Refunding,
    PaymentStatus::Refunded,
    PaymentStatus::Expired,
    PaymentStatus::Unknown,
];
const REFUND_STATUSES: [RefundStatus; 6] = [
    RefundStatus::Pending,
    RefundStatus::Processing,
    RefundStatus::Completed,
    RefundStatus::Failed,
    RefundStatus::Cancelled,
    RefundStatus::Unknown,
];
const INTERVALS: [SubscriptionInterval; 5] = [
    SubscriptionInterval::Daily,
    SubscriptionInterval::Weekly,
    SubscriptionInterval::Monthly,
    SubscriptionInterval::Quarterly,
    SubscriptionInterval::Annual,
];

/// Days (counted back from today) on which nothing at all happens; both lie inside
/// [`WINDOW`], so its daily figures must list them with zeros.
const QUIET_DAYS: [u64; 2] = [13, 14];
/// The explicit window of the test, in days back from today: from 20 days ago to 8 days ago.
const WINDOW: (u64, u64) = (20, 8);
/// How far back the fixture goes.
const HISTORY_DAYS: u64 = 40;

/// A fixed-seed xorshift, so a failure reproduces with the same rows.
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A moment on a day that is not quiet.
    fn moment(&mut self, today: NaiveDate) -> DateTime<Utc> {
        let back = loop {
            let back = self.below(HISTORY_DAYS + 1);
            if !QUIET_DAYS.contains(&back) {
                break back;
            }
        };
        let second = u32::try_from(self.below(86_400)).unwrap();
        at(today, back, NaiveTime::from_num_seconds_from_midnight_opt(second, 0).unwrap())
    }
}

fn day(today: NaiveDate, back: u64) -> NaiveDate {
    today.checked_sub_days(Days::new(back)).unwrap()
}

fn at(today: NaiveDate, back: u64, time: NaiveTime) -> DateTime<Utc> {
    day(today, back).and_time(time).and_utc()
}

struct Payment {
    id: String,
    merchant: usize,
    provider: &'static str,
    status: PaymentStatus,
    currency: &'static str,
    amount: i64,
    refunded: i64,
    link: Option<String>,
    subscription: Option<String>,
    created_at: DateTime<Utc>,
}

struct Refund {
    merchant: usize,
    payment_id: String,
    provider: &'static str,
    status: RefundStatus,
    currency: &'static str,
    amount: i64,
    created_at: DateTime<Utc>,
}

struct Subscription {
    id: String,
    merchant: usize,
    status: SubscriptionStatus,
    overdue: bool,
    interval: SubscriptionInterval,
    created_at: DateTime<Utc>,
}

struct Link {
    id: String,
    merchant: usize,
    created_at: DateTime<Utc>,
}

/// What the test wrote, for two merchants.
struct Fixture {
    merchants: [String; 2],
    payments: Vec<Payment>,
    refunds: Vec<Refund>,
    subscriptions: Vec<Subscription>,
    links: Vec<Link>,
}

fn new_id(prefix: &str) -> String {
    ultra_domain::ids::new_id(prefix)
}

fn fixture(merchants: [String; 2], today: NaiveDate) -> Fixture {
    let mut dice = Dice(0x9e37_79b9_7f4a_7c15);
    let links: Vec<Link> = (0..14)
        .map(|_| Link { id: new_id("plink"), merchant: dice.pick(&[0, 1]), created_at: dice.moment(today) })
        .collect();
    let subscriptions: Vec<Subscription> = (0..30)
        .map(|_| Subscription {
            id: new_id("sub"),
            merchant: dice.pick(&[0, 1]),
            status: dice.pick(&[
                SubscriptionStatus::Active,
                SubscriptionStatus::Paused,
                SubscriptionStatus::Cancelled,
            ]),
            overdue: dice.chance(30),
            interval: dice.pick(&INTERVALS),
            created_at: dice.moment(today),
        })
        .collect();
    let mut payments = Vec::new();
    for _ in 0..240 {
        let merchant = dice.pick(&[0, 1]);
        let status = dice.pick(&PAYMENT_STATUSES);
        let amount = 100 + i64::try_from(dice.below(5_000_000)).unwrap();
        let refunded = match status {
            PaymentStatus::Refunded => amount,
            PaymentStatus::Refunding => {
                1 + i64::try_from(dice.below(u64::try_from(amount).unwrap())).unwrap()
            }
            PaymentStatus::Completed if dice.chance(20) => amount / 3,
            _ => 0,
        };
        let own_links: Vec<&Link> = links.iter().filter(|link| link.merchant == merchant).collect();
        let own_subscriptions: Vec<&Subscription> =
            subscriptions.iter().filter(|subscription| subscription.merchant == merchant).collect();
        let link = (dice.chance(30) && !own_links.is_empty())
            .then(|| own_links[dice.below(own_links.len() as u64) as usize].id.clone());
        let subscription = (link.is_none() && dice.chance(25) && !own_subscriptions.is_empty())
            .then(|| own_subscriptions[dice.below(own_subscriptions.len() as u64) as usize].id.clone());
        payments.push(Payment {
            id: new_id("pay"),
            merchant,
            provider: dice.pick(&PROVIDERS),
            status,
            currency: dice.pick(&CURRENCIES),
            amount,
            refunded,
            link,
            subscription,
            created_at: dice.moment(today),
        });
    }
    // Rows on the window's edges: its first and last second count, the seconds around it do not.
    let (first, last) = WINDOW;
    for created_at in [
        at(today, first, NaiveTime::MIN),
        at(today, first + 1, NaiveTime::from_hms_opt(23, 59, 59).unwrap()),
        at(today, last, NaiveTime::from_hms_opt(23, 59, 59).unwrap()),
        at(today, last - 1, NaiveTime::MIN),
    ] {
        payments.push(Payment {
            id: new_id("pay"),
            merchant: 0,
            provider: "mvola",
            status: PaymentStatus::Completed,
            currency: "MGA",
            amount: 1_000_000,
            refunded: 0,
            link: None,
            subscription: None,
            created_at,
        });
    }
    let mut refunds = Vec::new();
    for payment in &payments {
        if !matches!(
            payment.status,
            PaymentStatus::Completed | PaymentStatus::Refunding | PaymentStatus::Refunded
        ) || !dice.chance(60)
        {
            continue;
        }
        let created_at = dice.moment(today);
        refunds.push(Refund {
            merchant: payment.merchant,
            payment_id: payment.id.clone(),
            provider: payment.provider,
            status: dice.pick(&REFUND_STATUSES),
            currency: payment.currency,
            amount: 1 + i64::try_from(dice.below(u64::try_from(payment.amount).unwrap())).unwrap(),
            created_at,
        });
    }
    Fixture { merchants, payments, refunds, subscriptions, links }
}

async fn store(db: &DatabaseConnection, fixture: &Fixture) {
    let merchant = |index: usize| fixture.merchants[index].clone();
    let links = fixture.links.iter().map(|link| payment_links::ActiveModel {
        id: Set(link.id.clone()),
        merchant_id: Set(merchant(link.merchant)),
        title: Set("Fixture link".to_owned()),
        amount_minor: Set(500_000),
        currency: Set("MGA".to_owned()),
        max_uses: Set(None),
        uses_count: Set(0),
        reserved_count: Set(0),
        expires_at: Set(None),
        providers: Set(None),
        metadata: Set(None),
        status: Set(PaymentLinkStatus::Active),
        created_at: Set(link.created_at),
        updated_at: Set(link.created_at),
    });
    payment_links::Entity::insert_many(links.collect::<Vec<_>>()).exec(db).await.unwrap();
    let subscriptions = fixture.subscriptions.iter().map(|subscription| subscriptions::ActiveModel {
        id: Set(subscription.id.clone()),
        merchant_id: Set(merchant(subscription.merchant)),
        label: Set("Fixture plan".to_owned()),
        customer_phone: Set("0340000000".to_owned()),
        amount_minor: Set(250_000),
        currency: Set("MGA".to_owned()),
        description: Set(None),
        interval: Set(subscription.interval),
        provider: Set("mvola".to_owned()),
        status: Set(subscription.status),
        next_renewal_at: Set(subscription.created_at + chrono::Duration::days(400)),
        anchor_day: Set(1),
        overdue: Set(subscription.overdue),
        renewal_attempts: Set(0),
        retry_at: Set(None),
        renewal_payment_id: Set(None),
        last_payment_id: Set(None),
        last_renewed_at: Set(None),
        renewal_count: Set(0),
        metadata: Set(None),
        created_at: Set(subscription.created_at),
        updated_at: Set(subscription.created_at),
    });
    subscriptions::Entity::insert_many(subscriptions.collect::<Vec<_>>()).exec(db).await.unwrap();
    let payments: Vec<payments::ActiveModel> = fixture
        .payments
        .iter()
        .map(|payment| payments::ActiveModel {
            id: Set(payment.id.clone()),
            merchant_id: Set(merchant(payment.merchant)),
            provider: Set(payment.provider.to_owned()),
            mode: Set(ProviderMode::Simulation),
            amount_minor: Set(payment.amount),
            currency: Set(payment.currency.to_owned()),
            status: Set(payment.status),
            customer_phone: Set("0340000000".to_owned()),
            reference: Set(format!("ULT{}", ulid::Ulid::new())),
            refunded_minor: Set(payment.refunded),
            payment_link_id: Set(payment.link.clone()),
            subscription_id: Set(payment.subscription.clone()),
            expires_at: Set(payment.created_at + chrono::Duration::minutes(15)),
            created_at: Set(payment.created_at),
            updated_at: Set(payment.created_at),
            ..Default::default()
        })
        .collect();
    for chunk in payments.chunks(100) {
        payments::Entity::insert_many(chunk.to_vec()).exec(db).await.unwrap();
    }
    let refunds: Vec<refunds::ActiveModel> = fixture
        .refunds
        .iter()
        .map(|refund| refunds::ActiveModel {
            id: Set(new_id("rfd")),
            payment_id: Set(refund.payment_id.clone()),
            merchant_id: Set(merchant(refund.merchant)),
            provider: Set(refund.provider.to_owned()),
            mode: Set(ProviderMode::Simulation),
            amount_minor: Set(refund.amount),
            currency: Set(refund.currency.to_owned()),
            status: Set(refund.status),
            attempt: Set(1),
            created_at: Set(refund.created_at),
            updated_at: Set(refund.created_at),
            ..Default::default()
        })
        .collect();
    for chunk in refunds.chunks(100) {
        refunds::Entity::insert_many(chunk.to_vec()).exec(db).await.unwrap();
    }
}

/// Minor units as the API writes amounts: `"1234"` or `"1234.05"`.
fn amount(minor: i64) -> String {
    let cents = minor.rem_euclid(100);
    let whole = minor.div_euclid(100);
    if cents == 0 { whole.to_string() } else { format!("{whole}.{cents:02}") }
}

/// `part / whole` in percent, two decimals, halves rounded up.
fn rate(part: i64, whole: i64) -> Value {
    if whole == 0 {
        return Value::Null;
    }
    let scaled = part * 10_000;
    let mut hundredths = scaled / whole;
    if (scaled % whole) * 2 >= whole {
        hundredths += 1;
    }
    json!(format!("{}.{:02}", hundredths / 100, hundredths % 100))
}

fn name<T: ActiveEnum<Value = String>>(value: &T) -> String {
    value.to_value()
}

fn collected(status: PaymentStatus) -> bool {
    matches!(status, PaymentStatus::Completed | PaymentStatus::Refunding | PaymentStatus::Refunded)
}

fn expected_payments<'a>(payments: impl Iterator<Item = &'a Payment>) -> Value {
    let mut by_status: BTreeMap<String, i64> =
        PAYMENT_STATUSES.iter().map(|status| (name(status), 0)).collect();
    let mut volumes: BTreeMap<&str, (i64, i64, i64)> = BTreeMap::new();
    for payment in payments {
        *by_status.get_mut(&name(&payment.status)).unwrap() += 1;
        if collected(payment.status) {
            let volume = volumes.entry(payment.currency).or_default();
            volume.0 += 1;
            volume.1 += payment.amount;
            volume.2 += payment.refunded;
        }
    }
    let total: i64 = by_status.values().sum();
    let succeeded = by_status["completed"] + by_status["refunding"] + by_status["refunded"];
    let finished = total - by_status["pending"] - by_status["unknown"];
    json!({
        "total": total,
        "byStatus": by_status,
        "succeeded": succeeded,
        "finished": finished,
        "successRate": rate(succeeded, finished),
        "volumes": volumes.iter().map(|(currency, (count, gross, refunded))| json!({
            "currency": currency,
            "payments": count,
            "gross": amount(*gross),
            "refunded": amount(*refunded),
            "net": amount(gross - refunded),
        })).collect::<Vec<_>>(),
    })
}

fn expected_refunds<'a>(refunds: impl Iterator<Item = &'a Refund>) -> Value {
    let mut by_status: BTreeMap<String, i64> =
        REFUND_STATUSES.iter().map(|status| (name(status), 0)).collect();
    let mut volumes: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for refund in refunds {
        *by_status.get_mut(&name(&refund.status)).unwrap() += 1;
        if refund.status == RefundStatus::Completed {
            let volume = volumes.entry(refund.currency).or_default();
            volume.0 += 1;
            volume.1 += refund.amount;
        }
    }
    json!({
        "total": by_status.values().sum::<i64>(),
        "byStatus": by_status,
        "volumes": volumes.iter().map(|(currency, (count, total))| json!({
            "currency": currency, "refunds": count, "amount": amount(*total),
        })).collect::<Vec<_>>(),
    })
}

/// Whose figures a request should see (`None`: every merchant's) over which days.
#[derive(Clone, Copy)]
struct View {
    merchant: Option<usize>,
    from: NaiveDate,
    to: NaiveDate,
}

impl View {
    fn covers(&self, merchant: usize, created_at: DateTime<Utc>) -> bool {
        self.merchant.is_none_or(|own| own == merchant) && self.on(created_at, self.from, self.to)
    }

    fn on(&self, created_at: DateTime<Utc>, from: NaiveDate, to: NaiveDate) -> bool {
        (from..=to).contains(&created_at.date_naive())
    }

    fn payments<'a>(&self, fixture: &'a Fixture) -> impl Iterator<Item = &'a Payment> {
        let view = *self;
        fixture.payments.iter().filter(move |payment| view.covers(payment.merchant, payment.created_at))
    }

    fn refunds<'a>(&self, fixture: &'a Fixture) -> impl Iterator<Item = &'a Refund> {
        let view = *self;
        fixture.refunds.iter().filter(move |refund| view.covers(refund.merchant, refund.created_at))
    }

    fn window(&self, fixture: &Fixture) -> Value {
        json!({
            "from": self.from.to_string(),
            "to": self.to.to_string(),
            "days": (self.to - self.from).num_days() + 1,
            "merchantId": self.merchant.map(|index| fixture.merchants[index].clone()),
        })
    }

    fn subscriptions(&self, fixture: &Fixture) -> Value {
        let current: Vec<&Subscription> = fixture
            .subscriptions
            .iter()
            .filter(|subscription| self.merchant.is_none_or(|own| own == subscription.merchant))
            .collect();
        let count = |status: SubscriptionStatus| current.iter().filter(|s| s.status == status).count();
        let active: Vec<&&Subscription> =
            current.iter().filter(|s| s.status == SubscriptionStatus::Active).collect();
        let by_interval: BTreeMap<String, usize> = INTERVALS
            .iter()
            .map(|interval| (name(interval), active.iter().filter(|s| s.interval == *interval).count()))
            .collect();
        json!({
            "active": active.len(),
            "overdue": active.iter().filter(|s| s.overdue).count(),
            "paused": count(SubscriptionStatus::Paused),
            "cancelled": count(SubscriptionStatus::Cancelled),
            "activeByInterval": by_interval,
            "createdInWindow": fixture.subscriptions.iter()
                .filter(|s| self.covers(s.merchant, s.created_at)).count(),
            "renewals": expected_payments(self.payments(fixture).filter(|p| p.subscription.is_some())),
        })
    }

    fn links(&self, fixture: &Fixture) -> Value {
        let started: Vec<&Payment> = self.payments(fixture).filter(|p| p.link.is_some()).collect();
        let completed = started.iter().filter(|p| collected(p.status)).count();
        let created = fixture.links.iter().filter(|link| self.covers(link.merchant, link.created_at)).count();
        json!({
            "created": created,
            "paymentsStarted": started.len(),
            "paymentsCompleted": completed,
            "conversionRate": rate(i64::try_from(completed).unwrap(), i64::try_from(started.len()).unwrap()),
        })
    }

    fn overview(&self, fixture: &Fixture) -> Value {
        json!({
            "window": self.window(fixture),
            "payments": expected_payments(self.payments(fixture)),
            "refunds": expected_refunds(self.refunds(fixture)),
            "subscriptions": self.subscriptions(fixture),
            "paymentLinks": self.links(fixture),
        })
    }

    fn providers(&self, fixture: &Fixture) -> Value {
        let names: BTreeSet<&str> = self
            .payments(fixture)
            .map(|p| p.provider)
            .chain(self.refunds(fixture).map(|r| r.provider))
            .collect();
        let providers: Vec<Value> = names
            .into_iter()
            .map(|provider| {
                json!({
                    "provider": provider,
                    "payments": expected_payments(self.payments(fixture).filter(|p| p.provider == provider)),
                    "refunds": expected_refunds(self.refunds(fixture).filter(|r| r.provider == provider)),
                })
            })
            .collect();
        json!({ "window": self.window(fixture), "providers": providers })
    }

    fn daily(&self, fixture: &Fixture) -> Value {
        let days: Vec<Value> = self
            .from
            .iter_days()
            .take_while(|date| *date <= self.to)
            .map(|date| {
                let on_day = |created_at: DateTime<Utc>| self.on(created_at, date, date);
                json!({
                    "date": date.to_string(),
                    "payments": expected_payments(self.payments(fixture).filter(|p| on_day(p.created_at))),
                    "refunds": expected_refunds(self.refunds(fixture).filter(|r| on_day(r.created_at))),
                    "newSubscriptions": fixture.subscriptions.iter()
                        .filter(|s| self.covers(s.merchant, s.created_at) && on_day(s.created_at)).count(),
                })
            })
            .collect();
        json!({ "window": self.window(fixture), "days": days })
    }
}

/// Query parameters, in order.
type Params<'a> = Vec<(&'a str, &'a str)>;

async fn get(app: &TestApp, token: Option<&str>, path: &str, query: &[(&str, &str)]) -> (StatusCode, Value) {
    let url = reqwest::Url::parse_with_params(&app.url(&format!("/api/v1/analytics/{path}")), query).unwrap();
    let mut request = app.client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} is not JSON: {text}")))
}

/// The answer's `data`, with the window's instants checked and set aside (the expected
/// figures hold its days).
async fn figures(app: &TestApp, token: &str, path: &str, query: &[(&str, &str)]) -> Value {
    let (status, body) = get(app, Some(token), path, query).await;
    assert_eq!(status, StatusCode::OK, "{path} {query:?}: {body}");
    let mut data = body["data"].clone();
    let window = data["window"].as_object_mut().unwrap();
    let start: DateTime<Utc> = window.remove("start").unwrap().as_str().unwrap().parse().unwrap();
    let end: DateTime<Utc> = window.remove("end").unwrap().as_str().unwrap().parse().unwrap();
    let from: NaiveDate = window["from"].as_str().unwrap().parse().unwrap();
    let to: NaiveDate = window["to"].as_str().unwrap().parse().unwrap();
    assert_eq!(start, from.and_time(NaiveTime::MIN).and_utc(), "{path} {query:?}");
    assert_eq!(end, to.succ_opt().unwrap().and_time(NaiveTime::MIN).and_utc(), "{path} {query:?}");
    data
}

/// Waits out the last seconds of a UTC day, so that "today" is the same day for the fixture
/// and for every request.
async fn clear_of_midnight() {
    let now = Utc::now();
    let left = 86_400 - i64::from(now.num_seconds_from_midnight());
    if left < 60 {
        tokio::time::sleep(std::time::Duration::from_secs(u64::try_from(left).unwrap() + 1)).await;
    }
}

async fn merchant_id(db: &DatabaseConnection, email: &str) -> String {
    ultra_domain::users::find_by_email(db, email).await.unwrap().unwrap().id
}

#[tokio::test]
async fn figures_equal_totals_computed_from_the_rows_per_merchant_and_for_all() {
    clear_of_midnight().await;
    let app = TestApp::spawn().await;
    app.db.create_user(OTHER_EMAIL, Some(OTHER_PASSWORD), "user", &["--tier", "starter"]);
    let db = app.db.connect().await;
    let merchants = [merchant_id(&db, MERCHANT_EMAIL).await, merchant_id(&db, OTHER_EMAIL).await];
    let today = Utc::now().date_naive();
    let fixture = fixture(merchants.clone(), today);
    store(&db, &fixture).await;
    let tokens =
        [app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await, app.login(OTHER_EMAIL, OTHER_PASSWORD).await];
    let admin = app.admin_token().await;

    let (first, last) = WINDOW;
    let (from, to) = (day(today, first).to_string(), day(today, last).to_string());
    let explicit = [("from", from.as_str()), ("to", to.as_str())];
    // Who asks, with which `merchantId`, and whose figures they should get.
    let callers: Vec<(&str, Params, Option<usize>)> = vec![
        (tokens[0].as_str(), vec![], Some(0)),
        (tokens[1].as_str(), vec![], Some(1)),
        (admin.as_str(), vec![], None),
        (admin.as_str(), vec![("merchantId", merchants[0].as_str())], Some(0)),
        (admin.as_str(), vec![("merchantId", merchants[1].as_str())], Some(1)),
    ];
    for (token, scope, merchant) in &callers {
        let with = |extra: &[(&'static str, &'static str)]| {
            scope.iter().copied().chain(extra.iter().copied()).collect::<Params>()
        };
        let query: Params = scope.iter().copied().chain(explicit).collect();
        let view = View { merchant: *merchant, from: day(today, first), to: day(today, last) };
        assert_eq!(figures(&app, token, "overview", &query).await, view.overview(&fixture), "{query:?}");
        assert_eq!(figures(&app, token, "providers", &query).await, view.providers(&fixture), "{query:?}");
        let subscriptions =
            json!({ "window": view.window(&fixture), "subscriptions": view.subscriptions(&fixture) });
        assert_eq!(figures(&app, token, "subscriptions", &query).await, subscriptions, "{query:?}");
        assert_eq!(figures(&app, token, "daily", &query).await, view.daily(&fixture), "{query:?}");

        // Without dates: the period's days ending today, a month by default.
        let month = View { from: day(today, 29), to: today, ..view };
        assert_eq!(figures(&app, token, "overview", &with(&[])).await, month.overview(&fixture));
        assert_eq!(figures(&app, token, "daily", &with(&[])).await, month.daily(&fixture));
        let week = View { from: day(today, 6), to: today, ..view };
        assert_eq!(
            figures(&app, token, "overview", &with(&[("period", "week")])).await,
            week.overview(&fixture)
        );
        let one_day = View { from: today, to: today, ..view };
        assert_eq!(
            figures(&app, token, "providers", &with(&[("period", "day")])).await,
            one_day.providers(&fixture)
        );
    }

    // `to` alone goes back the period's days; `from` alone runs to today.
    let to_only = View { merchant: Some(0), from: day(today, last + 6), to: day(today, last) };
    let query = [("period", "week"), ("to", to.as_str())];
    assert_eq!(figures(&app, &tokens[0], "daily", &query).await, to_only.daily(&fixture));
    let from_only = View { merchant: Some(0), from: day(today, first), to: today };
    let query = [("from", from.as_str())];
    assert_eq!(figures(&app, &tokens[0], "overview", &query).await, from_only.overview(&fixture));

    // The quiet days are listed, with zeros.
    let daily = figures(&app, &admin, "daily", &explicit).await;
    let days = daily["days"].as_array().unwrap();
    assert_eq!(days.len(), usize::try_from(first - last + 1).unwrap());
    for back in QUIET_DAYS {
        let date = day(today, back).to_string();
        let quiet =
            days.iter().find(|d| d["date"] == date.as_str()).unwrap_or_else(|| panic!("{date} missing"));
        assert_eq!(quiet["payments"]["total"], 0, "{quiet}");
        assert_eq!(quiet["payments"]["volumes"], json!([]), "{quiet}");
        assert_eq!(quiet["payments"]["successRate"], Value::Null, "{quiet}");
        assert_eq!(quiet["refunds"]["total"], 0, "{quiet}");
        assert_eq!(quiet["newSubscriptions"], 0, "{quiet}");
    }

    // The fixture exercises what it claims to: several currencies and providers for both
    // merchants, refunds and links in the window.
    let overview = figures(&app, &admin, "overview", &explicit).await;
    assert_eq!(overview["payments"]["volumes"].as_array().unwrap().len(), CURRENCIES.len(), "{overview}");
    assert!(overview["refunds"]["byStatus"]["completed"].as_i64().unwrap() > 0, "{overview}");
    assert!(overview["paymentLinks"]["paymentsStarted"].as_i64().unwrap() > 0, "{overview}");
    assert!(overview["subscriptions"]["renewals"]["succeeded"].as_i64().unwrap() > 0, "{overview}");
    for token in &tokens {
        let own = figures(&app, token, "providers", &explicit).await;
        assert!(own["providers"].as_array().unwrap().len() > 1, "{own}");
    }
}

#[tokio::test]
async fn bad_windows_are_refused_naming_the_field_and_figures_are_for_their_owners() {
    let app = TestApp::spawn().await;
    let merchant = app.login(MERCHANT_EMAIL, MERCHANT_PASSWORD).await;
    let admin = app.admin_token().await;
    app.db.create_user(OTHER_EMAIL, Some(OTHER_PASSWORD), "user", &["--tier", "starter"]);
    let starter = app.login(OTHER_EMAIL, OTHER_PASSWORD).await;
    let paths = ["overview", "providers", "subscriptions", "daily"];

    for path in paths {
        let (status, body) = get(&app, None, path, &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");

        let refused = [
            (vec![("period", "year")], "period"),
            (vec![("from", "2026-02-30")], "from"),
            (vec![("from", "01/02/2026")], "from"),
            (vec![("from", "2026-1-5")], "from"),
            (vec![("to", "+2026-01-05")], "to"),
            (vec![("to", "yesterday")], "to"),
            (vec![("from", "")], "from"),
            (vec![("from", "2026-03-02"), ("to", "2026-03-01")], "from"),
            (vec![("from", "2024-01-01"), ("to", "2025-01-01")], "from"),
            (vec![("from", "1969-12-31"), ("to", "1970-01-01")], "from"),
            (vec![("to", "9999-12-31")], "to"),
        ];
        for (query, field) in refused {
            let (status, body) = get(&app, Some(&merchant), path, &query).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {query:?}: {body}");
            assert_eq!(body["meta"]["field"], field, "{path} {query:?}: {body}");
        }

        // A leap year fits: 366 days is the longest window.
        let (status, body) =
            get(&app, Some(&merchant), path, &[("from", "2024-01-01"), ("to", "2024-12-31")]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["data"]["window"]["days"], 366, "{path}: {body}");

        // `merchantId` is the admins' filter; merchants get their own figures.
        let (status, body) = get(&app, Some(&starter), path, &[("merchantId", "usr_someone")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        let (status, body) = get(&app, Some(&starter), path, &[]).await;
        assert_eq!(status, StatusCode::OK, "a starter merchant has analytics too: {body}");
        assert!(
            body["data"]["window"]["merchantId"].as_str().is_some_and(|id| id.starts_with("usr")),
            "{body}"
        );

        let long = "x".repeat(500);
        for unknown in ["usr_nobody", "", long.as_str()] {
            let (status, body) = get(&app, Some(&admin), path, &[("merchantId", unknown)]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path} {unknown:?}: {body}");
        }
        let (status, body) = get(&app, Some(&admin), path, &[]).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(body["data"]["window"]["merchantId"], Value::Null, "{body}");
        assert_eq!(body["data"]["window"]["days"], 30, "{body}");
    }
}
