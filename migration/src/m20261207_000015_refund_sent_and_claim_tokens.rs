//! A refund records when it was first sent to the provider, as payments (`initiated_at`) and
//! payouts (`sent_at`) do: from then on a failure that is not the provider's own refusal may
//! hide a refund the provider made, so the refund is held as `unknown` rather than released.
//!
//! An idempotency claim carries the token of the request holding it: a request that takes over
//! a dead one's claim gets a new token, and only the holder of the current token may record the
//! response, so the request it took over from can never commit as well.

use sea_orm_migration::{
    prelude::*,
    schema::{string_len_null, timestamp_with_time_zone_null},
};

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
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .add_column(string_len_null(IdempotencyKeys::ClaimToken, 32))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(IdempotencyKeys::Table)
                    .drop_column(IdempotencyKeys::ClaimToken)
                    .to_owned(),
            )
            .await?;
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

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    ClaimToken,
}
