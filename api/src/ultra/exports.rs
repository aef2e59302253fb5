//! `POST exports`, `GET exports`, `GET exports/{id}`, `GET exports/{id}/download`: CSV files
//! built by a worker, for exports too large to wait for, and who may export whose data (shared
//! with the streamed `GET payments/export` and `GET subscriptions/export`).
//!
//! An export belongs to the user who asked for it. Only they see it or download it: anyone
//! else, admins included, gets 404, as for an export that does not exist. A file of a
//! merchant's customers goes to the person who asked for it, not to whoever learns its id.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path, Query},
};
use sea_orm::{
    ActiveEnum, ActiveModelTrait, ColumnTrait, EntityTrait, Iterable, PaginatorTrait, QueryFilter, Set,
};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, AuditEvent},
    csv_export::{AuditLogFilter, EXPORT_TTL, ExportFilter, PaymentFilter, SubscriptionFilter},
    dates, ids,
    tiers::Feature,
};
use ultra_entity::{
    exports::{self as export_rows, ExportKind, ExportStatus},
    users::{self, UserRole},
};
use ultra_jobs::{NewJob, enqueue, kinds::exports::BuildExport};

use super::{ApiTags, payments::JobRef};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal, require_feature},
        client::actor,
        csv::CsvFile,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent, PendingPush},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

/// Exports one user may have waiting or running at once: each can be a file of hundreds of
/// megabytes, and a client that loops on `POST exports` must not fill the database or take
/// every worker's export slots.
const MAX_UNFINISHED: u64 = 3;

/// The merchant whose data is exported. Admins name one (in `field`), since a file mixing
/// merchants would be a data leak waiting to be forwarded; they are not tier-gated. Everyone
/// else gets their own (an admin under `X-App-Context: merchant` gets the primary merchant's,
/// with its tier) and only from the tier that sells exports.
pub async fn export_merchant(
    state: &AppState,
    principal: &Principal,
    merchant_id: Option<String>,
    field: &str,
) -> ApiResult<users::Model> {
    if principal.is_admin() {
        let id = merchant_id.ok_or_else(|| {
            ApiError::validation(field, "is required for admins: exports cover one merchant")
        })?;
        return users::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .filter(|user| user.role == UserRole::User)
            .ok_or_else(|| ApiError::not_found("merchant"));
    }
    if merchant_id.is_some() {
        return Err(ApiError::forbidden(format!("{field} is an admin filter")));
    }
    let merchant = principal.merchant()?;
    require_feature(merchant, Feature::CsvExports)?;
    Ok(merchant.clone())
}

/// Checks a range of creation times: both ends within the dates Ultra stores, `from` not later
/// than `to`. The fields are `{prefix}from` and `{prefix}to` (`filters.` in an export request).
pub fn created_range(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>, prefix: &str) -> ApiResult<()> {
    for (name, at) in [("from", from), ("to", to)] {
        if let Some(at) = at {
            dates::check(&format!("{prefix}{name}"), at)?;
        }
    }
    match (from, to) {
        (Some(from), Some(to)) if from > to => {
            Err(ApiError::validation(format!("{prefix}from"), "must not be later than `to`"))
        }
        _ => Ok(()),
    }
}

/// What an export holds.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "ExportKind", rename_all = "snake_case")]
pub enum Kind {
    Payments,
    Subscriptions,
    AuditLogs,
}

impl From<ExportKind> for Kind {
    fn from(kind: ExportKind) -> Self {
        match kind {
            ExportKind::Payments => Self::Payments,
            ExportKind::Subscriptions => Self::Subscriptions,
            ExportKind::AuditLogs => Self::AuditLogs,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename = "ExportStatus", rename_all = "lowercase")]
pub enum State {
    Queued,
    Running,
    Completed,
    Failed,
}

impl From<ExportStatus> for State {
    fn from(status: ExportStatus) -> Self {
        match status {
            ExportStatus::Queued => Self::Queued,
            ExportStatus::Running => Self::Running,
            ExportStatus::Completed => Self::Completed,
            ExportStatus::Failed => Self::Failed,
        }
    }
}

/// What to export. Each kind takes its own filters; one that does not apply to the kind is
/// refused rather than ignored, so a file is never wider than its requester believes.
#[derive(Object, Default)]
#[oai(rename_all = "camelCase")]
pub struct ExportFilters {
    /// payments: a payment status (`pending`, `completed`, `failed`, `cancelled`, `refunding`,
    /// `refunded`, `expired`); subscriptions: `active`, `paused` or `cancelled`.
    pub status: Option<String>,
    /// subscriptions: `true` for overdue subscriptions only, `false` for the others.
    pub overdue: Option<bool>,
    /// Rows created at or after this instant (RFC 3339).
    pub from: Option<String>,
    /// Rows created at or before this instant (RFC 3339).
    pub to: Option<String>,
    /// payments and subscriptions: the merchant to export (admins only, and required for them).
    pub merchant_id: Option<String>,
    /// audit_logs: a dotted action such as `payment.completed`.
    pub action: Option<String>,
    /// audit_logs: an entity type such as `payment`.
    pub entity_type: Option<String>,
    /// audit_logs: the user who acted.
    pub user_id: Option<String>,
}

#[derive(Object)]
pub struct CreateExportRequest {
    pub kind: Kind,
    pub filters: Option<ExportFilters>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ExportView {
    pub id: String,
    pub kind: Kind,
    pub status: State,
    /// The filters as applied, including the merchant the file covers.
    pub filters: Value,
    /// Rows in the file so far: it rises while the export runs.
    pub rows_written: i64,
    pub bytes_written: i64,
    pub filename: String,
    /// Why the file could not be built, once `failed`.
    pub error: Option<String>,
    pub job_id: Option<String>,
    pub created_at: DateTime<Utc>,
    /// When the current run began; a run after a failed one starts the file over.
    pub started_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
    /// After this the file is deleted.
    pub expires_at: DateTime<Utc>,
    /// Where to fetch the file, once `completed`.
    pub download_url: Option<String>,
}

impl From<export_rows::Model> for ExportView {
    fn from(export: export_rows::Model) -> Self {
        Self {
            download_url: (export.status == ExportStatus::Completed)
                .then(|| format!("/api/v1/exports/{}/download", export.id)),
            id: export.id,
            kind: export.kind.into(),
            status: export.status.into(),
            filters: export.filters,
            rows_written: export.rows_written,
            bytes_written: export.bytes_written,
            filename: export.filename,
            error: export.error,
            job_id: export.job_id,
            created_at: export.created_at,
            started_at: export.started_at,
            completed_at: export.completed_at,
            expires_at: export.expires_at,
        }
    }
}

/// An export accepted for building, with the job building it.
#[derive(Object)]
pub struct ExportAccepted {
    #[oai(flatten)]
    pub export: ExportView,
    pub job: JobRef,
}

/// `filters.<name>`, as validation errors name a field of the body.
fn field(name: &str) -> String {
    format!("filters.{name}")
}

fn instant(name: &str, text: Option<String>) -> ApiResult<Option<DateTime<Utc>>> {
    Ok(text.map(|text| dates::parse(&field(name), &text)).transpose()?)
}

/// A status as the kind's entity spells it.
fn status<E: ActiveEnum<Value = String> + Iterable>(text: Option<String>) -> ApiResult<Option<E>> {
    text.map(|text| {
        E::try_from_value(&text).map_err(|_| {
            let allowed: Vec<String> = E::iter().map(|status| status.to_value()).collect();
            ApiError::validation(field("status"), format!("must be one of {}", allowed.join(", ")))
        })
    })
    .transpose()
}

/// Refuses a filter the kind does not take.
fn absent<T>(name: &str, value: &Option<T>, kind: &str) -> ApiResult<()> {
    match value {
        Some(_) => Err(ApiError::validation(field(name), format!("is not a filter of {kind} exports"))),
        None => Ok(()),
    }
}

/// A text filter, bounded by its column's width.
fn text(name: &str, value: Option<String>, max: usize) -> ApiResult<Option<String>> {
    match value {
        Some(value) if value.is_empty() || value.chars().count() > max => {
            Err(ApiError::validation(field(name), format!("must be 1 to {max} characters")))
        }
        other => Ok(other),
    }
}

/// Bounds on `created_at`, both inclusive.
type CreatedRange = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// `filters.from` and `filters.to`, in order.
fn range(from: Option<String>, to: Option<String>) -> ApiResult<CreatedRange> {
    let (from, to) = (instant("from", from)?, instant("to", to)?);
    created_range(from, to, "filters.")?;
    Ok((from, to))
}

/// Checks who may export what, then the filters, into what the worker will read.
async fn validated(
    state: &AppState,
    principal: &Principal,
    kind: Kind,
    filters: ExportFilters,
) -> ApiResult<ExportFilter> {
    let audit_filters =
        [("action", &filters.action), ("entityType", &filters.entity_type), ("userId", &filters.user_id)];
    match kind {
        Kind::Payments => {
            let merchant =
                export_merchant(state, principal, filters.merchant_id, &field("merchantId")).await?;
            absent("overdue", &filters.overdue, "payments")?;
            for (name, value) in audit_filters {
                absent(name, value, "payments")?;
            }
            let (from, to) = range(filters.from, filters.to)?;
            let status = status(filters.status)?;
            Ok(ExportFilter::Payments(PaymentFilter { merchant_id: merchant.id, status, from, to }))
        }
        Kind::Subscriptions => {
            let merchant =
                export_merchant(state, principal, filters.merchant_id, &field("merchantId")).await?;
            for (name, value) in audit_filters {
                absent(name, value, "subscriptions")?;
            }
            let (from, to) = range(filters.from, filters.to)?;
            Ok(ExportFilter::Subscriptions(SubscriptionFilter {
                merchant_id: merchant.id,
                status: status(filters.status)?,
                overdue: filters.overdue,
                from,
                to,
            }))
        }
        Kind::AuditLogs => {
            if !principal.is_admin() {
                return Err(ApiError::forbidden("audit log exports are for admins"));
            }
            absent("merchantId", &filters.merchant_id, "audit_logs")?;
            absent("status", &filters.status, "audit_logs")?;
            absent("overdue", &filters.overdue, "audit_logs")?;
            let (from, to) = range(filters.from, filters.to)?;
            Ok(ExportFilter::AuditLogs(AuditLogFilter {
                from,
                to,
                action: text("action", filters.action, 100)?,
                entity_type: text("entityType", filters.entity_type, 50)?,
                user_id: text("userId", filters.user_id, 40)?,
            }))
        }
    }
}

/// The export `id` if the caller asked for it and it has not expired.
async fn owned_export(state: &AppState, principal: &Principal, id: &str) -> ApiResult<export_rows::Model> {
    export_rows::Entity::find_by_id(id)
        .one(&state.db)
        .await?
        .filter(|export| export.owner_id == principal.user.id && export.expires_at > Utc::now())
        .ok_or_else(|| ApiError::not_found("export"))
}

pub struct ExportsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Exports")]
impl ExportsApi {
    /// Start a CSV export
    ///
    /// Builds the file in the background and answers 202 with the export and its job; follow
    /// `GET /api/v1/exports/{id}` until `completed`, then download it. `kind` is `payments`,
    /// `subscriptions` (both for Pro+ merchants, or admins naming `filters.merchantId`) or
    /// `audit_logs` (admins only). The file is the one the streamed exports give for the same
    /// filters, and is kept for 7 days. At most 3 of a user's exports wait or run at once (409
    /// `exports_in_progress` beyond). Idempotent with `Idempotency-Key`.
    #[oai(path = "/exports", method = "post", operation_id = "createExport")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<CreateExportRequest>,
    ) -> ApiResult<Reply<ExportAccepted, 202>> {
        let principal = auth.0;
        let request = body.value;
        let filter = validated(&state, &principal, request.kind, request.filters.unwrap_or_default()).await?;
        let outbox = PendingPush::default();
        let pending_push = outbox.clone();
        let actor = actor(req, Some(&principal.user.id));
        let owner = principal.user.id.clone();
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "POST /api/v1/exports",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    let unfinished = export_rows::Entity::find()
                        .filter(export_rows::Column::OwnerId.eq(owner.as_str()))
                        .filter(
                            export_rows::Column::Status.is_in([ExportStatus::Queued, ExportStatus::Running]),
                        )
                        .filter(export_rows::Column::ExpiresAt.gt(Utc::now()))
                        .count(txn)
                        .await?;
                    if unfinished >= MAX_UNFINISHED {
                        return Err(ApiError::conflict(
                            "exports_in_progress",
                            format!(
                                "{unfinished} of your exports are still being built; ask again once one \
                                 has finished"
                            ),
                        ));
                    }
                    let id = ids::new_id("exp");
                    let build = BuildExport { export_id: id.clone() };
                    let enqueued = enqueue(
                        txn,
                        NewJob::new(&build)
                            .owner(owner.clone())
                            .resource("exports", id.clone())
                            .unique_key(format!("export:{id}:build")),
                    )
                    .await?;
                    let now = Utc::now();
                    let export = export_rows::ActiveModel {
                        id: Set(id.clone()),
                        owner_id: Set(owner),
                        kind: Set(filter.kind()),
                        filters: Set(filter.to_json()),
                        status: Set(ExportStatus::Queued),
                        rows_written: Set(0),
                        bytes_written: Set(0),
                        job_id: Set(Some(enqueued.job.id.clone())),
                        error: Set(None),
                        filename: Set(filter.filename(now)),
                        created_at: Set(now),
                        started_at: Set(None),
                        completed_at: Set(None),
                        expires_at: Set(now + EXPORT_TTL),
                    }
                    .insert(txn)
                    .await?;
                    audit::record(
                        txn,
                        &actor,
                        AuditEvent {
                            action: "export.created",
                            entity_type: "export",
                            entity_id: Some(&id),
                            details: Some(json!({ "kind": export.kind, "filters": export.filters })),
                        },
                    )
                    .await?;
                    let job = JobRef::from(&enqueued.job);
                    pending_push.hold(enqueued);
                    Ok(Reply::new(ExportAccepted { export: export.into(), job }))
                })
            },
        )
        .await?;
        outbox.dispatch(&state.queue).await;
        Ok(reply)
    }

    /// List your exports
    ///
    /// The exports you asked for that have not expired, newest first.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/exports", method = "get", operation_id = "listExports")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
        pagination: Query<Option<String>>,
        cursor: Query<Option<String>>,
        limit: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<ExportView>>> {
        let request = PageRequest::from_query(
            page.0,
            per_page.0,
            pagination.0.as_deref(),
            cursor.0.as_deref(),
            limit.0,
        )?;
        let select = export_rows::Entity::find()
            .filter(export_rows::Column::OwnerId.eq(auth.0.user.id.as_str()))
            .filter(export_rows::Column::ExpiresAt.gt(Utc::now()));
        let (rows, meta) = paginate(&state.db, select, export_rows::Column::Id, |e| &e.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(ExportView::from).collect(), meta))
    }

    /// Get an export
    ///
    /// Its status and progress (`rowsWritten` rises while it runs), and `downloadUrl` once
    /// completed. Only whoever asked for the export sees it.
    #[oai(path = "/exports/:id", method = "get", operation_id = "getExport")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<ExportView>> {
        Ok(Reply::new(owned_export(&state, &auth.0, &id.0).await?.into()))
    }

    /// Download an export
    ///
    /// The CSV file, to whoever asked for the export only; 409 until it is completed.
    #[oai(path = "/exports/:id/download", method = "get", operation_id = "downloadExport")]
    async fn download(&self, state: Data<&AppState>, auth: Auth, id: Path<String>) -> ApiResult<CsvFile> {
        let export = owned_export(&state, &auth.0, &id.0).await?;
        match export.status {
            ExportStatus::Completed => Ok(CsvFile::stored(
                state.db.clone(),
                export.id,
                export.filename,
                u64::try_from(export.bytes_written).unwrap_or_default(),
            )),
            ExportStatus::Failed => Err(ApiError::conflict(
                "export_failed",
                format!("the export failed: {}", export.error.unwrap_or_default()),
            )),
            status => Err(ApiError::conflict(
                "export_not_ready",
                format!("the export is {}; download it once it is completed", status.to_value()),
            )),
        }
    }
}
