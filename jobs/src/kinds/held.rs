//! Reporting money held as `unknown` for reconciliation: a payment, refund or payout that the
//! provider may have moved but cannot tell about.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

/// Whether an effect held something as `unknown`. An effect may run again before its group
/// commits ([`crate::completions`]), so it only sets this, and the job reports once
/// [`crate::JobContext::finish`] has returned.
#[derive(Clone, Default)]
pub struct Held(Arc<AtomicBool>);

impl Held {
    pub fn set(&self, held: bool) {
        self.0.store(held, Ordering::Relaxed);
    }

    /// Counts the hold in `money_held_unknown_total`, for operators to alert on, and logs it.
    pub fn report(&self, kind: &'static str, provider: String, id: &str) {
        if self.0.load(Ordering::Relaxed) {
            metrics::counter!("money_held_unknown_total", "kind" => kind, "provider" => provider)
                .increment(1);
            tracing::warn!(kind, id, "held as unknown, awaiting reconciliation");
        }
    }
}
