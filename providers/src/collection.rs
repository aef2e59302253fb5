use std::future::Future;

use serde_json::Value;

use crate::ProviderError;

/// A request to collect money from a customer.
pub struct Collection<'a> {
    /// Our payment reference: the same on every attempt, so the provider can tell a retry.
    pub reference: &'a str,
    /// An id for this initiation, for providers whose order ids cannot be reused (Orange
    /// WebPay): an order whose answer was lost is never shown to the customer, so a new one is
    /// safe to create.
    pub order_id: &'a str,
    pub amount_minor: i64,
    pub currency: &'a str,
    /// The customer's number as the provider takes it: local ten digits in Madagascar
    /// (`0341234567`), international without `+` in Kenya (`254712345678`).
    pub msisdn: &'a str,
    /// The merchant's own reference, for providers that show one to the customer.
    pub merchant_reference: Option<&'a str>,
    pub description: Option<&'a str>,
    /// Where the provider should send its notification, for providers that take it per request.
    pub callback_url: Option<&'a str>,
    /// Where a redirect flow sends the customer back to.
    pub return_url: Option<&'a str>,
    /// 1 on the first try; simulation mode uses it to fail a first attempt only.
    pub attempt: u32,
}

/// What the provider said when it accepted a collection.
#[derive(Debug)]
pub struct Initiated {
    /// The handle later status queries take.
    pub handle: String,
    /// Anything else later calls need (Orange's order id and notification token).
    pub data: Value,
    /// Where the customer pays, for redirect flows.
    pub checkout_url: Option<String>,
    pub state: CollectionState,
}

/// Everything a status query may need; each provider takes what it uses.
pub struct StatusQuery<'a> {
    pub handle: &'a str,
    pub reference: &'a str,
    pub data: &'a Value,
    pub amount_minor: i64,
    pub msisdn: &'a str,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CollectionState {
    /// The customer has not confirmed yet.
    Pending,
    Completed {
        transaction_id: Option<String>,
    },
    Failed {
        reason: String,
    },
    /// The provider gave up waiting for the customer.
    Expired,
}

/// What a provider can tell about a collection whose initiation answer (and the handle in it)
/// was lost.
#[derive(Debug)]
pub enum Earlier {
    /// The provider found it by our reference (Airtel).
    Found(Initiated),
    /// No collection the customer could have paid exists: the provider found nothing under our
    /// reference, or its flow only reaches the customer through the answer we never got (an
    /// Orange order whose payment page nobody was sent to).
    Absent,
    /// The provider can be asked only by sending the same reference again, which it refuses
    /// as a duplicate if it has it (MVola).
    AskByResending,
    /// Nothing can ask: only the earlier request's callback can say (M-Pesa, where a second
    /// STK push is a second charge).
    Unknowable,
}

impl CollectionState {
    pub fn is_final(&self) -> bool {
        !matches!(self, Self::Pending)
    }
}

/// Taking money from a customer's mobile-money wallet.
pub trait Collect {
    /// Asks the provider to collect; the customer usually confirms afterwards on their phone.
    fn initiate(
        &self,
        collection: &Collection<'_>,
    ) -> impl Future<Output = Result<Initiated, ProviderError>> + Send;

    /// Asks the provider where a collection stands.
    fn status(
        &self,
        query: &StatusQuery<'_>,
    ) -> impl Future<Output = Result<CollectionState, ProviderError>> + Send;
}

/// Whole units of a currency without minor units in practice (Ariary): providers take integers.
pub(crate) fn whole_units(amount_minor: i64) -> Result<i64, ProviderError> {
    if amount_minor % 100 == 0 {
        Ok(amount_minor / 100)
    } else {
        Err(ProviderError::Rejected {
            code: "amount".to_owned(),
            message: "the provider only takes whole amounts".to_owned(),
        })
    }
}
