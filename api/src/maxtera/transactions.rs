//! `transactions/` and `transactions/{id}/`: the customer's wallet history, newest first.

use chrono::SecondsFormat;
use poem::web::Data;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use serde_json::Value;
use ultra_domain::{DomainError, maxtera::transactions as wallet, money::major_number};
use ultra_entity::maxtera_transactions::{self as rows, MaxteraKind, MaxteraStatus, Model as Transaction};

use super::{
    MaxteraTags,
    auth::MaxteraAuth,
    wallet::{PaymentInstructions, payment_instructions},
};
use crate::{
    AppState,
    http::{
        error::{ApiError, ApiResult},
        pagination::page_of,
    },
};

const DEFAULT_PAGE_SIZE: u64 = 20;
const MAX_PAGE_SIZE: u64 = 100;

/// The seed's status words, which the stored statuses already are.
pub fn status_word(status: MaxteraStatus) -> &'static str {
    match status {
        MaxteraStatus::Pending => "pending",
        MaxteraStatus::Success => "success",
        MaxteraStatus::Failed => "failed",
    }
}

fn type_word(kind: MaxteraKind) -> &'static str {
    match kind {
        MaxteraKind::Funding => "Funding",
        MaxteraKind::Airtime => "Airtime",
        MaxteraKind::Data => "Data",
        MaxteraKind::Bills => "Bills",
    }
}

#[derive(Object)]
#[oai(rename = "MaxteraTransactionSummary")]
pub struct TransactionSummary {
    pub id: i64,
    /// `Airtime`, `Data`, `Bills` or `Funding`.
    #[oai(rename = "type")]
    pub kind: String,
    pub amount: f64,
    /// `pending`, `success` or `failed`.
    pub status: String,
    pub created_at: String,
    pub reference: String,
}

#[derive(Object)]
#[oai(rename = "MaxteraTransactionDetail")]
pub struct TransactionDetail {
    pub id: i64,
    #[oai(rename = "type")]
    pub kind: String,
    pub amount: f64,
    pub currency: String,
    pub status: String,
    pub created_at: String,
    pub completed_at: Option<String>,
    pub reference: String,
    pub network: Option<String>,
    pub phone_number: Option<String>,
    pub plan: Option<String>,
    pub service_type: Option<String>,
    /// The smartcard or meter number a bill was paid against.
    pub billers_code: Option<String>,
    pub customer_name: Option<String>,
    /// A prepaid electricity token.
    pub token: Option<String>,
    /// The aggregator's or OnePipe's reference, once final.
    pub provider_reference: Option<String>,
    /// For a funding: the account to transfer to.
    pub payment_instructions: Option<PaymentInstructions>,
    /// Why it failed.
    pub message: Option<String>,
}

#[derive(ApiResponse)]
pub enum TransactionPage {
    /// One page, newest first; `X-Total-Count` is the number of transactions in all.
    #[oai(status = 200)]
    Ok(
        Json<Vec<TransactionSummary>>,
        #[oai(header = "X-Total-Count")] u64,
        #[oai(header = "X-Total-Pages")] u64,
    ),
}

fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn summary(row: Transaction) -> TransactionSummary {
    TransactionSummary {
        id: row.id,
        kind: type_word(row.kind).to_owned(),
        amount: major_number(row.amount_minor),
        status: status_word(row.status).to_owned(),
        created_at: timestamp(row.created_at),
        reference: row.reference.unwrap_or_default(),
    }
}

fn detail(row: Transaction) -> TransactionDetail {
    let text = |name: &str| {
        row.details.as_ref().and_then(|d| d.get(name)).and_then(Value::as_str).map(str::to_owned)
    };
    TransactionDetail {
        id: row.id,
        kind: type_word(row.kind).to_owned(),
        amount: major_number(row.amount_minor),
        currency: row.currency.clone(),
        status: status_word(row.status).to_owned(),
        created_at: timestamp(row.created_at),
        completed_at: row.completed_at.map(timestamp),
        customer_name: text("customerName"),
        token: text("token"),
        payment_instructions: payment_instructions(&row),
        reference: row.reference.unwrap_or_default(),
        network: row.network,
        phone_number: row
            .phone
            .filter(|_| row.kind != MaxteraKind::Bills && row.kind != MaxteraKind::Funding),
        plan: row.plan,
        service_type: row.service,
        billers_code: row.billers_code,
        provider_reference: row.provider_reference,
        message: row.failure_reason,
    }
}

pub struct MaxteraTransactionsApi;

#[OpenApi(prefix_path = "/maxtera/api/v1", tag = "MaxteraTags::Maxtera")]
impl MaxteraTransactionsApi {
    /// Transaction history
    ///
    /// Newest first, `page_size` (at most 100, default 20) to a `page`.
    #[oai(path = "/transactions", method = "get", operation_id = "maxteraTransactions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: MaxteraAuth,
        page: Query<Option<u64>>,
        page_size: Query<Option<u64>>,
    ) -> ApiResult<TransactionPage> {
        let page = page.0.unwrap_or(1);
        let page_size = page_size.0.unwrap_or(DEFAULT_PAGE_SIZE);
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(ApiError::validation("page_size", format!("Must be between 1 and {MAX_PAGE_SIZE}.")));
        }
        let (rows, total) =
            page_of(&state.db, wallet::of_user(&auth.user.id), rows::Column::Id, page, page_size).await?;
        Ok(TransactionPage::Ok(
            Json(rows.into_iter().map(summary).collect()),
            total.count,
            total.count.div_ceil(page_size),
        ))
    }

    /// Transaction status
    #[oai(path = "/transactions/:id", method = "get", operation_id = "maxteraTransaction")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: MaxteraAuth,
        id: Path<String>,
    ) -> ApiResult<Json<TransactionDetail>> {
        // Ids are integers: anything else names no transaction, as another customer's does not.
        let Ok(id) = id.0.parse::<i64>() else { return Err(ApiError::not_found("transaction")) };
        let row = match wallet::find(&state.db, id).await {
            Ok(row) if row.user_id == auth.user.id => row,
            Ok(_) | Err(DomainError::NotFound(_)) => return Err(ApiError::not_found("transaction")),
            Err(err) => return Err(err.into()),
        };
        Ok(Json(detail(row)))
    }
}
