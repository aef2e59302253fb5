use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::provider_configs::ProviderMode;

/// `pending` until the provider has the request, `processing` while it works on it; failed and
/// cancelled refunds can be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum RefundStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "processing")]
    Processing,
    #[sea_orm(string_value = "completed")]
    Completed,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
    /// The request may have reached the provider, which cannot say whether it refunded: the
    /// amount stays held until the provider's answer or an operator resolves it.
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

impl RefundStatus {
    /// The statuses that hold part of the payment's refundable amount.
    pub const OPEN: [Self; 3] = [Self::Pending, Self::Processing, Self::Unknown];

    /// Still holding part of the payment's refundable amount.
    pub fn is_open(self) -> bool {
        Self::OPEN.contains(&self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refunds")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub payment_id: String,
    pub merchant_id: String,
    pub provider: String,
    pub mode: ProviderMode,
    pub amount_minor: i64,
    pub currency: String,
    pub status: RefundStatus,
    pub reason: Option<String>,
    pub provider_refund_id: Option<String>,
    pub failure_reason: Option<String>,
    /// Bumped by each retry, so each attempt's ledger entries have their own references.
    pub attempt: i32,
    pub job_id: Option<String>,
    /// Set before the first call to the provider: from then on a failure that is not the
    /// provider's refusal holds the refund as `unknown` instead of releasing its amount.
    pub sent_at: Option<DateTimeUtc>,
    /// When the refund poller should next ask the provider about a `processing` refund.
    pub next_check_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
