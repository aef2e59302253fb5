//! M-Pesa Express (§4): the STK push prompts the customer's phone, Daraja posts the result to
//! the push's `CallBackURL`, and the query reports it, answering HTTP 500 for as long as the
//! customer has not answered.

use std::sync::{Arc, MutexGuard};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{Datelike, NaiveDateTime, Timelike};
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

/// The sandbox's Lipa-na-M-Pesa shortcode and the test passkey Safaricom publishes for it
/// (§4, sandbox). No other shortcode exists here.
pub const SHORTCODE: &str = "174379";
pub const PASSKEY: &str = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919";
const TRANSACTION_TYPES: [&str; 2] = ["CustomerPayBillOnline", "CustomerBuyGoodsOnline"];
/// Daraja's limit on `AccountReference` (§4, STK push).
const ACCOUNT_REFERENCE_LIMIT: usize = 12;
const ACCEPTED: &str = "Success. Request accepted for processing";

/// What Daraja keeps about an STK push beyond the common ledger fields.
pub struct StkPush {
    merchant_request_id: String,
    callback_url: String,
    /// The amount and the number prompted go back to the merchant as JSON numbers.
    amount: u64,
    phone_number: u64,
}

impl Provider for StkPush {
    const NAME: &'static str = "mpesa";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.mpesa()
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

    /// `Body.stkCallback` with the result code as a number; only a success carries
    /// `CallbackMetadata` (§4, STK callback).
    fn notification(_app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let (code, description) = result(collection)?;
        let push = &collection.details;
        let mut callback = json!({
            "MerchantRequestID": push.merchant_request_id,
            "CheckoutRequestID": collection.handle,
            "ResultCode": code,
            "ResultDesc": description,
        });
        if let Phase::Succeeded { receipt } = &collection.phase {
            callback["CallbackMetadata"] = json!({ "Item": [
                { "Name": "Amount", "Value": push.amount },
                { "Name": "MpesaReceiptNumber", "Value": receipt },
                { "Name": "TransactionDate", "Value": transaction_date() },
                { "Name": "PhoneNumber", "Value": push.phone_number },
            ]});
        }
        let body = json!({ "Body": { "stkCallback": callback } });
        Some(Callback { method: Method::POST, url: push.callback_url.clone(), body, headers: Vec::new() })
    }
}

/// Daraja's `ResultCode` and `ResultDesc` for a settled push (§4, result codes), or `None`
/// while the customer has not answered.
fn result(collection: &Collection<StkPush>) -> Option<(u32, &'static str)> {
    Some(match (&collection.phase, collection.outcome) {
        (Phase::AwaitingCustomer | Phase::Confirmed, _) => return None,
        (Phase::Succeeded { .. }, _) => (0, "The service request is processed successfully."),
        (Phase::Failed, Outcome::Refused(Refusal::Counterparty)) => (1032, "Request cancelled by user"),
        (Phase::Failed, Outcome::Refused(Refusal::Credentials)) => {
            (2001, "The initiator information is invalid.")
        }
        (Phase::Failed, _) => (1, "The balance is insufficient for the transaction."),
        // The prompt timed out on a phone that never answered.
        (Phase::Expired, _) => (1037, "DS timeout user cannot be reached"),
    })
}

/// `TransactionDate`: Nairobi time as the number `yyyyMMddHHmmss`.
fn transaction_date() -> u64 {
    let now = nairobi_now();
    let date =
        u64::from(now.year().unsigned_abs()) * 10_000 + u64::from(now.month()) * 100 + u64::from(now.day());
    let time = u64::from(now.hour()) * 10_000 + u64::from(now.minute()) * 100 + u64::from(now.second());
    date * 1_000_000 + time
}

#[handler]
pub async fn process_request(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(push_payment(req, body, app).await)
}

#[handler]
pub async fn query_request(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(query_payment(req, body, app).await)
}

async fn push_payment(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let push = Push::parse(&json_body(body).await?)?;
    let outcome = Outcome::with_refusals_for_msisdn(&push.phone_number);
    let merchant_request_id = ids::daraja_request_id();
    let (handle, first_call) = {
        let mut ledger = app.mpesa();
        // Daraja has no duplicate check: a push repeating an `AccountReference` is one more
        // prompt, so "the first push" of `03` and `04` is the first to name that reference.
        let calls = ledger.count_initiate(&push.account_reference);
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(error("500.003.1001", "Internal Server Error"));
        }
        let handle = unique_checkout_request_id(&mut ledger, &push.phone_number);
        ledger.record(Collection::new(
            push.account_reference,
            handle.clone(),
            Some(push.phone_number),
            push.amount.to_string(),
            outcome,
            StkPush {
                merchant_request_id: merchant_request_id.clone(),
                callback_url: push.callback_url,
                amount: push.amount,
                phone_number: push.phone_number_value,
            },
        ));
        (handle, calls == 1)
    };
    customer::prompt::<StkPush>(app, &handle);
    if first_call && outcome.stalls_first_initiate() {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(
        StatusCode::OK,
        json!({
            "MerchantRequestID": merchant_request_id,
            "CheckoutRequestID": handle,
            "ResponseCode": "0",
            "ResponseDescription": ACCEPTED,
            "CustomerMessage": ACCEPTED,
        }),
    ))
}

/// A `CheckoutRequestID` is the time to the millisecond and the number prompted, so two pushes
/// to one number within a millisecond would share it; the later one moves on a millisecond.
fn unique_checkout_request_id(ledger: &mut Ledger<StkPush>, phone_number: &str) -> String {
    let mut at = nairobi_now();
    loop {
        let id = ids::checkout_request_id(at, phone_number);
        if ledger.by_handle(&id).is_none() {
            return id;
        }
        at += chrono::Duration::milliseconds(1);
    }
}

/// The query answers about a settled push with `ResultCode` as a string, unlike the callback,
/// and refuses with HTTP 500 while the customer is still deciding (§4, STK query).
async fn query_payment(req: &Request, body: Body, app: &App) -> Result<Reply, Reply> {
    authorize(req, app)?;
    let body = json_body(body).await?;
    let credentials = Credentials::parse(&body)?;
    let checkout_request_id = text(&body, "CheckoutRequestID").ok_or_else(|| invalid("CheckoutRequestID"))?;
    credentials.check()?;
    let mut ledger = app.mpesa();
    let push = ledger.by_handle(checkout_request_id).ok_or_else(|| invalid("CheckoutRequestID"))?;
    let Some((code, description)) = result(push) else {
        return Err(error("500.001.1001", "The transaction is being processed"));
    };
    Ok(wire::json(
        StatusCode::OK,
        json!({
            "ResponseCode": "0",
            // Daraja's own spelling.
            "ResponseDescription": "The service request has been accepted successsfully",
            "MerchantRequestID": push.details.merchant_request_id,
            "CheckoutRequestID": push.handle,
            "ResultCode": code.to_string(),
            "ResultDesc": description,
        }),
    ))
}

/// `BusinessShortCode`, `Password` and `Timestamp`, which the push and the query both carry.
struct Credentials {
    shortcode: String,
    password: String,
    timestamp: String,
}

impl Credentials {
    fn parse(body: &Value) -> Result<Self, Reply> {
        let shortcode = digits(body, "BusinessShortCode").ok_or_else(|| invalid("BusinessShortCode"))?;
        let password = text(body, "Password").ok_or_else(|| invalid("Password"))?;
        let timestamp = text(body, "Timestamp")
            .filter(|timestamp| {
                timestamp.len() == 14
                    && timestamp.bytes().all(|byte| byte.is_ascii_digit())
                    && NaiveDateTime::parse_from_str(timestamp, "%Y%m%d%H%M%S").is_ok()
            })
            .ok_or_else(|| invalid("Timestamp"))?;
        Ok(Self { shortcode, password: password.to_owned(), timestamp: timestamp.to_owned() })
    }

    /// Checked once every field is well formed: an unknown shortcode, or a password that is not
    /// Base64(shortcode + passkey + timestamp), is refused with HTTP 500, as Daraja does (§4).
    fn check(&self) -> Result<(), Reply> {
        if self.shortcode != SHORTCODE {
            return Err(error("500.001.1001", "Merchant does not exist"));
        }
        let expected = format!("{SHORTCODE}{PASSKEY}{}", self.timestamp);
        if STANDARD.decode(self.password.trim()).ok().as_deref() != Some(expected.as_bytes()) {
            return Err(error("500.001.1001", "[MerchantValidate] - Wrong credentials"));
        }
        Ok(())
    }
}

/// A push body that passed validation.
struct Push {
    account_reference: String,
    phone_number: String,
    phone_number_value: u64,
    amount: u64,
    callback_url: String,
}

impl Push {
    fn parse(body: &Value) -> Result<Self, Reply> {
        let credentials = Credentials::parse(body)?;
        text(body, "TransactionType")
            .filter(|kind| TRANSACTION_TYPES.contains(kind))
            .ok_or_else(|| invalid("TransactionType"))?;
        let amount = amount(body)?;
        msisdn(body, "PartyA")?;
        digits(body, "PartyB").ok_or_else(|| invalid("PartyB"))?;
        let phone_number = msisdn(body, "PhoneNumber")?;
        let phone_number_value = phone_number.parse().map_err(|_| invalid("PhoneNumber"))?;
        let callback_url = url(body, "CallBackURL")?;
        let account_reference = text(body, "AccountReference")
            .filter(|reference| reference.chars().count() <= ACCOUNT_REFERENCE_LIMIT)
            .ok_or_else(|| invalid("AccountReference"))?;
        if !body["TransactionDesc"].is_string() {
            return Err(invalid("TransactionDesc"));
        }
        credentials.check()?;
        Ok(Self {
            account_reference: account_reference.to_owned(),
            phone_number,
            phone_number_value,
            amount,
            callback_url,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(outcome: Outcome, phase: Phase) -> Collection<StkPush> {
        let mut collection = Collection::new(
            "INV-1".to_owned(),
            "ws_CO_1".to_owned(),
            Some("254708374100".to_owned()),
            "10".to_owned(),
            outcome,
            StkPush {
                merchant_request_id: "1-2-1".to_owned(),
                callback_url: "http://x".to_owned(),
                amount: 10,
                phone_number: 254_708_374_100,
            },
        );
        collection.phase = phase;
        collection
    }

    #[test]
    fn each_refusal_has_its_daraja_result_code() {
        let code = |outcome, phase| result(&push(outcome, phase)).map(|(code, _)| code);
        assert_eq!(code(Outcome::Confirms, Phase::AwaitingCustomer), None);
        assert_eq!(code(Outcome::Confirms, Phase::Succeeded { receipt: "R".to_owned() }), Some(0));
        assert_eq!(code(Outcome::InsufficientFunds, Phase::Failed), Some(1));
        assert_eq!(code(Outcome::Refused(Refusal::Counterparty), Phase::Failed), Some(1032));
        assert_eq!(code(Outcome::Refused(Refusal::Credentials), Phase::Failed), Some(2001));
        assert_eq!(code(Outcome::NeverAnswers, Phase::Expired), Some(1037));
    }

    #[test]
    fn transaction_dates_are_fourteen_digits() {
        assert_eq!(transaction_date().to_string().len(), 14);
    }
}
