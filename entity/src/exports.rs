use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What an export holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum ExportKind {
    #[sea_orm(string_value = "payments")]
    Payments,
    #[sea_orm(string_value = "subscriptions")]
    Subscriptions,
    #[sea_orm(string_value = "audit_logs")]
    AuditLogs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum ExportStatus {
    #[sea_orm(string_value = "queued")]
    Queued,
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "completed")]
    Completed,
    #[sea_orm(string_value = "failed")]
    Failed,
}

/// A CSV file a worker builds. The file lives in `export_chunks`, so any API replica can serve
/// it whichever worker wrote it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The user who asked for it: the only one who may see or download it.
    pub owner_id: String,
    pub kind: ExportKind,
    /// The filters as validated, including the merchant the export covers.
    pub filters: Json,
    pub status: ExportStatus,
    pub rows_written: i64,
    pub bytes_written: i64,
    pub job_id: Option<String>,
    pub error: Option<String>,
    pub filename: String,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub completed_at: Option<DateTimeUtc>,
    /// After this the file is deleted.
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
