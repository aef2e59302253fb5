//! Payouts: money leaving a merchant's balance for a phone, another account or a bank.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Payouts::Table)
                    .col(string_len(Payouts::Id, 40).primary_key())
                    .col(string_len(Payouts::MerchantId, 40))
                    .col(string_len_uniq(Payouts::TransactionId, 40))
                    .col(string_len(Payouts::Kind, 16))
                    .col(string_len(Payouts::Status, 16))
                    .col(big_integer(Payouts::AmountMinor))
                    .col(string_len(Payouts::Currency, 3))
                    .col(string_len_null(Payouts::Phone, 20))
                    .col(string_len_null(Payouts::RecipientAccount, 64))
                    .col(string_len_null(Payouts::RecipientId, 40))
                    .col(string_len_null(Payouts::BankCode, 8))
                    .col(string_len_null(Payouts::AccountNumber, 34))
                    .col(string_len_null(Payouts::AccountName, 100))
                    .col(string_len_null(Payouts::Reference, 64))
                    .col(string_len_null(Payouts::Narrative, 255))
                    .col(string_len_null(Payouts::ProviderReference, 100))
                    .col(string_len_null(Payouts::FailureReason, 500))
                    .col(string_len_null(Payouts::JobId, 40))
                    .col(timestamp_with_time_zone_null(Payouts::CompletedAt))
                    .col(timestamp_with_time_zone(Payouts::CreatedAt))
                    .col(timestamp_with_time_zone(Payouts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_payouts_merchant")
                    .table(Payouts::Table)
                    .col(Payouts::MerchantId)
                    .col(Payouts::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Payouts::Table).to_owned()).await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Payouts {
    Table,
    Id,
    MerchantId,
    TransactionId,
    Kind,
    Status,
    AmountMinor,
    Currency,
    Phone,
    RecipientAccount,
    RecipientId,
    BankCode,
    AccountNumber,
    AccountName,
    Reference,
    Narrative,
    ProviderReference,
    FailureReason,
    JobId,
    CompletedAt,
    CreatedAt,
    UpdatedAt,
}
