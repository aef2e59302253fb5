//! A system account (provider clearing, refunds in flight, the outside world) stops keeping a
//! running balance: every payment posts to its provider's clearing account, so a stored balance
//! there would be one row every completion updates and waits on. Its balance is now the sum of
//! its postings, which are only ever inserted; the stored column of such accounts is zeroed so
//! that it cannot be mistaken for the balance.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("UPDATE ledger_accounts SET balance_minor = 0 WHERE allow_negative")
            .await
            .map(|_| ())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE ledger_accounts SET balance_minor = COALESCE((SELECT SUM(amount_minor) \
                 FROM ledger_postings WHERE ledger_postings.account_id = ledger_accounts.id), 0) \
                 WHERE allow_negative",
            )
            .await
            .map(|_| ())
    }
}
