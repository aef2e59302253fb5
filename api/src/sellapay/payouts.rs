//! Payouts: `sendFundsToMobile` (M-Pesa B2C), `sendFundsToSellapay` (between two balances)
//! and `sendFundsToLocalBank` (the bank rail). Each reserves its amount at once, so concurrent
//! requests can never overdraw the balance, and is carried out by a job.

use std::time::Duration;

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json};
use serde_json::{Value, json};
use ultra_domain::{
    api_keys,
    audit::{self, AuditEvent},
    banks,
    money::major_number,
    payouts::{self, Destination, NewPayout},
    provider_configs::Provider,
};
use ultra_entity::payouts::{self as payout_rows, PayoutKind, PayoutStatus};
use ultra_jobs::{NewJob, enqueue, kinds::payouts::SendPayout};

use super::{
    SellapayTags,
    auth::SellapayAuth,
    fields::{amount_minor, invalid, optional_text, phone, require_rail, sellapay_error, whole_shillings},
};
use crate::{
    AppState,
    http::{
        client::actor,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

/// PesaLink's ceiling for one transfer, in cents (KES 999,999).
const BANK_TRANSFER_LIMIT: i64 = 99_999_900;
/// PesaLink's usual settlement time, quoted to the client while a transfer is on its way.
const BANK_ARRIVAL: &str = "2 hours";
const REFERENCE_LIMIT: usize = 64;
const NARRATIVE_LIMIT: usize = 255;

#[derive(Object)]
pub struct SendToMobileRequest {
    /// Recipient phone, local format: 9 digits starting with 7 or 1, no country code
    pub phone: Value,
    /// Amount to send in KES, whole shillings
    pub amount: Value,
    pub reference: Option<String>,
    /// Visible to recipient
    pub narrative: Option<String>,
}

#[derive(Object)]
pub struct SentToMobile {
    pub message: String,
    pub transaction_id: String,
    pub phone: String,
    pub amount: f64,
    /// `completed`, or `pending` if M-Pesa had not reported within the wait
    pub status: String,
    pub timestamp: i64,
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
pub struct SendToBankRequest {
    /// Kenya bank code (e.g. "001" for KCB)
    pub bank_code: Option<String>,
    /// Recipient account number, 6 to 20 digits
    pub account_number: Option<String>,
    /// Amount to send (KES), at most 2 decimals
    pub amount: Value,
    /// Recipient name
    pub account_name: Option<String>,
    pub reference: Option<String>,
}

#[derive(Object)]
pub struct SentToBank {
    pub message: String,
    pub transaction_id: String,
    pub bank: String,
    pub account_number: String,
    pub amount: f64,
    /// `pending` while the transfer is on its way, then `completed`
    pub status: String,
    pub timestamp: i64,
    pub estimated_arrival: String,
}

pub struct SellapayPayoutsApi;

#[OpenApi(prefix_path = "/sellapay/api/v1", tag = "SellapayTags::Sellapay")]
impl SellapayPayoutsApi {
    /// Send Funds to Mobile
    ///
    /// Transfer funds to a customer's M-Pesa wallet (B2C). The amount is reserved at once
    /// (402 when the balance does not cover it); M-Pesa's result settles it, or returns it to
    /// the balance when the payment fails (500 `Transfer failed` if that happens within the
    /// wait).
    #[oai(path = "/sendFundsToMobile", method = "post", operation_id = "sellapaySendFundsToMobile")]
    async fn send_to_mobile(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SellapayAuth,
        body: JsonBody<SendToMobileRequest>,
    ) -> ApiResult<Json<SentToMobile>> {
        let merchant = auth.0;
        let request = body.value;
        let phone = phone(&request.phone)?;
        let amount_minor = whole_shillings(&request.amount)?;
        let reference = optional_text("reference", request.reference, REFERENCE_LIMIT)?;
        let narrative = optional_text("narrative", request.narrative, NARRATIVE_LIMIT)?;
        require_rail(&state, Provider::Mpesa, &merchant.id, "Payouts to mobile").await?;
        let new = NewPayout {
            kind: PayoutKind::Mobile,
            amount_minor,
            destination: Destination { phone: Some(phone), ..Destination::default() },
            reference,
            narrative,
        };
        let payout = send(&state, req, &merchant.id, new).await?;
        refuse_if_failed(&payout, "Transfer failed")?;
        Ok(Json(SentToMobile {
            message: sent_message(&payout),
            transaction_id: payout.transaction_id,
            phone: payout.phone.unwrap_or_default(),
            amount: major_number(payout.amount_minor),
            status: status_word(payout.status).to_owned(),
            timestamp: payout.created_at.timestamp(),
        }))
    }

    /// Send Funds to Sellapay Account
    ///
    /// Transfer funds to another Sellapay user. The amount is reserved at once (402 when the
    /// balance does not cover it, even under concurrent requests) and settled by a job.
    #[oai(path = "/sendFundsToSellapay", method = "post", operation_id = "sellapaySendFundsToSellapay")]
    async fn send_to_sellapay(
        &self,
        req: &Request,
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
        let reference = optional_text("reference", request.reference, REFERENCE_LIMIT)?;
        let narrative = optional_text("narrative", request.narrative, NARRATIVE_LIMIT)?;
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
        let payout = send(&state, req, &merchant.id, new).await?;
        Ok(Json(SentToSellapay {
            message: sent_message(&payout),
            transaction_id: payout.transaction_id,
            recipient_account: payout.recipient_account.unwrap_or_default(),
            amount: major_number(payout.amount_minor),
            status: status_word(payout.status).to_owned(),
            timestamp: payout.created_at.timestamp(),
        }))
    }

    /// Send Funds to Bank
    ///
    /// Transfer funds to a Kenyan bank account over PesaLink. The amount is reserved at once
    /// (402 when short); the transfer is `pending` until the destination bank confirms, and a
    /// refused transfer returns the funds to the balance.
    #[oai(path = "/sendFundsToLocalBank", method = "post", operation_id = "sellapaySendFundsToLocalBank")]
    async fn send_to_bank(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SellapayAuth,
        body: JsonBody<SendToBankRequest>,
    ) -> ApiResult<Json<SentToBank>> {
        let merchant = auth.0;
        let request = body.value;
        let bank_code = request.bank_code.map(|c| c.trim().to_owned()).unwrap_or_default();
        let bank = match banks::name(&bank_code) {
            Some(bank) => bank,
            None if bank_code.is_empty() => {
                return Err(invalid("bank_code", "Invalid bank details", "bank_code is required"));
            }
            None => {
                let known: Vec<&str> = banks::KENYAN_BANKS.iter().map(|(code, _)| *code).collect();
                return Err(invalid(
                    "bank_code",
                    "Invalid bank details",
                    &format!("Unknown bank code '{bank_code}'; known codes are {}", known.join(", ")),
                ));
            }
        };
        let account_number = request.account_number.map(|n| n.trim().to_owned()).unwrap_or_default();
        if !(6..=20).contains(&account_number.len()) || !account_number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                "account_number",
                "Invalid bank details",
                "Account number must be 6 to 20 digits",
            ));
        }
        let account_name = optional_text("account_name", request.account_name, 100)?
            .ok_or_else(|| invalid("account_name", "Invalid bank details", "account_name is required"))?;
        let amount_minor = amount_minor(&request.amount)?;
        if amount_minor > BANK_TRANSFER_LIMIT {
            return Err(invalid(
                "amount",
                "Invalid amount",
                "Amount must be at most 999999.00 KES per transfer",
            ));
        }
        let reference = optional_text("reference", request.reference, REFERENCE_LIMIT)?;
        require_rail(&state, Provider::Bank, &merchant.id, "Bank transfers").await?;
        let new = NewPayout {
            kind: PayoutKind::Bank,
            amount_minor,
            destination: Destination {
                bank_code: Some(bank_code),
                account_number: Some(account_number),
                account_name: Some(account_name),
                ..Destination::default()
            },
            reference: reference.clone(),
            narrative: reference,
        };
        let payout = send(&state, req, &merchant.id, new).await?;
        refuse_if_failed(&payout, "Bank transfer failed")?;
        let arrived = payout.status == PayoutStatus::Completed;
        Ok(Json(SentToBank {
            message: sent_message(&payout),
            transaction_id: payout.transaction_id,
            bank: bank.to_owned(),
            account_number: payout.account_number.unwrap_or_default(),
            amount: major_number(payout.amount_minor),
            status: status_word(payout.status).to_owned(),
            timestamp: payout.created_at.timestamp(),
            estimated_arrival: if arrived { "arrived".to_owned() } else { BANK_ARRIVAL.to_owned() },
        }))
    }
}

/// Sellapay's words for a payout's state: a payout the rail is still working on, or whose
/// outcome awaits reconciliation, is `pending`, the seed's only unfinished state.
pub fn status_word(status: PayoutStatus) -> &'static str {
    match status {
        PayoutStatus::Pending | PayoutStatus::Processing | PayoutStatus::Unknown => "pending",
        PayoutStatus::Completed => "completed",
        PayoutStatus::Failed => "failed",
    }
}

fn sent_message(payout: &payout_rows::Model) -> String {
    match payout.status {
        PayoutStatus::Completed => "Funds sent successfully",
        _ => "Funds transfer initiated",
    }
    .to_owned()
}

/// The seed's 500 for a transfer the rail refused within the wait; the funds are back in the
/// balance by then, and the transaction stays visible as `failed`.
fn refuse_if_failed(payout: &payout_rows::Model, title: &str) -> ApiResult<()> {
    if payout.status != PayoutStatus::Failed {
        return Ok(());
    }
    Err(ApiError::with_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "transfer_failed",
        json!({
            "error": title,
            "message": payout.failure_reason.clone().unwrap_or_else(|| "The transfer was refused".to_owned()),
            "details": { "transaction_id": payout.transaction_id, "status": "failed", "funds_returned": true },
        }),
    ))
}

/// Reserves the payout and enqueues its job in one transaction, then waits up to the
/// configured time for the payout to be final.
async fn send(
    state: &AppState,
    req: &Request,
    merchant_id: &str,
    new: NewPayout,
) -> ApiResult<payout_rows::Model> {
    let txn = ultra_domain::db::begin_write(&state.db).await?;
    let payout = payouts::create(&txn, merchant_id, new).await.map_err(sellapay_error)?;
    audit::record(
        &txn,
        &actor(req, Some(merchant_id)),
        AuditEvent {
            action: "payout.created",
            entity_type: "payout",
            entity_id: Some(&payout.id),
            details: Some(json!({
                "kind": payout.kind,
                "amountMinor": payout.amount_minor,
                "transactionId": payout.transaction_id,
            })),
        },
    )
    .await?;
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
    // The job ends once the rail has the payout; its outcome may come a little later.
    let payout =
        ultra_jobs::wait::until_settled(&state.db, &state.pubsub, &state.queue, &job.id, wait, || async {
            let payout = payouts::find(&state.db, &payout.id).await?;
            let settled = payout.status.is_final();
            Ok((payout, settled))
        })
        .await?;
    Ok(payout)
}
