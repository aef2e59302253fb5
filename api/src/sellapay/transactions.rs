//! The transactions a client polls: STK pushes and payouts under their Sellapay
//! `transaction_id`, one history paged with `?page&limit`.

use std::collections::HashMap;

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use ultra_domain::{banks, money::major_number};
use ultra_entity::{
    payments as payment_rows, payouts as payout_rows,
    sellapay_transactions::{self as transaction_rows, TransactionKind},
};

use super::{SellapayTags, auth::SellapayAuth, fields::invalid, payouts::status_word};
use crate::{
    AppState,
    http::{
        error::{ApiError, ApiResult},
        pagination::{PageRequest, paginate},
    },
};

const MAX_PAGE_SIZE: u64 = 100;

#[derive(Object)]
pub struct Transaction {
    pub transaction_id: String,
    /// `stk_push` or `payout`
    #[oai(rename = "type")]
    pub kind: String,
    /// `mpesa` for STK pushes; `mobile`, `sellapay` or `bank` for payouts
    pub channel: String,
    pub amount: f64,
    pub currency: String,
    /// `pending`, `completed` or `failed` (STK pushes may also end `expired` or `cancelled`)
    pub status: String,
    pub reference: Option<String>,
    /// The STK push's description, or the payout's narrative
    pub narrative: Option<String>,
    pub phone: Option<String>,
    pub recipient_account: Option<String>,
    pub bank_code: Option<String>,
    pub bank: Option<String>,
    pub account_number: Option<String>,
    /// M-Pesa's receipt, or the bank rail's reference, once completed
    pub receipt: Option<String>,
    pub failure_reason: Option<String>,
    /// Unix seconds.
    pub timestamp: i64,
    pub completed_at: Option<i64>,
}

impl Transaction {
    fn of_payout(transaction_id: String, payout: payout_rows::Model) -> Self {
        Self {
            transaction_id,
            kind: "payout".to_owned(),
            channel: json!(payout.kind).as_str().unwrap_or_default().to_owned(),
            amount: major_number(payout.amount_minor),
            currency: payout.currency,
            status: status_word(payout.status).to_owned(),
            reference: payout.reference,
            narrative: payout.narrative,
            phone: payout.phone,
            recipient_account: payout.recipient_account,
            bank: payout.bank_code.as_deref().and_then(banks::name).map(str::to_owned),
            bank_code: payout.bank_code,
            account_number: payout.account_number,
            receipt: payout.provider_reference,
            failure_reason: payout.failure_reason,
            timestamp: payout.created_at.timestamp(),
            completed_at: payout.completed_at.map(|at| at.timestamp()),
        }
    }

    fn of_payment(transaction_id: String, payment: payment_rows::Model) -> Self {
        Self {
            transaction_id,
            kind: "stk_push".to_owned(),
            channel: payment.provider,
            amount: major_number(payment.amount_minor),
            currency: payment.currency,
            status: json!(payment.status).as_str().unwrap_or_default().to_owned(),
            reference: payment.merchant_reference,
            narrative: payment.description,
            phone: Some(payment.customer_phone),
            recipient_account: None,
            bank_code: None,
            bank: None,
            account_number: None,
            receipt: payment.provider_transaction_id,
            failure_reason: payment.failure_reason,
            timestamp: payment.created_at.timestamp(),
            completed_at: payment.completed_at.map(|at| at.timestamp()),
        }
    }
}

#[derive(Object)]
pub struct TransactionPage {
    pub message: String,
    pub transactions: Vec<Transaction>,
    pub page: u64,
    pub limit: u64,
    pub total: u64,
}

#[derive(Object)]
pub struct TransactionFound {
    pub message: String,
    #[oai(flatten)]
    pub transaction: Transaction,
}

pub struct SellapayTransactionsApi;

#[OpenApi(prefix_path = "/sellapay/api/v1", tag = "SellapayTags::Sellapay")]
impl SellapayTransactionsApi {
    /// List transactions
    ///
    /// The account's STK pushes and payouts, newest first. `?page` (from 1) and `?limit` (at
    /// most 100).
    #[oai(path = "/transactions", method = "get", operation_id = "sellapayListTransactions")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: SellapayAuth,
        page: Query<Option<u64>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Json<TransactionPage>> {
        let page = page.0.unwrap_or(1);
        let limit = limit.0.unwrap_or(10);
        if page == 0 || page > 100_000 {
            return Err(invalid("page", "Invalid page", "Page must be between 1 and 100000"));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&limit) {
            return Err(invalid("limit", "Invalid limit", "Limit must be between 1 and 100"));
        }
        let select =
            transaction_rows::Entity::find().filter(transaction_rows::Column::MerchantId.eq(&auth.0.id));
        let request = PageRequest::Page { page, per_page: limit };
        let (rows, meta) = paginate(
            &state.db,
            select,
            transaction_rows::Column::TransactionId,
            |t| &t.transaction_id,
            &request,
        )
        .await?;
        Ok(Json(TransactionPage {
            message: "Transactions retrieved".to_owned(),
            transactions: resolve(&state, rows).await?,
            page,
            limit,
            total: meta["total"].as_u64().unwrap_or_default(),
        }))
    }

    /// Get a transaction
    ///
    /// One STK push or payout by its `transaction_id`, to poll it until it is final.
    #[oai(path = "/transactions/:transaction_id", method = "get", operation_id = "sellapayGetTransaction")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: SellapayAuth,
        transaction_id: Path<String>,
    ) -> ApiResult<Json<TransactionFound>> {
        let row = transaction_rows::Entity::find_by_id(transaction_id.0.as_str())
            .filter(transaction_rows::Column::MerchantId.eq(&auth.0.id))
            .one(&state.db)
            .await?;
        let transaction = match row {
            Some(row) => resolve(&state, vec![row]).await?.pop(),
            None => None,
        }
        .ok_or_else(|| {
            ApiError::with_body(
                StatusCode::NOT_FOUND,
                "transaction_not_found",
                json!({ "error": "Not found", "message": "Transaction not found", "details": {} }),
            )
        })?;
        Ok(Json(TransactionFound { message: "Transaction retrieved".to_owned(), transaction }))
    }
}

/// The payments and payouts behind `rows`, read in one query each, in the order of `rows`.
async fn resolve(state: &AppState, rows: Vec<transaction_rows::Model>) -> ApiResult<Vec<Transaction>> {
    let payment_ids: Vec<&str> = rows.iter().filter_map(|r| r.payment_id.as_deref()).collect();
    let payout_ids: Vec<&str> = rows.iter().filter_map(|r| r.payout_id.as_deref()).collect();
    let mut payments: HashMap<String, payment_rows::Model> = if payment_ids.is_empty() {
        HashMap::new()
    } else {
        payment_rows::Entity::find()
            .filter(payment_rows::Column::Id.is_in(payment_ids))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect()
    };
    let mut payouts: HashMap<String, payout_rows::Model> = if payout_ids.is_empty() {
        HashMap::new()
    } else {
        payout_rows::Entity::find()
            .filter(payout_rows::Column::Id.is_in(payout_ids))
            .all(&state.db)
            .await?
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect()
    };
    Ok(rows
        .into_iter()
        .filter_map(|row| match row.kind {
            TransactionKind::StkPush => row
                .payment_id
                .and_then(|id| payments.remove(&id))
                .map(|payment| Transaction::of_payment(row.transaction_id, payment)),
            TransactionKind::Payout => row
                .payout_id
                .and_then(|id| payouts.remove(&id))
                .map(|payout| Transaction::of_payout(row.transaction_id, payout)),
        })
        .collect())
}
