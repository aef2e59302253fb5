use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "dead")]
    Dead,
    #[sea_orm(string_value = "cancelled")]
    Cancelled,
}

/// The durable record of a unit of background work. Redis only carries jobs; this row is the
/// source of truth that the relay re-enqueues from and that clients poll.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    pub queue: String,
    pub payload: Json,
    pub status: JobStatus,
    pub run_at: DateTimeUtc,
    pub attempts: i32,
    pub max_attempts: i32,
    /// Makes enqueueing the same work twice a no-op (one renewal per period, one poll per refund).
    #[sea_orm(unique)]
    pub unique_key: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub result: Option<Json>,
    /// The merchant the job works for, so that `GET jobs/{id}` never shows another tenant's job.
    pub owner_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// The Redis task carrying the current attempt. A delivery of any other push is stale and
    /// is dropped, so a re-enqueued or duplicated message cannot run the job twice.
    pub push_id: Option<String>,
    /// The most recent attempts: when each started and ended, and its error.
    pub attempt_log: Option<Json>,
    pub locked_by: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
}

impl JobStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::Dead | Self::Cancelled | Self::Failed)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
