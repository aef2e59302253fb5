use std::future::Future;

use crate::ProviderError;

/// Money a wallet owner sends by bank transfer to a virtual account opened for it.
pub struct FundingOrder<'a> {
    /// Our reference (`MPX-…`): OnePipe `transaction_ref`, the same on every attempt.
    pub reference: &'a str,
    /// In kobo.
    pub amount_minor: i64,
    /// Stable per wallet owner: OnePipe gives the same customer the same virtual account.
    pub customer_ref: &'a str,
    pub email: &'a str,
    /// International form without `+`, `234XXXXXXXXXX`.
    pub mobile: &'a str,
    pub description: &'a str,
    pub expires_in_minutes: u32,
}

/// Where the customer transfers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualAccount {
    pub number: String,
    pub name: String,
    pub bank_name: String,
    pub bank_code: String,
    pub expires_at: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FundingState {
    /// The invoice is open; the customer has not paid yet. `account` is where to transfer
    /// (present on the answer to `open`).
    AwaitingTransfer {
        account: Option<VirtualAccount>,
    },
    Completed {
        provider_reference: Option<String>,
        amount_minor: i64,
    },
    Failed {
        reason: String,
    },
}

/// Funding a wallet by bank transfer.
pub trait Fund {
    fn open(
        &self,
        order: &FundingOrder<'_>,
    ) -> impl Future<Output = Result<FundingState, ProviderError>> + Send;

    /// Where the invoice stands, asked by our reference (`/v2/transact/query`);
    /// `Err(ProviderError::NotFound)` when OnePipe has no such transaction_ref.
    fn status(
        &self,
        order: &FundingOrder<'_>,
    ) -> impl Future<Output = Result<FundingState, ProviderError>> + Send;
}
