//! Every job kind, one module per area.

pub mod adapters;
pub mod diagnostics;
pub mod exports;
pub mod held;
pub mod maintenance;
pub mod maxtera;
pub mod payment_links;
pub mod payments;
pub mod payouts;
pub mod refunds;
pub mod social;
pub mod subscriptions;
pub mod webhooks;

use chrono::Duration as TimeDelta;

use crate::registry::Registry;

/// Seconds before the n-th scheduled status query of a payment or payout: often at first, when
/// most customers confirm and most transfers settle, then once a minute (MVola asks for no
/// more than one poll every 3 seconds).
fn poll_delay(round: u32) -> TimeDelta {
    const DELAYS: [i64; 6] = [3, 5, 10, 15, 30, 60];
    TimeDelta::seconds(DELAYS[(round.saturating_sub(1) as usize).min(DELAYS.len() - 1)])
}

pub fn register_all(registry: &mut Registry) {
    registry.register::<maintenance::PurgeIdempotencyKeys>();
    registry.register::<maintenance::ExpireTokens>();
    registry.register::<maintenance::PurgeFinishedJobs>();
    registry.register::<maintenance::PurgeExpiredExports>();
    registry.register::<diagnostics::Probe>();
    registry.register::<exports::BuildExport>();
    registry.register::<payments::CollectPayment>();
    registry.register::<payments::CheckPayment>();
    registry.register::<payments::ExpirePayments>();
    registry.register::<payment_links::ExpirePaymentLinks>();
    registry.register::<refunds::ProcessRefund>();
    registry.register::<refunds::CheckRefund>();
    registry.register::<refunds::PollRefunds>();
    registry.register::<webhooks::DrainEndpoint>();
    registry.register::<payouts::SendPayout>();
    registry.register::<payouts::CheckPayout>();
    registry.register::<maxtera::BuyVtu>();
    registry.register::<maxtera::CheckVtu>();
    registry.register::<maxtera::OpenFunding>();
    registry.register::<maxtera::CheckFunding>();
    registry.register::<subscriptions::RenewSubscription>();
    registry.register::<subscriptions::RenewDueSubscriptions>();
    registry.register::<social::ConnectAccounts>();
    registry.register::<social::PublishPost>();
    registry.register::<social::PublishDuePosts>();
    registry.register::<social::RefreshAccount>();
    registry.register::<social::RefreshDueAccounts>();
    registry.register::<social::RevokeAccount>();
}
