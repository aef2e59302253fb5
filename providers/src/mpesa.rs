//! Safaricom M-Pesa Daraja (providers.md §4): M-Pesa Express (the STK push and its query) for
//! collections, and B2C for payouts.
//!
//! Daraja has no idempotency key on the STK push: a push sent twice prompts the customer twice
//! and can charge them twice. A push whose answer was lost is therefore never sent again; its
//! callback names it, and the STK query confirms it.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{FixedOffset, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    Collect, Collection, CollectionState, Initiated, Payout, PayoutOrder, PayoutState, ProviderError,
    Settings, StatusQuery,
    collection::whole_units,
    http::{Answer, Client, token_answer},
    tokens::TokenCache,
};

/// Daraja's limits on `AccountReference` and, as recommended, on `TransactionDesc` (§4).
const ACCOUNT_REFERENCE_LIMIT: usize = 12;
const TRANSACTION_DESC_LIMIT: usize = 13;
/// The STK query's answer while the customer has not answered yet: pending, not a failure.
const STILL_PROCESSING: &str = "500.001.1001";

pub struct Mpesa {
    client: Client,
    base: String,
    consumer_key: String,
    consumer_secret: String,
    shortcode: String,
    passkey: String,
    transaction_type: String,
    party_b: String,
    b2c: Option<B2cSettings>,
    token_key: String,
}

/// What B2C needs beyond the app's credentials; a configuration without them only collects.
struct B2cSettings {
    shortcode: String,
    initiator_name: String,
    security_credential: String,
}

impl Mpesa {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let base = settings.base_url()?;
        let consumer_key = settings.required("consumerKey")?;
        let shortcode = settings.required("shortcode")?;
        let b2c = match (settings.optional("initiatorName"), settings.optional("securityCredential")) {
            (Some(initiator_name), Some(security_credential)) => Some(B2cSettings {
                shortcode: settings.optional("b2cShortcode").unwrap_or_else(|| shortcode.clone()),
                initiator_name,
                security_credential,
            }),
            _ => None,
        };
        let consumer_secret = settings.required("consumerSecret")?;
        Ok(Self {
            client,
            token_key: TokenCache::key("mpesa", &base, &consumer_key, &consumer_secret),
            base,
            consumer_key,
            consumer_secret,
            passkey: settings.required("passkey")?,
            transaction_type: settings
                .optional("transactionType")
                .unwrap_or_else(|| "CustomerPayBillOnline".to_owned()),
            party_b: settings.optional("partyB").unwrap_or_else(|| shortcode.clone()),
            shortcode,
            b2c,
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), ProviderError> {
        let request = self
            .client
            .http
            .get(format!("{}/oauth/v1/generate?grant_type=client_credentials", self.base))
            .basic_auth(&self.consumer_key, Some(&self.consumer_secret));
        let answer = self.client.send(request).await?;
        if answer.status.is_client_error() {
            return Err(ProviderError::Credentials(error_of(&answer).1));
        }
        token_answer(answer, Duration::from_secs(3599))
    }

    /// A stale token gets a fresh one and one more try, however Daraja says it.
    async fn post(&self, path: &str, body: &Value) -> Result<Answer, ProviderError> {
        let url = format!("{}{path}", self.base);
        self.client
            .authorized_unless(
                &self.token_key,
                || self.fetch_token(),
                |token| self.client.send(self.client.http.post(&url).bearer_auth(token).json(body)),
                |answer| answer.status == StatusCode::UNAUTHORIZED || is_token_refusal(&error_of(answer).0),
            )
            .await
    }

    /// `Password` and `Timestamp`: Base64(shortcode + passkey + timestamp), the timestamp in
    /// Nairobi time as `yyyyMMddHHmmss`.
    fn password(&self) -> (String, String) {
        let nairobi = FixedOffset::east_opt(3 * 3600).expect("UTC+3 is a valid offset");
        let timestamp = Utc::now().with_timezone(&nairobi).format("%Y%m%d%H%M%S").to_string();
        let password = STANDARD.encode(format!("{}{}{timestamp}", self.shortcode, self.passkey));
        (password, timestamp)
    }

    /// The refusal of a request Daraja did not accept.
    fn refusal(answer: &Answer) -> ProviderError {
        let (code, message) = error_of(answer);
        if answer.status == StatusCode::TOO_MANY_REQUESTS
            || code.starts_with("500.003.")
            || code.starts_with("503.")
        {
            return ProviderError::Unavailable(format!("{code} {message}"));
        }
        if is_merchant_refusal(&code, &message) || is_token_refusal(&code) {
            return ProviderError::Credentials(message);
        }
        if answer.status.is_client_error() {
            return ProviderError::Rejected { code, message };
        }
        if answer.is_unavailable() { answer.unavailable() } else { answer.unexpected() }
    }

    /// STK query by `CheckoutRequestID`.
    async fn query(&self, checkout_request_id: &str) -> Result<CollectionState, ProviderError> {
        let (password, timestamp) = self.password();
        let body = json!({
            "BusinessShortCode": self.shortcode,
            "Password": password,
            "Timestamp": timestamp,
            "CheckoutRequestID": checkout_request_id,
        });
        let answer = self.post("/mpesa/stkpushquery/v1/query", &body).await?;
        if answer.status.is_success() {
            return stk_result(&answer);
        }
        let (code, message) = error_of(&answer);
        if code == STILL_PROCESSING && !is_merchant_refusal(&code, &message) {
            return Ok(CollectionState::Pending);
        }
        if code == "400.002.02" && message.contains("CheckoutRequestID") {
            return Err(ProviderError::NotFound);
        }
        Err(Self::refusal(&answer))
    }

    /// Confirms the push a callback named. The callback URL carries a token only Ultra and
    /// Daraja know, so the push it names is this payment's; the query says how it ended.
    pub async fn confirm_hint(&self, checkout_request_id: &str) -> Result<CollectionState, ProviderError> {
        self.query(checkout_request_id).await
    }
}

/// The result of a settled push as the query reports it, with `ResultCode` as a string.
fn stk_result(answer: &Answer) -> Result<CollectionState, ProviderError> {
    let code = match answer.body.get("ResultCode") {
        Some(Value::String(code)) => code.clone(),
        Some(Value::Number(code)) => code.to_string(),
        _ => return Err(answer.unexpected()),
    };
    let description = answer.str("/ResultDesc").unwrap_or("no description").to_owned();
    Ok(match code.as_str() {
        "0" => CollectionState::Completed { transaction_id: None },
        // The prompt timed out or expired on the phone (§4, result codes).
        "1037" | "1019" => CollectionState::Expired,
        _ => CollectionState::Failed { reason: format!("{description} ({code})") },
    })
}

/// A token Daraja no longer takes, which it says with 404 `404.001.03` as often as with 401.
fn is_token_refusal(code: &str) -> bool {
    code.starts_with("404.001.") || code.starts_with("401.")
}

/// Daraja answers a wrong shortcode or password with HTTP 500 `500.001.1001`, the code it also
/// uses for "still processing": the message tells them apart.
fn is_merchant_refusal(code: &str, message: &str) -> bool {
    code == STILL_PROCESSING && (message.contains("Wrong credentials") || message.contains("does not exist"))
}

/// Daraja's error envelope, whose keys some answers capitalise (§4, errors).
fn error_of(answer: &Answer) -> (String, String) {
    let field = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|name| answer.body.get(*name).and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned()
    };
    (field(["errorCode", "ErrorCode"]), field(["errorMessage", "ErrorMessage"]))
}

/// Daraja's `AccountReference`: the merchant's reference, else ours, cut to what Daraja takes.
fn account_reference(collection: &Collection<'_>) -> String {
    let source = collection.merchant_reference.unwrap_or(collection.reference);
    source.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').take(ACCOUNT_REFERENCE_LIMIT).collect()
}

impl Collect for Mpesa {
    async fn initiate(&self, collection: &Collection<'_>) -> Result<Initiated, ProviderError> {
        let callback_url = collection
            .callback_url
            .ok_or_else(|| ProviderError::Configuration("M-Pesa needs a callback URL".to_owned()))?;
        let (password, timestamp) = self.password();
        let description: String =
            collection.description.unwrap_or("Payment").chars().take(TRANSACTION_DESC_LIMIT).collect();
        let body = json!({
            "BusinessShortCode": self.shortcode,
            "Password": password,
            "Timestamp": timestamp,
            "TransactionType": self.transaction_type,
            "Amount": whole_units(collection.amount_minor)?,
            "PartyA": collection.msisdn,
            "PartyB": self.party_b,
            "PhoneNumber": collection.msisdn,
            "CallBackURL": callback_url,
            "AccountReference": account_reference(collection),
            "TransactionDesc": description,
        });
        let answer = self.post("/mpesa/stkpush/v1/processrequest", &body).await?;
        if !answer.status.is_success() {
            return Err(Self::refusal(&answer));
        }
        if answer.str("/ResponseCode") != Some("0") {
            let code = answer.str("/ResponseCode").unwrap_or("unknown").to_owned();
            let message = answer.str("/ResponseDescription").unwrap_or("refused").to_owned();
            return Err(ProviderError::Rejected { code, message });
        }
        let handle = answer.str("/CheckoutRequestID").ok_or_else(|| answer.unexpected())?.to_owned();
        Ok(Initiated {
            handle,
            data: json!({ "merchantRequestId": answer.str("/MerchantRequestID") }),
            checkout_url: None,
            state: CollectionState::Pending,
        })
    }

    async fn status(&self, query: &StatusQuery<'_>) -> Result<CollectionState, ProviderError> {
        self.query(query.handle).await
    }
}

impl Payout for Mpesa {
    /// B2C v3. The `OriginatorConversationID` is the payout's id, which Daraja refuses to see
    /// twice: a retry after a lost answer learns that the first request got there.
    async fn send(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        let b2c = self.b2c.as_ref().ok_or_else(|| {
            ProviderError::Configuration("M-Pesa B2C needs initiatorName and securityCredential".to_owned())
        })?;
        let msisdn = order.msisdn.ok_or_else(|| ProviderError::Configuration("no recipient".to_owned()))?;
        let result_url =
            order.result_url.ok_or_else(|| ProviderError::Configuration("no result URL".to_owned()))?;
        let body = json!({
            "OriginatorConversationID": order.reference,
            "InitiatorName": b2c.initiator_name,
            "SecurityCredential": b2c.security_credential,
            "CommandID": "BusinessPayment",
            "Amount": whole_units(order.amount_minor)?,
            "PartyA": b2c.shortcode,
            "PartyB": msisdn,
            "Remarks": order.narrative.filter(|n| !n.is_empty()).unwrap_or("Payout"),
            "QueueTimeOutURL": result_url,
            "ResultURL": result_url,
            "Occasion": order.reference,
        });
        let answer = self.post("/mpesa/b2c/v3/paymentrequest", &body).await?;
        if answer.status.is_success() && answer.str("/ResponseCode") == Some("0") {
            let handle = answer.str("/ConversationID").map(str::to_owned);
            return Ok(PayoutState::Processing { handle });
        }
        let (code, message) = error_of(&answer);
        if code == "500.002.1001" || message.contains("Duplicate OriginatorConversationID") {
            return Err(ProviderError::Duplicate(message));
        }
        Err(Self::refusal(&answer))
    }

    /// Daraja reports B2C outcomes only by posting a `Result`; there is nothing to ask.
    async fn payout_status(&self, _order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        Ok(PayoutState::Processing { handle: None })
    }
}
