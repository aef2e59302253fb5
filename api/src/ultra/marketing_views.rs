//! What clients see of social accounts, posts and publish logs, for the merchant's and the
//! admin's marketing endpoints alike. Tokens never leave the database.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use serde_json::Value;
use ultra_domain::social::posts::media_of;
use ultra_entity::{
    social_accounts::{self as account_rows, SocialAccountKind, SocialAccountStatus, SocialPlatform},
    social_posts::{self as post_rows, SocialPostStatus},
    social_publish_logs,
};

use super::payments::JobRef;

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "SocialPlatform")]
pub enum PlatformName {
    Meta,
    Tiktok,
}

impl From<PlatformName> for SocialPlatform {
    fn from(name: PlatformName) -> Self {
        match name {
            PlatformName::Meta => Self::Meta,
            PlatformName::Tiktok => Self::Tiktok,
        }
    }
}

impl From<SocialPlatform> for PlatformName {
    fn from(platform: SocialPlatform) -> Self {
        match platform {
            SocialPlatform::Meta => Self::Meta,
            SocialPlatform::Tiktok => Self::Tiktok,
        }
    }
}

/// Where an account's posts go: a Meta connection gives a Facebook Page and, when the Page has
/// one, its Instagram business account.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case", rename = "SocialAccountType")]
pub enum AccountType {
    FacebookPage,
    Instagram,
    Tiktok,
}

impl From<SocialAccountKind> for AccountType {
    fn from(kind: SocialAccountKind) -> Self {
        match kind {
            SocialAccountKind::FacebookPage => Self::FacebookPage,
            SocialAccountKind::Instagram => Self::Instagram,
            SocialAccountKind::Tiktok => Self::Tiktok,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "SocialAccountStatus")]
pub enum AccountStatus {
    Active,
    Revoked,
    Expired,
}

impl From<SocialAccountStatus> for AccountStatus {
    fn from(status: SocialAccountStatus) -> Self {
        match status {
            SocialAccountStatus::Active => Self::Active,
            SocialAccountStatus::Revoked => Self::Revoked,
            SocialAccountStatus::Expired => Self::Expired,
        }
    }
}

impl From<AccountStatus> for SocialAccountStatus {
    fn from(status: AccountStatus) -> Self {
        match status {
            AccountStatus::Active => Self::Active,
            AccountStatus::Revoked => Self::Revoked,
            AccountStatus::Expired => Self::Expired,
        }
    }
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase", rename = "SocialPostStatus")]
pub enum PostStatus {
    Draft,
    Scheduled,
    Publishing,
    Published,
    Failed,
}

impl From<SocialPostStatus> for PostStatus {
    fn from(status: SocialPostStatus) -> Self {
        match status {
            SocialPostStatus::Draft => Self::Draft,
            SocialPostStatus::Scheduled => Self::Scheduled,
            SocialPostStatus::Publishing => Self::Publishing,
            SocialPostStatus::Published => Self::Published,
            SocialPostStatus::Failed => Self::Failed,
        }
    }
}

impl From<PostStatus> for SocialPostStatus {
    fn from(status: PostStatus) -> Self {
        match status {
            PostStatus::Draft => Self::Draft,
            PostStatus::Scheduled => Self::Scheduled,
            PostStatus::Publishing => Self::Publishing,
            PostStatus::Published => Self::Published,
            PostStatus::Failed => Self::Failed,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase", rename = "SocialAccount")]
pub struct AccountView {
    pub id: String,
    pub user_id: String,
    pub platform: PlatformName,
    pub account_type: AccountType,
    /// The platform's id of the Page, Instagram account or TikTok user.
    pub external_id: String,
    pub name: String,
    pub status: AccountStatus,
    pub scope: Option<String>,
    /// When the token that needs renewing lapses; the `refresh-social-tokens` schedule renews
    /// it ahead of that.
    pub token_expires_at: Option<DateTime<Utc>>,
    pub last_refreshed_at: Option<DateTime<Utc>>,
    /// Why the last renewal or publication through this account failed.
    pub last_error: Option<String>,
    /// When an admin revoked the account; only an admin reinstates it.
    pub suspended_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<account_rows::Model> for AccountView {
    fn from(account: account_rows::Model) -> Self {
        Self {
            id: account.id,
            user_id: account.user_id,
            platform: account.platform.into(),
            account_type: account.kind.into(),
            external_id: account.external_id,
            name: account.name,
            status: account.status.into(),
            scope: account.scope,
            token_expires_at: account.token_expires_at,
            last_refreshed_at: account.last_refreshed_at,
            last_error: account.last_error,
            suspended_at: account.suspended_at,
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

/// An account and the job started for it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct AccountJob {
    pub account: AccountView,
    pub job: Option<JobRef>,
}

#[derive(Object)]
#[oai(rename_all = "camelCase", rename = "SocialPublishLog")]
pub struct PublishLogView {
    pub id: String,
    pub post_id: String,
    /// `publish` or `cancel`.
    pub action: String,
    pub attempt: i32,
    /// `published`, `processing`, `retrying`, `failed` or `cancelled`.
    pub outcome: String,
    pub error: Option<String>,
    /// The attempt's HTTP exchanges with the platform (method, URL, request, status, response),
    /// secrets redacted; shown to admins only.
    pub exchanges: Option<Value>,
    pub job_id: Option<String>,
    pub user_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<social_publish_logs::Model> for PublishLogView {
    fn from(log: social_publish_logs::Model) -> Self {
        Self {
            id: log.id,
            post_id: log.post_id,
            action: log.action,
            attempt: log.attempt,
            outcome: log.outcome,
            error: log.error,
            exchanges: log.exchanges,
            job_id: log.job_id,
            user_id: log.user_id,
            created_at: log.created_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase", rename = "SocialPost")]
pub struct PostView {
    pub id: String,
    pub user_id: String,
    pub social_account_id: String,
    pub platform: PlatformName,
    pub content: String,
    pub media_urls: Vec<String>,
    pub status: PostStatus,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub published_at: Option<DateTime<Utc>>,
    /// The post's id at the platform, once published.
    pub platform_post_id: Option<String>,
    /// Why the publication failed.
    pub error: Option<String>,
    /// Publication attempts made.
    pub attempts: i32,
    /// The job publishing (or that published) the post.
    pub publish_job_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Every publish attempt and cancellation, oldest first; only on the single-post read.
    pub logs: Option<Vec<PublishLogView>>,
}

impl PostView {
    pub fn of(post: post_rows::Model, logs: Option<Vec<social_publish_logs::Model>>) -> Self {
        Self {
            media_urls: media_of(&post),
            id: post.id,
            user_id: post.user_id,
            social_account_id: post.social_account_id,
            platform: post.platform.into(),
            content: post.content,
            status: post.status.into(),
            scheduled_at: post.scheduled_at,
            published_at: post.published_at,
            platform_post_id: post.platform_post_id,
            error: post.error,
            attempts: post.attempts,
            publish_job_id: post.publish_job_id,
            created_at: post.created_at,
            updated_at: post.updated_at,
            logs: logs.map(|logs| logs.into_iter().map(Into::into).collect()),
        }
    }
}

impl From<post_rows::Model> for PostView {
    fn from(post: post_rows::Model) -> Self {
        Self::of(post, None)
    }
}

/// A post and the job publishing it.
#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct PostPublishing {
    pub post: PostView,
    pub job: JobRef,
}
