//! MVola (Telma Madagascar) Merchant Pay v1: a USSD push the customer confirms with their PIN.

use std::time::Duration;

use chrono::Utc;
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::{
    Collect, Collection, CollectionState, Initiated, ProviderError, Settings, StatusQuery,
    collection::whole_units,
    http::{Answer, Client, token_answer},
    tokens::TokenCache,
};

const MERCHANT_PAY: &str = "/mvola/mm/transactions/type/merchantpay/1.0.0";

pub struct Mvola {
    client: Client,
    base: String,
    consumer_key: String,
    consumer_secret: String,
    merchant_msisdn: String,
    partner_name: String,
    token_key: String,
}

/// A transaction as MVola's details endpoint describes it.
pub struct Details {
    pub amount: String,
    pub debit_msisdn: Option<String>,
    pub correlation_id: Option<String>,
}

impl Mvola {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let base = settings.base_url()?;
        let consumer_key = settings.required("consumerKey")?;
        let consumer_secret = settings.required("consumerSecret")?;
        Ok(Self {
            client,
            token_key: TokenCache::key("mvola", &base, &consumer_key, &consumer_secret),
            base,
            consumer_key,
            consumer_secret,
            merchant_msisdn: settings.required("merchantMsisdn")?,
            partner_name: settings.required("partnerName")?,
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), ProviderError> {
        let request = self
            .client
            .http
            .post(format!("{}/token", self.base))
            .basic_auth(&self.consumer_key, Some(&self.consumer_secret))
            .header("Cache-Control", "no-cache")
            .form(&[("grant_type", "client_credentials"), ("scope", "EXT_INT_MVOLA_SCOPE")]);
        token_answer(self.client.send(request).await?, Duration::from_secs(3600))
    }

    /// The headers MVola requires on every Merchant Pay call. `correlation_id` is ours to
    /// choose; the initiation uses the payment reference so that the callback, which echoes it,
    /// names the payment.
    fn headers(&self, request: RequestBuilder, token: &str, correlation_id: &str) -> RequestBuilder {
        request
            .bearer_auth(token)
            .header("Version", "1.0")
            .header("X-CorrelationID", correlation_id)
            .header("Cache-Control", "no-cache")
            .header("UserAccountIdentifier", format!("msisdn;{}", self.merchant_msisdn))
            .header("partnerName", &self.partner_name)
            .header("UserLanguage", "FR")
    }

    async fn get(&self, path: &str) -> Result<Answer, ProviderError> {
        let url = format!("{}{MERCHANT_PAY}/{path}", self.base);
        let correlation_id = ulid::Ulid::new().to_string();
        self.client
            .authorized(
                &self.token_key,
                || self.fetch_token(),
                |token| self.client.send(self.headers(self.client.http.get(&url), &token, &correlation_id)),
            )
            .await
    }

    /// What MVola records about a settled transaction, to check that a transaction a callback
    /// names really is the payment it claims to be.
    pub async fn details(&self, transaction_reference: &str) -> Result<Details, ProviderError> {
        let answer = self.get(transaction_reference).await?;
        match answer.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(ProviderError::NotFound),
            _ => return Err(failure(&answer)),
        }
        let party = |value: &Value| {
            value.as_array()?.iter().find(|p| p["key"] == "msisdn")?["value"].as_str().map(str::to_owned)
        };
        let correlation_id = answer.body["metadata"]
            .as_array()
            .and_then(|items| items.iter().find(|m| m["key"] == "XCorrelationId"))
            .and_then(|m| m["value"].as_str())
            .map(str::to_owned);
        Ok(Details {
            amount: answer.str("/amount").unwrap_or_default().to_owned(),
            debit_msisdn: party(&answer.body["debitParty"]),
            correlation_id,
        })
    }

    /// Confirms a transaction only a callback told us about (our initiation's answer was
    /// lost): it counts only if MVola reports it completed for this payment's amount, customer
    /// and reference.
    pub async fn confirm_hint(
        &self,
        server_correlation_id: &str,
        query: &StatusQuery<'_>,
    ) -> Result<CollectionState, ProviderError> {
        let state = self.status(&StatusQuery { handle: server_correlation_id, ..*query }).await?;
        let CollectionState::Completed { transaction_id: Some(reference) } = &state else {
            return Ok(state);
        };
        let details = self.details(reference).await?;
        let matches = details.amount == whole_units(query.amount_minor)?.to_string()
            && details.debit_msisdn.as_deref() == Some(query.msisdn)
            && details.correlation_id.as_deref() == Some(query.reference);
        if matches {
            Ok(state)
        } else {
            Err(ProviderError::Rejected {
                code: "mismatch".to_owned(),
                message: "the transaction named by the callback is not this payment".to_owned(),
            })
        }
    }
}

impl Collect for Mvola {
    async fn initiate(&self, collection: &Collection<'_>) -> Result<Initiated, ProviderError> {
        let body = json!({
            "amount": whole_units(collection.amount_minor)?.to_string(),
            "currency": "Ar",
            "descriptionText": description(collection.description),
            "requestingOrganisationTransactionReference": collection.reference,
            "requestDate": Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
            "originalTransactionReference": "",
            "debitParty": [{ "key": "msisdn", "value": collection.msisdn }],
            "creditParty": [{ "key": "msisdn", "value": self.merchant_msisdn }],
            "metadata": [
                { "key": "partnerName", "value": self.partner_name },
                { "key": "fc", "value": "USD" },
                { "key": "amountFc", "value": "1" },
            ],
        });
        let url = format!("{}{MERCHANT_PAY}/", self.base);
        let answer = self
            .client
            .authorized(
                &self.token_key,
                || self.fetch_token(),
                |token| {
                    let mut request = self.headers(self.client.http.post(&url), &token, collection.reference);
                    if let Some(callback) = collection.callback_url {
                        request = request.header("X-Callback-URL", callback);
                    }
                    self.client.send(request.json(&body))
                },
            )
            .await?;
        match answer.status {
            StatusCode::OK | StatusCode::ACCEPTED => {
                let handle =
                    answer.str("/serverCorrelationId").ok_or_else(|| answer.unexpected())?.to_owned();
                Ok(Initiated {
                    handle,
                    data: json!({ "notificationMethod": answer.str("/notificationMethod") }),
                    checkout_url: None,
                    state: state_of(&answer, "/status", "/objectReference")?,
                })
            }
            StatusCode::CONFLICT => Err(ProviderError::Duplicate(error_message(&answer))),
            _ => Err(failure(&answer)),
        }
    }

    async fn status(&self, query: &StatusQuery<'_>) -> Result<CollectionState, ProviderError> {
        let answer = self.get(&format!("status/{}", query.handle)).await?;
        match answer.status {
            StatusCode::OK | StatusCode::ACCEPTED => state_of(&answer, "/status", "/objectReference"),
            StatusCode::NOT_FOUND => Err(ProviderError::NotFound),
            _ => Err(failure(&answer)),
        }
    }
}

/// MVola's description: at most 50 characters, letters, digits and spaces only.
fn description(text: Option<&str>) -> String {
    let cleaned: String = text
        .unwrap_or("Payment")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == ' ')
        .take(50)
        .collect();
    if cleaned.trim().is_empty() { "Payment".to_owned() } else { cleaned }
}

/// Reads a status: the poll endpoint says `status`/`objectReference`, the callback and details
/// say `transactionStatus`/`transactionReference`.
fn state_of(answer: &Answer, status: &str, reference: &str) -> Result<CollectionState, ProviderError> {
    match answer.str(status) {
        Some("pending") => Ok(CollectionState::Pending),
        Some("completed") => Ok(CollectionState::Completed {
            transaction_id: answer.str(reference).filter(|r| !r.is_empty()).map(str::to_owned),
        }),
        Some("failed") => Ok(CollectionState::Failed { reason: "declined by MVola".to_owned() }),
        _ => Err(answer.unexpected()),
    }
}

fn error_message(answer: &Answer) -> String {
    answer
        .str("/ErrorDescription")
        .or_else(|| answer.str("/errorDescription"))
        .or_else(|| answer.str("/fault/message"))
        .unwrap_or("no description")
        .to_owned()
}

/// A non-success answer: 401 is our credentials, 429/5xx the provider's trouble, other 4xx a
/// refusal of this request.
fn failure(answer: &Answer) -> ProviderError {
    if answer.is_unavailable() {
        return answer.unavailable();
    }
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        return ProviderError::Credentials(error_message(answer));
    }
    if answer.status.is_client_error() {
        let code = answer
            .str("/ErrorCode")
            .or_else(|| answer.str("/errorCode"))
            .map_or_else(|| answer.status.as_u16().to_string(), str::to_owned);
        return ProviderError::Rejected { code, message: error_message(answer) };
    }
    answer.unexpected()
}
