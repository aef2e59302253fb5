//! A refund records when it was first sent to the provider, as payments (`initiated_at`) and
//! payouts (`sent_at`) do: from then on a failure that is not the provider's own refusal may
//! hide a refund the provider made, so the refund is held as `unknown` rather than released.

use sea_orm_migration::{prelude::*, schema::timestamp_with_time_zone_null};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Refunds::Table)
                    .add_column(timestamp_with_time_zone_null(Refunds::SentAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(Refunds::Table).drop_column(Refunds::SentAt).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Refunds {
    Table,
    SentAt,
}
