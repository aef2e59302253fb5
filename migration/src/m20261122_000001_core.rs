//! The core tables: users and their tokens, runtime config, audit logs, jobs, idempotency keys
//! and the double-entry ledger.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string_len(Users::Id, 40).primary_key())
                    .col(string_len_uniq(Users::Email, 254))
                    .col(string_len(Users::Name, 100))
                    .col(string_len(Users::Role, 16))
                    .col(boolean(Users::IsSuperAdmin).default(false))
                    .col(string_len(Users::Tier, 16))
                    .col(text_null(Users::PasswordHash))
                    .col(string_len_null(Users::Phone, 30))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(string_len(Tokens::Id, 40).primary_key())
                    .col(string_len_uniq(Tokens::Jti, 64))
                    .col(string_len(Tokens::UserId, 40))
                    .col(string_len(Tokens::Name, 100))
                    .col(string_len(Tokens::Status, 16))
                    .col(timestamp_with_time_zone(Tokens::ExpiresAt))
                    .col(json_null(Tokens::CustomClaims))
                    .col(string_len_null(Tokens::CreatedBy, 40))
                    .col(timestamp_with_time_zone(Tokens::CreatedAt))
                    .col(timestamp_with_time_zone_null(Tokens::RevokedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Tokens::Table, Tokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            Tokens::Table,
            "idx_tokens_user",
            &[Tokens::UserId.into_iden(), Tokens::CreatedAt.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(RuntimeConfig::Table)
                    .col(string_len(RuntimeConfig::Key, 100).primary_key())
                    .col(json(RuntimeConfig::Value))
                    .col(string_len_null(RuntimeConfig::UpdatedBy, 40))
                    .col(timestamp_with_time_zone(RuntimeConfig::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AuditLogs::Table)
                    .col(string_len(AuditLogs::Id, 40).primary_key())
                    .col(string_len(AuditLogs::Action, 100))
                    .col(string_len(AuditLogs::EntityType, 50))
                    .col(string_len_null(AuditLogs::EntityId, 100))
                    .col(string_len_null(AuditLogs::ActorId, 40))
                    .col(string_len_null(AuditLogs::Ip, 64))
                    .col(string_len_null(AuditLogs::RequestId, 100))
                    .col(json_null(AuditLogs::Details))
                    .col(timestamp_with_time_zone(AuditLogs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            AuditLogs::Table,
            "idx_audit_logs_created",
            &[AuditLogs::CreatedAt.into_iden(), AuditLogs::Id.into_iden()],
        )
        .await?;
        index(manager, AuditLogs::Table, "idx_audit_logs_action", &[AuditLogs::Action.into_iden()]).await?;
        index(manager, AuditLogs::Table, "idx_audit_logs_actor", &[AuditLogs::ActorId.into_iden()]).await?;

        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(string_len(Jobs::Id, 40).primary_key())
                    .col(string_len(Jobs::Kind, 64))
                    .col(string_len(Jobs::Queue, 64))
                    .col(json(Jobs::Payload))
                    .col(string_len(Jobs::Status, 16))
                    .col(timestamp_with_time_zone(Jobs::RunAt))
                    .col(integer(Jobs::Attempts).default(0))
                    .col(integer(Jobs::MaxAttempts))
                    .col(string_len_null(Jobs::UniqueKey, 200).unique_key())
                    .col(text_null(Jobs::LastError))
                    .col(json_null(Jobs::Result))
                    .col(string_len_null(Jobs::OwnerId, 40))
                    .col(timestamp_with_time_zone(Jobs::CreatedAt))
                    .col(timestamp_with_time_zone(Jobs::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Jobs::StartedAt))
                    .col(timestamp_with_time_zone_null(Jobs::FinishedAt))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            Jobs::Table,
            "idx_jobs_status_run_at",
            &[Jobs::Status.into_iden(), Jobs::RunAt.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(IdempotencyKeys::Table)
                    .col(big_pk_auto(IdempotencyKeys::Id))
                    .col(string_len(IdempotencyKeys::Scope, 64))
                    .col(string_len(IdempotencyKeys::Key, 255))
                    .col(string_len(IdempotencyKeys::Endpoint, 200))
                    .col(string_len(IdempotencyKeys::RequestHash, 64))
                    .col(string_len(IdempotencyKeys::State, 16))
                    .col(integer_null(IdempotencyKeys::ResponseStatus))
                    .col(json_null(IdempotencyKeys::ResponseHeaders))
                    .col(blob_null(IdempotencyKeys::ResponseBody))
                    .col(timestamp_with_time_zone(IdempotencyKeys::LockedAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::ExpiresAt))
                    .col(timestamp_with_time_zone(IdempotencyKeys::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idempotency_scope_key")
                    .table(IdempotencyKeys::Table)
                    .col(IdempotencyKeys::Scope)
                    .col(IdempotencyKeys::Key)
                    .unique()
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            IdempotencyKeys::Table,
            "idx_idempotency_expires",
            &[IdempotencyKeys::ExpiresAt.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerAccounts::Table)
                    .col(string_len(LedgerAccounts::Id, 40).primary_key())
                    .col(string_len_uniq(LedgerAccounts::Code, 200))
                    .col(string_len_null(LedgerAccounts::OwnerId, 40))
                    .col(string_len(LedgerAccounts::Currency, 3))
                    .col(big_integer(LedgerAccounts::BalanceMinor).default(0))
                    .col(boolean(LedgerAccounts::AllowNegative).default(false))
                    .col(timestamp_with_time_zone(LedgerAccounts::CreatedAt))
                    .col(timestamp_with_time_zone(LedgerAccounts::UpdatedAt))
                    .check((
                        "ck_ledger_accounts_non_negative",
                        Expr::cust("allow_negative OR balance_minor >= 0"),
                    ))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            LedgerAccounts::Table,
            "idx_ledger_accounts_owner",
            &[LedgerAccounts::OwnerId.into_iden()],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerEntries::Table)
                    .col(string_len(LedgerEntries::Id, 40).primary_key())
                    .col(string_len(LedgerEntries::Kind, 64))
                    .col(string_len_uniq(LedgerEntries::Reference, 200))
                    .col(text_null(LedgerEntries::Description))
                    .col(timestamp_with_time_zone(LedgerEntries::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(LedgerPostings::Table)
                    .col(big_pk_auto(LedgerPostings::Id))
                    .col(string_len(LedgerPostings::EntryId, 40))
                    .col(string_len(LedgerPostings::AccountId, 40))
                    .col(big_integer(LedgerPostings::AmountMinor))
                    .col(string_len(LedgerPostings::Currency, 3))
                    .col(timestamp_with_time_zone(LedgerPostings::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(LedgerPostings::Table, LedgerPostings::EntryId)
                            .to(LedgerEntries::Table, LedgerEntries::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(LedgerPostings::Table, LedgerPostings::AccountId)
                            .to(LedgerAccounts::Table, LedgerAccounts::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            LedgerPostings::Table,
            "idx_ledger_postings_account",
            &[LedgerPostings::AccountId.into_iden()],
        )
        .await?;
        index(
            manager,
            LedgerPostings::Table,
            "idx_ledger_postings_entry",
            &[LedgerPostings::EntryId.into_iden()],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            LedgerPostings::Table.into_iden(),
            LedgerEntries::Table.into_iden(),
            LedgerAccounts::Table.into_iden(),
            IdempotencyKeys::Table.into_iden(),
            Jobs::Table.into_iden(),
            AuditLogs::Table.into_iden(),
            RuntimeConfig::Table.into_iden(),
            Tokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

async fn index(
    manager: &SchemaManager<'_>,
    table: impl IntoIden,
    name: &str,
    cols: &[DynIden],
) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col.clone());
    }
    manager.create_index(stmt.to_owned()).await
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    Name,
    Role,
    IsSuperAdmin,
    Tier,
    PasswordHash,
    Phone,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Tokens {
    Table,
    Id,
    Jti,
    UserId,
    Name,
    Status,
    ExpiresAt,
    CustomClaims,
    CreatedBy,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum RuntimeConfig {
    Table,
    Key,
    Value,
    UpdatedBy,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum AuditLogs {
    Table,
    Id,
    Action,
    EntityType,
    EntityId,
    ActorId,
    Ip,
    RequestId,
    Details,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    Id,
    Kind,
    Queue,
    Payload,
    Status,
    RunAt,
    Attempts,
    MaxAttempts,
    UniqueKey,
    LastError,
    Result,
    OwnerId,
    CreatedAt,
    UpdatedAt,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum IdempotencyKeys {
    Table,
    Id,
    Scope,
    Key,
    Endpoint,
    RequestHash,
    State,
    ResponseStatus,
    ResponseHeaders,
    ResponseBody,
    LockedAt,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerAccounts {
    Table,
    Id,
    Code,
    OwnerId,
    Currency,
    BalanceMinor,
    AllowNegative,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum LedgerEntries {
    Table,
    Id,
    Kind,
    Reference,
    Description,
    CreatedAt,
}

#[derive(DeriveIden)]
enum LedgerPostings {
    Table,
    Id,
    EntryId,
    AccountId,
    AmountMinor,
    Currency,
    CreatedAt,
}
