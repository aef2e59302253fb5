//! Every job kind, one module per area.

mod adapters;
pub mod diagnostics;
pub mod maintenance;
pub mod payments;
pub mod payouts;
pub mod refunds;
pub mod webhooks;

use crate::registry::Registry;

pub fn register_all(registry: &mut Registry) {
    registry.register::<maintenance::PurgeIdempotencyKeys>();
    registry.register::<maintenance::ExpireTokens>();
    registry.register::<maintenance::PurgeFinishedJobs>();
    registry.register::<diagnostics::Probe>();
    registry.register::<payments::CollectPayment>();
    registry.register::<payments::CheckPayment>();
    registry.register::<payments::ExpirePayments>();
    registry.register::<refunds::ProcessRefund>();
    registry.register::<refunds::CheckRefund>();
    registry.register::<refunds::PollRefunds>();
    registry.register::<webhooks::DrainEndpoint>();
    registry.register::<payouts::SendPayout>();
    registry.register::<payouts::CheckPayout>();
}
