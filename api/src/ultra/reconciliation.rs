//! `POST admin/payments/{id}/resolve`: an operator settles a payment held as `unknown` on what
//! the provider told them (its portal, its support, a statement). Merchants see such payments
//! (`GET payments?status=unknown`) but cannot resolve them: completing one credits their own
//! balance.

use poem::{Request, web::Data};
use poem_openapi::{Enum, Object, OpenApi, param::Path};
use ultra_domain::{
    db,
    payments::{self, Resolution},
};

use super::{
    ApiTags,
    payments::{PaymentView, visible_payment},
};
use crate::{
    AppState,
    http::{auth::Auth, client::actor, envelope::Reply, error::ApiResult, json_body::JsonBody},
};

/// What the provider says became of the collection.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "ResolutionOutcome")]
pub enum Outcome {
    /// The provider collected the money: the payment completes and the merchant is credited.
    Paid,
    /// The provider has no such collection, or it failed: the payment fails.
    Unpaid,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ResolvePaymentRequest {
    pub outcome: Outcome,
    /// The provider's transaction id, for a paid collection.
    #[oai(validator(min_length = 1, max_length = 100))]
    pub provider_transaction_id: Option<String>,
    /// How the outcome was established (the provider's reference, a ticket): kept in the
    /// audit log.
    #[oai(validator(min_length = 1, max_length = 500))]
    pub note: String,
}

pub struct ReconciliationApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl ReconciliationApi {
    /// Resolve a payment held as unknown
    ///
    /// Completes (`paid`) or fails (`unpaid`) a payment in status `unknown`, on the provider's
    /// word as the operator obtained it; audited as `payment.resolved` under the operator.
    /// `409 payment_not_unknown` if the payment is in any other status.
    #[oai(path = "/admin/payments/:id/resolve", method = "post", operation_id = "resolvePayment")]
    async fn resolve(
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
            Outcome::Paid => Resolution::Paid { provider_transaction_id: request.provider_transaction_id },
            Outcome::Unpaid => Resolution::Unpaid,
        };
        let actor = actor(req, Some(&auth.0.user.id));
        let txn = db::begin_write(&state.db).await?;
        let resolved = payments::resolve(&txn, &payment, &actor, resolution, &request.note).await?;
        txn.commit().await?;
        Ok(Reply::new(resolved.into()))
    }
}
