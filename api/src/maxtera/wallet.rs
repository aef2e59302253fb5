//! `wallet/balance/` and `wallet/fund/`: the naira balance from the ledger, and funding by
//! bank transfer to a OnePipe virtual account, credited once OnePipe confirms the transfer.

use std::time::Duration;

use poem::{Request, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, AuditEvent},
    maxtera::{CURRENCY, transactions as wallet},
    money::major_number,
};
use ultra_entity::maxtera_transactions::{MaxteraStatus, Model as Transaction};
use ultra_jobs::{NewJob, enqueue, kinds::maxtera::OpenFunding};

use super::{MaxteraTags, auth::MaxteraAuth, fields::naira, transactions::status_word};
use crate::{
    AppState,
    http::{
        client::actor,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

#[derive(Object)]
#[oai(rename = "MaxteraBalance")]
pub struct Balance {
    pub balance: f64,
    pub currency: String,
}

#[derive(Object)]
#[oai(rename = "MaxteraFundRequest")]
pub struct FundRequest {
    /// Naira, as a number or a decimal string, within `maxtera.funding`'s limits.
    pub amount: Option<Value>,
    /// `onepipe`, the only funding method.
    pub method: Option<String>,
}

/// Where the customer transfers the money: a OnePipe virtual account for this funding.
#[derive(Object)]
#[oai(rename = "MaxteraPaymentInstructions")]
pub struct PaymentInstructions {
    pub account_number: Option<String>,
    pub account_name: Option<String>,
    pub bank_name: Option<String>,
    pub bank_code: Option<String>,
    pub expires_at: Option<String>,
}

#[derive(Object)]
#[oai(rename = "MaxteraFunding")]
pub struct Funding {
    /// `pending` until OnePipe confirms the transfer, then `success`; `failed` if the account
    /// expired unpaid.
    pub status: String,
    pub reference: String,
    /// The transaction's id, for `transactions/{id}/`.
    pub transaction_id: i64,
    pub amount: f64,
    pub currency: String,
    /// Present once OnePipe has opened the account, normally within the request.
    pub payment_instructions: Option<PaymentInstructions>,
    pub message: Option<String>,
}

#[derive(ApiResponse)]
pub enum FundResponse {
    /// The funding is final already.
    #[oai(status = 200)]
    Done(Json<Funding>),
    /// Awaiting the customer's transfer; poll `transactions/{id}/`.
    #[oai(status = 202)]
    Pending(Json<Funding>),
}

pub struct MaxteraWalletApi;

#[OpenApi(prefix_path = "/maxtera/api/v1", tag = "MaxteraTags::Maxtera")]
impl MaxteraWalletApi {
    /// Wallet balance
    #[oai(path = "/wallet/balance", method = "get", operation_id = "maxteraWalletBalance")]
    async fn balance(&self, state: Data<&AppState>, auth: MaxteraAuth) -> ApiResult<Json<Balance>> {
        let minor = wallet::balance(&state.db, &auth.user.id).await?;
        Ok(Json(Balance { balance: major_number(minor), currency: CURRENCY.to_owned() }))
    }

    /// Fund wallet
    ///
    /// Opens a OnePipe virtual account for the amount; the wallet is credited once OnePipe
    /// confirms the customer's transfer, by notification or by status query.
    #[oai(path = "/wallet/fund", method = "post", operation_id = "maxteraFundWallet")]
    async fn fund(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: MaxteraAuth,
        body: JsonBody<FundRequest>,
    ) -> ApiResult<FundResponse> {
        let request = body.value;
        let config = state.runtime.current().await?;
        let amount_minor = naira("amount", request.amount.as_ref(), config.maxtera.funding)?;
        match request.method.as_deref().map(str::trim) {
            Some(method) if method.eq_ignore_ascii_case("onepipe") => {}
            None | Some("") => return Err(ApiError::validation("method", "This field is required.")),
            Some(other) => {
                return Err(ApiError::validation(
                    "method",
                    format!("\"{other}\" is not a valid choice; the only method is \"onepipe\"."),
                ));
            }
        }
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let funding = wallet::open_funding(&txn, &auth.user.id, amount_minor).await?;
        let enqueued = enqueue(
            &txn,
            NewJob::new(&OpenFunding { transaction_id: funding.id })
                .owner(auth.user.id.clone())
                .resource("maxtera_transactions", funding.id.to_string())
                .unique_key(format!("maxtera:{}:open", funding.id)),
        )
        .await?;
        wallet::set_job(&txn, funding.id, &enqueued.job.id).await?;
        audit::record(
            &txn,
            &actor(req, Some(&auth.user.id)),
            AuditEvent {
                action: "maxtera.wallet.fund",
                entity_type: "maxtera_transaction",
                entity_id: Some(&funding.id.to_string()),
                details: Some(json!({ "amountMinor": amount_minor, "reference": funding.reference })),
            },
        )
        .await?;
        txn.commit().await?;
        let job = enqueued.dispatch(&state.queue).await;
        let wait = Duration::from_secs(config.maxtera.wait_seconds);
        // The job ends once OnePipe has opened the account; the transfer comes later.
        let funding = ultra_jobs::wait::until_settled(
            &state.db,
            &state.pubsub,
            &state.queue,
            &job.id,
            wait,
            || async {
                let row = wallet::find(&state.db, funding.id).await?;
                let settled = row.status.is_final() || row.details.is_some();
                Ok((row, settled))
            },
        )
        .await?;
        let pending = funding.status == MaxteraStatus::Pending;
        let view = funding_view(funding);
        Ok(if pending { FundResponse::Pending(Json(view)) } else { FundResponse::Done(Json(view)) })
    }
}

fn funding_view(row: Transaction) -> Funding {
    Funding {
        status: status_word(row.status).to_owned(),
        reference: row.reference.clone().unwrap_or_default(),
        transaction_id: row.id,
        amount: major_number(row.amount_minor),
        currency: row.currency.clone(),
        payment_instructions: payment_instructions(&row),
        message: row.failure_reason,
    }
}

/// The virtual account OnePipe opened for a funding, if it has.
pub fn payment_instructions(row: &Transaction) -> Option<PaymentInstructions> {
    let account = row.details.as_ref()?.get("account")?;
    let text = |name: &str| account.get(name).and_then(Value::as_str).map(str::to_owned);
    Some(PaymentInstructions {
        account_number: text("accountNumber"),
        account_name: text("accountName"),
        bank_name: text("bankName"),
        bank_code: text("bankCode"),
        expires_at: text("expiresAt"),
    })
}
