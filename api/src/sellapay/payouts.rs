//! Payouts and the transactions a client polls: `sendFundsToSellapay`, `GET transactions`
//! and `GET transactions/{transaction_id}`.

use std::time::Duration;

use poem::{http::StatusCode, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value, json};
use ultra_domain::{
    DomainError, api_keys,
    money::{major_number, parse_amount},
    payouts::{self, Destination, NewPayout},
};
use ultra_entity::payouts::{self as payout_rows, PayoutKind};
use ultra_jobs::{NewJob, enqueue, kinds::payouts::SendPayout};

use super::{SellapayTags, auth::SellapayAuth};
use crate::{
    AppState,
    http::{
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

const MAX_PAGE_SIZE: u64 = 100;

/// The seed's validation error: `{error, message, details: {field, reason}}`.
pub fn invalid(field: &str, message: &str, reason: &str) -> ApiError {
    ApiError::with_body(
        StatusCode::BAD_REQUEST,
        "validation_error",
        json!({ "error": "Validation error", "message": message, "details": { "field": field, "reason": reason } }),
    )
}

/// Amounts arrive as JSON numbers (`100`, `100.0`) or decimal strings, and are read from
/// their text into minor units.
pub fn amount_minor(value: &Value) -> ApiResult<i64> {
    let text = match value {
        Value::Number(number) => number.to_string(),
        Value::String(text) => text.clone(),
        _ => return Err(invalid("amount", "Invalid amount", "Amount must be a number")),
    };
    parse_amount("amount", &text).map_err(|err| match err {
        DomainError::Validation { message, .. } => {
            invalid("amount", "Invalid amount", &format!("Amount {message}"))
        }
        other => other.into(),
    })
}

/// What the ledger refusing an overdraft looks like on this surface.
pub fn sellapay_error(err: DomainError) -> ApiError {
    match err {
        DomainError::InsufficientFunds { required, available } => ApiError::with_body(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
            json!({
                "error": "Insufficient balance",
                "message": "Your account balance is too low",
                "required": major_number(required),
                "available": major_number(available),
            }),
        ),
        other => other.into(),
    }
}

fn optional_text(field: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(text) if text.chars().count() > max => Err(invalid(
            field,
            &format!("Invalid {field}"),
            &format!("{field} must be at most {max} characters"),
        )),
        other => Ok(other),
    }
}

#[derive(Object)]
pub struct SendToSellapayRequest {
    /// Recipient account ID
    pub account: String,
    /// Amount to send (KES), a number or a decimal string
    pub amount: Value,
    pub reference: Option<String>,
    pub narrative: Option<String>,
}

#[derive(Object)]
pub struct SentToSellapay {
    pub message: String,
    pub transaction_id: String,
    pub recipient_account: String,
    pub amount: f64,
    /// `completed`, or `pending` if it had not settled within the wait.
    pub status: String,
    pub timestamp: i64,
}

#[derive(Object)]
pub struct Transaction {
    pub transaction_id: String,
    /// `payout`
    #[oai(rename = "type")]
    pub kind: String,
    /// `mobile`, `sellapay` or `bank`
    pub channel: String,
    pub amount: f64,
    pub currency: String,
    pub status: String,
    pub reference: Option<String>,
    pub narrative: Option<String>,
    pub phone: Option<String>,
    pub recipient_account: Option<String>,
    pub bank_code: Option<String>,
    pub account_number: Option<String>,
    pub failure_reason: Option<String>,
    /// Unix seconds.
    pub timestamp: i64,
    pub completed_at: Option<i64>,
}

impl From<payout_rows::Model> for Transaction {
    fn from(payout: payout_rows::Model) -> Self {
        Self {
            transaction_id: payout.transaction_id,
            kind: "payout".to_owned(),
            channel: json!(payout.kind).as_str().unwrap_or_default().to_owned(),
            amount: major_number(payout.amount_minor),
            currency: payout.currency,
            status: json!(payout.status).as_str().unwrap_or_default().to_owned(),
            reference: payout.reference,
            narrative: payout.narrative,
            phone: payout.phone,
            recipient_account: payout.recipient_account,
            bank_code: payout.bank_code,
            account_number: payout.account_number,
            failure_reason: payout.failure_reason,
            timestamp: payout.created_at.timestamp(),
            completed_at: payout.completed_at.map(|at| at.timestamp()),
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

pub struct SellapayPayoutsApi;

#[OpenApi(prefix_path = "/sellapay/api/v1", tag = "SellapayTags::Sellapay")]
impl SellapayPayoutsApi {
    /// Send Funds to Sellapay Account
    ///
    /// Transfer funds to another Sellapay user. The amount is reserved at once (402 when the
    /// balance does not cover it, even under concurrent requests) and settled by a job.
    #[oai(path = "/sendFundsToSellapay", method = "post", operation_id = "sellapaySendFundsToSellapay")]
    async fn send_to_sellapay(
        &self,
        state: Data<&AppState>,
        auth: SellapayAuth,
        body: JsonBody<SendToSellapayRequest>,
    ) -> ApiResult<Json<SentToSellapay>> {
        let merchant = auth.0;
        let request = body.value;
        let amount_minor = amount_minor(&request.amount)?;
        let account = request.account.trim().to_owned();
        if account.is_empty() {
            return Err(invalid("account", "Invalid account", "Account is required"));
        }
        let reference = optional_text("reference", request.reference, 64)?;
        let narrative = optional_text("narrative", request.narrative, 255)?;
        let recipient = api_keys::account_owner(&state.db, &account).await?.ok_or_else(|| {
            ApiError::with_body(
                StatusCode::NOT_FOUND,
                "account_not_found",
                json!({ "error": "Not found", "message": "Recipient account doesn't exist",
                        "details": { "field": "account", "reason": "No Sellapay account has this id" } }),
            )
        })?;
        if recipient == merchant.id {
            return Err(invalid("account", "Invalid account", "Cannot send funds to your own account"));
        }
        let new = NewPayout {
            kind: PayoutKind::Sellapay,
            amount_minor,
            destination: Destination {
                recipient_account: Some(account),
                recipient_id: Some(recipient),
                ..Destination::default()
            },
            reference,
            narrative,
        };
        let payout = send(&state, &merchant.id, new).await?;
        Ok(Json(SentToSellapay {
            message: "Funds sent successfully".to_owned(),
            transaction_id: payout.transaction_id,
            recipient_account: payout.recipient_account.unwrap_or_default(),
            amount: major_number(payout.amount_minor),
            status: json!(payout.status).as_str().unwrap_or_default().to_owned(),
            timestamp: payout.created_at.timestamp(),
        }))
    }

    /// List transactions
    ///
    /// The account's payouts, newest first. `?page` (from 1) and `?limit` (at most 100).
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
        let select = payout_rows::Entity::find().filter(payout_rows::Column::MerchantId.eq(&auth.0.id));
        let total = select.clone().count(&state.db).await?;
        let rows = select
            .order_by_desc(payout_rows::Column::Id)
            .offset((page - 1) * limit)
            .limit(limit)
            .all(&state.db)
            .await?;
        Ok(Json(TransactionPage {
            message: "Transactions retrieved".to_owned(),
            transactions: rows.into_iter().map(Transaction::from).collect(),
            page,
            limit,
            total,
        }))
    }

    /// Get a transaction
    ///
    /// One transaction by its `transaction_id`, to poll a payout until it is final.
    #[oai(path = "/transactions/:transaction_id", method = "get", operation_id = "sellapayGetTransaction")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: SellapayAuth,
        transaction_id: Path<String>,
    ) -> ApiResult<Json<TransactionFound>> {
        let payout = payout_rows::Entity::find()
            .filter(payout_rows::Column::TransactionId.eq(&transaction_id.0))
            .filter(payout_rows::Column::MerchantId.eq(&auth.0.id))
            .one(&state.db)
            .await?
            .ok_or_else(|| {
                ApiError::with_body(
                    StatusCode::NOT_FOUND,
                    "transaction_not_found",
                    json!({ "error": "Not found", "message": "Transaction not found", "details": {} }),
                )
            })?;
        Ok(Json(TransactionFound { message: "Transaction retrieved".to_owned(), transaction: payout.into() }))
    }
}

/// Reserves the payout and enqueues its job in one transaction, then waits up to the
/// configured time for it to finish.
async fn send(state: &AppState, merchant_id: &str, new: NewPayout) -> ApiResult<payout_rows::Model> {
    let txn = ultra_domain::db::begin_write(&state.db).await?;
    let payout = payouts::create(&txn, merchant_id, new).await.map_err(sellapay_error)?;
    let enqueued = enqueue(
        &txn,
        NewJob::new(&SendPayout { payout_id: payout.id.clone() })
            .owner(merchant_id)
            .resource("payouts", payout.id.clone())
            .unique_key(format!("payout:{}", payout.id)),
    )
    .await?;
    payouts::set_job(&txn, &payout.id, &enqueued.job.id).await?;
    txn.commit().await?;
    let job = enqueued.dispatch(&state.queue).await;
    let wait = Duration::from_secs(state.runtime.current().await?.sellapay.wait_seconds);
    ultra_jobs::wait::until_finished(&state.db, &state.pubsub, &state.queue, &job.id, wait).await?;
    Ok(payouts::find(&state.db, &payout.id).await?)
}
