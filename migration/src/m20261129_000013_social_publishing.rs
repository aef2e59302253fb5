//! Social publishing: the accounts merchants connect over OAuth (tokens sealed), the pending
//! authorizations whose `state` is spent once, the posts workers publish and every attempt's
//! log.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SocialAccounts::Table)
                    .col(string_len(SocialAccounts::Id, 40).primary_key())
                    .col(string_len(SocialAccounts::UserId, 40))
                    .col(string_len(SocialAccounts::Platform, 16))
                    .col(string_len(SocialAccounts::Kind, 16))
                    .col(string_len(SocialAccounts::ExternalId, 128))
                    .col(string_len(SocialAccounts::Name, 255))
                    .col(string_len(SocialAccounts::Status, 16))
                    .col(text(SocialAccounts::SealedTokens))
                    .col(string_len_null(SocialAccounts::Scope, 500))
                    .col(timestamp_with_time_zone_null(SocialAccounts::TokenExpiresAt))
                    .col(timestamp_with_time_zone_null(SocialAccounts::LastRefreshedAt))
                    .col(string_len_null(SocialAccounts::LastError, 1000))
                    .col(timestamp_with_time_zone_null(SocialAccounts::SuspendedAt))
                    .col(timestamp_with_time_zone(SocialAccounts::CreatedAt))
                    .col(timestamp_with_time_zone(SocialAccounts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_social_accounts_owner_target")
                    .table(SocialAccounts::Table)
                    .col(SocialAccounts::UserId)
                    .col(SocialAccounts::Kind)
                    .col(SocialAccounts::ExternalId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_accounts_expiry")
                    .table(SocialAccounts::Table)
                    .col(SocialAccounts::Status)
                    .col(SocialAccounts::TokenExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SocialOauthStates::Table)
                    .col(string_len(SocialOauthStates::Id, 40).primary_key())
                    .col(string_len(SocialOauthStates::UserId, 40))
                    .col(string_len(SocialOauthStates::Platform, 16))
                    .col(string_len(SocialOauthStates::RedirectUri, 2048))
                    .col(timestamp_with_time_zone(SocialOauthStates::ExpiresAt))
                    .col(timestamp_with_time_zone_null(SocialOauthStates::UsedAt))
                    .col(timestamp_with_time_zone(SocialOauthStates::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_oauth_states_expiry")
                    .table(SocialOauthStates::Table)
                    .col(SocialOauthStates::ExpiresAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SocialPosts::Table)
                    .col(string_len(SocialPosts::Id, 40).primary_key())
                    .col(string_len(SocialPosts::UserId, 40))
                    .col(string_len(SocialPosts::SocialAccountId, 40))
                    .col(string_len(SocialPosts::Platform, 16))
                    .col(text(SocialPosts::Content))
                    .col(json(SocialPosts::MediaUrls))
                    .col(string_len(SocialPosts::Status, 16))
                    .col(timestamp_with_time_zone_null(SocialPosts::ScheduledAt))
                    .col(string_len_null(SocialPosts::PublishJobId, 40))
                    .col(string_len_null(SocialPosts::PublishHandle, 255))
                    .col(string_len_null(SocialPosts::PlatformPostId, 255))
                    .col(timestamp_with_time_zone_null(SocialPosts::PublishedAt))
                    .col(text_null(SocialPosts::Error))
                    .col(integer(SocialPosts::Attempts).default(0))
                    .col(timestamp_with_time_zone(SocialPosts::CreatedAt))
                    .col(timestamp_with_time_zone(SocialPosts::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        for (name, columns) in [
            ("idx_social_posts_owner", [SocialPosts::UserId, SocialPosts::Id]),
            ("idx_social_posts_due", [SocialPosts::Status, SocialPosts::ScheduledAt]),
            ("idx_social_posts_account", [SocialPosts::SocialAccountId, SocialPosts::Status]),
        ] {
            let mut index = Index::create().name(name).table(SocialPosts::Table).to_owned();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table(SocialPublishLogs::Table)
                    .col(string_len(SocialPublishLogs::Id, 40).primary_key())
                    .col(string_len(SocialPublishLogs::PostId, 40))
                    .col(string_len(SocialPublishLogs::Action, 16))
                    .col(integer(SocialPublishLogs::Attempt))
                    .col(string_len(SocialPublishLogs::Outcome, 16))
                    .col(json_null(SocialPublishLogs::Exchanges))
                    .col(text_null(SocialPublishLogs::Error))
                    .col(string_len_null(SocialPublishLogs::JobId, 40))
                    .col(string_len_null(SocialPublishLogs::UserId, 40))
                    .col(timestamp_with_time_zone(SocialPublishLogs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_social_publish_logs_post")
                    .table(SocialPublishLogs::Table)
                    .col(SocialPublishLogs::PostId)
                    .col(SocialPublishLogs::CreatedAt)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SocialPublishLogs::Table.into_iden(),
            SocialPosts::Table.into_iden(),
            SocialOauthStates::Table.into_iden(),
            SocialAccounts::Table.into_iden(),
        ] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum SocialAccounts {
    Table,
    Id,
    UserId,
    Platform,
    Kind,
    ExternalId,
    Name,
    Status,
    SealedTokens,
    Scope,
    TokenExpiresAt,
    LastRefreshedAt,
    LastError,
    SuspendedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SocialOauthStates {
    Table,
    Id,
    UserId,
    Platform,
    RedirectUri,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SocialPosts {
    Table,
    Id,
    UserId,
    SocialAccountId,
    Platform,
    Content,
    MediaUrls,
    Status,
    ScheduledAt,
    PublishJobId,
    PublishHandle,
    PlatformPostId,
    PublishedAt,
    Error,
    Attempts,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SocialPublishLogs {
    Table,
    Id,
    PostId,
    Action,
    Attempt,
    Outcome,
    Exchanges,
    Error,
    JobId,
    UserId,
    CreatedAt,
}
