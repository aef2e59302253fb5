//! `requestStkPush`: an M-Pesa Express prompt on the customer's phone, which is a payment with
//! provider `mpesa` in KES, collected by the same job as every other payment.

use std::time::Duration;

use chrono::Utc;
use poem::{Request, web::Data};
use poem_openapi::{Object, OpenApi, payload::Json};
use sea_orm::EntityTrait;
use serde_json::{Map, Value, json};
use ultra_domain::{
    money::major_number, payments::NewPayment, provider_configs::Provider, sellapay_transactions,
};
use ultra_entity::{payments as payment_rows, sellapay_transactions::TransactionKind};
use ultra_jobs::kinds::payments::open as open_payment;

use super::{
    SellapayTags,
    auth::SellapayAuth,
    fields::{optional_text, phone, require_rail, whole_shillings},
};
use crate::{
    AppState,
    http::{client::actor, error::ApiResult, json_body::JsonBody},
};

/// The seed's limit on `reference`.
const REFERENCE_LIMIT: usize = 20;
const DESCRIPTION_LIMIT: usize = 100;

#[derive(Object)]
pub struct StkPushRequest {
    /// Customer phone number, local format: 9 digits starting with 7 or 1, no country code
    pub phone: Value,
    /// Amount to charge in KES, whole shillings
    pub amount: Value,
    /// Your unique transaction reference (20 chars max); the prompt shows its first 12
    pub reference: Option<String>,
    /// Transaction description visible to customer
    pub description: Option<String>,
}

#[derive(Object)]
pub struct StkPushInitiated {
    pub message: String,
    pub transaction_id: String,
    pub phone: String,
    pub amount: f64,
    /// `pending` until the customer answers the prompt; poll `GET transactions/{transaction_id}`
    pub status: String,
    pub description: Option<String>,
    /// Why the push could not be made, when `status` is `failed`
    pub failure_reason: Option<String>,
}

pub struct SellapayStkApi;

#[OpenApi(prefix_path = "/sellapay/api/v1", tag = "SellapayTags::Sellapay")]
impl SellapayStkApi {
    /// Request STK Push
    ///
    /// Initiate an M-Pesa STK prompt on a customer's phone. The push is sent by a worker; the
    /// answer comes once Daraja has accepted it, with status `pending` until the customer
    /// confirms. The payment completes (and credits the balance) on Daraja's word, by its
    /// callback confirmed with an STK query, or by the query alone.
    #[oai(path = "/requestStkPush", method = "post", operation_id = "sellapayRequestStkPush")]
    async fn request_stk_push(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: SellapayAuth,
        body: JsonBody<StkPushRequest>,
    ) -> ApiResult<Json<StkPushInitiated>> {
        let merchant = auth.0;
        let request = body.value;
        let phone = phone(&request.phone)?;
        let amount_minor = whole_shillings(&request.amount)?;
        let reference = optional_text("reference", request.reference, REFERENCE_LIMIT)?;
        let description = optional_text("description", request.description, DESCRIPTION_LIMIT)?;
        let config = require_rail(&state, Provider::Mpesa, &merchant.id, "M-Pesa payments").await?;
        let runtime = state.runtime.current().await?;
        let expiry =
            chrono::Duration::seconds(i64::try_from(runtime.payment_expiry_seconds).unwrap_or(i64::MAX / 2));

        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let id = NewPayment::new_id();
        let transaction_id =
            sellapay_transactions::open(&txn, &merchant.id, TransactionKind::StkPush, &id).await?;
        let (payment, enqueued) = open_payment(
            &txn,
            NewPayment {
                id,
                merchant_id: merchant.id.clone(),
                provider: Provider::Mpesa,
                mode: config.mode,
                amount_minor,
                currency: "KES",
                customer_phone: phone,
                description,
                metadata: Some(json!({ "sellapayTransactionId": transaction_id })),
                merchant_reference: reference,
                payment_link_id: None,
                subscription_id: None,
                expires_at: Utc::now() + expiry,
            },
            &actor(req, Some(&merchant.id)),
            Map::from_iter([("transactionId".to_owned(), transaction_id.clone().into())]),
        )
        .await?;
        txn.commit().await?;
        let job = enqueued.dispatch(&state.queue).await;
        let wait = Duration::from_secs(runtime.sellapay.wait_seconds);
        ultra_jobs::wait::until_finished(&state.db, &state.pubsub, &state.queue, &job.id, wait).await?;
        let payment =
            payment_rows::Entity::find_by_id(payment.id.as_str()).one(&state.db).await?.unwrap_or(payment);
        Ok(Json(StkPushInitiated {
            message: "STK push initiated".to_owned(),
            transaction_id,
            phone: payment.customer_phone,
            amount: major_number(payment.amount_minor),
            status: json!(payment.status).as_str().unwrap_or_default().to_owned(),
            description: payment.description,
            failure_reason: payment.failure_reason,
        }))
    }
}
