use std::sync::MutexGuard;

use serde_json::Value;

use crate::{
    app::App,
    callbacks::Callback,
    ledger::{Collection, Ledger, Phase},
};

/// What the shared machinery (the simulated customer, inspection) needs from each simulator.
/// Implemented by the type holding what only that provider keeps about a collection.
pub trait Provider: Sized + Send + 'static {
    const NAME: &'static str;

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>>;

    /// The provider's own word for a phase.
    fn status(phase: &Phase) -> &'static str;

    /// The provider's reference for a settled payment.
    fn receipt(collection: &Collection<Self>) -> String;

    /// The push telling the merchant about a final state, when the provider sends one.
    fn notification(app: &App, collection: &Collection<Self>) -> Option<Callback>;

    fn refunds(_collection: &Collection<Self>) -> Vec<Value> {
        Vec::new()
    }
}
