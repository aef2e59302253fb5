//! Job rows learn how they are carried: the id of the current Redis push (so that a stale or
//! duplicate delivery is recognised), a bounded log of attempts, the worker running the job, and
//! the resource the job works on (for the job status link).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        for column in [
            string_len_null(Jobs::PushId, 40),
            json_null(Jobs::AttemptLog),
            string_len_null(Jobs::LockedBy, 120),
            string_len_null(Jobs::ResourceType, 50),
            string_len_null(Jobs::ResourceId, 100),
        ] {
            manager.alter_table(Table::alter().table(Jobs::Table).add_column(column).to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in [Jobs::PushId, Jobs::AttemptLog, Jobs::LockedBy, Jobs::ResourceType, Jobs::ResourceId] {
            manager.alter_table(Table::alter().table(Jobs::Table).drop_column(column).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    PushId,
    AttemptLog,
    LockedBy,
    ResourceType,
    ResourceId,
}
