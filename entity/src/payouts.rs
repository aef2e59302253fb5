use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where a payout goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum PayoutKind {
    /// M-Pesa B2C to a phone.
    #[sea_orm(string_value = "mobile")]
    Mobile,
    /// Another merchant's balance, inside the ledger.
    #[sea_orm(string_value = "sellapay")]
    Sellapay,
    /// A Kenyan bank account, through the bank rail.
    #[sea_orm(string_value = "bank")]
    Bank,
}

/// `pending` with the amount reserved until a worker sends it; `processing` while the rail
/// works on it; `completed` settles the reservation, `failed` releases it; `unknown` keeps it
/// reserved while nobody can tell whether the money left.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum PayoutStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "processing")]
    Processing,
    #[sea_orm(string_value = "completed")]
    Completed,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// The rail may have the payout but cannot say how it ended: the amount stays reserved
    /// until the rail's answer or an operator resolves it.
    #[sea_orm(string_value = "unknown")]
    Unknown,
}

impl PayoutStatus {
    /// The statuses in which the amount is reserved and the outcome still to come.
    pub const OPEN: [Self; 3] = [Self::Pending, Self::Processing, Self::Unknown];

    pub fn is_final(self) -> bool {
        !Self::OPEN.contains(&self)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "payouts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    /// The Sellapay `transaction_id`, `TXN-<unix seconds>-<digits>`.
    #[sea_orm(unique)]
    pub transaction_id: String,
    pub kind: PayoutKind,
    pub status: PayoutStatus,
    pub amount_minor: i64,
    pub currency: String,
    /// 2547xxxxxxxx, for mobile payouts.
    pub phone: Option<String>,
    /// The Sellapay account id, and the merchant behind it, for internal transfers.
    pub recipient_account: Option<String>,
    pub recipient_id: Option<String>,
    pub bank_code: Option<String>,
    pub account_number: Option<String>,
    pub account_name: Option<String>,
    pub reference: Option<String>,
    pub narrative: Option<String>,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub job_id: Option<String>,
    /// Set before the first call to the rail: from then on a retry must not assume the rail
    /// never saw the payout.
    pub sent_at: Option<DateTimeUtc>,
    /// The rail's id for the payout (M-Pesa's `ConversationID`, the bank rail's transfer id).
    pub provider_handle: Option<String>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
