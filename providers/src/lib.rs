//! One HTTP adapter per payment provider, behind one trait per capability: [`Collect`] takes
//! money from a customer, [`Refund`] gives it back, [`Payout`] sends a merchant's money out,
//! [`Purchase`] buys airtime, data and bills for a wallet owner and [`Fund`] lets one top up
//! their wallet by bank transfer. Only workers call these; the API never does.
//!
//! An adapter is built per call from the provider configuration that applies (the merchant's
//! own, else the global one) with [`Providers::adapter`]; what outlives a call (the HTTP client
//! and the OAuth tokens) lives in [`Providers`]. In simulation mode the [`Simulation`] adapter
//! decides outcomes in-process, without HTTP.

mod airtel;
mod bank;
mod collection;
mod error;
mod funding;
mod http;
mod mpesa;
mod mvola;
mod onepipe;
mod orange;
mod payout;
mod purchase;
mod refund;
mod settings;
mod simulation;
mod social;
mod tokens;
mod vtpass;

use std::{sync::Arc, time::Duration};

pub use airtel::Airtel;
pub use bank::Bank;
pub use collection::{Collect, Collection, CollectionState, Earlier, Initiated, StatusQuery};
pub use error::ProviderError;
pub use funding::{Fund, FundingOrder, FundingState, VirtualAccount};
pub use mpesa::Mpesa;
pub use mvola::Mvola;
pub use onepipe::Onepipe;
pub use orange::Orange;
pub use payout::{Payout, PayoutOrder, PayoutState};
pub use purchase::{BillerCheck, Purchase, PurchaseOrder, PurchaseState, Verification};
pub use refund::{Refund, RefundRequest, RefundState};
pub use settings::Settings;
pub use simulation::Simulation;
pub use social::{
    AccountKind, AccountTokens, Connected, Exchange, Meta, Platform, PostContent, Publication, SocialAdapter,
    Target, Tiktok, Transcript, authorize_url,
};
use tokens::TokenCache;
pub use ultra_outbound::Reach;
pub use vtpass::{Vtpass, vtpass_request_id};

/// What every adapter shares across calls: one connection pool, the tokens it was given and
/// the addresses it may reach.
#[derive(Clone)]
pub struct Providers {
    http: reqwest::Client,
    tokens: Arc<TokenCache>,
    reach: Reach,
}

impl Providers {
    /// `timeout` bounds each HTTP request; a provider slower than that is treated as down
    /// and the job retries, asking first what became of the request that timed out. `reach`
    /// is where calls may go: merchants choose the hosts, so [`Reach::Public`] unless the
    /// operator allowed private provider URLs.
    pub fn new(timeout: Duration, reach: Reach) -> Self {
        let http = reach
            .client_builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .user_agent(concat!("ultra/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("the TLS backend initialises");
        Self { http, tokens: Arc::new(TokenCache::default()), reach }
    }

    fn client(&self) -> http::Client {
        http::Client { http: self.http.clone(), tokens: Arc::clone(&self.tokens), reach: self.reach }
    }

    /// The live adapter for `provider` with these settings, or `None` for a provider this
    /// crate does not know.
    pub fn adapter(&self, provider: &str, settings: Settings) -> Result<Adapter, ProviderError> {
        let client = self.client();
        Ok(match provider {
            "mvola" => Adapter::Mvola(Mvola::new(client, &settings)?),
            "airtel" => Adapter::Airtel(Airtel::new(client, &settings)?),
            "orange" => Adapter::Orange(Orange::new(client, &settings)?),
            "mpesa" => Adapter::Mpesa(Mpesa::new(client, &settings)?),
            "bank" => Adapter::Bank(Bank::new(client, &settings)?),
            "vtpass" => Adapter::Vtpass(Vtpass::new(client, &settings)?),
            "onepipe" => Adapter::Onepipe(Onepipe::new(client, &settings)?),
            other => return Err(ProviderError::Configuration(format!("unknown provider {other}"))),
        })
    }

    /// The adapter that publishes to `platform` with these settings, sharing the connection pool.
    pub fn social(&self, platform: Platform, settings: Settings) -> Result<SocialAdapter, ProviderError> {
        let client = self.client();
        Ok(match platform {
            Platform::Meta => SocialAdapter::Meta(Meta::new(client, &settings)?),
            Platform::Tiktok => SocialAdapter::Tiktok(Tiktok::new(client, &settings)?),
        })
    }
}

/// A provider adapter of either mode, so a job can hold one without caring which.
pub enum Adapter {
    Simulation(Simulation),
    Mvola(Mvola),
    Airtel(Airtel),
    Orange(Orange),
    Mpesa(Mpesa),
    Bank(Bank),
    Vtpass(Vtpass),
    Onepipe(Onepipe),
}

impl Adapter {
    pub async fn initiate(&self, collection: &Collection<'_>) -> Result<Initiated, ProviderError> {
        match self {
            Self::Simulation(a) => a.initiate(collection).await,
            Self::Mvola(a) => a.initiate(collection).await,
            Self::Airtel(a) => a.initiate(collection).await,
            Self::Orange(a) => a.initiate(collection).await,
            Self::Mpesa(a) => a.initiate(collection).await,
            Self::Bank(_) | Self::Vtpass(_) | Self::Onepipe(_) => Err(self.cannot("take payments")),
        }
    }

    pub async fn status(&self, query: &StatusQuery<'_>) -> Result<CollectionState, ProviderError> {
        match self {
            Self::Simulation(a) => Collect::status(a, query).await,
            Self::Mvola(a) => a.status(query).await,
            Self::Airtel(a) => a.status(query).await,
            Self::Orange(a) => a.status(query).await,
            Self::Mpesa(a) => a.status(query).await,
            Self::Bank(_) | Self::Vtpass(_) | Self::Onepipe(_) => Err(self.cannot("take payments")),
        }
    }

    /// What became of an initiation whose answer was lost ([`Earlier`]). Airtel is asked by our
    /// reference, its `transaction.id` (its enquiry takes the id we chose). MVola's status and
    /// details resources take only its own ids (`serverCorrelationId`, `transactionReference`),
    /// so MVola can be asked only by sending the same `requestingOrganisationTransactionReference`
    /// again. Daraja's STK query takes only its `CheckoutRequestID`, and a second push is a
    /// second charge, so M-Pesa cannot be asked at all. Orange's customer pays only on the
    /// `payment_url` of an answer, so an order whose answer was lost cannot have been paid.
    pub async fn find_earlier(&self, collection: &Collection<'_>) -> Result<Earlier, ProviderError> {
        match self {
            Self::Airtel(airtel) => {
                let query = StatusQuery {
                    handle: collection.reference,
                    reference: collection.reference,
                    data: &serde_json::Value::Null,
                    amount_minor: collection.amount_minor,
                    msisdn: collection.msisdn,
                };
                match airtel.status(&query).await {
                    Ok(state) => Ok(Earlier::Found(Initiated {
                        handle: collection.reference.to_owned(),
                        data: serde_json::json!({}),
                        checkout_url: None,
                        state,
                    })),
                    Err(ProviderError::NotFound) => Ok(Earlier::Absent),
                    Err(err) => Err(err),
                }
            }
            Self::Mvola(_) => Ok(Earlier::AskByResending),
            Self::Mpesa(_) => Ok(Earlier::Unknowable),
            Self::Simulation(_) | Self::Orange(_) => Ok(Earlier::Absent),
            Self::Bank(_) | Self::Vtpass(_) | Self::Onepipe(_) => Err(self.cannot("take payments")),
        }
    }

    /// Confirms a transaction only a callback named, for providers whose handle comes back
    /// only in the initiation's answer (MVola, M-Pesa) when that answer was lost.
    pub async fn confirm_hint(
        &self,
        handle: &str,
        query: &StatusQuery<'_>,
    ) -> Result<CollectionState, ProviderError> {
        match self {
            Self::Mvola(mvola) => mvola.confirm_hint(handle, query).await,
            Self::Mpesa(mpesa) => mpesa.confirm_hint(handle).await,
            _ => Err(ProviderError::Unsupported(
                "this provider's callbacks carry no handle to adopt".to_owned(),
            )),
        }
    }

    /// Refunds through the provider's API; `Unsupported` for providers without one.
    pub async fn refund(&self, request: &RefundRequest<'_>) -> Result<RefundState, ProviderError> {
        match self {
            Self::Airtel(a) => a.refund(request).await,
            _ => Err(self.no_refunds()),
        }
    }

    pub async fn refund_status(&self, request: &RefundRequest<'_>) -> Result<RefundState, ProviderError> {
        match self {
            Self::Airtel(a) => a.refund_status(request).await,
            _ => Err(self.no_refunds()),
        }
    }

    /// Sends a payout through the rail; `Unsupported` for providers that only collect.
    pub async fn send_payout(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        match self {
            Self::Simulation(a) => a.send(order).await,
            Self::Mpesa(a) => a.send(order).await,
            Self::Bank(a) => a.send(order).await,
            _ => Err(self.cannot("send payouts")),
        }
    }

    pub async fn payout_status(&self, order: &PayoutOrder<'_>) -> Result<PayoutState, ProviderError> {
        match self {
            Self::Simulation(a) => a.payout_status(order).await,
            Self::Mpesa(a) => a.payout_status(order).await,
            Self::Bank(a) => a.payout_status(order).await,
            _ => Err(self.cannot("send payouts")),
        }
    }

    /// Checks a smartcard or meter number before selling to it.
    pub async fn verify_biller(&self, check: &BillerCheck<'_>) -> Result<Verification, ProviderError> {
        match self {
            Self::Simulation(a) => a.verify(check).await,
            Self::Vtpass(a) => a.verify(check).await,
            _ => Err(self.cannot("sell airtime, data or bills")),
        }
    }

    pub async fn purchase(&self, order: &PurchaseOrder<'_>) -> Result<PurchaseState, ProviderError> {
        match self {
            Self::Simulation(a) => a.purchase(order).await,
            Self::Vtpass(a) => a.purchase(order).await,
            _ => Err(self.cannot("sell airtime, data or bills")),
        }
    }

    pub async fn requery_purchase(&self, request_id: &str) -> Result<PurchaseState, ProviderError> {
        match self {
            Self::Simulation(a) => a.requery(request_id).await,
            Self::Vtpass(a) => a.requery(request_id).await,
            _ => Err(self.cannot("sell airtime, data or bills")),
        }
    }

    /// Opens the account a wallet owner transfers to; sending the same order again answers with
    /// the same invoice.
    pub async fn open_funding(&self, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
        match self {
            Self::Simulation(a) => a.open(order).await,
            Self::Onepipe(a) => a.open(order).await,
            _ => Err(self.cannot("fund wallets")),
        }
    }

    pub async fn funding_status(&self, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
        match self {
            Self::Simulation(a) => Fund::status(a, order).await,
            Self::Onepipe(a) => a.status(order).await,
            _ => Err(self.cannot("fund wallets")),
        }
    }

    fn no_refunds(&self) -> ProviderError {
        ProviderError::Unsupported(format!("{} has no refund API", self.name()))
    }

    fn cannot(&self, what: &str) -> ProviderError {
        ProviderError::Unsupported(format!("{} does not {what}", self.name()))
    }

    fn name(&self) -> &'static str {
        match self {
            Self::Simulation(_) => "simulation",
            Self::Mvola(_) => "mvola",
            Self::Airtel(_) => "airtel",
            Self::Orange(_) => "orange",
            Self::Mpesa(_) => "mpesa",
            Self::Bank(_) => "bank",
            Self::Vtpass(_) => "vtpass",
            Self::Onepipe(_) => "onepipe",
        }
    }
}
