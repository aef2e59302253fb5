//! A merchant's subscriptions, oldest first: what each charges, how often, where it stands
//! (status, and whether its renewal is overdue) and when it renews next.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ColumnTrait, Condition, DerivePartialModel};
use serde::{Deserialize, Serialize};
use ultra_entity::subscriptions::{self as subscription_rows, SubscriptionInterval, SubscriptionStatus};

use super::{CsvTable, instant, optional};
use crate::money::format_amount;

pub struct Subscriptions;

/// One merchant's subscriptions, optionally of one status and overdue or not, created within
/// `from`..=`to`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionFilter {
    pub merchant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SubscriptionStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overdue: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// Metadata is free-form and not exported; renewal bookkeeping (attempts, the payment in
/// flight) is the worker's, not the merchant's.
#[derive(DerivePartialModel)]
#[sea_orm(entity = "subscription_rows::Entity")]
pub struct SubscriptionRow {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub label: String,
    pub status: SubscriptionStatus,
    pub overdue: bool,
    pub amount_minor: i64,
    pub currency: String,
    pub interval: SubscriptionInterval,
    pub provider: String,
    pub customer_phone: String,
    pub description: Option<String>,
    pub next_renewal_at: DateTime<Utc>,
    pub last_renewed_at: Option<DateTime<Utc>>,
    pub renewal_count: i32,
    pub last_payment_id: Option<String>,
}

impl CsvTable for Subscriptions {
    type Entity = subscription_rows::Entity;
    type Row = SubscriptionRow;
    type Filter = SubscriptionFilter;

    const COLUMNS: &'static [&'static str] = &[
        "id",
        "created_at",
        "label",
        "status",
        "overdue",
        "amount",
        "currency",
        "interval",
        "provider",
        "customer_phone",
        "description",
        "next_renewal_at",
        "last_renewed_at",
        "renewal_count",
        "last_payment_id",
    ];

    fn condition(filter: &SubscriptionFilter) -> Condition {
        Condition::all()
            .add(subscription_rows::Column::MerchantId.eq(filter.merchant_id.as_str()))
            .add_option(filter.status.map(|status| subscription_rows::Column::Status.eq(status)))
            .add_option(filter.overdue.map(|overdue| subscription_rows::Column::Overdue.eq(overdue)))
            .add_option(filter.from.map(|from| subscription_rows::Column::CreatedAt.gte(from)))
            .add_option(filter.to.map(|to| subscription_rows::Column::CreatedAt.lte(to)))
    }

    fn id_column() -> subscription_rows::Column {
        subscription_rows::Column::Id
    }

    fn id(row: &SubscriptionRow) -> &str {
        &row.id
    }

    fn cells(row: &SubscriptionRow) -> Vec<Cow<'_, str>> {
        vec![
            Cow::Borrowed(row.id.as_str()),
            Cow::Owned(row.created_at.to_rfc3339()),
            Cow::Borrowed(row.label.as_str()),
            Cow::Owned(row.status.to_value()),
            Cow::Borrowed(if row.overdue { "true" } else { "false" }),
            Cow::Owned(format_amount(row.amount_minor)),
            Cow::Borrowed(row.currency.as_str()),
            Cow::Owned(row.interval.to_value()),
            Cow::Borrowed(row.provider.as_str()),
            Cow::Borrowed(row.customer_phone.as_str()),
            optional(&row.description),
            Cow::Owned(row.next_renewal_at.to_rfc3339()),
            instant(row.last_renewed_at),
            Cow::Owned(row.renewal_count.to_string()),
            optional(&row.last_payment_id),
        ]
    }
}
