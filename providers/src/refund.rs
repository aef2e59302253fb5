use std::future::Future;

use crate::ProviderError;

pub struct RefundRequest<'a> {
    pub refund_id: &'a str,
    /// The provider's id of the collection being refunded.
    pub transaction_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundState {
    /// Accepted; the provider is still moving the money.
    Processing,
    Completed {
        refund_id: Option<String>,
    },
    Failed {
        reason: String,
    },
}

/// Giving a collection's money back to the customer.
pub trait Refund {
    fn refund(
        &self,
        request: &RefundRequest<'_>,
    ) -> impl Future<Output = Result<RefundState, ProviderError>> + Send;

    fn refund_status(
        &self,
        request: &RefundRequest<'_>,
    ) -> impl Future<Output = Result<RefundState, ProviderError>> + Send;
}
