//! The Kenyan bank-transfer rail (providers.md §7): a PesaLink-style API with OAuth client
//! credentials, a transfer keyed by our reference (sending it again returns the same transfer),
//! a status query by that reference and an unsigned callback.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    Payout, PayoutOrder, PayoutState, ProviderError, Settings,
    http::{Answer, Client, token_answer},
    tokens::TokenCache,
};

pub struct Bank {
    client: Client,
    base: String,
    client_id: String,
    client_secret: String,
    token_key: String,
}

impl Bank {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let base = settings.base_url()?;
        let client_id = settings.required("clientId")?;
        let client_secret = settings.required("clientSecret")?;
        Ok(Self {
            client,
            token_key: TokenCache::key("bank", &base, &client_id, &client_secret),
            base,
            client_id,
            client_secret,
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), ProviderError> {
        let request = self
            .client
            .http
            .post(format!("{}/bank/oauth/token", self.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&[("grant_type", "client_credentials")]);
        token_answer(self.client.send(request).await?, Duration::from_secs(3600))
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
                    let mut request = self.client.http.request(method.clone(), &url).bearer_auth(token);
                    if let Some(body) = body {
                        request = request.json(body);
                    }
                    self.client.send(request)
                },
            )
            .await
    }
}

/// A transfer as the rail shows it, in our words.
fn state_of(answer: &Answer) -> Result<PayoutState, ProviderError> {
    match answer.str("/status") {
        Some("PENDING" | "PROCESSING") => {
            Ok(PayoutState::Processing { handle: answer.str("/transfer_id").map(str::to_owned) })
        }
        Some("COMPLETED") => {
            Ok(PayoutState::Completed { receipt: answer.str("/rail_reference").map(str::to_owned) })
        }
        Some("FAILED") => Ok(PayoutState::Failed {
            reason: answer
                .str("/failure_reason/message")
                .unwrap_or("the bank refused the transfer")
                .to_owned(),
        }),
        _ => Err(answer.unexpected()),
    }
}

fn refusal(answer: &Answer) -> ProviderError {
    if answer.is_unavailable() {
        return answer.unavailable();
    }
    let code = answer.str("/error/code").unwrap_or("refused").to_owned();
    let message = answer.str("/error/message").unwrap_or("the rail refused the transfer").to_owned();
    match answer.status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ProviderError::Credentials(message),
        StatusCode::NOT_FOUND => ProviderError::NotFound,
        status if status.is_client_error() => ProviderError::Rejected { code, message },
        _ => answer.unexpected(),
    }
}

fn shillings(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

impl Payout for Bank {
    async fn send(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        let missing = |field: &str| ProviderError::Configuration(format!("a bank payout needs {field}"));
        let body = json!({
            "reference": order.reference,
            "amount": shillings(order.amount_minor),
            "currency": order.currency,
            "bank_code": order.bank_code.ok_or_else(|| missing("bank_code"))?,
            "account_number": order.account_number.ok_or_else(|| missing("account_number"))?,
            "account_name": order.account_name.ok_or_else(|| missing("account_name"))?,
            "narration": order.narrative.unwrap_or_default(),
            "callback_url": order.result_url,
        });
        let answer = self.call(reqwest::Method::POST, "/bank/v1/transfers", Some(&body)).await?;
        if answer.status.is_success() { state_of(&answer) } else { Err(refusal(&answer)) }
    }

    async fn payout_status(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        let path = format!("/bank/v1/transfers/{}", order.reference);
        let answer = self.call(reqwest::Method::GET, &path, None).await?;
        if answer.status.is_success() { state_of(&answer) } else { Err(refusal(&answer)) }
    }
}
