//! The audit trail, oldest first, for admins: who did what to which entity, from where.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, DerivePartialModel};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ultra_entity::audit_logs as audit_rows;

use super::{CsvTable, optional};

pub struct AuditLogs;

/// Audit rows created within `from`..=`to`, optionally of one action, entity type or actor.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditLogFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// Who acted, as the audit-log list's `userId` filter names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

#[derive(DerivePartialModel)]
#[sea_orm(entity = "audit_rows::Entity")]
pub struct AuditLogRow {
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    pub actor_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Option<Value>,
}

impl CsvTable for AuditLogs {
    type Entity = audit_rows::Entity;
    type Row = AuditLogRow;
    type Filter = AuditLogFilter;

    const COLUMNS: &'static [&'static str] =
        &["id", "created_at", "action", "entity_type", "entity_id", "user_id", "ip", "request_id", "details"];

    fn condition(filter: &AuditLogFilter) -> Condition {
        Condition::all()
            .add_option(filter.from.map(|from| audit_rows::Column::CreatedAt.gte(from)))
            .add_option(filter.to.map(|to| audit_rows::Column::CreatedAt.lte(to)))
            .add_option(filter.action.as_deref().map(|action| audit_rows::Column::Action.eq(action)))
            .add_option(filter.entity_type.as_deref().map(|kind| audit_rows::Column::EntityType.eq(kind)))
            .add_option(filter.user_id.as_deref().map(|user| audit_rows::Column::ActorId.eq(user)))
    }

    fn id_column() -> audit_rows::Column {
        audit_rows::Column::Id
    }

    fn id(row: &AuditLogRow) -> &str {
        &row.id
    }

    /// `details` goes in one cell as compact JSON, so that each audit row stays one line.
    fn cells(row: &AuditLogRow) -> Vec<Cow<'_, str>> {
        vec![
            Cow::Borrowed(row.id.as_str()),
            Cow::Owned(row.created_at.to_rfc3339()),
            Cow::Borrowed(row.action.as_str()),
            Cow::Borrowed(row.entity_type.as_str()),
            optional(&row.entity_id),
            optional(&row.actor_id),
            optional(&row.ip),
            optional(&row.request_id),
            row.details.as_ref().map_or(Cow::Borrowed(""), |details| Cow::Owned(details.to_string())),
        ]
    }
}
