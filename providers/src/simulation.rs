//! Simulation mode: outcomes decided in-process, like a card network's test cards, so a
//! merchant can integrate before they have provider credentials.

use serde_json::json;

use crate::{
    BillerCheck, Collect, Collection, CollectionState, Fund, FundingOrder, FundingState, Initiated, Payout,
    PayoutOrder, PayoutState, ProviderError, Purchase, PurchaseOrder, PurchaseState, StatusQuery,
    Verification, VirtualAccount,
};

/// Decides by the customer number's last two digits, as the sandbox does: `01` declined for
/// insufficient funds, `02` never confirmed, `03` a provider error on the first attempt, `04` a
/// timeout on the first attempt; anything else succeeds. Payouts go by the recipient's number
/// or account: `01` fails, `02` is never settled.
///
/// Purchases go by the smartcard or meter number, else the phone: `01` fails, `02` and `05`
/// are pending until requeried; a smartcard or meter ending in `09` neither verifies nor sells.
/// Fundings go by the naira amount: `01` expires unpaid, `02` is never paid; anything else is
/// paid by the first status query. Purchases and fundings carry no attempt number, so `03` and
/// `04` behave as `00`.
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

/// Keeps no record: a requery finds every purchase delivered, which is what the pending ones
/// (`02`, `05`) become, and a failed one is never requeried.
impl Purchase for Simulation {
    async fn verify(&self, check: &BillerCheck<'_>) -> Result<Verification, ProviderError> {
        Ok(match test_digits(check.billers_code) {
            "09" => Verification::Invalid { reason: "no customer has this number".to_owned() },
            _ => Verification::Valid { customer_name: Some("SIMULATED CUSTOMER".to_owned()) },
        })
    }

    async fn purchase(&self, order: &PurchaseOrder<'_>) -> Result<PurchaseState, ProviderError> {
        // A data bundle's `billers_code` is a phone number, which any biller knows.
        let smartcard_or_meter = order.billers_code.filter(|_| !order.service_id.ends_with("-data"));
        Ok(match test_digits(order.billers_code.unwrap_or(order.phone)) {
            "01" => PurchaseState::Failed { reason: "the purchase failed".to_owned() },
            "09" if smartcard_or_meter.is_some() => {
                PurchaseState::Failed { reason: "the biller does not know this number".to_owned() }
            }
            "02" | "05" => PurchaseState::Pending,
            _ => delivered(order.request_id),
        })
    }

    async fn requery(&self, request_id: &str) -> Result<PurchaseState, ProviderError> {
        Ok(delivered(request_id))
    }
}

fn delivered(request_id: &str) -> PurchaseState {
    PurchaseState::Delivered { provider_reference: Some(format!("SIM-{request_id}")), token: None }
}

/// The naira amount's last two digits, as the sandbox reads them.
fn funding_digits(order: &FundingOrder<'_>) -> i64 {
    order.amount_minor / 100 % 100
}

/// Ten digits that stay the same for a customer, as OnePipe keeps one account per customer
/// (an FNV-1a hash of the customer's reference).
fn account_number(customer_ref: &str) -> String {
    let hash = customer_ref.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("99{:08}", hash % 100_000_000)
}

impl Fund for Simulation {
    async fn open(&self, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
        let account = VirtualAccount {
            number: account_number(order.customer_ref),
            name: "SIMULATED WALLET".to_owned(),
            bank_name: "Simulation Bank".to_owned(),
            bank_code: "000".to_owned(),
            expires_at: None,
        };
        Ok(FundingState::AwaitingTransfer { account: Some(account) })
    }

    async fn status(&self, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
        Ok(match funding_digits(order) {
            1 => FundingState::Failed { reason: "the invoice expired unpaid".to_owned() },
            2 => FundingState::AwaitingTransfer { account: None },
            _ => FundingState::Completed {
                provider_reference: Some(format!("SIM-{}", order.reference)),
                amount_minor: order.amount_minor,
            },
        })
    }
}
