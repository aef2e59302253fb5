use std::future::Future;

use crate::ProviderError;

/// Money leaving a merchant's balance for a phone or a bank account.
pub struct PayoutOrder<'a> {
    /// Our payout id: the rail's idempotency key (M-Pesa's `OriginatorConversationID`, the
    /// bank rail's `reference`), the same on every attempt.
    pub reference: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    /// International form without `+` (`254712345678`), for mobile payouts.
    pub msisdn: Option<&'a str>,
    pub bank_code: Option<&'a str>,
    pub account_number: Option<&'a str>,
    pub account_name: Option<&'a str>,
    pub narrative: Option<&'a str>,
    /// Where the rail posts the outcome.
    pub result_url: Option<&'a str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayoutState {
    /// Accepted; the rail is moving the money. `handle` is its id for the payout, if it gave one.
    Processing {
        handle: Option<String>,
    },
    Completed {
        receipt: Option<String>,
    },
    Failed {
        reason: String,
    },
}

/// Sending money out.
pub trait Payout {
    fn send(
        &self,
        order: &PayoutOrder<'_>,
    ) -> impl Future<Output = Result<PayoutState, ProviderError>> + Send;

    /// Where a payout stands, for rails that answer such a question.
    fn payout_status(
        &self,
        order: &PayoutOrder<'_>,
    ) -> impl Future<Output = Result<PayoutState, ProviderError>> + Send;
}
