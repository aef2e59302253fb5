use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What moved a Maxtera wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum MaxteraKind {
    /// Money in, by bank transfer through OnePipe.
    #[sea_orm(string_value = "funding")]
    Funding,
    #[sea_orm(string_value = "airtime")]
    Airtime,
    #[sea_orm(string_value = "data")]
    Data,
    #[sea_orm(string_value = "bills")]
    Bills,
}

/// The seed's three words. A purchase is `pending` from the debit until the aggregator
/// delivers (`success`) or refuses (`failed`, with the wallet refunded); a funding is `pending`
/// until OnePipe confirms the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum MaxteraStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "success")]
    Success,
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl MaxteraStatus {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Success | Self::Failed)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maxtera_transactions")]
pub struct Model {
    /// The integer transaction `id` of the seed.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: String,
    pub kind: MaxteraKind,
    pub status: MaxteraStatus,
    pub amount_minor: i64,
    pub currency: String,
    /// `MPX-00000042`, `MTN-20250130-043`, `AIRTEL-DATA-044`, `BILL-45`: made from the id,
    /// so it is set right after the insert that gives the id.
    #[sea_orm(unique)]
    pub reference: Option<String>,
    /// `MTN`, `AIRTEL`, `GLO` or `9MOBILE`, for airtime and data.
    pub network: Option<String>,
    /// The number topped up, local form.
    pub phone: Option<String>,
    /// The data plan's name (`1GB`).
    pub plan: Option<String>,
    /// The bill's service as the client named it (`DSTV`, `IKEDC`).
    pub service: Option<String>,
    /// The aggregator's `serviceID` (`mtn`, `mtn-data`, `dstv`, `ikeja-electric`).
    pub service_id: Option<String>,
    pub variation_code: Option<String>,
    /// Smartcard or meter number.
    pub billers_code: Option<String>,
    /// The aggregator's `request_id`, committed before the call so a retry asks about it
    /// rather than buying again.
    pub provider_request_id: Option<String>,
    pub provider_reference: Option<String>,
    /// What the provider gave back for the customer: the account to transfer to for a
    /// funding, the customer name and token for a bill.
    pub details: Option<Json>,
    pub failure_reason: Option<String>,
    pub job_id: Option<String>,
    pub sent_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
