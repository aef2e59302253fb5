//! `GET payments/export`: a merchant's payments as a CSV file.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use futures::{StreamExt, stream};
use poem::{
    Body, IntoResponse, Response,
    http::{StatusCode, header::CONTENT_DISPOSITION},
    web::Data,
};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::Query,
    registry::{MetaHeader, MetaMediaType, MetaResponse, MetaResponses, MetaSchema, MetaSchemaRef, Registry},
    types::Type,
};
use sea_orm::{
    ActiveEnum, ColumnTrait, Condition, DatabaseConnection, DbErr, DerivePartialModel, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use ultra_domain::money::format_amount;
use ultra_entity::{
    payments::{self as payment_rows, PaymentStatus},
    users::{self, Tier, UserRole},
};

use super::{ApiTags, payments::Status};
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal, require_tier},
        error::{ApiError, ApiResult},
    },
};

const CSV: &str = "text/csv; charset=utf-8";

/// Rows read per query: large enough that a big export is a few hundred round trips, small
/// enough that the API never holds more than one batch of a merchant's history in memory.
const BATCH: u64 = 500;

/// The tier that unlocks exports, as the SLA tiers are sold.
const EXPORT_TIER: Tier = Tier::ProPlus;

const COLUMNS: [&str; 13] = [
    "id",
    "created_at",
    "completed_at",
    "provider",
    "status",
    "amount",
    "currency",
    "refunded_amount",
    "customer_phone",
    "reference",
    "provider_transaction_id",
    "description",
    "failure_reason",
];

/// Only the exported columns: metadata and provider data can be large and are not exported.
#[derive(DerivePartialModel)]
#[sea_orm(entity = "payment_rows::Entity")]
struct ExportRow {
    id: String,
    created_at: DateTime<Utc>,
    completed_at: Option<DateTime<Utc>>,
    provider: String,
    status: PaymentStatus,
    amount_minor: i64,
    currency: String,
    refunded_minor: i64,
    customer_phone: String,
    reference: String,
    provider_transaction_id: Option<String>,
    description: Option<String>,
    failure_reason: Option<String>,
}

impl ExportRow {
    /// Timestamps and amounts are written exactly as the JSON API shows them, so that a file and
    /// `GET payments` can be reconciled line by line.
    fn cells(&self) -> [String; 13] {
        let optional = |value: &Option<String>| value.clone().unwrap_or_default();
        [
            self.id.clone(),
            self.created_at.to_rfc3339(),
            self.completed_at.map(|at| at.to_rfc3339()).unwrap_or_default(),
            self.provider.clone(),
            self.status.to_value(),
            format_amount(self.amount_minor),
            self.currency.clone(),
            format_amount(self.refunded_minor),
            self.customer_phone.clone(),
            self.reference.clone(),
            optional(&self.provider_transaction_id),
            optional(&self.description),
            optional(&self.failure_reason),
        ]
    }
}

/// Spreadsheets evaluate a cell that starts with `=`, `+`, `-` or `@` (or a tab or carriage
/// return before one) as a formula, so a customer-supplied description could run
/// `=HYPERLINK(...)` on the merchant's machine. A leading `'` makes the cell text, as the OWASP
/// CSV-injection guidance recommends.
fn neutralize_formula(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

/// One chunk of the file: the header row when `with_header`, then `rows`.
fn encode(rows: &[ExportRow], with_header: bool) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    if with_header {
        writer.write_record(COLUMNS)?;
    }
    for row in rows {
        for cell in row.cells() {
            writer.write_field(neutralize_formula(&cell).as_bytes())?;
        }
        writer.write_record(None::<&[u8]>)?;
    }
    writer.into_inner().map_err(|err| csv::Error::from(err.into_error()))
}

/// Keyset paging by id rather than offsets: each batch is an index range scan however deep the
/// export is, and rows inserted while it runs cannot shift a page and duplicate or skip rows.
async fn fetch_batch(
    db: &DatabaseConnection,
    filter: Condition,
    after: Option<&str>,
) -> Result<Vec<ExportRow>, DbErr> {
    let mut select = payment_rows::Entity::find().filter(filter);
    if let Some(after) = after {
        select = select.filter(payment_rows::Column::Id.gt(after));
    }
    select.order_by_asc(payment_rows::Column::Id).limit(BATCH).into_partial_model::<ExportRow>().all(db).await
}

/// Where the next batch starts, or `None` when a short batch showed there is nothing after it.
struct Remaining {
    db: DatabaseConnection,
    filter: Condition,
    after: String,
}

impl Remaining {
    fn after(db: &DatabaseConnection, filter: &Condition, batch: &[ExportRow]) -> Option<Self> {
        let last = batch.last().filter(|_| batch.len() as u64 == BATCH)?;
        Some(Self { db: db.clone(), filter: filter.clone(), after: last.id.clone() })
    }

    /// The status line has long been sent, so a failure here can only abort the body: the client
    /// sees a truncated transfer rather than a file that silently lacks rows.
    async fn next_chunk(self) -> std::io::Result<Option<(Vec<u8>, Option<Self>)>> {
        let failed = |stage: &str, err: &dyn std::fmt::Display| {
            tracing::error!(error = %err, after = %self.after, "payment export failed while {stage}");
            std::io::Error::other(format!("payment export failed while {stage}"))
        };
        let rows = fetch_batch(&self.db, self.filter.clone(), Some(&self.after))
            .await
            .map_err(|err| failed("reading payments", &err))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let chunk = encode(&rows, false).map_err(|err| failed("writing rows", &err))?;
        Ok(Some((chunk, Self::after(&self.db, &self.filter, &rows))))
    }
}

/// A CSV file sent while it is read: `Content-Disposition: attachment` so that browsers save it.
pub struct CsvFile {
    filename: String,
    body: Body,
}

impl IntoResponse for CsvFile {
    fn into_response(self) -> Response {
        Response::builder()
            .status(StatusCode::OK)
            .content_type(CSV)
            .header(CONTENT_DISPOSITION, format!("attachment; filename=\"{}\"", self.filename))
            .body(self.body)
    }
}

impl ApiResponse for CsvFile {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "The CSV file, streamed; a header row even when no payment matches",
                status: Some(200),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: CSV,
                    schema: MetaSchemaRef::Inline(Box::new(MetaSchema::new("string"))),
                }],
                headers: vec![MetaHeader {
                    name: "Content-Disposition".to_owned(),
                    description: Some(
                        "`attachment; filename=\"payments-<merchantId>-<YYYY-MM-DD>.csv\"`".to_owned(),
                    ),
                    required: true,
                    deprecated: false,
                    schema: String::schema_ref(),
                }],
            }],
        }
    }

    fn register(_registry: &mut Registry) {}
}

/// The merchant whose payments are exported. Admins name one, since a file mixing merchants
/// would be a data leak waiting to be forwarded; they are not tier-gated. Everyone else gets
/// their own (an admin under `X-App-Context: merchant` gets the primary merchant's, with its
/// tier) and only from the tier that sells exports.
async fn export_merchant(
    state: &AppState,
    principal: &Principal,
    merchant_id: Option<String>,
) -> ApiResult<users::Model> {
    if principal.is_admin() {
        let id = merchant_id.ok_or_else(|| {
            ApiError::validation("merchantId", "is required for admins: exports cover one merchant")
        })?;
        return users::Entity::find_by_id(id)
            .one(&state.db)
            .await?
            .filter(|user| user.role == UserRole::User)
            .ok_or_else(|| ApiError::not_found("merchant"));
    }
    if merchant_id.is_some() {
        return Err(ApiError::forbidden("merchantId is an admin filter"));
    }
    let merchant = principal.merchant()?;
    require_tier(merchant, EXPORT_TIER, "payment export")?;
    Ok(merchant.clone())
}

pub struct PaymentExportApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Payments")]
impl PaymentExportApi {
    /// Export payments as CSV
    ///
    /// Streams a CSV file of payments, oldest first. Requires admin or merchant role. Admins must
    /// provide merchantId query param. Requires Pro+ SLA tier. `from` and `to` bound `created_at`
    /// inclusively. Cells that a spreadsheet would run as a formula are prefixed with `'`.
    #[oai(path = "/payments/export", method = "get", operation_id = "exportPayments")]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The merchant to export (admins only, and required for them).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
        status: Query<Option<Status>>,
        /// Payments created at or after this instant (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Payments created at or before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<CsvFile> {
        if let (Some(from), Some(to)) = (from.0, to.0)
            && from > to
        {
            return Err(ApiError::validation("from", "must not be later than `to`"));
        }
        let merchant = export_merchant(&state, &auth.0, merchant_id.0).await?;
        let filter = Condition::all()
            .add(payment_rows::Column::MerchantId.eq(merchant.id.as_str()))
            .add_option(status.0.map(|status| payment_rows::Column::Status.eq(PaymentStatus::from(status))))
            .add_option(from.0.map(|from| payment_rows::Column::CreatedAt.gte(from)))
            .add_option(to.0.map(|to| payment_rows::Column::CreatedAt.lte(to)));

        // The first batch is read before answering, so that a database that is down at the start
        // is an error response rather than a 200 with a broken body.
        let first = fetch_batch(&state.db, filter.clone(), None).await?;
        let head = encode(&first, true).map_err(ApiError::internal)?;
        let rest = stream::try_unfold(Remaining::after(&state.db, &filter, &first), |remaining| async move {
            match remaining {
                Some(remaining) => remaining.next_chunk().await,
                None => Ok(None),
            }
        });
        let chunks = stream::once(async move { Ok(head) }).chain(rest);
        Ok(CsvFile {
            filename: format!("payments-{}-{}.csv", merchant.id, Utc::now().format("%Y-%m-%d")),
            body: Body::from_bytes_stream(chunks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_a_spreadsheet_would_evaluate_are_made_text() {
        for (cell, expected) in [
            ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
            ("+1", "'+1"),
            ("-2+3", "'-2+3"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
        ] {
            assert_eq!(neutralize_formula(cell), expected, "{cell:?}");
        }
    }

    #[test]
    fn ordinary_cells_are_left_alone() {
        for cell in ["", "10000", "Order #1234", "a=b", "2026-01-01T00:00:00+00:00", " =1"] {
            assert!(matches!(neutralize_formula(cell), Cow::Borrowed(same) if same == cell), "{cell:?}");
        }
    }

    #[test]
    fn an_empty_export_is_still_a_header_row() {
        let bytes = encode(&[], true).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), format!("{}\n", COLUMNS.join(",")));
    }

    #[test]
    fn a_row_shows_amounts_as_the_api_does_and_escapes_descriptions() {
        let at = DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z").unwrap().to_utc();
        let row = ExportRow {
            id: "pay_1".to_owned(),
            created_at: at,
            completed_at: None,
            provider: "mvola".to_owned(),
            status: PaymentStatus::Failed,
            amount_minor: 1_000_050,
            currency: "MGA".to_owned(),
            refunded_minor: 0,
            customer_phone: "0340000001".to_owned(),
            reference: "ULT1".to_owned(),
            provider_transaction_id: None,
            description: Some("=1+1, \"quoted\"".to_owned()),
            failure_reason: Some("insufficient funds".to_owned()),
        };
        let text = String::from_utf8(encode(&[row], false).unwrap()).unwrap();
        assert_eq!(
            text,
            "pay_1,2026-03-01T10:00:00+00:00,,mvola,failed,10000.50,MGA,0,0340000001,ULT1,,\
             \"'=1+1, \"\"quoted\"\"\",insufficient funds\n"
        );
    }
}
