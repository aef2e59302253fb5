use std::future::Future;

use crate::ProviderError;

/// Airtime, a data bundle or a bill, bought from a VTU aggregator for a customer.
pub struct PurchaseOrder<'a> {
    /// VTpass `request_id`, made with `vtpass_request_id` and recorded before the call, so that
    /// a retry can requery it.
    pub request_id: &'a str,
    /// The aggregator's service: `mtn`, `airtel`, `glo`, `etisalat` (airtime), `mtn-data`, ...
    /// (data), `dstv`, `gotv`, `startimes` (TV), `ikeja-electric`, ... (electricity).
    pub service_id: &'a str,
    /// In kobo; VTpass takes naira, with kobo as decimals.
    pub amount_minor: i64,
    /// The customer's number in the local 11-digit form, `08012345678`.
    pub phone: &'a str,
    /// The smartcard or meter number; a data bundle goes to `phone` when this is `None`.
    pub billers_code: Option<&'a str>,
    /// The data plan, the TV bouquet, or `prepaid`/`postpaid` for electricity.
    pub variation_code: Option<&'a str>,
    /// `renew` or `change`, for TV.
    pub subscription_type: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PurchaseState {
    /// Accepted but not final: requery later. VTpass's own rule (providers.md §5) makes `099`,
    /// the statuses `initiated` and `pending`, a timeout and any answer its table does not
    /// list all mean this.
    Pending,
    /// `provider_reference` is VTpass's `transactionId`; `token` the electricity token, for
    /// prepaid meters.
    Delivered { provider_reference: Option<String>, token: Option<String> },
    /// Definitive: nothing was delivered and the customer was not charged (or was refunded).
    Failed { reason: String },
}

/// A smartcard or meter number to check before selling to it.
pub struct BillerCheck<'a> {
    pub service_id: &'a str,
    pub billers_code: &'a str,
    /// `prepaid` or `postpaid`, for electricity.
    pub kind: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    Valid { customer_name: Option<String> },
    Invalid { reason: String },
}

/// Selling airtime, data and bill payments.
pub trait Purchase {
    fn verify(
        &self,
        check: &BillerCheck<'_>,
    ) -> impl Future<Output = Result<Verification, ProviderError>> + Send;

    fn purchase(
        &self,
        order: &PurchaseOrder<'_>,
    ) -> impl Future<Output = Result<PurchaseState, ProviderError>> + Send;

    /// `Err(ProviderError::NotFound)` when VTpass never received this request id (code `015`),
    /// so the caller may send it (or a new one).
    fn requery(&self, request_id: &str) -> impl Future<Output = Result<PurchaseState, ProviderError>> + Send;
}
