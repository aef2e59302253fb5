//! Most payments belong to no payment link and no subscription, yet every payment wrote a
//! null entry into both indexes that find a link's or a subscription's payments. Those lookups
//! always name a link or a subscription, so the indexes need only the payments that have one.
//! The partial indexes take new names: SQLite refused to recreate a dropped index's name
//! within one migration.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Each column's index before this migration, and its partial replacement.
const INDEXES: [(Payments, &str, &str); 2] = [
    (Payments::PaymentLinkId, "idx_payments_payment_link", "idx_payments_of_payment_link"),
    (Payments::SubscriptionId, "idx_payments_subscription", "idx_payments_of_subscription"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (column, whole, partial) in INDEXES {
            manager
                .create_index(
                    Index::create()
                        .name(partial)
                        .table(Payments::Table)
                        .col(column)
                        .and_where(Expr::col(column).is_not_null())
                        .to_owned(),
                )
                .await?;
            manager.drop_index(Index::drop().name(whole).table(Payments::Table).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (column, whole, partial) in INDEXES {
            manager
                .create_index(Index::create().name(whole).table(Payments::Table).col(column).to_owned())
                .await?;
            manager.drop_index(Index::drop().name(partial).table(Payments::Table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    PaymentLinkId,
    SubscriptionId,
}
