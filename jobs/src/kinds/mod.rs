//! Every job kind, one module per area.

pub mod diagnostics;
pub mod maintenance;

use crate::registry::Registry;

pub fn register_all(registry: &mut Registry) {
    registry.register::<maintenance::PurgeIdempotencyKeys>();
    registry.register::<maintenance::ExpireTokens>();
    registry.register::<maintenance::PurgeFinishedJobs>();
    registry.register::<diagnostics::Probe>();
}
