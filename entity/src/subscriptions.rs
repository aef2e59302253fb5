use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// How often a subscription renews.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionInterval {
    #[sea_orm(string_value = "daily")]
    Daily,
    #[sea_orm(string_value = "weekly")]
    Weekly,
    #[sea_orm(string_value = "monthly")]
    Monthly,
    #[sea_orm(string_value = "quarterly")]
    Quarterly,
    #[sea_orm(string_value = "annual")]
    Annual,
}

/// The seed's three subscription statuses. Whether a renewal is overdue is a separate flag: an
/// active subscription whose renewal failed every retry stays active and is `overdue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "paused")]
    Paused,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subscriptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub label: String,
    pub customer_phone: String,
    pub amount_minor: i64,
    pub currency: String,
    pub description: Option<String>,
    pub interval: SubscriptionInterval,
    pub provider: String,
    pub status: SubscriptionStatus,
    /// The start of the period to be charged next; it advances only when that period's
    /// renewal payment completes.
    pub next_renewal_at: DateTimeUtc,
    /// The day of the month renewals fall on, kept apart from `next_renewal_at` so that a
    /// Jan 31 subscription renewed on Feb 28 goes back to Mar 31.
    pub anchor_day: i16,
    pub overdue: bool,
    /// Failed renewal attempts for the period at `next_renewal_at`.
    pub renewal_attempts: i32,
    /// When the next attempt for a period that failed is due.
    pub retry_at: Option<DateTimeUtc>,
    /// The renewal payment in flight: at most one per subscription at a time.
    pub renewal_payment_id: Option<String>,
    pub last_payment_id: Option<String>,
    pub last_renewed_at: Option<DateTimeUtc>,
    pub renewal_count: i32,
    pub metadata: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
