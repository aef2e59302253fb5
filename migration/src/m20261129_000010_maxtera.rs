//! The Maxtera surface: customer accounts with the integer ids its seed shows, their wallet
//! transactions (fundings through OnePipe, airtime, data and bill purchases through the VTU
//! aggregator), and the data-plan catalogue a client chooses from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The catalogue as first seeded, under the aggregator's variation codes: network, plan name
/// a client sends, variation code, description, price in kobo and validity in days. Operators
/// edit prices and add plans in the table.
const PLANS: &[(&str, &str, &str, &str, i64, i32)] = &[
    ("MTN", "100MB", "mtn-10mb-100", "MTN 100MB, 1 day", 10_000, 1),
    ("MTN", "200MB", "mtn-50mb-200", "MTN 200MB, 2 days", 20_000, 2),
    ("MTN", "1GB", "mtn-1gb-500", "MTN 1GB, 7 days", 50_000, 7),
    ("MTN", "1.5GB", "mtn-100mb-1000", "MTN 1.5GB, 30 days", 100_000, 30),
    ("MTN", "4.5GB", "mtn-500mb-2000", "MTN 4.5GB, 30 days", 200_000, 30),
    ("AIRTEL", "75MB", "airt-100", "Airtel 75MB, 1 day", 10_000, 1),
    ("AIRTEL", "350MB", "airt-300", "Airtel 350MB, 7 days", 30_000, 7),
    ("AIRTEL", "1GB", "airt-500", "Airtel 1GB, 7 days", 50_000, 7),
    ("AIRTEL", "1.5GB", "airt-1000", "Airtel 1.5GB, 30 days", 100_000, 30),
    ("AIRTEL", "4.5GB", "airt-2000", "Airtel 4.5GB, 30 days", 200_000, 30),
    ("GLO", "105MB", "glo100", "Glo 105MB, 2 days", 10_000, 2),
    ("GLO", "350MB", "glo200", "Glo 350MB, 4 days", 20_000, 4),
    ("GLO", "1GB", "glo500", "Glo 1GB, 14 days", 50_000, 14),
    ("GLO", "2.5GB", "glo1000", "Glo 2.5GB, 30 days", 100_000, 30),
    ("GLO", "5.8GB", "glo2000", "Glo 5.8GB, 30 days", 200_000, 30),
    ("9MOBILE", "100MB", "eti-100", "9mobile 100MB, 1 day", 10_000, 1),
    ("9MOBILE", "650MB", "eti-200", "9mobile 650MB, 1 day", 20_000, 1),
    ("9MOBILE", "1GB", "eti-500", "9mobile 1GB, 7 days", 50_000, 7),
    ("9MOBILE", "1.5GB", "eti-1000", "9mobile 1.5GB, 30 days", 100_000, 30),
    ("9MOBILE", "4.5GB", "eti-2000", "9mobile 4.5GB, 30 days", 200_000, 30),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MaxteraAccounts::Table)
                    .col(big_pk_auto(MaxteraAccounts::Id))
                    .col(string_len_uniq(MaxteraAccounts::UserId, 40))
                    .col(string_len(MaxteraAccounts::Phone, 16))
                    .col(timestamp_with_time_zone(MaxteraAccounts::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MaxteraTransactions::Table)
                    .col(big_pk_auto(MaxteraTransactions::Id))
                    .col(string_len(MaxteraTransactions::UserId, 40))
                    .col(string_len(MaxteraTransactions::Kind, 16))
                    .col(string_len(MaxteraTransactions::Status, 16))
                    .col(big_integer(MaxteraTransactions::AmountMinor))
                    .col(string_len(MaxteraTransactions::Currency, 3))
                    .col(string_len_null(MaxteraTransactions::Reference, 40).unique_key())
                    .col(string_len_null(MaxteraTransactions::Network, 16))
                    .col(string_len_null(MaxteraTransactions::Phone, 16))
                    .col(string_len_null(MaxteraTransactions::Plan, 32))
                    .col(string_len_null(MaxteraTransactions::Service, 32))
                    .col(string_len_null(MaxteraTransactions::ServiceId, 40))
                    .col(string_len_null(MaxteraTransactions::VariationCode, 64))
                    .col(string_len_null(MaxteraTransactions::BillersCode, 32))
                    .col(string_len_null(MaxteraTransactions::ProviderRequestId, 64))
                    .col(string_len_null(MaxteraTransactions::ProviderReference, 100))
                    .col(json_null(MaxteraTransactions::Details))
                    .col(string_len_null(MaxteraTransactions::FailureReason, 255))
                    .col(string_len_null(MaxteraTransactions::JobId, 40))
                    .col(timestamp_with_time_zone_null(MaxteraTransactions::SentAt))
                    .col(timestamp_with_time_zone_null(MaxteraTransactions::CompletedAt))
                    .col(timestamp_with_time_zone(MaxteraTransactions::CreatedAt))
                    .col(timestamp_with_time_zone(MaxteraTransactions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_maxtera_transactions_user")
                    .table(MaxteraTransactions::Table)
                    .col(MaxteraTransactions::UserId)
                    .col(MaxteraTransactions::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MaxteraDataPlans::Table)
                    .col(big_pk_auto(MaxteraDataPlans::Id))
                    .col(string_len(MaxteraDataPlans::Network, 16))
                    .col(string_len(MaxteraDataPlans::Plan, 32))
                    .col(string_len(MaxteraDataPlans::VariationCode, 64))
                    .col(string_len(MaxteraDataPlans::Description, 100))
                    .col(big_integer(MaxteraDataPlans::AmountMinor))
                    .col(integer(MaxteraDataPlans::ValidityDays))
                    .col(boolean(MaxteraDataPlans::Active))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_maxtera_data_plans_network_plan")
                    .table(MaxteraDataPlans::Table)
                    .col(MaxteraDataPlans::Network)
                    .col(MaxteraDataPlans::Plan)
                    .unique()
                    .to_owned(),
            )
            .await?;
        let mut seed = Query::insert()
            .into_table(MaxteraDataPlans::Table)
            .columns([
                MaxteraDataPlans::Network,
                MaxteraDataPlans::Plan,
                MaxteraDataPlans::VariationCode,
                MaxteraDataPlans::Description,
                MaxteraDataPlans::AmountMinor,
                MaxteraDataPlans::ValidityDays,
                MaxteraDataPlans::Active,
            ])
            .to_owned();
        for (network, plan, code, description, amount_minor, days) in PLANS {
            seed.values_panic([
                (*network).into(),
                (*plan).into(),
                (*code).into(),
                (*description).into(),
                (*amount_minor).into(),
                (*days).into(),
                true.into(),
            ]);
        }
        manager.exec_stmt(seed).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(MaxteraDataPlans::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(MaxteraTransactions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(MaxteraAccounts::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum MaxteraAccounts {
    Table,
    Id,
    UserId,
    Phone,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum MaxteraTransactions {
    Table,
    Id,
    UserId,
    Kind,
    Status,
    AmountMinor,
    Currency,
    Reference,
    Network,
    Phone,
    Plan,
    Service,
    ServiceId,
    VariationCode,
    BillersCode,
    ProviderRequestId,
    ProviderReference,
    Details,
    FailureReason,
    JobId,
    SentAt,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum MaxteraDataPlans {
    Table,
    Id,
    Network,
    Plan,
    VariationCode,
    Description,
    AmountMinor,
    ValidityDays,
    Active,
}
