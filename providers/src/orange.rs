//! Orange Money WebPay: a redirect flow. Ultra creates an order, the customer pays on
//! Orange's page (`payment_url`), Orange notifies `notif_url`, and the order's status is
//! confirmed with `transactionstatus`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    Collect, Collection, CollectionState, Initiated, ProviderError, Settings, StatusQuery,
    collection::whole_units,
    http::{Answer, Client, token_answer},
    tokens::TokenCache,
};

pub struct Orange {
    client: Client,
    base: String,
    client_id: String,
    client_secret: String,
    merchant_key: String,
    segment: String,
    currency: String,
    return_url: Option<String>,
    cancel_url: Option<String>,
    token_key: String,
}

impl Orange {
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let base = settings.base_url()?;
        let client_id = settings.required("clientId")?;
        let client_secret = settings.required("clientSecret")?;
        Ok(Self {
            client,
            token_key: TokenCache::key("orange", &base, &client_id, &client_secret),
            base,
            client_id,
            client_secret,
            merchant_key: settings.required("merchantKey")?,
            segment: settings.required("countrySegment")?,
            currency: settings.required("currency")?,
            return_url: settings.optional("returnUrl"),
            cancel_url: settings.optional("cancelUrl"),
        })
    }

    async fn fetch_token(&self) -> Result<(String, Duration), ProviderError> {
        let request = self
            .client
            .http
            .post(format!("{}/oauth/v3/token", self.base))
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .header("Accept", "application/json")
            .form(&[("grant_type", "client_credentials")]);
        token_answer(self.client.send(request).await?, Duration::from_secs(7_776_000))
    }

    async fn post(&self, operation: &str, body: &Value) -> Result<Answer, ProviderError> {
        let url = format!("{}/orange-money-webpay/{}/v1/{operation}", self.base, self.segment);
        self.client
            .authorized(
                &self.token_key,
                || self.fetch_token(),
                |token| {
                    self.client.send(
                        self.client
                            .http
                            .post(&url)
                            .bearer_auth(token)
                            .header("Accept", "application/json")
                            .json(body),
                    )
                },
            )
            .await
    }
}

impl Collect for Orange {
    async fn initiate(&self, collection: &Collection<'_>) -> Result<Initiated, ProviderError> {
        let notif_url = collection
            .callback_url
            .ok_or_else(|| ProviderError::Configuration("Orange needs a notification URL".to_owned()))?;
        let return_url = self.return_url.as_deref().or(collection.return_url).unwrap_or(notif_url);
        let cancel_url = self.cancel_url.as_deref().unwrap_or(return_url);
        let label: String = collection.description.unwrap_or("Payment").chars().take(30).collect();
        let body = json!({
            "merchant_key": self.merchant_key,
            "currency": self.currency,
            "order_id": collection.order_id,
            "amount": whole_units(collection.amount_minor)?,
            "return_url": return_url,
            "cancel_url": cancel_url,
            "notif_url": notif_url,
            "lang": "fr",
            "reference": label,
        });
        let answer = self.post("webpayment", &body).await?;
        if !answer.status.is_success() {
            return Err(failure(&answer));
        }
        let field = |name: &str| {
            answer.str(&format!("/{name}")).map(str::to_owned).ok_or_else(|| answer.unexpected())
        };
        Ok(Initiated {
            handle: field("pay_token")?,
            data: json!({ "orderId": collection.order_id, "notifToken": field("notif_token")? }),
            checkout_url: Some(field("payment_url")?),
            state: CollectionState::Pending,
        })
    }

    async fn status(&self, query: &StatusQuery<'_>) -> Result<CollectionState, ProviderError> {
        let order_id =
            query.data.get("orderId").and_then(Value::as_str).ok_or_else(|| {
                ProviderError::Configuration("the payment has no Orange order id".to_owned())
            })?;
        let body = json!({
            "order_id": order_id,
            "amount": whole_units(query.amount_minor)?,
            "pay_token": query.handle,
        });
        let answer = self.post("transactionstatus", &body).await?;
        if !answer.status.is_success() {
            return Err(failure(&answer));
        }
        match answer.str("/status") {
            Some("INITIATED" | "PENDING") => Ok(CollectionState::Pending),
            Some("SUCCESS") => {
                Ok(CollectionState::Completed { transaction_id: answer.str("/txnid").map(str::to_owned) })
            }
            Some("FAILED") => Ok(CollectionState::Failed { reason: "declined by Orange Money".to_owned() }),
            Some("EXPIRED") => Ok(CollectionState::Expired),
            _ => Err(answer.unexpected()),
        }
    }
}

fn failure(answer: &Answer) -> ProviderError {
    if answer.is_unavailable() {
        return answer.unavailable();
    }
    let message =
        answer.str("/description").or_else(|| answer.str("/message")).unwrap_or("request refused").to_owned();
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        return ProviderError::Credentials(message);
    }
    if answer.status.is_client_error() {
        let code =
            answer.body.get("code").map_or_else(|| answer.status.as_u16().to_string(), Value::to_string);
        return ProviderError::Rejected { code, message };
    }
    answer.unexpected()
}
