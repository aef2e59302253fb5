//! Airtel Money Africa Open API: collections by USSD push, enquiries and refunds.
//!
//! Airtel answers many failures with HTTP 200 and `status.success: false`, so every answer is
//! read from its body, not its status line.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};

use crate::{
    Collect, Collection, CollectionState, Initiated, ProviderError, Refund, RefundRequest, RefundState,
    Settings, StatusQuery,
    http::{Answer, Client, token_answer},
    tokens::TokenCache,
};

pub struct Airtel {
    client: Client,
    base: String,
    client_id: String,
    client_secret: String,
    country: String,
    currency: String,
    token_key: String,
}

/// Gateway codes meaning "we do not know what happened: enquire", per Airtel's code table.
const AMBIGUOUS: [&str; 4] = ["ESB000001", "ESB000004", "ROUTER117", "DP00800001000"];

impl Airtel {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let base = settings.base_url()?;
        let client_id = settings.required("clientId")?;
        let client_secret = settings.required("clientSecret")?;
        Ok(Self {
            client,
            token_key: TokenCache::key("airtel", &base, &client_id, &client_secret),
            base,
            client_id,
            client_secret,
            country: settings.required("country")?,
            currency: settings.required("currency")?,
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), ProviderError> {
        let request =
            self.client.http.post(format!("{}/auth/oauth2/token", self.base)).header("Accept", "*/*").json(
                &json!({
                    "client_id": self.client_id,
                    "client_secret": self.client_secret,
                    "grant_type": "client_credentials",
                }),
            );
        token_answer(self.client.send(request).await?, Duration::from_secs(180))
    }

    fn headers(&self, request: RequestBuilder, token: &str) -> RequestBuilder {
        request
            .bearer_auth(token)
            .header("Accept", "*/*")
            .header("X-Country", &self.country)
            .header("X-Currency", &self.currency)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Answer, ProviderError> {
        let url = format!("{}{path}", self.base);
        self.client
            .authorized(
                &self.token_key,
                || self.fetch_token(),
                |token| {
                    let mut request = self.headers(self.client.http.request(method.clone(), &url), &token);
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    self.client.send(request)
                },
            )
            .await
    }

    /// Refunds are whole-transaction only and Airtel documents no refund enquiry; a repeated
    /// refund of the same transaction reports its state instead of refunding again.
    async fn send_refund(&self, request: &RefundRequest<'_>) -> Result<RefundState, ProviderError> {
        let body = json!({ "transaction": { "airtel_money_id": request.transaction_id } });
        let answer = self.call(reqwest::Method::POST, "/standard/v1/payments/refund", Some(&body)).await?;
        check_http(&answer)?;
        if !succeeded(&answer) {
            return match failure_of(&answer) {
                ProviderError::Rejected { message, .. } => Ok(RefundState::Failed { reason: message }),
                other => Err(other),
            };
        }
        match answer.str("/data/transaction/status") {
            Some("SUCCESS" | "TS") => Ok(RefundState::Completed {
                refund_id: answer.str("/data/transaction/airtel_money_id").map(str::to_owned),
            }),
            Some("TIP" | "TA") => Ok(RefundState::Processing),
            Some("TF") => Ok(RefundState::Failed { reason: message_of(&answer) }),
            _ => Err(answer.unexpected()),
        }
    }
}

impl Collect for Airtel {
    async fn initiate(&self, collection: &Collection<'_>) -> Result<Initiated, ProviderError> {
        let amount = if collection.amount_minor % 100 == 0 {
            json!(collection.amount_minor / 100)
        } else {
            json!(collection.amount_minor as f64 / 100.0)
        };
        let body = json!({
            "reference": collection.reference,
            "subscriber": {
                "country": self.country,
                "currency": self.currency,
                "msisdn": collection.msisdn.trim_start_matches('0'),
            },
            "transaction": {
                "amount": amount,
                "country": self.country,
                "currency": self.currency,
                "id": collection.reference,
            },
        });
        let answer = self.call(reqwest::Method::POST, "/merchant/v1/payments/", Some(&body)).await?;
        check_http(&answer)?;
        if !succeeded(&answer) {
            return Err(failure_of(&answer));
        }
        Ok(Initiated {
            handle: collection.reference.to_owned(),
            data: json!({}),
            checkout_url: None,
            state: CollectionState::Pending,
        })
    }

    async fn status(&self, query: &StatusQuery<'_>) -> Result<CollectionState, ProviderError> {
        let answer =
            self.call(reqwest::Method::GET, &format!("/standard/v1/payments/{}", query.handle), None).await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Err(ProviderError::NotFound);
        }
        check_http(&answer)?;
        if !succeeded(&answer) {
            let not_found = answer.str("/status/result_code") == Some("ESB000045")
                || answer.str("/status/response_code") == Some("DP00800001025");
            return Err(if not_found { ProviderError::NotFound } else { failure_of(&answer) });
        }
        match answer.str("/data/transaction/status") {
            Some("TS") => Ok(CollectionState::Completed {
                transaction_id: answer.str("/data/transaction/airtel_money_id").map(str::to_owned),
            }),
            Some("TF") => Ok(CollectionState::Failed { reason: message_of(&answer) }),
            Some("TE") => Ok(CollectionState::Expired),
            Some("TIP" | "TA") => Ok(CollectionState::Pending),
            _ => Err(answer.unexpected()),
        }
    }
}

impl Refund for Airtel {
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<RefundState, ProviderError> {
        self.send_refund(request).await
    }

    async fn refund_status(&self, request: &RefundRequest<'_>) -> Result<RefundState, ProviderError> {
        self.send_refund(request).await
    }
}

fn succeeded(answer: &Answer) -> bool {
    answer.body.pointer("/status/success").and_then(Value::as_bool) == Some(true)
}

fn message_of(answer: &Answer) -> String {
    answer
        .str("/data/transaction/message")
        .or_else(|| answer.str("/status/message"))
        .unwrap_or("no message")
        .to_owned()
}

/// HTTP-level trouble, before the body's own status is read.
fn check_http(answer: &Answer) -> Result<(), ProviderError> {
    if answer.is_unavailable() {
        return Err(answer.unavailable());
    }
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        let reason = answer.str("/error_description").or_else(|| answer.str("/error")).unwrap_or("refused");
        return Err(ProviderError::Credentials(reason.to_owned()));
    }
    if answer.status.is_client_error() {
        let code = answer.str("/status_code").unwrap_or("400").to_owned();
        let message = answer.str("/status_message").unwrap_or("request refused").to_owned();
        return Err(ProviderError::Rejected { code, message });
    }
    if !answer.status.is_success() {
        return Err(answer.unexpected());
    }
    Ok(())
}

/// A body that says `success: false`.
fn failure_of(answer: &Answer) -> ProviderError {
    let result_code = answer.str("/status/result_code").unwrap_or_default();
    let response_code = answer.str("/status/response_code").unwrap_or_default();
    if result_code == "ESB000041" {
        return ProviderError::Duplicate(message_of(answer));
    }
    if AMBIGUOUS.contains(&result_code) || AMBIGUOUS.contains(&response_code) {
        return ProviderError::Unavailable(format!("ambiguous answer {result_code}: enquire later"));
    }
    let code = if response_code.is_empty() { result_code } else { response_code };
    ProviderError::Rejected { code: code.to_owned(), message: message_of(answer) }
}
