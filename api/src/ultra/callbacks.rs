//! Provider callbacks under `callbacks/{provider}/...`. None of these providers reliably
//! signs its callbacks, so a callback is only a hint: it schedules a status query, and the
//! payment changes only on what the provider answers to that. A forged callback costs one
//! status query and changes nothing.
//!
//! MVola and Orange take a notification URL per request; it names the payment and carries a
//! token only Ultra can make. Airtel's is set once on its portal and names our reference.

use chrono::Utc;
use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Path, payload::Json};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use ultra_entity::payments::{self as payment_rows, PaymentStatus};
use ultra_jobs::{
    NewJob, enqueue_now,
    kinds::payments::{CheckPayment, Trigger},
};

use super::ApiTags;
use crate::{
    AppState,
    http::{
        envelope::Reply,
        error::{ApiError, ApiResult},
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

/// Schedules a status query for a pending payment; `handle` is the provider's id the callback
/// named, adopted only if the provider confirms it is this payment.
async fn check(
    state: &AppState,
    payment: &payment_rows::Model,
    handle: Option<String>,
) -> ApiResult<Reply<CallbackAck>> {
    if payment.status != PaymentStatus::Pending {
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
    #[oai(path = "/callbacks/mvola/:payment_id/:token", method = "put", operation_id = "mvolaCallback")]
    async fn mvola(
        &self,
        state: Data<&AppState>,
        #[oai(name = "paymentId")] payment_id: Path<String>,
        token: Path<String>,
        body: Json<Value>,
    ) -> ApiResult<Reply<CallbackAck>> {
        let payment = addressed_payment(&state, &payment_id.0, &token.0).await?;
        check(&state, &payment, text(&body.0, "/serverCorrelationId")).await
    }

    /// Airtel Money transaction callback
    ///
    /// Airtel calls back on the one URL set on its portal, naming our reference as
    /// `transaction.id`.
    #[oai(path = "/callbacks/airtel", method = "post", operation_id = "airtelCallback")]
    async fn airtel(&self, state: Data<&AppState>, body: Json<Value>) -> ApiResult<Reply<CallbackAck>> {
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
    #[oai(path = "/callbacks/orange/:payment_id/:token", method = "post", operation_id = "orangeCallback")]
    async fn orange(
        &self,
        state: Data<&AppState>,
        #[oai(name = "paymentId")] payment_id: Path<String>,
        token: Path<String>,
        body: Json<Value>,
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
}
