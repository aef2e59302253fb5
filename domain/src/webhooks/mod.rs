//! Webhooks: merchants' endpoints, one delivery per event and subscribed endpoint, the lanes
//! that send each endpoint's deliveries, and the signature receivers check.

pub mod deliveries;
pub mod endpoints;
pub mod lanes;
pub mod signature;

use serde_json::json;
use ultra_entity::events;

/// The PostgreSQL channel notified, on commit, when deliveries become due, so the dispatcher
/// starts their lane at once instead of at its next round.
pub const DUE_CHANNEL: &str = "ultra_webhooks_due";

/// The events an endpoint can subscribe to, as the merchant API names them: the seed's five,
/// and `payment.unknown`, so a merchant learns at once of a payment held for reconciliation.
pub const EVENT_TYPES: [&str; 6] = [
    "payment.completed",
    "payment.failed",
    "payment.refunded",
    "subscription.renewed",
    "payment_link.paid",
    "payment.unknown",
];

/// The JSON body every attempt of a delivery sends. It is built from the stored event alone,
/// so every attempt, retry and replay of an event sends the same bytes under the same
/// `webhook-id`, and `sequence` lets a receiver order events about one resource.
pub fn body(event: &events::Model) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event.id,
        "type": event.event_type,
        "timestamp": event.created_at,
        "resource": { "type": event.resource_type, "id": event.resource_id, "sequence": event.sequence },
        "data": event.payload,
    }))
    .expect("an event serializes")
}
