use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a Sellapay transaction id stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum TransactionKind {
    /// An M-Pesa STK push: a payment with provider `mpesa`.
    #[sea_orm(string_value = "stk_push")]
    StkPush,
    #[sea_orm(string_value = "payout")]
    Payout,
}

/// One Sellapay `transaction_id` (`TXN-<unix seconds>-<digits>`) and the payment or payout it
/// names, so that STK pushes and payouts page together in `GET transactions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sellapay_transactions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub transaction_id: String,
    pub merchant_id: String,
    pub kind: TransactionKind,
    pub payment_id: Option<String>,
    pub payout_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
