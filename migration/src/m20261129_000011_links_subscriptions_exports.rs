//! Payment links and their hosted checkout, subscriptions and their renewals, and the CSV
//! exports workers build. Payments learn which link or subscription they pay for.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PaymentLinks::Table)
                    .col(string_len(PaymentLinks::Id, 40).primary_key())
                    .col(string_len(PaymentLinks::MerchantId, 40))
                    .col(string_len(PaymentLinks::Title, 255))
                    .col(big_integer(PaymentLinks::AmountMinor))
                    .col(string_len(PaymentLinks::Currency, 10))
                    .col(integer_null(PaymentLinks::MaxUses))
                    .col(integer(PaymentLinks::UsesCount).default(0))
                    .col(integer(PaymentLinks::ReservedCount).default(0))
                    .col(timestamp_with_time_zone_null(PaymentLinks::ExpiresAt))
                    .col(json_null(PaymentLinks::Providers))
                    .col(json_null(PaymentLinks::Metadata))
                    .col(string_len(PaymentLinks::Status, 16))
                    .col(timestamp_with_time_zone(PaymentLinks::CreatedAt))
                    .col(timestamp_with_time_zone(PaymentLinks::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payment_links_merchant")
                    .table(PaymentLinks::Table)
                    .col(PaymentLinks::MerchantId)
                    .col(PaymentLinks::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payment_links_expiry")
                    .table(PaymentLinks::Table)
                    .col(PaymentLinks::Status)
                    .col(PaymentLinks::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Subscriptions::Table)
                    .col(string_len(Subscriptions::Id, 40).primary_key())
                    .col(string_len(Subscriptions::MerchantId, 40))
                    .col(string_len(Subscriptions::Label, 255))
                    .col(string_len(Subscriptions::CustomerPhone, 30))
                    .col(big_integer(Subscriptions::AmountMinor))
                    .col(string_len(Subscriptions::Currency, 10))
                    .col(string_len_null(Subscriptions::Description, 500))
                    .col(string_len(Subscriptions::Interval, 16))
                    .col(string_len(Subscriptions::Provider, 16))
                    .col(string_len(Subscriptions::Status, 16))
                    .col(timestamp_with_time_zone(Subscriptions::NextRenewalAt))
                    .col(small_integer(Subscriptions::AnchorDay))
                    .col(boolean(Subscriptions::Overdue).default(false))
                    .col(integer(Subscriptions::RenewalAttempts).default(0))
                    .col(timestamp_with_time_zone_null(Subscriptions::RetryAt))
                    .col(string_len_null(Subscriptions::RenewalPaymentId, 40))
                    .col(string_len_null(Subscriptions::LastPaymentId, 40))
                    .col(timestamp_with_time_zone_null(Subscriptions::LastRenewedAt))
                    .col(integer(Subscriptions::RenewalCount).default(0))
                    .col(json_null(Subscriptions::Metadata))
                    .col(timestamp_with_time_zone(Subscriptions::CreatedAt))
                    .col(timestamp_with_time_zone(Subscriptions::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_subscriptions_merchant")
                    .table(Subscriptions::Table)
                    .col(Subscriptions::MerchantId)
                    .col(Subscriptions::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_subscriptions_due")
                    .table(Subscriptions::Table)
                    .col(Subscriptions::Status)
                    .col(Subscriptions::NextRenewalAt)
                    .to_owned(),
            )
            .await?;

        for column in [
            ColumnDef::new(Payments::PaymentLinkId).string_len(40).null().to_owned(),
            ColumnDef::new(Payments::SubscriptionId).string_len(40).null().to_owned(),
        ] {
            manager.alter_table(Table::alter().table(Payments::Table).add_column(column).to_owned()).await?;
        }
        for (name, column) in [
            ("idx_payments_payment_link", Payments::PaymentLinkId),
            ("idx_payments_subscription", Payments::SubscriptionId),
        ] {
            manager
                .create_index(Index::create().name(name).table(Payments::Table).col(column).to_owned())
                .await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Exports::Table)
                    .col(string_len(Exports::Id, 40).primary_key())
                    .col(string_len(Exports::OwnerId, 40))
                    .col(string_len(Exports::Kind, 16))
                    .col(json(Exports::Filters))
                    .col(string_len(Exports::Status, 16))
                    .col(big_integer(Exports::RowsWritten).default(0))
                    .col(big_integer(Exports::BytesWritten).default(0))
                    .col(string_len_null(Exports::JobId, 40))
                    .col(string_len_null(Exports::Error, 500))
                    .col(string_len(Exports::Filename, 200))
                    .col(timestamp_with_time_zone(Exports::CreatedAt))
                    .col(timestamp_with_time_zone_null(Exports::StartedAt))
                    .col(timestamp_with_time_zone_null(Exports::CompletedAt))
                    .col(timestamp_with_time_zone(Exports::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_exports_owner")
                    .table(Exports::Table)
                    .col(Exports::OwnerId)
                    .col(Exports::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ExportChunks::Table)
                    .col(string_len(ExportChunks::ExportId, 40))
                    .col(integer(ExportChunks::Seq))
                    .col(blob(ExportChunks::Data))
                    .primary_key(Index::create().col(ExportChunks::ExportId).col(ExportChunks::Seq))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ExportChunks::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Exports::Table).to_owned()).await?;
        for name in ["idx_payments_payment_link", "idx_payments_subscription"] {
            manager.drop_index(Index::drop().name(name).table(Payments::Table).to_owned()).await?;
        }
        for column in [Payments::PaymentLinkId, Payments::SubscriptionId] {
            manager.alter_table(Table::alter().table(Payments::Table).drop_column(column).to_owned()).await?;
        }
        manager.drop_table(Table::drop().table(Subscriptions::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(PaymentLinks::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum PaymentLinks {
    Table,
    Id,
    MerchantId,
    Title,
    AmountMinor,
    Currency,
    MaxUses,
    UsesCount,
    ReservedCount,
    ExpiresAt,
    Providers,
    Metadata,
    Status,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Subscriptions {
    Table,
    Id,
    MerchantId,
    Label,
    CustomerPhone,
    AmountMinor,
    Currency,
    Description,
    Interval,
    Provider,
    Status,
    NextRenewalAt,
    AnchorDay,
    Overdue,
    RenewalAttempts,
    RetryAt,
    RenewalPaymentId,
    LastPaymentId,
    LastRenewedAt,
    RenewalCount,
    Metadata,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    PaymentLinkId,
    SubscriptionId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Exports {
    Table,
    Id,
    OwnerId,
    Kind,
    Filters,
    Status,
    RowsWritten,
    BytesWritten,
    JobId,
    Error,
    Filename,
    CreatedAt,
    StartedAt,
    CompletedAt,
    ExpiresAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ExportChunks {
    Table,
    ExportId,
    Seq,
    Data,
}
