//! Provider callbacks under `callbacks/{provider}/...`. None of these providers reliably
//! signs its callbacks, so a callback is only a hint: it schedules a status query, and the
//! payment changes only on what the provider answers to that. A forged callback costs one
//! status query and changes nothing.
//!
//! MVola, Orange and M-Pesa take a notification URL per request; it names the payment (or
//! payout) and carries a token only Ultra can make. Airtel's is set once on its portal and
//! names our reference.
//!
//! M-Pesa B2C is the exception: Daraja offers no query for a payout's outcome, so its `Result`,
//! posted to the payout's signed URL and naming the payout's ids, is what settles it.

use chrono::Utc;
use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use ultra_domain::{maxtera::transactions as wallet, payments};
use ultra_entity::{
    maxtera_transactions::{MaxteraKind, MaxteraStatus},
    payments as payment_rows, payouts as payout_rows,
};
use ultra_jobs::{
    NewJob, enqueue_now,
    kinds::{
        maxtera::{CheckFunding, FundingTrigger},
        payments::{CheckPayment, Trigger},
        payouts::{B2cResult, CheckPayout, PayoutTrigger},
    },
};

use super::ApiTags;
use crate::{
    AppState,
    http::{
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::CallbackBody,
    },
};

/// Callbacks for one payment within this many seconds share one status query, so a provider
/// retrying (or someone replaying) a callback cannot flood the provider with queries.
const HINT_WINDOW_SECONDS: i64 = 10;

#[derive(Object)]
pub struct CallbackAck {
    pub received: bool,
    /// `checking` (a status query was scheduled) or `ignored` (nothing to check).
    pub action: String,
}

fn ack(action: &str) -> Reply<CallbackAck> {
    Reply::new(CallbackAck { received: true, action: action.to_owned() })
}

/// The payment a per-payment callback URL names, if its token is ours.
async fn addressed_payment(
    state: &AppState,
    payment_id: &str,
    token: &str,
) -> ApiResult<payment_rows::Model> {
    if !state.sealer.verify_path_token("callback", payment_id, token) {
        return Err(ApiError::not_found("callback"));
    }
    payment_rows::Entity::find_by_id(payment_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("callback"))
}

/// The payout a signed result URL names, if its token is ours.
async fn addressed_payout(state: &AppState, payout_id: &str, token: &str) -> ApiResult<payout_rows::Model> {
    if !state.sealer.verify_path_token("payout-result", payout_id, token) {
        return Err(ApiError::not_found("callback"));
    }
    payout_rows::Entity::find_by_id(payout_id)
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("callback"))
}

/// Enqueues a look at an open payout, and says whether it did; `unique_key` makes repeats of
/// one callback one job.
async fn check_payout(
    state: &AppState,
    payout: &payout_rows::Model,
    trigger: PayoutTrigger,
    unique_key: String,
) -> ApiResult<bool> {
    if payout.status.is_final() {
        return Ok(false);
    }
    let job = CheckPayout { payout_id: payout.id.clone(), trigger };
    enqueue_now(
        &state.db,
        &state.queue,
        NewJob::new(&job)
            .owner(payout.merchant_id.clone())
            .resource("payouts", payout.id.clone())
            .unique_key(unique_key),
    )
    .await?;
    Ok(true)
}

/// What Daraja expects back from a callback receiver.
#[derive(Object)]
#[oai(rename_all = "PascalCase")]
pub struct DarajaAck {
    pub result_code: i32,
    pub result_desc: String,
}

fn daraja_ack() -> Json<DarajaAck> {
    Json(DarajaAck { result_code: 0, result_desc: "Accepted".to_owned() })
}

/// Schedules a status query for a payment still waiting on the provider (pending, or held as
/// unknown); `handle` is the provider's id the callback named, adopted only if the provider
/// confirms it is this payment.
async fn check(
    state: &AppState,
    payment: &payment_rows::Model,
    handle: Option<String>,
) -> ApiResult<Reply<CallbackAck>> {
    if !payments::awaits_provider(payment.status) {
        return Ok(ack("ignored"));
    }
    let window = Utc::now().timestamp() / HINT_WINDOW_SECONDS;
    let job = CheckPayment { payment_id: payment.id.clone(), trigger: Trigger::Callback { handle } };
    enqueue_now(
        &state.db,
        &state.queue,
        NewJob::new(&job)
            .owner(payment.merchant_id.clone())
            .resource("payments", payment.id.clone())
            .unique_key(format!("payment:{}:callback:{window}", payment.id)),
    )
    .await?;
    Ok(ack("checking"))
}

fn text(body: &Value, pointer: &str) -> Option<String> {
    body.pointer(pointer).and_then(Value::as_str).map(str::to_owned)
}

pub struct CallbacksApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Callbacks")]
impl CallbacksApi {
    /// MVola transaction callback
    ///
    /// MVola calls back with `PUT` on the URL given at initiation.
    #[oai(path = "/callbacks/mvola/:paymentId/:token", method = "put", operation_id = "mvolaCallback")]
    async fn mvola(
        &self,
        state: Data<&AppState>,
        #[oai(name = "paymentId")] payment_id: Path<String>,
        token: Path<String>,
        body: CallbackBody,
    ) -> ApiResult<Reply<CallbackAck>> {
        let payment = addressed_payment(&state, &payment_id.0, &token.0).await?;
        check(&state, &payment, text(&body.0, "/serverCorrelationId")).await
    }

    /// Airtel Money transaction callback
    ///
    /// Airtel calls back on the one URL set on its portal, naming our reference as
    /// `transaction.id`.
    #[oai(path = "/callbacks/airtel", method = "post", operation_id = "airtelCallback")]
    async fn airtel(&self, state: Data<&AppState>, body: CallbackBody) -> ApiResult<Reply<CallbackAck>> {
        let Some(reference) = text(&body.0, "/transaction/id") else {
            return Err(ApiError::validation("transaction.id", "is required"));
        };
        let payment = payment_rows::Entity::find()
            .filter(payment_rows::Column::Reference.eq(reference))
            .filter(payment_rows::Column::Provider.eq("airtel"))
            .one(&state.db)
            .await?;
        match payment {
            Some(payment) => check(&state, &payment, None).await,
            None => Ok(ack("ignored")),
        }
    }

    /// Orange Money WebPay notification
    ///
    /// Orange posts to the `notif_url` given at initiation, echoing the order's
    /// `notif_token`; a notification with another token is ignored.
    #[oai(path = "/callbacks/orange/:paymentId/:token", method = "post", operation_id = "orangeCallback")]
    async fn orange(
        &self,
        state: Data<&AppState>,
        #[oai(name = "paymentId")] payment_id: Path<String>,
        token: Path<String>,
        body: CallbackBody,
    ) -> ApiResult<Reply<CallbackAck>> {
        let payment = addressed_payment(&state, &payment_id.0, &token.0).await?;
        let expected =
            payment.provider_data.as_ref().and_then(|data| data.get("notifToken")).and_then(Value::as_str);
        let sent = text(&body.0, "/notif_token");
        if expected.is_none() || expected != sent.as_deref() {
            return Ok(ack("ignored"));
        }
        check(&state, &payment, None).await
    }

    /// M-Pesa STK push callback
    ///
    /// Daraja posts `Body.stkCallback` to the `CallBackURL` given with the push; the STK query
    /// it schedules decides.
    #[oai(path = "/callbacks/mpesa/:paymentId/:token", method = "post", operation_id = "mpesaStkCallback")]
    async fn mpesa(
        &self,
        state: Data<&AppState>,
        #[oai(name = "paymentId")] payment_id: Path<String>,
        token: Path<String>,
        body: CallbackBody,
    ) -> ApiResult<Json<DarajaAck>> {
        let payment = addressed_payment(&state, &payment_id.0, &token.0).await?;
        check(&state, &payment, text(&body.0, "/Body/stkCallback/CheckoutRequestID")).await?;
        Ok(daraja_ack())
    }

    /// M-Pesa B2C result
    ///
    /// Daraja posts a payout's `Result` (and a queue timeout's) to the URL given with the
    /// payment request.
    #[oai(path = "/callbacks/mpesa-b2c/:payoutId/:token", method = "post", operation_id = "mpesaB2cResult")]
    async fn mpesa_b2c(
        &self,
        state: Data<&AppState>,
        #[oai(name = "payoutId")] payout_id: Path<String>,
        token: Path<String>,
        body: CallbackBody,
    ) -> ApiResult<Json<DarajaAck>> {
        let payout = addressed_payout(&state, &payout_id.0, &token.0).await?;
        let result = &body.0["Result"];
        let result_code = match &result["ResultCode"] {
            Value::Number(code) => code.as_i64(),
            Value::String(code) => code.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| ApiError::validation("Result.ResultCode", "is required"))?;
        let originator_conversation_id = text(result, "/OriginatorConversationID")
            .ok_or_else(|| ApiError::validation("Result.OriginatorConversationID", "is required"))?;
        let outcome = B2cResult {
            result_code,
            description: text(result, "/ResultDesc").unwrap_or_default(),
            originator_conversation_id,
            conversation_id: text(result, "/ConversationID"),
            transaction_id: text(result, "/TransactionID"),
        };
        let key = format!("payout:{}:result", payout.id);
        check_payout(&state, &payout, PayoutTrigger::Result(outcome), key).await?;
        Ok(daraja_ack())
    }

    /// OnePipe transaction notification
    ///
    /// OnePipe posts a `transaction_notification` to the one URL set for the app, naming the
    /// funding's reference as `details.transaction_ref`. Its signature scheme is not
    /// published, so the notification only schedules a status query.
    #[oai(path = "/callbacks/onepipe", method = "post", operation_id = "onepipeNotification")]
    async fn onepipe(&self, state: Data<&AppState>, body: CallbackBody) -> ApiResult<Reply<CallbackAck>> {
        let Some(reference) = text(&body.0, "/details/transaction_ref") else {
            return Err(ApiError::validation("details.transaction_ref", "is required"));
        };
        let funding = wallet::by_reference(&state.db, &reference)
            .await?
            .filter(|row| row.kind == MaxteraKind::Funding && row.status == MaxteraStatus::Pending);
        let Some(funding) = funding else { return Ok(ack("ignored")) };
        let window = Utc::now().timestamp() / HINT_WINDOW_SECONDS;
        let job = CheckFunding { transaction_id: funding.id, trigger: FundingTrigger::Notification };
        enqueue_now(
            &state.db,
            &state.queue,
            NewJob::new(&job)
                .owner(funding.user_id.clone())
                .resource("maxtera_transactions", funding.id.to_string())
                .unique_key(format!("maxtera:{}:notification:{window}", funding.id)),
        )
        .await?;
        Ok(ack("checking"))
    }

    /// Bank transfer callback
    ///
    /// The bank rail posts `{event, data}` once the destination bank has answered; unsigned,
    /// so it only schedules a status query.
    #[oai(path = "/callbacks/bank/:payoutId/:token", method = "post", operation_id = "bankTransferCallback")]
    async fn bank(
        &self,
        state: Data<&AppState>,
        #[oai(name = "payoutId")] payout_id: Path<String>,
        token: Path<String>,
        _body: CallbackBody,
    ) -> ApiResult<Reply<CallbackAck>> {
        let payout = addressed_payout(&state, &payout_id.0, &token.0).await?;
        let window = Utc::now().timestamp() / HINT_WINDOW_SECONDS;
        let key = format!("payout:{}:callback:{window}", payout.id);
        let checking = check_payout(&state, &payout, PayoutTrigger::Callback, key).await?;
        Ok(ack(if checking { "checking" } else { "ignored" }))
    }
}
