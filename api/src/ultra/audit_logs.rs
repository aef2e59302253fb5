//! `GET admin/audit-logs` and `GET admin/audit-logs/export`: the audit trail, for admins.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{Object, OpenApi, param::Query};
use sea_orm::{EntityTrait, QueryFilter};
use serde_json::Value;
use ultra_domain::csv_export::{AuditLogFilter, AuditLogs, CsvTable, ExportFilter};
use ultra_entity::audit_logs as rows;

use super::{ApiTags, exports::created_range};
use crate::{
    AppState,
    http::{
        auth::Auth,
        csv::CsvFile,
        envelope::Reply,
        error::{ApiError, ApiResult},
        pagination::{PageRequest, paginate},
    },
};

/// The longest action or entity type the platform writes, with room to spare; longer filters
/// cannot match and are refused as mistakes.
const MAX_FILTER_LEN: usize = 100;

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AuditLogView {
    pub id: String,
    /// Dotted verb such as `payment.completed` or `subscription.updated`.
    pub action: String,
    pub entity_type: String,
    pub entity_id: Option<String>,
    /// The user who acted; absent for what the platform did on its own (a worker completing a
    /// payment on the provider's word).
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub details: Option<Value>,
    pub created_at: DateTime<Utc>,
}

impl From<rows::Model> for AuditLogView {
    fn from(row: rows::Model) -> Self {
        Self {
            id: row.id,
            action: row.action,
            entity_type: row.entity_type,
            entity_id: row.entity_id,
            user_id: row.actor_id,
            ip: row.ip,
            request_id: row.request_id,
            details: row.details,
            created_at: row.created_at,
        }
    }
}

/// The seed's filters, checked and in the form the CSV definitions take.
fn filter(
    action: Option<String>,
    entity_type: Option<String>,
    user_id: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> ApiResult<AuditLogFilter> {
    created_range(from, to, "")?;
    for (name, value) in [("action", &action), ("entityType", &entity_type), ("userId", &user_id)] {
        if value.as_deref().is_some_and(|v| v.is_empty() || v.len() > MAX_FILTER_LEN) {
            return Err(ApiError::validation(name, format!("must be 1 to {MAX_FILTER_LEN} characters")));
        }
    }
    Ok(AuditLogFilter { from, to, action, entity_type, user_id })
}

pub struct AuditLogsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AuditLogsApi {
    /// List audit logs
    ///
    /// Newest first. `action` (e.g. `payment.completed`), `entityType` (e.g. `payment`) and
    /// `userId` (who acted) match exactly; `from` and `to` bound the time inclusively. Admins
    /// only.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/admin/audit-logs", method = "get", operation_id = "listAuditLogs")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
        /// Filter by action (e.g. payment.completed)
        action: Query<Option<String>>,
        /// Filter by entity type (e.g. payment)
        #[oai(name = "entityType")]
        entity_type: Query<Option<String>>,
        /// Filter by user ID
        #[oai(name = "userId")]
        user_id: Query<Option<String>>,
        /// Rows written at or after this instant (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Rows written at or before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<Reply<Vec<AuditLogView>>> {
        auth.0.require_admin()?;
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let filter = filter(action.0, entity_type.0, user_id.0, from.0, to.0)?;
        let select = rows::Entity::find().filter(AuditLogs::condition(&filter));
        let (found, meta) = paginate(&state.db, select, rows::Column::Id, |row| &row.id, &request).await?;
        Ok(Reply::with_meta(found.into_iter().map(AuditLogView::from).collect(), meta))
    }

    /// Export audit logs as CSV
    ///
    /// Streams the audit logs matching the filters as a CSV file, oldest first, with the same
    /// filters as the list. Admins only. For a very large range, `POST exports` with kind
    /// `audit_logs` builds the file on a worker instead.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/admin/audit-logs/export", method = "get", operation_id = "exportAuditLogs")]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        action: Query<Option<String>>,
        #[oai(name = "entityType")] entity_type: Query<Option<String>>,
        #[oai(name = "userId")] user_id: Query<Option<String>>,
        /// Rows written at or after this instant (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Rows written at or before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<CsvFile> {
        auth.0.require_admin()?;
        let filter = filter(action.0, entity_type.0, user_id.0, from.0, to.0)?;
        let filename = ExportFilter::AuditLogs(filter.clone()).filename(Utc::now());
        CsvFile::stream::<AuditLogs>(&state.db, &filter, filename).await
    }
}
