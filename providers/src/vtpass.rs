//! VTpass (providers.md §5): airtime, data bundles, TV subscriptions and electricity, each
//! bought under a `request_id` of our making that a requery later names.
//!
//! VTpass answers almost everything with HTTP 200 and a `code`; its own rule is that any answer
//! its table does not explain, a timeout and no answer at all mean "pending: requery", so a
//! purchase is only ever `Failed` on a code that says nothing was charged.

use chrono::{DateTime, FixedOffset, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    BillerCheck, ProviderError, Purchase, PurchaseOrder, PurchaseState, Settings, Verification,
    http::{Answer, Client},
};

/// Codes after which VTpass has not charged us (§5, response codes). `020`, `011`, `012` and
/// `030` are verification codes that VTpass says to treat as failed when a purchase gets them.
const NOT_CHARGED: [&str; 19] = [
    "010", "011", "012", "013", "016", "017", "018", "019", "020", "025", "026", "028", "030", "031", "032",
    "034", "035", "040", "091",
];
/// Codes refusing our VTpass account rather than the purchase: an operator must act.
const ACCOUNT_REFUSALS: [&str; 6] = ["021", "022", "023", "024", "027", "087"];

pub struct Vtpass {
    client: Client,
    base: String,
    api_key: String,
    secret_key: String,
}

impl Vtpass {
    /// `publicKey` is only for VTpass's GET calls (variations, balance), which the adapter does
    /// not make.
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        Ok(Self {
            client,
            base: settings.base_url()?,
            api_key: settings.required("apiKey")?,
            secret_key: settings.required("secretKey")?,
        })
    }

    /// VTpass's POST calls authenticate with the API key and the secret key.
    async fn post(&self, path: &str, body: &Value) -> Result<Answer, ProviderError> {
        let request = self
            .client
            .http
            .post(format!("{}{path}", self.base))
            .header("api-key", &self.api_key)
            .header("secret-key", &self.secret_key)
            .json(body);
        self.client.send(request).await
    }
}

/// A VTpass `request_id`: the first 12 characters are Africa/Lagos time as `YYYYMMDDHHmm`
/// (VTpass refuses any other date with `085`), then `unique` without anything but letters and
/// digits.
pub fn vtpass_request_id(now: DateTime<Utc>, unique: &str) -> String {
    let suffix: String = unique.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("{}{suffix}", now.with_timezone(&lagos()).format("%Y%m%d%H%M"))
}

/// Africa/Lagos is UTC+1 all year: Nigeria keeps no daylight saving time.
fn lagos() -> FixedOffset {
    FixedOffset::east_opt(3600).expect("UTC+1 is a valid offset")
}

/// Naira, with kobo as decimals only when there are any.
fn naira(amount_minor: i64) -> Value {
    if amount_minor % 100 == 0 { json!(amount_minor / 100) } else { json!(amount_minor as f64 / 100.0) }
}

/// `code` is a string in every documented answer; a number is read the same way.
fn code_of(answer: &Answer) -> Option<String> {
    match answer.body.get("code")? {
        Value::String(code) => Some(code.trim().to_owned()),
        Value::Number(code) => Some(format!("{code:0>3}")),
        _ => None,
    }
}

fn description(answer: &Answer) -> &str {
    answer.str("/response_description").or_else(|| answer.str("/content/error")).unwrap_or("no description")
}

/// A value VTpass sends as a string or as a number, as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The electricity token, from `mainToken`, `token` or `purchased_code`, without the
/// `Token : ` label VTpass puts before it.
fn token_of(answer: &Answer) -> Option<String> {
    ["/mainToken", "/token", "/purchased_code"].iter().find_map(|pointer| {
        let value = text(answer.body.pointer(pointer))?;
        let token = match value.split_once(':') {
            Some((label, token)) if label.trim().eq_ignore_ascii_case("token") => token.trim(),
            _ => value.as_str(),
        };
        (!token.is_empty()).then(|| token.to_owned())
    })
}

/// A purchase's state from an answer to `/pay` or `/requery` that reached VTpass's API.
fn purchase_state(answer: &Answer) -> Result<PurchaseState, ProviderError> {
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        return Err(ProviderError::Credentials(description(answer).to_owned()));
    }
    if answer.status == StatusCode::TOO_MANY_REQUESTS {
        return Err(answer.unavailable());
    }
    let Some(code) = code_of(answer) else { return Ok(PurchaseState::Pending) };
    let message = || format!("{} ({code})", description(answer));
    match code.as_str() {
        "000" | "001" | "044" => Ok(transaction_state(answer, &code)),
        "014" => Err(ProviderError::Duplicate(message())),
        // Another request of ours is still running: this one was not taken.
        "089" => Err(ProviderError::Unavailable(message())),
        "015" | "085" => Err(ProviderError::Rejected { code, message: description(answer).to_owned() }),
        code if ACCOUNT_REFUSALS.contains(&code) => Err(ProviderError::Credentials(message())),
        code if NOT_CHARGED.contains(&code) => Ok(PurchaseState::Failed { reason: message() }),
        // `099` (processing), `083` (system error) and anything unlisted.
        _ => Ok(PurchaseState::Pending),
    }
}

/// `content.transactions.status` of a processed transaction.
fn transaction_state(answer: &Answer, code: &str) -> PurchaseState {
    match answer.str("/content/transactions/status") {
        Some("delivered") => PurchaseState::Delivered {
            provider_reference: text(answer.body.pointer("/content/transactions/transactionId")),
            token: token_of(answer),
        },
        Some(status @ ("failed" | "reversed")) => {
            PurchaseState::Failed { reason: format!("{} ({code}, {status})", description(answer)) }
        }
        _ => PurchaseState::Pending,
    }
}

fn verification(answer: &Answer) -> Result<Verification, ProviderError> {
    if answer.is_unavailable() {
        return Err(answer.unavailable());
    }
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        return Err(ProviderError::Credentials(description(answer).to_owned()));
    }
    let code = code_of(answer).ok_or_else(|| answer.unexpected())?;
    match code.as_str() {
        "000" | "020" => {
            let wrong = answer.body.pointer("/content/WrongBillersCode").and_then(Value::as_bool);
            if wrong == Some(true) || answer.str("/content/error").is_some() {
                let reason = answer.str("/content/error").unwrap_or("VTpass does not know this number");
                return Ok(Verification::Invalid { reason: reason.to_owned() });
            }
            Ok(Verification::Valid { customer_name: text(answer.body.pointer("/content/Customer_Name")) })
        }
        "030" => Err(ProviderError::Unavailable(format!("{} (030)", description(answer)))),
        code if ACCOUNT_REFUSALS.contains(&code) => {
            Err(ProviderError::Credentials(format!("{} ({code})", description(answer))))
        }
        "011" | "012" => Err(ProviderError::Rejected { code, message: description(answer).to_owned() }),
        _ => Err(answer.unexpected()),
    }
}

impl Purchase for Vtpass {
    async fn verify(&self, check: &BillerCheck<'_>) -> Result<Verification, ProviderError> {
        let mut body = json!({ "billersCode": check.billers_code, "serviceID": check.service_id });
        if let Some(kind) = check.kind {
            body["type"] = json!(kind);
        }
        verification(&self.post("/merchant-verify", &body).await?)
    }

    async fn purchase(&self, order: &PurchaseOrder<'_>) -> Result<PurchaseState, ProviderError> {
        let mut body = json!({
            "request_id": order.request_id,
            "serviceID": order.service_id,
            "amount": naira(order.amount_minor),
            "phone": order.phone,
        });
        // A data bundle's recipient goes in `billersCode` (§5, endpoints).
        let recipient = order.service_id.ends_with("-data").then_some(order.phone);
        if let Some(billers_code) = order.billers_code.or(recipient) {
            body["billersCode"] = json!(billers_code);
        }
        if let Some(variation_code) = order.variation_code {
            body["variation_code"] = json!(variation_code);
        }
        if let Some(subscription_type) = order.subscription_type {
            body["subscription_type"] = json!(subscription_type);
        }
        let answer = match self.post("/pay", &body).await {
            Err(ProviderError::Timeout) => return Ok(PurchaseState::Pending),
            answer => answer?,
        };
        if answer.status.is_server_error() {
            return Ok(PurchaseState::Pending);
        }
        purchase_state(&answer)
    }

    async fn requery(&self, request_id: &str) -> Result<PurchaseState, ProviderError> {
        let answer = self.post("/requery", &json!({ "request_id": request_id })).await?;
        if answer.is_unavailable() {
            return Err(answer.unavailable());
        }
        if code_of(&answer).as_deref() == Some("015") {
            return Err(ProviderError::NotFound);
        }
        purchase_state(&answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(body: Value) -> Answer {
        Answer { status: StatusCode::OK, body }
    }

    fn processed(status: &str) -> Answer {
        answer(json!({
            "code": "000",
            "response_description": "TRANSACTION SUCCESSFUL",
            "purchased_code": "Token : 26362054405982757802",
            "content": { "transactions": { "status": status, "transactionId": "17416102247366731230557150" } },
        }))
    }

    fn coded(code: &str) -> Answer {
        answer(json!({ "code": code, "response_description": "SOMETHING" }))
    }

    #[test]
    fn request_ids_start_with_lagos_time() {
        let late_evening_utc = DateTime::parse_from_rfc3339("2025-03-10T23:30:00Z").unwrap().to_utc();
        assert_eq!(vtpass_request_id(late_evening_utc, "MXT-01J9/ab"), "202503110030MXT01J9ab");
        let noon = DateTime::parse_from_rfc3339("2025-03-10T12:05:59Z").unwrap().to_utc();
        assert_eq!(&vtpass_request_id(noon, "x")[..12], "202503101305");
    }

    #[test]
    fn amounts_are_naira() {
        assert_eq!(naira(10_000), json!(100));
        assert_eq!(naira(10_050), json!(100.5));
    }

    #[test]
    fn a_processed_transaction_is_read_from_its_status() {
        assert_eq!(
            purchase_state(&processed("delivered")).unwrap(),
            PurchaseState::Delivered {
                provider_reference: Some("17416102247366731230557150".to_owned()),
                token: Some("26362054405982757802".to_owned()),
            }
        );
        assert_eq!(purchase_state(&processed("initiated")).unwrap(), PurchaseState::Pending);
        assert_eq!(purchase_state(&processed("pending")).unwrap(), PurchaseState::Pending);
        assert!(matches!(purchase_state(&processed("reversed")).unwrap(), PurchaseState::Failed { .. }));
        assert!(matches!(purchase_state(&processed("failed")).unwrap(), PurchaseState::Failed { .. }));
    }

    #[test]
    fn airtime_has_no_token() {
        let mut airtime = processed("delivered");
        airtime.body["purchased_code"] = json!("");
        let PurchaseState::Delivered { token, .. } = purchase_state(&airtime).unwrap() else {
            panic!("not delivered");
        };
        assert_eq!(token, None);
    }

    #[test]
    fn only_codes_that_say_nothing_was_charged_fail() {
        for code in ["016", "091", "010", "011", "012", "013", "017", "018", "019", "030", "040"] {
            assert!(matches!(purchase_state(&coded(code)).unwrap(), PurchaseState::Failed { .. }), "{code}");
        }
    }

    #[test]
    fn unclear_answers_are_pending() {
        for code in ["099", "083", "777"] {
            assert_eq!(purchase_state(&coded(code)).unwrap(), PurchaseState::Pending, "{code}");
        }
        assert_eq!(purchase_state(&answer(json!("<html>oops</html>"))).unwrap(), PurchaseState::Pending);
    }

    #[test]
    fn refusals_of_the_request_or_the_account_are_errors() {
        assert!(matches!(purchase_state(&coded("014")), Err(ProviderError::Duplicate(_))));
        assert!(matches!(purchase_state(&coded("085")), Err(ProviderError::Rejected { .. })));
        assert!(matches!(purchase_state(&coded("087")), Err(ProviderError::Credentials(_))));
        assert!(matches!(purchase_state(&coded("027")), Err(ProviderError::Credentials(_))));
        assert!(matches!(purchase_state(&coded("089")), Err(ProviderError::Unavailable(_))));
    }

    #[test]
    fn verification_reads_the_wrong_billers_code_flag() {
        let valid = answer(json!({
            "code": "000",
            "content": { "Customer_Name": "TESTMETER1", "WrongBillersCode": false },
        }));
        assert_eq!(
            verification(&valid).unwrap(),
            Verification::Valid { customer_name: Some("TESTMETER1".to_owned()) }
        );
        let invalid = answer(json!({
            "code": "000",
            "content": { "error": "This meter is not correct", "WrongBillersCode": true },
        }));
        assert_eq!(
            verification(&invalid).unwrap(),
            Verification::Invalid { reason: "This meter is not correct".to_owned() }
        );
        assert!(matches!(verification(&coded("030")), Err(ProviderError::Unavailable(_))));
    }
}
