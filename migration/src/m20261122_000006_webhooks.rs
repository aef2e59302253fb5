//! Webhook endpoints, one delivery per event and endpoint, and every attempt of each delivery.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(string_len(WebhookEndpoints::Id, 40).primary_key())
                    .col(string_len(WebhookEndpoints::UserId, 40))
                    .col(string_len(WebhookEndpoints::Url, 2048))
                    .col(text(WebhookEndpoints::SecretSealed))
                    .col(string_len(WebhookEndpoints::SecretHint, 16))
                    .col(json(WebhookEndpoints::Events))
                    .col(boolean(WebhookEndpoints::IsActive).default(true))
                    .col(string_len_null(WebhookEndpoints::DisabledReason, 500))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::DisabledAt))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::FailingSince))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::LastSuccessAt))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::LastFailureAt))
                    .col(string_len_null(WebhookEndpoints::LaneToken, 40))
                    .col(timestamp_with_time_zone_null(WebhookEndpoints::LaneUntil))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(string_len(WebhookDeliveries::Id, 40).primary_key())
                    .col(string_len(WebhookDeliveries::EndpointId, 40))
                    .col(string_len(WebhookDeliveries::MerchantId, 40))
                    .col(string_len(WebhookDeliveries::EventId, 40))
                    .col(string_len(WebhookDeliveries::EventType, 64))
                    .col(string_len(WebhookDeliveries::Status, 16))
                    .col(string_len(WebhookDeliveries::Trigger, 16))
                    .col(string_len_null(WebhookDeliveries::SourceDeliveryId, 40))
                    .col(integer(WebhookDeliveries::Attempts).default(0))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::NextAttemptAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::ClaimedUntil))
                    .col(integer_null(WebhookDeliveries::LastStatusCode))
                    .col(string_len_null(WebhookDeliveries::LastError, 500))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::LastAttemptAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::DeliveredAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::DeadLetteredAt))
                    .col(timestamp_with_time_zone_null(WebhookDeliveries::ReplayedAt))
                    .col(string_len_null(WebhookDeliveries::ReplayedBy, 40))
                    .col(timestamp_with_time_zone(WebhookDeliveries::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookDeliveries::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookAttempts::Table)
                    .col(string_len(WebhookAttempts::Id, 40).primary_key())
                    .col(string_len(WebhookAttempts::DeliveryId, 40))
                    .col(integer(WebhookAttempts::Attempt))
                    .col(integer_null(WebhookAttempts::StatusCode))
                    .col(big_integer(WebhookAttempts::LatencyMs))
                    .col(string_len_null(WebhookAttempts::Error, 500))
                    .col(text_null(WebhookAttempts::ResponseBody))
                    .col(timestamp_with_time_zone(WebhookAttempts::StartedAt))
                    .to_owned(),
            )
            .await?;
        for statement in [
            index(
                "idx_webhook_endpoints_user",
                WebhookEndpoints::Table,
                [WebhookEndpoints::UserId, WebhookEndpoints::Id],
            ),
            index(
                "idx_webhook_deliveries_due",
                WebhookDeliveries::Table,
                [WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            index(
                "idx_webhook_deliveries_lane",
                WebhookDeliveries::Table,
                [WebhookDeliveries::EndpointId, WebhookDeliveries::Status, WebhookDeliveries::NextAttemptAt],
            ),
            index(
                "idx_webhook_deliveries_merchant",
                WebhookDeliveries::Table,
                [WebhookDeliveries::MerchantId, WebhookDeliveries::Id],
            ),
            index("idx_webhook_deliveries_event", WebhookDeliveries::Table, [WebhookDeliveries::EventId]),
            index(
                "idx_webhook_attempts_delivery",
                WebhookAttempts::Table,
                [WebhookAttempts::DeliveryId, WebhookAttempts::Attempt],
            ),
        ] {
            manager.create_index(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(WebhookAttempts::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(WebhookDeliveries::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(WebhookEndpoints::Table).to_owned()).await
    }
}

fn index<C: IntoIden>(
    name: &str,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(column);
    }
    index.to_owned()
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEndpoints {
    Table,
    Id,
    UserId,
    Url,
    SecretSealed,
    SecretHint,
    Events,
    IsActive,
    DisabledReason,
    DisabledAt,
    FailingSince,
    LastSuccessAt,
    LastFailureAt,
    LaneToken,
    LaneUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    EndpointId,
    MerchantId,
    EventId,
    EventType,
    Status,
    Trigger,
    SourceDeliveryId,
    Attempts,
    NextAttemptAt,
    ClaimedUntil,
    LastStatusCode,
    LastError,
    LastAttemptAt,
    DeliveredAt,
    DeadLetteredAt,
    ReplayedAt,
    ReplayedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookAttempts {
    Table,
    Id,
    DeliveryId,
    Attempt,
    StatusCode,
    LatencyMs,
    Error,
    ResponseBody,
    StartedAt,
}
