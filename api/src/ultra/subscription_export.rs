//! `GET subscriptions/export`: a merchant's subscriptions as a CSV file.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{OpenApi, param::Query};
use ultra_domain::csv_export::{ExportFilter, SubscriptionFilter, Subscriptions};
use ultra_entity::subscriptions::SubscriptionStatus;

use super::{
    ApiTags,
    exports::{created_range, export_merchant},
    subscriptions::Status,
};
use crate::{
    AppState,
    http::{auth::Auth, csv::CsvFile, error::ApiResult},
};

pub struct SubscriptionExportApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Subscriptions")]
impl SubscriptionExportApi {
    /// Export subscriptions as CSV
    ///
    /// Streams a CSV file of subscriptions, oldest first, under the same rules as the payment
    /// export: admins must provide merchantId, merchants need the Pro+ SLA tier. `from` and `to`
    /// bound `created_at` inclusively; `overdue=true` keeps the subscriptions whose renewal failed
    /// every retry. Cells that a spreadsheet would run as a formula are prefixed with `'`.
    #[allow(clippy::too_many_arguments)]
    #[oai(path = "/subscriptions/export", method = "get", operation_id = "exportSubscriptions")]
    async fn export(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        /// The merchant to export (admins only, and required for them).
        #[oai(name = "merchantId")]
        merchant_id: Query<Option<String>>,
        status: Query<Option<Status>>,
        /// `true` for overdue subscriptions only, `false` for the others.
        overdue: Query<Option<bool>>,
        /// Subscriptions created at or after this instant (RFC 3339).
        from: Query<Option<DateTime<Utc>>>,
        /// Subscriptions created at or before this instant (RFC 3339).
        to: Query<Option<DateTime<Utc>>>,
    ) -> ApiResult<CsvFile> {
        created_range(from.0, to.0, "")?;
        let merchant = export_merchant(&state, &auth.0, merchant_id.0, "merchantId").await?;
        let filter = SubscriptionFilter {
            merchant_id: merchant.id,
            status: status.0.map(SubscriptionStatus::from),
            overdue: overdue.0,
            from: from.0,
            to: to.0,
        };
        let filename = ExportFilter::Subscriptions(filter.clone()).filename(Utc::now());
        CsvFile::stream::<Subscriptions>(&state.db, &filter, filename).await
    }
}
