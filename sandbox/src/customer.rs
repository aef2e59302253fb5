//! The simulated customer: answers the payment prompt after the configured delay, the way a
//! person on a handset would, and the provider then notifies the merchant.

use std::sync::Arc;

use crate::{app::App, callbacks, ledger::Phase, outcome::Answer, provider::Provider};

/// Shows the payment prompt of the collection with provider handle `handle` to its customer.
/// The handle, not the merchant's reference, names it: Daraja lets a reference repeat.
pub fn prompt<P: Provider>(app: &Arc<App>, handle: &str) {
    let app = Arc::clone(app);
    let handle = handle.to_owned();
    tokio::spawn(async move {
        tokio::time::sleep(app.config.settle_delay).await;
        let callback = {
            let mut ledger = P::ledger(&app);
            let Some(collection) = ledger.by_handle(&handle) else { return };
            if collection.phase.is_final() {
                return;
            }
            collection.phase = match collection.outcome.answer() {
                Answer::Pays => Phase::Succeeded { receipt: P::receipt(collection) },
                Answer::Declines => Phase::Failed,
                Answer::Ignores => return,
            };
            tracing::info!(provider = P::NAME, reference = %collection.reference, %handle, status = P::status(&collection.phase), "customer answered");
            collection.outcome.notifies().then(|| P::notification(&app, collection)).flatten()
        };
        if let Some(callback) = callback {
            callbacks::deliver::<P>(app, handle, callback);
        }
    });
}
