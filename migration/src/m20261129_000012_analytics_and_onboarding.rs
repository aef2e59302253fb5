//! Analytics read a merchant's payments by creation date; the onboarding wizard's UAT
//! confirmation is recorded once per merchant, however many requests race to record it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UAT_CONFIRMED_ONCE: &str = "uq_audit_logs_uat_confirmed";
const PAYMENTS_BY_CREATION: &str = "idx_payments_merchant_created";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A partial index: one confirmation row per merchant, while every other audit row
        // stays free to repeat. Both PostgreSQL and SQLite enforce a unique partial index.
        manager
            .create_index(
                Index::create()
                    .name(UAT_CONFIRMED_ONCE)
                    .table(AuditLogs::Table)
                    .col(AuditLogs::EntityType)
                    .col(AuditLogs::EntityId)
                    .unique()
                    .and_where(Expr::col(AuditLogs::Action).eq("onboarding.uat.confirmed"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(PAYMENTS_BY_CREATION)
                    .table(Payments::Table)
                    .col(Payments::MerchantId)
                    .col(Payments::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(PAYMENTS_BY_CREATION).table(Payments::Table).to_owned())
            .await?;
        manager.drop_index(Index::drop().name(UAT_CONFIRMED_ONCE).table(AuditLogs::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum AuditLogs {
    Table,
    Action,
    EntityType,
    EntityId,
}

#[derive(DeriveIden)]
enum Payments {
    Table,
    MerchantId,
    CreatedAt,
}
