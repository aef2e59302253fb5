use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// `pending` while attempts remain; `succeeded` on a 2xx; `dead_lettered` after the last
/// attempt fails; `cancelled` when its endpoint was deleted before it got through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "dead_lettered")]
    DeadLettered,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

/// What created the delivery: the event itself, an owner's retry or an admin's replay.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum DeliveryTrigger {
    #[sea_orm(string_value = "event")]
    Event,
    #[sea_orm(string_value = "retry")]
    Retry,
    #[sea_orm(string_value = "replay")]
    Replay,
}

/// One event on its way to one endpoint. Retries and replays are new rows pointing at the
/// delivery they repeat, so the history of each stays as it was.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub endpoint_id: String,
    pub merchant_id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub trigger: DeliveryTrigger,
    pub source_delivery_id: Option<String>,
    pub attempts: i32,
    /// When a pending delivery is due; in the past while it waits for its endpoint's lane.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// Set while a worker sends it; a worker that dies leaves it to expire.
    pub claimed_until: Option<DateTimeUtc>,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub last_attempt_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
    pub dead_lettered_at: Option<DateTimeUtc>,
    pub replayed_at: Option<DateTimeUtc>,
    /// The delivery that replayed this one.
    pub replayed_by: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
