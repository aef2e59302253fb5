//! `GET payments/export`: a merchant's payments as a CSV file.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{OpenApi, param::Query};
use ultra_domain::csv_export::{ExportFilter, PaymentFilter, Payments};
use ultra_entity::payments::PaymentStatus;

use super::{
    ApiTags,
    exports::{created_range, export_merchant},
    payments::Status,
};
use crate::{
    AppState,
    http::{auth::Auth, csv::CsvFile, error::ApiResult},
};

pub struct PaymentExportApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Payments")]
impl PaymentExportApi {
    /// Export payments as CSV
    ///
    /// Streams a CSV file of payments, oldest first. Requires admin or merchant role. Admins must
    /// provide merchantId query param. Requires Pro+ SLA tier. `from` and `to` bound `created_at`
    /// inclusively. Cells that a spreadsheet would run as a formula are prefixed with `'`. For a
    /// file too large to wait for, `POST /api/v1/exports` builds it in the background.
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
        created_range(from.0, to.0, "")?;
        let merchant = export_merchant(&state, &auth.0, merchant_id.0, "merchantId").await?;
        let filter = PaymentFilter {
            merchant_id: merchant.id,
            status: status.0.map(PaymentStatus::from),
            from: from.0,
            to: to.0,
        };
        let filename = ExportFilter::Payments(filter.clone()).filename(Utc::now());
        CsvFile::stream::<Payments>(&state.db, &filter, filename).await
    }
}
