//! CSV files of a merchant's payments or subscriptions, or of the audit trail: one definition
//! per kind ([`CsvTable`]: its columns, the filter it takes, how a row becomes cells), read and
//! encoded by one reader ([`CsvReader`]). The streamed downloads and the export worker both
//! use it, so the same filters give the same file whichever way it is fetched.

pub mod audit_logs;
pub mod payments;
pub mod subscriptions;

use std::{borrow::Cow, marker::PhantomData};

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, PartialModelTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Serialize, de::DeserializeOwned};
use serde_json::Value;
use ultra_entity::exports::ExportKind;

use crate::{DomainError, DomainResult};

pub use self::{
    audit_logs::{AuditLogFilter, AuditLogs},
    payments::{PaymentFilter, Payments},
    subscriptions::{SubscriptionFilter, Subscriptions},
};

/// Rows read per query: large enough that a big export is a few thousand round trips, small
/// enough that a reader never holds more than one batch of a merchant's history in memory.
const BATCH: u64 = 500;

/// How long a built export stays downloadable before its file is deleted.
pub const EXPORT_TTL: chrono::Duration = chrono::Duration::days(7);

/// One kind of file: which rows, in which columns.
pub trait CsvTable: Send + Sync + 'static {
    type Entity: EntityTrait;
    /// Only the exported columns, so that large columns nobody exports are never read.
    type Row: PartialModelTrait + Send + Sync + 'static;
    /// What the caller narrowed the file to, as stored on an export.
    type Filter: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;

    const COLUMNS: &'static [&'static str];

    fn condition(filter: &Self::Filter) -> Condition;

    /// The primary key, which orders the file and pages through it.
    fn id_column() -> <Self::Entity as EntityTrait>::Column;

    fn id(row: &Self::Row) -> &str;

    /// The row's cells, in [`CsvTable::COLUMNS`] order, before formula neutralising.
    fn cells(row: &Self::Row) -> Vec<Cow<'_, str>>;
}

/// A kind's filter with the kind it belongs to: what an export row stores as `kind` and
/// `filters`.
#[derive(Clone, Debug)]
pub enum ExportFilter {
    Payments(PaymentFilter),
    Subscriptions(SubscriptionFilter),
    AuditLogs(AuditLogFilter),
}

impl ExportFilter {
    pub fn kind(&self) -> ExportKind {
        match self {
            Self::Payments(_) => ExportKind::Payments,
            Self::Subscriptions(_) => ExportKind::Subscriptions,
            Self::AuditLogs(_) => ExportKind::AuditLogs,
        }
    }

    pub fn to_json(&self) -> Value {
        let value = match self {
            Self::Payments(filter) => serde_json::to_value(filter),
            Self::Subscriptions(filter) => serde_json::to_value(filter),
            Self::AuditLogs(filter) => serde_json::to_value(filter),
        };
        value.expect("filters are strings, booleans and timestamps, which always serialize")
    }

    /// The filter an export row stored.
    pub fn from_stored(kind: ExportKind, filters: &Value) -> DomainResult<Self> {
        let invalid = |err: serde_json::Error| DomainError::Internal(format!("stored export filters: {err}"));
        Ok(match kind {
            ExportKind::Payments => Self::Payments(serde_json::from_value(filters.clone()).map_err(invalid)?),
            ExportKind::Subscriptions => {
                Self::Subscriptions(serde_json::from_value(filters.clone()).map_err(invalid)?)
            }
            ExportKind::AuditLogs => {
                Self::AuditLogs(serde_json::from_value(filters.clone()).map_err(invalid)?)
            }
        })
    }

    /// `payments-<merchantId>-<YYYY-MM-DD>.csv`, or `audit-logs-<YYYY-MM-DD>.csv`: what the
    /// file holds and when it was asked for, for whoever finds it in their downloads folder.
    pub fn filename(&self, at: DateTime<Utc>) -> String {
        let day = at.format("%Y-%m-%d");
        match self {
            Self::Payments(filter) => format!("payments-{}-{day}.csv", filter.merchant_id),
            Self::Subscriptions(filter) => format!("subscriptions-{}-{day}.csv", filter.merchant_id),
            Self::AuditLogs(_) => format!("audit-logs-{day}.csv"),
        }
    }
}

/// Where a reader is in its file.
enum Position {
    /// Nothing read yet: the header row comes first.
    Start,
    /// The id of the last row encoded.
    After(String),
    Done,
}

/// The file for one filter, read in keyset batches and encoded as CSV a batch at a time, so
/// that memory stays at one batch however many rows match.
pub struct CsvReader<T: CsvTable> {
    db: DatabaseConnection,
    condition: Condition,
    position: Position,
    table: PhantomData<fn() -> T>,
}

impl<T: CsvTable> CsvReader<T> {
    pub fn new(db: DatabaseConnection, filter: &T::Filter) -> Self {
        Self { db, condition: T::condition(filter), position: Position::Start, table: PhantomData }
    }

    /// Appends the next part of the file to `out` and answers how many rows it held: the header
    /// row and the first batch on the first call (an empty export is still a header row), then
    /// one batch per call; `None` once the file is complete.
    pub async fn next_part(&mut self, out: &mut Vec<u8>) -> DomainResult<Option<u64>> {
        let after = match &self.position {
            Position::Done => return Ok(None),
            Position::Start => None,
            Position::After(id) => Some(id.clone()),
        };
        let rows = batch::<T>(&self.db, self.condition.clone(), after.as_deref()).await?;
        if after.is_some() && rows.is_empty() {
            self.position = Position::Done;
            return Ok(None);
        }
        encode::<T>(&rows, after.is_none(), out)?;
        self.position = match rows.last() {
            Some(last) if rows.len() as u64 == BATCH => Position::After(T::id(last).to_owned()),
            _ => Position::Done,
        };
        Ok(Some(rows.len() as u64))
    }
}

/// Keyset paging by id rather than offsets: each batch is an index range scan however deep the
/// export is, and rows inserted while it runs cannot shift a page and duplicate or skip rows.
async fn batch<T: CsvTable>(
    db: &DatabaseConnection,
    condition: Condition,
    after: Option<&str>,
) -> Result<Vec<T::Row>, DbErr> {
    let mut select = T::Entity::find().filter(condition);
    if let Some(after) = after {
        select = select.filter(T::id_column().gt(after));
    }
    select.order_by_asc(T::id_column()).limit(BATCH).into_partial_model::<T::Row>().all(db).await
}

/// Appends `rows` to `out` as CSV lines, after the header row when `with_header`.
fn encode<T: CsvTable>(rows: &[T::Row], with_header: bool, out: &mut Vec<u8>) -> DomainResult<()> {
    let failed = |err: csv::Error| DomainError::Internal(format!("writing CSV: {err}"));
    let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(out);
    if with_header {
        writer.write_record(T::COLUMNS).map_err(failed)?;
    }
    for row in rows {
        for cell in T::cells(row) {
            writer.write_field(neutralize_formula(&cell).as_bytes()).map_err(failed)?;
        }
        writer.write_record(None::<&[u8]>).map_err(failed)?;
    }
    writer.flush().map_err(|err| failed(err.into()))
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

/// An optional timestamp as the JSON API shows it, or an empty cell.
fn instant(at: Option<DateTime<Utc>>) -> Cow<'static, str> {
    at.map_or(Cow::Borrowed(""), |at| Cow::Owned(at.to_rfc3339()))
}

fn optional(value: &Option<String>) -> Cow<'_, str> {
    Cow::Borrowed(value.as_deref().unwrap_or_default())
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
        let mut out = Vec::new();
        encode::<Payments>(&[], true, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), format!("{}\n", Payments::COLUMNS.join(",")));
    }

    #[test]
    fn stored_filters_come_back_as_they_were_written() {
        let filter = ExportFilter::Subscriptions(SubscriptionFilter {
            merchant_id: "usr_1".to_owned(),
            status: Some(ultra_entity::subscriptions::SubscriptionStatus::Paused),
            overdue: Some(true),
            from: None,
            to: None,
        });
        let stored = filter.to_json();
        assert_eq!(stored, serde_json::json!({ "merchantId": "usr_1", "status": "paused", "overdue": true }));
        let back = ExportFilter::from_stored(ExportKind::Subscriptions, &stored).unwrap();
        assert_eq!(back.to_json(), stored);
        assert!(ExportFilter::from_stored(ExportKind::Payments, &serde_json::json!({})).is_err());
    }
}
