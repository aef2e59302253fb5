use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The seed's four link statuses. `depleted` and `expired` are reached on their own (the last
/// allowed payment completes, the expiry passes); `disabled` only by the merchant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum PaymentLinkStatus {
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "depleted")]
    Depleted,
    #[sea_orm(string_value = "expired")]
    Expired,
    #[sea_orm(string_value = "disabled")]
    Disabled,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payment_links")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub title: String,
    pub amount_minor: i64,
    pub currency: String,
    /// Completed payments allowed; `None` for a link without a limit.
    pub max_uses: Option<i32>,
    /// Payments that completed through the link.
    pub uses_count: i32,
    /// Payments started through the link and not yet ended: each holds one use, so that
    /// concurrent payers can never complete more than `max_uses` between them.
    pub reserved_count: i32,
    pub expires_at: Option<DateTimeUtc>,
    /// The providers a payer may choose among (names, as in payments); `None` for every
    /// provider the merchant has enabled.
    pub providers: Option<Json>,
    pub metadata: Option<Json>,
    pub status: PaymentLinkStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
