//! Airtime, data and bills. Each purchase debits the wallet at once, so concurrent purchases
//! can never overdraw it (402 when the balance is short), and is bought from the VTU
//! aggregator by a job; a purchase the aggregator refuses is refunded automatically.

use std::time::Duration;

use poem::{Request, http::StatusCode, web::Data};
use poem_openapi::{ApiResponse, Object, OpenApi, param::Query, payload::Json};
use serde_json::{Value, json};
use ultra_domain::{
    DomainError,
    audit::{self, AuditEvent},
    maxtera::{
        catalogue::{self, BillKind, Network},
        phones,
        transactions::{self as wallet, NewPurchase},
    },
    money::{format_amount, major_number},
};
use ultra_entity::maxtera_transactions::{MaxteraKind, MaxteraStatus, Model as Transaction};
use ultra_jobs::{NewJob, enqueue, kinds::maxtera::BuyVtu};

use super::{
    MaxteraTags,
    auth::MaxteraAuth,
    fields::{naira, required},
    transactions::status_word,
};
use crate::{
    AppState,
    http::{
        client::actor,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

#[derive(Object)]
#[oai(rename = "MaxteraAirtimeRequest")]
pub struct AirtimeRequest {
    /// `MTN`, `AIRTEL`, `GLO` or `9MOBILE`.
    pub network: Option<String>,
    /// Naira, within `maxtera.airtime`'s limits.
    pub amount: Option<Value>,
    pub phone_number: Option<String>,
    /// The number was ported from another network: skip the prefix check.
    pub ported: Option<bool>,
}

#[derive(Object)]
#[oai(rename = "MaxteraDataRequest")]
pub struct DataRequest {
    pub network: Option<String>,
    /// A plan name from `data/plans/?network=`, such as `1GB`.
    pub plan: Option<String>,
    pub phone_number: Option<String>,
    pub ported: Option<bool>,
}

#[derive(Object)]
#[oai(rename = "MaxteraBillRequest")]
pub struct BillRequest {
    /// `DSTV`, `GOTV`, `STARTIMES`, or a prepaid electricity company: `IKEDC`, `EKEDC`,
    /// `AEDC`, `IBEDC`, `EEDC`, `PHED`, `KEDCO`, `KAEDCO`, `JED`, `BEDC`, `ABA`, `YEDC`.
    pub service_type: Option<String>,
    /// For TV: the decoder's smartcard (IUC) number.
    pub smartcard_number: Option<String>,
    /// For electricity: the prepaid meter number.
    pub meter_number: Option<String>,
    /// Naira, within `maxtera.bills`'s limits.
    pub amount: Option<Value>,
}

#[derive(Object)]
#[oai(rename = "MaxteraPurchase")]
pub struct Purchase {
    /// `success`, `pending` (still with the aggregator: poll `transactions/{id}/`) or
    /// `failed` (the wallet has been refunded).
    pub status: String,
    pub reference: String,
    /// The transaction's id, for `transactions/{id}/`.
    pub id: i64,
    pub amount: f64,
    /// Why a purchase failed.
    pub message: Option<String>,
}

#[derive(Object)]
#[oai(rename = "MaxteraBillPayment")]
pub struct BillPayment {
    pub status: String,
    /// The bill's reference (`BILL-4567`).
    pub transaction_id: String,
    pub id: i64,
    pub amount: f64,
    /// The name the biller has for the smartcard or meter.
    pub customer_name: Option<String>,
    /// The prepaid electricity token to enter on the meter.
    pub token: Option<String>,
    pub message: Option<String>,
}

#[derive(ApiResponse)]
pub enum PurchaseResponse {
    /// Final: `success`, or `failed` with the wallet refunded.
    #[oai(status = 200)]
    Done(Json<Purchase>),
    /// Still with the aggregator.
    #[oai(status = 202)]
    Pending(Json<Purchase>),
}

#[derive(ApiResponse)]
pub enum BillResponse {
    #[oai(status = 200)]
    Done(Json<BillPayment>),
    #[oai(status = 202)]
    Pending(Json<BillPayment>),
}

#[derive(Object)]
#[oai(rename = "MaxteraDataPlan")]
pub struct DataPlan {
    pub network: String,
    /// What to send as `plan`.
    pub plan: String,
    pub description: String,
    pub amount: f64,
    pub validity_days: i32,
}

pub struct MaxteraPurchasesApi;

#[OpenApi(prefix_path = "/maxtera/api/v1", tag = "MaxteraTags::Maxtera")]
impl MaxteraPurchasesApi {
    /// Buy airtime
    #[oai(path = "/airtime/purchase", method = "post", operation_id = "maxteraBuyAirtime")]
    async fn airtime(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: MaxteraAuth,
        body: JsonBody<AirtimeRequest>,
    ) -> ApiResult<PurchaseResponse> {
        let request = body.value;
        let config = state.runtime.current().await?;
        let network = Network::parse("network", &required("network", request.network)?)?;
        let amount_minor = naira("amount", request.amount.as_ref(), config.maxtera.airtime)?;
        let phone = recipient(request.phone_number, network, request.ported)?;
        let new = NewPurchase {
            kind: MaxteraKind::Airtime,
            amount_minor,
            network: Some(network),
            phone,
            plan: None,
            service: None,
            service_id: network.airtime_service().to_owned(),
            variation_code: None,
            billers_code: None,
        };
        let row = buy(&state, req, &auth, new).await?;
        Ok(purchase_response(row))
    }

    /// Buy a data bundle
    #[oai(path = "/data/purchase", method = "post", operation_id = "maxteraBuyData")]
    async fn data(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: MaxteraAuth,
        body: JsonBody<DataRequest>,
    ) -> ApiResult<PurchaseResponse> {
        let request = body.value;
        let network = Network::parse("network", &required("network", request.network)?)?;
        let plan = catalogue::plan(&state.db, network, &required("plan", request.plan)?).await?;
        let phone = recipient(request.phone_number, network, request.ported)?;
        let new = NewPurchase {
            kind: MaxteraKind::Data,
            amount_minor: plan.amount_minor,
            network: Some(network),
            phone,
            plan: Some(plan.plan),
            service: None,
            service_id: network.data_service().to_owned(),
            variation_code: Some(plan.variation_code),
            billers_code: None,
        };
        let row = buy(&state, req, &auth, new).await?;
        Ok(purchase_response(row))
    }

    /// Data plans
    ///
    /// The bundles on sale, cheapest first; all networks' unless `network` is given.
    #[oai(path = "/data/plans", method = "get", operation_id = "maxteraDataPlans")]
    async fn plans(
        &self,
        state: Data<&AppState>,
        _auth: MaxteraAuth,
        network: Query<Option<String>>,
    ) -> ApiResult<Json<Vec<DataPlan>>> {
        let networks = match network.0.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
            Some(name) => vec![Network::parse("network", name)?],
            None => Network::ALL.to_vec(),
        };
        let mut plans = Vec::new();
        for network in networks {
            plans.extend(catalogue::plans(&state.db, network).await?.into_iter().map(|plan| DataPlan {
                network: plan.network,
                plan: plan.plan,
                description: plan.description,
                amount: major_number(plan.amount_minor),
                validity_days: plan.validity_days,
            }));
        }
        Ok(Json(plans))
    }

    /// Pay a bill
    ///
    /// TV subscriptions by smartcard number and prepaid electricity by meter number; the
    /// number is verified with the biller before the payment is made.
    #[oai(path = "/bills/pay", method = "post", operation_id = "maxteraPayBill")]
    async fn pay_bill(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: MaxteraAuth,
        body: JsonBody<BillRequest>,
    ) -> ApiResult<BillResponse> {
        let request = body.value;
        let config = state.runtime.current().await?;
        let service =
            catalogue::bill_service("service_type", &required("service_type", request.service_type)?)?;
        let field = service.kind.number_field();
        let number = match service.kind {
            BillKind::Tv => request.smartcard_number,
            BillKind::Electricity => request.meter_number,
        };
        let number = required(field, number)?;
        let digits = match service.kind {
            BillKind::Tv => 10..=12,
            BillKind::Electricity => 11..=13,
        };
        if !digits.contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ApiError::validation(
                field,
                format!(
                    "Enter the {} to {} digits of the {}.",
                    digits.start(),
                    digits.end(),
                    field.replace('_', " ")
                ),
            ));
        }
        let amount_minor = naira("amount", request.amount.as_ref(), config.maxtera.bills)?;
        let new = NewPurchase {
            kind: MaxteraKind::Bills,
            amount_minor,
            network: None,
            phone: auth.account.phone.clone(),
            plan: None,
            service: Some(service.name.to_owned()),
            service_id: service.service_id.to_owned(),
            variation_code: (service.kind == BillKind::Electricity).then(|| "prepaid".to_owned()),
            billers_code: Some(number),
        };
        let row = buy(&state, req, &auth, new).await?;
        let detail = |name: &str| {
            row.details.as_ref().and_then(|d| d.get(name)).and_then(Value::as_str).map(str::to_owned)
        };
        let payment = BillPayment {
            status: status_word(row.status).to_owned(),
            transaction_id: row.reference.clone().unwrap_or_default(),
            id: row.id,
            amount: major_number(row.amount_minor),
            customer_name: detail("customerName"),
            token: detail("token"),
            message: row.failure_reason.clone(),
        };
        Ok(if row.status == MaxteraStatus::Pending {
            BillResponse::Pending(Json(payment))
        } else {
            BillResponse::Done(Json(payment))
        })
    }
}

/// The number to top up, checked against the network unless the client says it was ported.
fn recipient(phone: Option<String>, network: Network, ported: Option<bool>) -> ApiResult<String> {
    let phone = phones::nigerian("phone_number", &required("phone_number", phone)?)?;
    if !ported.unwrap_or(false) {
        phones::check_network("phone_number", &phone, network)?;
    }
    Ok(phone)
}

fn purchase_response(row: Transaction) -> PurchaseResponse {
    let view = Purchase {
        status: status_word(row.status).to_owned(),
        reference: row.reference.clone().unwrap_or_default(),
        id: row.id,
        amount: major_number(row.amount_minor),
        message: row.failure_reason.clone(),
    };
    if row.status == MaxteraStatus::Pending {
        PurchaseResponse::Pending(Json(view))
    } else {
        PurchaseResponse::Done(Json(view))
    }
}

/// Debits the wallet and enqueues the purchase in one transaction, then waits up to the
/// configured time for the aggregator's answer.
async fn buy(
    state: &AppState,
    req: &Request,
    auth: &MaxteraAuth,
    new: NewPurchase,
) -> ApiResult<Transaction> {
    let user_id = auth.user.id.clone();
    let txn = ultra_domain::db::begin_write(&state.db).await?;
    let row = wallet::open_purchase(&txn, &user_id, new).await.map_err(|err| match err {
        DomainError::InsufficientFunds { required, available } => ApiError::with_body(
            StatusCode::PAYMENT_REQUIRED,
            "insufficient_funds",
            json!({
                "detail": format!(
                    "Insufficient wallet balance: this costs NGN {} and the wallet holds NGN {}. Fund the wallet and try again.",
                    format_amount(required),
                    format_amount(available)
                ),
                "code": "insufficient_funds",
            }),
        ),
        other => other.into(),
    })?;
    let enqueued = enqueue(
        &txn,
        NewJob::new(&BuyVtu { transaction_id: row.id })
            .owner(user_id.clone())
            .resource("maxtera_transactions", row.id.to_string())
            .unique_key(format!("maxtera:{}:buy", row.id)),
    )
    .await?;
    wallet::set_job(&txn, row.id, &enqueued.job.id).await?;
    audit::record(
        &txn,
        &actor(req, Some(&user_id)),
        AuditEvent {
            action: "maxtera.purchase",
            entity_type: "maxtera_transaction",
            entity_id: Some(&row.id.to_string()),
            details: Some(
                json!({ "kind": row.kind, "amountMinor": row.amount_minor, "reference": row.reference }),
            ),
        },
    )
    .await?;
    txn.commit().await?;
    let job = enqueued.dispatch(&state.queue).await;
    let wait = Duration::from_secs(state.runtime.current().await?.maxtera.wait_seconds);
    let id = row.id;
    Ok(ultra_jobs::wait::until_settled(&state.db, &state.pubsub, &state.queue, &job.id, wait, || async {
        let row = wallet::find(&state.db, id).await?;
        let settled = row.status.is_final();
        Ok((row, settled))
    })
    .await?)
}
