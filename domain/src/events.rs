//! Recording events, and their webhook deliveries, in the caller's transaction.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
};
use serde_json::Value;
use ultra_entity::events;

use crate::{DomainResult, ids, webhooks};

pub struct NewEvent<'a> {
    pub merchant_id: &'a str,
    pub event_type: &'a str,
    pub resource_type: &'a str,
    pub resource_id: &'a str,
    pub payload: Value,
}

/// Records the event with the next sequence number of its resource, and its webhook
/// deliveries. Events of one resource are written by transactions that also change that
/// resource's row, so they are serialised.
pub async fn record(db: &impl ConnectionTrait, event: NewEvent<'_>) -> DomainResult<events::Model> {
    let previous = events::Entity::find()
        .filter(events::Column::ResourceType.eq(event.resource_type))
        .filter(events::Column::ResourceId.eq(event.resource_id))
        .count(db)
        .await?;
    let sequence = i64::try_from(previous).unwrap_or(i64::MAX - 1) + 1;
    let event = events::ActiveModel {
        id: Set(ids::new_id("evt")),
        merchant_id: Set(event.merchant_id.to_owned()),
        event_type: Set(event.event_type.to_owned()),
        resource_type: Set(event.resource_type.to_owned()),
        resource_id: Set(event.resource_id.to_owned()),
        sequence: Set(sequence),
        payload: Set(event.payload),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?;
    webhooks::deliveries::fan_out(db, &event).await?;
    Ok(event)
}
