//! Provider configurations, global and per merchant, with their secrets sealed.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ProviderConfigs::Table)
                    .col(string_len(ProviderConfigs::Id, 40).primary_key())
                    .col(string_len(ProviderConfigs::Provider, 32))
                    .col(string_len(ProviderConfigs::Scope, 40))
                    .col(boolean(ProviderConfigs::Enabled).default(true))
                    .col(string_len(ProviderConfigs::Mode, 16))
                    .col(json(ProviderConfigs::Settings))
                    .col(text_null(ProviderConfigs::SealedSecrets))
                    .col(string_len_null(ProviderConfigs::UpdatedBy, 40))
                    .col(timestamp_with_time_zone(ProviderConfigs::CreatedAt))
                    .col(timestamp_with_time_zone(ProviderConfigs::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_provider_configs_provider_scope")
                    .table(ProviderConfigs::Table)
                    .col(ProviderConfigs::Provider)
                    .col(ProviderConfigs::Scope)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(ProviderConfigs::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum ProviderConfigs {
    Table,
    Id,
    Provider,
    Scope,
    Enabled,
    Mode,
    Settings,
    SealedSecrets,
    UpdatedBy,
    CreatedAt,
    UpdatedAt,
}
