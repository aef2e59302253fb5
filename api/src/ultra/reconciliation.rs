//! What awaits reconciliation: payments, refunds and payouts held as `unknown` because the
//! provider may have moved the money but cannot say. `GET admin/reconciliation` lists them;
//! `POST admin/{payments,refunds,payouts}/{id}/resolve` settles one on what the provider told
//! the operator (its portal, its support, a statement). Only operators resolve: a merchant who
//! completed their own payment would credit their own balance.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::types::{ParseFromJSON, ToJSON, Type};
use poem_openapi::{Enum, Object, OpenApi, param::Path};
use sea_orm::{
    ActiveEnum, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use ultra_domain::{
    db,
    money::format_amount,
    payments::{self, Resolution},
    payouts, refunds,
};
use ultra_entity::{
    payments::{self as payment_rows, PaymentStatus},
    payouts::{self as payout_rows, PayoutStatus},
    refunds::{self as refund_rows, RefundStatus},
};

use super::{
    ApiTags,
    payments::{PaymentView, visible_payment},
    refunds::{RefundView, visible_refund},
};
use crate::{
    AppState,
    http::{
        auth::Auth,
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
    },
};

/// The most of each kind the overview lists, oldest first; `total` counts them all.
const LISTED: u64 = 100;

/// What the provider says became of a payment's collection.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "PaymentResolution")]
pub enum PaymentOutcome {
    /// The provider collected the money: the payment completes and the merchant is credited.
    Paid,
    /// The provider has no such collection, or it failed: the payment fails.
    Unpaid,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ResolvePaymentRequest {
    pub outcome: PaymentOutcome,
    /// The provider's transaction id, for a paid collection.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub provider_transaction_id: Option<String>,
    /// How the outcome was established (the provider's reference, a ticket): kept in the audit
    /// log.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub note: String,
}

/// What the provider says became of a refund or a payout.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case", rename = "TransferResolution")]
pub enum TransferOutcome {
    /// The money reached the customer or payee: the held amount settles.
    Sent,
    /// It never left: the held amount goes back to the merchant's balance.
    NotSent,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ResolveTransferRequest {
    pub outcome: TransferOutcome,
    /// How the outcome was established: kept in the audit log.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub note: String,
}

/// A Sellapay payout (to a phone or a bank) as operators see it.
#[derive(Object)]
#[oai(rename = "HeldPayout", rename_all = "camelCase")]
pub struct PayoutView {
    pub id: String,
    /// Sellapay's `transaction_id`.
    pub transaction_id: String,
    pub merchant_id: String,
    pub kind: String,
    pub status: String,
    pub amount: String,
    pub currency: String,
    /// Why it is held, or why it failed.
    pub failure_reason: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<payout_rows::Model> for PayoutView {
    fn from(payout: payout_rows::Model) -> Self {
        Self {
            id: payout.id,
            transaction_id: payout.transaction_id,
            merchant_id: payout.merchant_id,
            kind: payout.kind.to_value(),
            status: payout.status.to_value(),
            amount: format_amount(payout.amount_minor),
            currency: payout.currency,
            failure_reason: payout.failure_reason,
            created_at: payout.created_at,
            updated_at: payout.updated_at,
        }
    }
}

/// Everything held as `unknown`, oldest first, at most 100 of each kind.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct Reconciliation {
    pub payments: Held<PaymentView>,
    pub refunds: Held<RefundView>,
    pub payouts: Held<PayoutView>,
}

#[derive(Object)]
pub struct Held<
    T: poem_openapi::types::Type + poem_openapi::types::ToJSON + poem_openapi::types::ParseFromJSON,
> {
    /// How many are held in all.
    pub total: u64,
    pub items: Vec<T>,
}

/// How many rows `select` finds, and the oldest [`LISTED`] of them by `oldest_first`.
async fn held<E, V>(state: &AppState, select: Select<E>, oldest_first: E::Column) -> ApiResult<Held<V>>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    V: From<E::Model> + Type + ToJSON + ParseFromJSON,
{
    let total = select.clone().count(&state.db).await?;
    let rows = select.order_by_asc(oldest_first).limit(LISTED).all(&state.db).await?;
    Ok(Held { total, items: rows.into_iter().map(V::from).collect() })
}

pub struct ReconciliationApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl ReconciliationApi {
    /// List what awaits reconciliation
    ///
    /// Payments, refunds and payouts in status `unknown` across every merchant, oldest first,
    /// at most 100 of each with the total count.
    #[oai(path = "/admin/reconciliation", method = "get", operation_id = "getReconciliation")]
    async fn overview(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<Reconciliation>> {
        auth.0.require_admin()?;
        Ok(Reply::new(Reconciliation {
            payments: held(
                &state,
                payment_rows::Entity::find().filter(payment_rows::Column::Status.eq(PaymentStatus::Unknown)),
                payment_rows::Column::UpdatedAt,
            )
            .await?,
            refunds: held(
                &state,
                refund_rows::Entity::find().filter(refund_rows::Column::Status.eq(RefundStatus::Unknown)),
                refund_rows::Column::UpdatedAt,
            )
            .await?,
            payouts: held(
                &state,
                payout_rows::Entity::find().filter(payout_rows::Column::Status.eq(PayoutStatus::Unknown)),
                payout_rows::Column::UpdatedAt,
            )
            .await?,
        }))
    }

    /// Resolve a payment held as unknown
    ///
    /// Completes (`paid`) or fails (`unpaid`) a payment in status `unknown`, on the provider's
    /// word as the operator obtained it; audited as `payment.resolved` under the operator.
    /// `409 payment_not_unknown` if the payment is in any other status.
    #[oai(path = "/admin/payments/:id/resolve", method = "post", operation_id = "resolvePayment")]
    async fn resolve_payment(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        body: JsonBody<ResolvePaymentRequest>,
    ) -> ApiResult<Reply<PaymentView>> {
        auth.0.require_admin()?;
        let payment = visible_payment(&state, &auth.0, &id.0).await?;
        let request = body.value;
        let resolution = match request.outcome {
            PaymentOutcome::Paid => {
                Resolution::Paid { provider_transaction_id: request.provider_transaction_id }
            }
            PaymentOutcome::Unpaid => Resolution::Unpaid,
        };
        let actor = actor(req, Some(&auth.0.user.id));
        let txn = db::begin_write(&state.db).await?;
        let resolved = payments::resolve(&txn, &payment, &actor, resolution, &request.note).await?;
        txn.commit().await?;
        Ok(Reply::new(resolved.into()))
    }

    /// Resolve a refund held as unknown
    ///
    /// Settles (`sent`) or releases (`not_sent`) a refund in status `unknown`; audited as
    /// `refund.resolved` under the operator. `409 refund_not_unknown` otherwise.
    #[oai(path = "/admin/refunds/:refundId/resolve", method = "post", operation_id = "resolveRefund")]
    async fn resolve_refund(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        #[oai(name = "refundId")] refund_id: Path<String>,
        body: JsonBody<ResolveTransferRequest>,
    ) -> ApiResult<Reply<RefundView>> {
        auth.0.require_admin()?;
        let refund = visible_refund(&state, &auth.0, &refund_id.0).await?;
        let request = body.value;
        let actor = actor(req, Some(&auth.0.user.id));
        let txn = db::begin_write(&state.db).await?;
        let sent = request.outcome == TransferOutcome::Sent;
        let resolved = refunds::resolve(&txn, &refund, &actor, sent, &request.note).await?;
        txn.commit().await?;
        Ok(Reply::new(resolved.into()))
    }

    /// Resolve a payout held as unknown
    ///
    /// Settles (`sent`) or releases (`not_sent`) a payout in status `unknown`; audited as
    /// `payout.resolved` under the operator. `409 payout_not_unknown` otherwise.
    #[oai(path = "/admin/payouts/:id/resolve", method = "post", operation_id = "resolvePayout")]
    async fn resolve_payout(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        body: JsonBody<ResolveTransferRequest>,
    ) -> ApiResult<Reply<PayoutView>> {
        auth.0.require_admin()?;
        let payout = payout_rows::Entity::find_by_id(id.0.as_str())
            .one(&state.db)
            .await?
            .ok_or_else(|| ApiError::not_found("payout"))?;
        let request = body.value;
        let actor = actor(req, Some(&auth.0.user.id));
        let txn = db::begin_write(&state.db).await?;
        let sent = request.outcome == TransferOutcome::Sent;
        let resolved = payouts::resolve(&txn, &payout, &actor, sent, &request.note).await?;
        txn.commit().await?;
        Ok(Reply::new(resolved.into()))
    }
}
