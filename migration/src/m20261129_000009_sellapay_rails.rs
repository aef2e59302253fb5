//! What M-Pesa and bank payouts need to remember about the rail's side, the merchant's own
//! reference on a payment (M-Pesa shows it to the customer), and one list of Sellapay
//! transactions covering STK pushes and payouts alike.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite's ALTER TABLE adds a single column at a time.
        for column in
            [timestamp_with_time_zone_null(Payouts::SentAt), string_len_null(Payouts::ProviderHandle, 100)]
        {
            manager.alter_table(Table::alter().table(Payouts::Table).add_column(column).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Payments::Table)
                    .add_column(string_len_null(Payments::MerchantReference, 64))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SellapayTransactions::Table)
                    .col(string_len(SellapayTransactions::TransactionId, 40).primary_key())
                    .col(string_len(SellapayTransactions::MerchantId, 40))
                    .col(string_len(SellapayTransactions::Kind, 16))
                    .col(string_len_null(SellapayTransactions::PaymentId, 40))
                    .col(string_len_null(SellapayTransactions::PayoutId, 40))
                    .col(timestamp_with_time_zone(SellapayTransactions::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sellapay_transactions_merchant")
                    .table(SellapayTransactions::Table)
                    .col(SellapayTransactions::MerchantId)
                    .col(SellapayTransactions::TransactionId)
                    .to_owned(),
            )
            .await?;
        // Payouts made before this list existed join it under the ids they were given.
        let backfill = Query::insert()
            .into_table(SellapayTransactions::Table)
            .columns([
                SellapayTransactions::TransactionId,
                SellapayTransactions::MerchantId,
                SellapayTransactions::Kind,
                SellapayTransactions::PayoutId,
                SellapayTransactions::CreatedAt,
            ])
            .select_from(
                Query::select()
                    .column(Payouts::TransactionId)
                    .column(Payouts::MerchantId)
                    .expr(Expr::val("payout"))
                    .column(Payouts::Id)
                    .column(Payouts::CreatedAt)
                    .from(Payouts::Table)
                    .to_owned(),
            )
            .map_err(|err| DbErr::Migration(err.to_string()))?
            .to_owned();
        manager.exec_stmt(backfill).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SellapayTransactions::Table).to_owned()).await?;
        manager
            .alter_table(
                Table::alter().table(Payments::Table).drop_column(Payments::MerchantReference).to_owned(),
            )
            .await?;
        for column in [Payouts::SentAt, Payouts::ProviderHandle] {
            manager.alter_table(Table::alter().table(Payouts::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Payouts {
    Table,
    Id,
    MerchantId,
    TransactionId,
    SentAt,
    ProviderHandle,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Payments {
    Table,
    MerchantReference,
}

#[derive(DeriveIden, Clone, Copy)]
enum SellapayTransactions {
    Table,
    TransactionId,
    MerchantId,
    Kind,
    PaymentId,
    PayoutId,
    CreatedAt,
}
