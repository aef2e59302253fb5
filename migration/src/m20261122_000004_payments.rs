//! Payments, and the events recorded when they change (delivered later as webhooks).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payments::Table)
                    .col(string_len(Payments::Id, 40).primary_key())
                    .col(string_len(Payments::MerchantId, 40))
                    .col(string_len(Payments::Provider, 32))
                    .col(string_len(Payments::Mode, 16))
                    .col(big_integer(Payments::AmountMinor))
                    .col(string_len(Payments::Currency, 3))
                    .col(string_len(Payments::Status, 16))
                    .col(string_len(Payments::CustomerPhone, 20))
                    .col(string_len_null(Payments::Description, 500))
                    .col(json_null(Payments::Metadata))
                    .col(string_len(Payments::Reference, 64))
                    .col(string_len_null(Payments::ProviderTransactionId, 100))
                    .col(string_len_null(Payments::FailureReason, 500))
                    .col(big_integer(Payments::RefundedMinor).default(0))
                    .col(string_len_null(Payments::JobId, 40))
                    .col(timestamp_with_time_zone(Payments::ExpiresAt))
                    .col(timestamp_with_time_zone_null(Payments::CompletedAt))
                    .col(timestamp_with_time_zone(Payments::CreatedAt))
                    .col(timestamp_with_time_zone(Payments::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_payments_merchant", vec![Payments::MerchantId, Payments::Id]),
            ("idx_payments_status_expires", vec![Payments::Status, Payments::ExpiresAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(Payments::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("uq_payments_reference")
                    .table(Payments::Table)
                    .col(Payments::Reference)
                    .unique()
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Events::Table)
                    .col(string_len(Events::Id, 40).primary_key())
                    .col(string_len(Events::MerchantId, 40))
                    .col(string_len(Events::EventType, 64))
                    .col(string_len(Events::ResourceType, 32))
                    .col(string_len(Events::ResourceId, 40))
                    .col(big_integer(Events::Sequence))
                    .col(json(Events::Payload))
                    .col(timestamp_with_time_zone(Events::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_events_resource_sequence")
                    .table(Events::Table)
                    .col(Events::ResourceType)
                    .col(Events::ResourceId)
                    .col(Events::Sequence)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Events::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Payments::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    Id,
    MerchantId,
    Provider,
    Mode,
    AmountMinor,
    Currency,
    Status,
    CustomerPhone,
    Description,
    Metadata,
    Reference,
    ProviderTransactionId,
    FailureReason,
    RefundedMinor,
    JobId,
    ExpiresAt,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Id,
    MerchantId,
    EventType,
    ResourceType,
    ResourceId,
    Sequence,
    Payload,
    CreatedAt,
}
