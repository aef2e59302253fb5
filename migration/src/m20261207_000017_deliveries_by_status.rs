//! The webhook DLQ lists a merchant's dead letters, newest first, and counts them. Through the
//! merchant's index of all deliveries both would walk past every delivered webhook, a hundred
//! for each dead letter at a 1% failure rate; this index reaches one status's deliveries
//! directly. (A partial index of the dead letters alone would be smaller, but a prepared
//! statement's generic plan binds the status as a parameter and could not use it.)

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const NAME: &str = "idx_webhook_deliveries_merchant_status";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::MerchantId)
                    .col(WebhookDeliveries::Status)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_index(Index::drop().name(NAME).table(WebhookDeliveries::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    MerchantId,
    Id,
    Status,
}
