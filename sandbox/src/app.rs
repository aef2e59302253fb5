use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::{
    airtel::UssdPush,
    bank::BankTransfer,
    config::SandboxConfig,
    ledger::Ledger,
    meta::Graph,
    mpesa::{B2cPayment, StkPush},
    mvola::MerchantPay,
    onepipe::{Invoice, Registry},
    orange::WebPayment,
    tiktok::Creator,
    tokens::Tokens,
    vtpass::VtpassPurchase,
};

/// Everything the simulators share. Locks are never held across an `.await`, so plain mutexes
/// suffice; a panic while holding one leaves data that is still consistent enough for a sandbox.
pub struct App {
    pub config: SandboxConfig,
    pub http: reqwest::Client,
    tokens: Mutex<Tokens>,
    mvola: Mutex<Ledger<MerchantPay>>,
    airtel: Mutex<Ledger<UssdPush>>,
    orange: Mutex<Ledger<WebPayment>>,
    mpesa: Mutex<Ledger<StkPush>>,
    mpesa_b2c: Mutex<Ledger<B2cPayment>>,
    bank: Mutex<Ledger<BankTransfer>>,
    vtpass: Mutex<Ledger<VtpassPurchase>>,
    onepipe: Mutex<Ledger<Invoice>>,
    onepipe_registry: Mutex<Registry>,
    meta: Mutex<Graph>,
    tiktok: Mutex<Creator>,
}

impl App {
    pub fn new(config: SandboxConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            http: reqwest::Client::new(),
            tokens: Mutex::default(),
            mvola: Mutex::default(),
            airtel: Mutex::default(),
            orange: Mutex::default(),
            mpesa: Mutex::default(),
            mpesa_b2c: Mutex::default(),
            bank: Mutex::default(),
            vtpass: Mutex::default(),
            onepipe: Mutex::default(),
            onepipe_registry: Mutex::default(),
            meta: Mutex::default(),
            tiktok: Mutex::default(),
        })
    }

    pub fn tokens(&self) -> MutexGuard<'_, Tokens> {
        lock(&self.tokens)
    }

    pub fn mvola(&self) -> MutexGuard<'_, Ledger<MerchantPay>> {
        lock(&self.mvola)
    }

    pub fn airtel(&self) -> MutexGuard<'_, Ledger<UssdPush>> {
        lock(&self.airtel)
    }

    pub fn orange(&self) -> MutexGuard<'_, Ledger<WebPayment>> {
        lock(&self.orange)
    }

    pub fn mpesa(&self) -> MutexGuard<'_, Ledger<StkPush>> {
        lock(&self.mpesa)
    }

    pub fn mpesa_b2c(&self) -> MutexGuard<'_, Ledger<B2cPayment>> {
        lock(&self.mpesa_b2c)
    }

    pub fn bank(&self) -> MutexGuard<'_, Ledger<BankTransfer>> {
        lock(&self.bank)
    }

    pub fn vtpass(&self) -> MutexGuard<'_, Ledger<VtpassPurchase>> {
        lock(&self.vtpass)
    }

    pub fn onepipe(&self) -> MutexGuard<'_, Ledger<Invoice>> {
        lock(&self.onepipe)
    }

    /// Taken after the OnePipe ledger when both are needed, never before.
    pub fn onepipe_registry(&self) -> MutexGuard<'_, Registry> {
        lock(&self.onepipe_registry)
    }

    pub fn meta(&self) -> MutexGuard<'_, Graph> {
        lock(&self.meta)
    }

    pub fn tiktok(&self) -> MutexGuard<'_, Creator> {
        lock(&self.tiktok)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
