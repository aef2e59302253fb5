//! A merchant's payments, oldest first, with amounts and times written as `GET payments` shows
//! them, so that a file and the JSON list can be reconciled line by line.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ColumnTrait, Condition, DerivePartialModel};
use serde::{Deserialize, Serialize};
use ultra_entity::payments::{self as payment_rows, PaymentStatus};

use super::{CsvTable, instant, optional};
use crate::money::format_amount;

pub struct Payments;

/// One merchant's payments, optionally of one status, created within `from`..=`to`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentFilter {
    pub merchant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PaymentStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
}

/// Metadata and provider data can be large and are not exported.
#[derive(DerivePartialModel)]
#[sea_orm(entity = "payment_rows::Entity")]
pub struct PaymentRow {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub provider: String,
    pub status: PaymentStatus,
    pub amount_minor: i64,
    pub currency: String,
    pub refunded_minor: i64,
    pub customer_phone: String,
    pub reference: String,
    pub provider_transaction_id: Option<String>,
    pub description: Option<String>,
    pub failure_reason: Option<String>,
}

impl CsvTable for Payments {
    type Entity = payment_rows::Entity;
    type Row = PaymentRow;
    type Filter = PaymentFilter;

    const COLUMNS: &'static [&'static str] = &[
        "id",
        "created_at",
        "completed_at",
        "provider",
        "status",
        "amount",
        "currency",
        "refunded_amount",
        "customer_phone",
        "reference",
        "provider_transaction_id",
        "description",
        "failure_reason",
    ];

    fn condition(filter: &PaymentFilter) -> Condition {
        Condition::all()
            .add(payment_rows::Column::MerchantId.eq(filter.merchant_id.as_str()))
            .add_option(filter.status.map(|status| payment_rows::Column::Status.eq(status)))
            .add_option(filter.from.map(|from| payment_rows::Column::CreatedAt.gte(from)))
            .add_option(filter.to.map(|to| payment_rows::Column::CreatedAt.lte(to)))
    }

    fn id_column() -> payment_rows::Column {
        payment_rows::Column::Id
    }

    fn id(row: &PaymentRow) -> &str {
        &row.id
    }

    fn cells(row: &PaymentRow) -> Vec<Cow<'_, str>> {
        vec![
            Cow::Borrowed(row.id.as_str()),
            Cow::Owned(row.created_at.to_rfc3339()),
            instant(row.completed_at),
            Cow::Borrowed(row.provider.as_str()),
            Cow::Owned(row.status.to_value()),
            Cow::Owned(format_amount(row.amount_minor)),
            Cow::Borrowed(row.currency.as_str()),
            Cow::Owned(format_amount(row.refunded_minor)),
            Cow::Borrowed(row.customer_phone.as_str()),
            Cow::Borrowed(row.reference.as_str()),
            optional(&row.provider_transaction_id),
            optional(&row.description),
            optional(&row.failure_reason),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_export::encode;

    #[test]
    fn a_row_shows_amounts_as_the_api_does_and_escapes_descriptions() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().to_utc();
        let row = PaymentRow {
            id: "pay_1".to_owned(),
            created_at: at,
            completed_at: None,
            provider: "mvola".to_owned(),
            status: PaymentStatus::Failed,
            amount_minor: 1_000_050,
            currency: "MGA".to_owned(),
            refunded_minor: 0,
            customer_phone: "0340000001".to_owned(),
            reference: "ULT1".to_owned(),
            provider_transaction_id: None,
            description: Some("=1+1, \"quoted\"".to_owned()),
            failure_reason: Some("insufficient funds".to_owned()),
        };
        let mut out = Vec::new();
        encode::<Payments>(&[row], false, &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "pay_1,2026-03-01T10:00:00+00:00,,mvola,failed,10000.50,MGA,0,0340000001,ULT1,,\
             \"'=1+1, \"\"quoted\"\"\",insufficient funds\n"
        );
    }
}
