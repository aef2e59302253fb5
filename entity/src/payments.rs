use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::provider_configs::ProviderMode;

/// The seed's seven payment statuses, and `unknown`: a collection that may have reached the
/// provider but whose outcome the provider cannot tell us, held for reconciliation rather than
/// written off.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "completed")]
    Completed,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    #[sea_orm(string_value = "refunding")]
    Refunding,
    #[sea_orm(string_value = "refunded")]
    Refunded,
    #[sea_orm(string_value = "expired")]
    Expired,
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payments")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub provider: String,
    /// The provider mode the payment was made in, fixed at creation.
    pub mode: ProviderMode,
    pub amount_minor: i64,
    pub currency: String,
    pub status: PaymentStatus,
    pub customer_phone: String,
    pub description: Option<String>,
    pub metadata: Option<Json>,
    /// Our reference, sent to the provider so a retried call can ask about the earlier attempt.
    #[sea_orm(unique)]
    pub reference: String,
    pub provider_transaction_id: Option<String>,
    pub failure_reason: Option<String>,
    pub refunded_minor: i64,
    pub job_id: Option<String>,
    /// Set before the first call to the provider: from then on a retry must ask the provider
    /// about the earlier attempt before starting another.
    pub initiated_at: Option<DateTimeUtc>,
    /// The provider's handle for status queries (MVola's serverCorrelationId, Airtel's
    /// transaction id, Orange's pay_token).
    pub provider_handle: Option<String>,
    /// What else the provider handed back and later calls need (Orange's order id and
    /// notification token).
    pub provider_data: Option<Json>,
    /// Where the customer pays, for redirect flows such as Orange WebPay.
    pub checkout_url: Option<String>,
    /// The merchant's own reference (a Sellapay client's `reference`), shown to the customer
    /// where the provider can (M-Pesa's `AccountReference`).
    pub merchant_reference: Option<String>,
    /// The payment link the customer paid through, if any.
    pub payment_link_id: Option<String>,
    /// The subscription this payment renews, if any.
    pub subscription_id: Option<String>,
    pub expires_at: DateTimeUtc,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
