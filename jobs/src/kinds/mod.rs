//! Every job kind, one module per area.

pub mod diagnostics;
pub mod maintenance;
pub mod payments;

use crate::registry::Registry;

pub fn register_all(registry: &mut Registry) {
    registry.register::<maintenance::PurgeIdempotencyKeys>();
    registry.register::<maintenance::ExpireTokens>();
    registry.register::<maintenance::PurgeFinishedJobs>();
    registry.register::<diagnostics::Probe>();
    registry.register::<payments::CollectPayment>();
    registry.register::<payments::ExpirePayments>();
}
