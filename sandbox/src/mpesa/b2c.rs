//! B2C payouts (§4): Daraja acknowledges a payment request at once and posts the outcome to its
//! `ResultURL` as a `Result`, so every business failure arrives after an accepted request. v3
//! requests carry the merchant's `OriginatorConversationID`, which Daraja refuses to see twice;
//! v1 requests carry none and Daraja makes one up. The queue never times out here, so
//! `QueueTimeOutURL` must be well formed but is never called.

use std::sync::{Arc, MutexGuard};

use poem::{Body, Request, handler, http::StatusCode, web::Data};
use reqwest::Method;
use serde_json::{Value, json};

use super::{amount, authorize, digits, error, invalid, json_body, msisdn, nairobi_now, text, url};
use crate::{
    app::App,
    callbacks::Callback,
    customer, ids,
    ledger::{Collection, Ledger, Phase},
    outcome::{Outcome, Refusal},
    provider::Provider,
    wire::{self, Reply, answer},
};

const COMMAND_IDS: [&str; 3] = ["BusinessPayment", "SalaryPayment", "PromotionPayment"];
/// Every captured `Result` names Safaricom's own queue-timeout endpoint in `ReferenceData`,
/// whatever `QueueTimeOutURL` the request gave (§4, B2C result).
const QUEUE_TIMEOUT_REFERENCE: &str = "https://internalsandbox.safaricom.co.ke/mpesa/b2cresults/v1/submit";
/// The balances a successful `Result` reports. The sandbox keeps no accounts, so they never
/// move; they are only there to be parsed.
const UTILITY_FUNDS: f64 = 1_000_000.0;
const WORKING_FUNDS: f64 = 900_000.0;
const CHARGES_PAID_FUNDS: f64 = -4_510.0;
const RECIPIENT_NAME: &str = "ULTRA SANDBOX RECIPIENT";

/// Which path a payment request came by.
#[derive(Clone, Copy)]
enum Version {
    V1,
    V3,
}

/// What Daraja keeps about a B2C payment beyond the common ledger fields.
pub struct B2cPayment {
    amount: u64,
    result_url: String,
}

impl Provider for B2cPayment {
    const NAME: &'static str = "mpesa-b2c";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.mpesa_b2c()
    }

    /// Daraja has no status words, only result codes once settled; these are the sandbox's.
    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer | Phase::Confirmed => "processing",
            Phase::Succeeded { .. } => "success",
            Phase::Failed => "failed",
            Phase::Expired => "expired",
        }
    }

    fn receipt(_collection: &Collection<Self>) -> String {
        ids::mpesa_receipt()
    }

    fn notification(_app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let body = json!({ "Result": result(collection)? });
        Some(Callback {
            method: Method::POST,
            url: collection.details.result_url.clone(),
            body,
            headers: Vec::new(),
        })
    }
}

/// The `Result` of a settled payment, with the integer result code of the captures. Only a
/// success carries `ResultParameters`; a failure still has a `TransactionID`, zero-filled.
fn result(collection: &Collection<B2cPayment>) -> Option<Value> {
    let (code, description) = match (&collection.phase, collection.outcome) {
        (Phase::Succeeded { .. }, _) => (0, "The service request is processed successfully."),
        (Phase::Failed, Outcome::Refused(Refusal::Counterparty)) => (
            2040,
            "Credit Party customer type (Unregistered or Registered Customer) can't be supported by the service.",
        ),
        (Phase::Failed, Outcome::Refused(Refusal::Credentials)) => {
            (2001, "The initiator information is invalid.")
        }
        (Phase::Failed, _) => (1, "The balance is insufficient for the transaction."),
        (Phase::AwaitingCustomer | Phase::Confirmed | Phase::Expired, _) => return None,
    };
    let transaction_id = match collection.phase.receipt() {
        Some(receipt) => receipt.to_owned(),
        None => format!("{}0000000", &ids::mpesa_receipt()[..3]),
    };
    let mut result = json!({
        "ResultType": 0,
        "ResultCode": code,
        "ResultDesc": description,
        "OriginatorConversationID": collection.reference,
        "ConversationID": collection.handle,
        "TransactionID": transaction_id,
        "ReferenceData": { "ReferenceItem": { "Key": "QueueTimeoutURL", "Value": QUEUE_TIMEOUT_REFERENCE } },
    });
    if code == 0 {
        let recipient = collection.msisdn.as_deref().unwrap_or_default();
        result["ResultParameters"] = json!({ "ResultParameter": [
            { "Key": "TransactionAmount", "Value": collection.details.amount },
            { "Key": "TransactionReceipt", "Value": transaction_id },
            { "Key": "B2CRecipientIsRegisteredCustomer", "Value": "Y" },
            { "Key": "B2CChargesPaidAccountAvailableFunds", "Value": CHARGES_PAID_FUNDS },
            { "Key": "ReceiverPartyPublicName", "Value": format!("{recipient} - {RECIPIENT_NAME}") },
            { "Key": "TransactionCompletedDateTime", "Value": nairobi_now().format("%d.%m.%Y %H:%M:%S").to_string() },
            { "Key": "B2CUtilityAccountAvailableFunds", "Value": UTILITY_FUNDS },
            { "Key": "B2CWorkingAccountAvailableFunds", "Value": WORKING_FUNDS },
        ]});
    }
    Some(result)
}

#[handler]
pub async fn pay_v3(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(pay(req, body, app, Version::V3).await)
}

#[handler]
pub async fn pay_v1(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(pay(req, body, app, Version::V1).await)
}

async fn pay(req: &Request, body: Body, app: &Arc<App>, version: Version) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let payout = Payout::parse(&json_body(body).await?, version)?;
    let outcome = Outcome::with_refusals_for_msisdn(&payout.recipient);
    let originator_id = payout.originator_id.clone().unwrap_or_else(ids::daraja_request_id);
    let conversation_id = ids::conversation_id();
    let first_call = {
        let mut ledger = app.mpesa_b2c();
        let mut calls = ledger.count_initiate(&originator_id);
        if ledger.contains(&originator_id) {
            return Err(error("500.002.1001", "Duplicate OriginatorConversationID."));
        }
        if payout.originator_id.is_none() {
            // A v1 request carries no id of the merchant's, so "the first request" of `03`
            // and `04` is the first to that recipient.
            calls = ledger.count_initiate(&format!("v1:{}", payout.recipient));
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(error("500.003.1001", "Internal Server Error"));
        }
        ledger.record(Collection::new(
            originator_id.clone(),
            conversation_id.clone(),
            Some(payout.recipient),
            payout.amount.to_string(),
            outcome,
            B2cPayment { amount: payout.amount, result_url: payout.result_url },
        ));
        calls == 1
    };
    // M-Pesa's core settling the payment stands in for the customer of the collections.
    customer::prompt::<B2cPayment>(app, &conversation_id);
    if first_call && outcome == Outcome::StallsFirstInitiate {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(
        StatusCode::OK,
        json!({
            "ConversationID": conversation_id,
            "OriginatorConversationID": originator_id,
            "ResponseCode": "0",
            "ResponseDescription": "Accept the service request successfully.",
        }),
    ))
}

/// A payment request body that passed validation. Daraja cannot judge the initiator or its
/// RSA-encrypted `SecurityCredential` before running the payment, so they only need to be there;
/// test number `07` stands for a wrong one.
struct Payout {
    originator_id: Option<String>,
    amount: u64,
    recipient: String,
    result_url: String,
}

impl Payout {
    fn parse(body: &Value, version: Version) -> Result<Self, Reply> {
        let originator_id = match version {
            Version::V3 => Some(
                text(body, "OriginatorConversationID")
                    .ok_or_else(|| invalid("OriginatorConversationID"))?
                    .to_owned(),
            ),
            Version::V1 => None,
        };
        text(body, "InitiatorName").ok_or_else(|| invalid("InitiatorName"))?;
        text(body, "SecurityCredential").ok_or_else(|| invalid("SecurityCredential"))?;
        text(body, "CommandID")
            .filter(|command| COMMAND_IDS.contains(command))
            .ok_or_else(|| invalid("CommandID"))?;
        let amount = amount(body)?;
        digits(body, "PartyA").ok_or_else(|| invalid("PartyA"))?;
        let recipient = msisdn(body, "PartyB")?;
        text(body, "Remarks").ok_or_else(|| invalid("Remarks"))?;
        url(body, "QueueTimeOutURL")?;
        let result_url = url(body, "ResultURL")?;
        if !matches!(body.get("Occasion"), None | Some(Value::Null | Value::String(_))) {
            return Err(invalid("Occasion"));
        }
        Ok(Self { originator_id, amount, recipient, result_url })
    }
}
