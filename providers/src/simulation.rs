//! Simulation mode: outcomes decided in-process, like a card network's test cards, so a
//! merchant can integrate before they have provider credentials.

use serde_json::json;

use crate::{
    Collect, Collection, CollectionState, Initiated, Payout, PayoutOrder, PayoutState, ProviderError,
    StatusQuery,
};

/// Decides by the customer number's last two digits, as the sandbox does: `01` declined for
/// insufficient funds, `02` never confirmed, `03` a provider error on the first attempt, `04` a
/// timeout on the first attempt; anything else succeeds. Payouts go by the recipient's number
/// or account: `01` fails, `02` is never settled.
pub struct Simulation;

fn outcome(msisdn: &str, reference: &str) -> CollectionState {
    match test_digits(msisdn) {
        "01" => CollectionState::Failed { reason: "insufficient funds".to_owned() },
        "02" => CollectionState::Pending,
        _ => CollectionState::Completed { transaction_id: Some(format!("SIM-{reference}")) },
    }
}

fn test_digits(msisdn: &str) -> &str {
    &msisdn[msisdn.len().saturating_sub(2)..]
}

impl Collect for Simulation {
    async fn initiate(&self, collection: &Collection<'_>) -> Result<Initiated, ProviderError> {
        match (test_digits(collection.msisdn), collection.attempt) {
            ("03", 1) => Err(ProviderError::Unavailable("simulated provider error".to_owned())),
            ("04", 1) => Err(ProviderError::Timeout),
            _ => Ok(Initiated {
                handle: format!("SIM-{}", collection.reference),
                data: json!({}),
                checkout_url: None,
                state: outcome(collection.msisdn, collection.reference),
            }),
        }
    }

    async fn status(&self, query: &StatusQuery<'_>) -> Result<CollectionState, ProviderError> {
        Ok(outcome(query.msisdn, query.reference))
    }
}

impl Payout for Simulation {
    async fn send(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        self.payout_status(order).await
    }

    async fn payout_status(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        let recipient = order.msisdn.or(order.account_number).unwrap_or_default();
        Ok(match test_digits(recipient) {
            "01" => PayoutState::Failed { reason: "the recipient cannot be paid".to_owned() },
            "02" => PayoutState::Processing { handle: None },
            _ => PayoutState::Completed { receipt: Some(format!("SIM-{}", order.reference)) },
        })
    }
}
