//! What a live collection needs to remember about the provider's side, and refunds.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
        for column in [
            timestamp_with_time_zone_null(Payments::InitiatedAt),
            string_len_null(Payments::ProviderHandle, 100),
            json_null(Payments::ProviderData),
            string_len_null(Payments::CheckoutUrl, 500),
        ] {
            manager.alter_table(Table::alter().table(Payments::Table).add_column(column).to_owned()).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(Refunds::Table)
                    .col(string_len(Refunds::Id, 40).primary_key())
                    .col(string_len(Refunds::PaymentId, 40))
                    .col(string_len(Refunds::MerchantId, 40))
                    .col(string_len(Refunds::Provider, 32))
                    .col(string_len(Refunds::Mode, 16))
                    .col(big_integer(Refunds::AmountMinor))
                    .col(string_len(Refunds::Currency, 3))
                    .col(string_len(Refunds::Status, 16))
                    .col(string_len_null(Refunds::Reason, 255))
                    .col(string_len_null(Refunds::ProviderRefundId, 100))
                    .col(string_len_null(Refunds::FailureReason, 500))
                    .col(integer(Refunds::Attempt).default(1))
                    .col(string_len_null(Refunds::JobId, 40))
                    .col(timestamp_with_time_zone_null(Refunds::NextCheckAt))
                    .col(timestamp_with_time_zone_null(Refunds::CompletedAt))
                    .col(timestamp_with_time_zone(Refunds::CreatedAt))
                    .col(timestamp_with_time_zone(Refunds::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_refunds_payment", vec![Refunds::PaymentId, Refunds::Id]),
            ("idx_refunds_status_check", vec![Refunds::Status, Refunds::NextCheckAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Refunds::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Refunds::Table).to_owned()).await?;
        for column in
            [Payments::InitiatedAt, Payments::ProviderHandle, Payments::ProviderData, Payments::CheckoutUrl]
        {
            manager.alter_table(Table::alter().table(Payments::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    InitiatedAt,
    ProviderHandle,
    ProviderData,
    CheckoutUrl,
}

#[derive(DeriveIden, Clone, Copy)]
enum Refunds {
    Table,
    Id,
    PaymentId,
    MerchantId,
    Provider,
    Mode,
    AmountMinor,
    Currency,
    Status,
    Reason,
    ProviderRefundId,
    FailureReason,
    Attempt,
    JobId,
    NextCheckAt,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}
