use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum SocialPlatform {
    #[sea_orm(string_value = "meta")]
    Meta,
    #[sea_orm(string_value = "tiktok")]
    Tiktok,
}

/// Where an account's posts go: a Meta grant gives a Facebook Page and, when the Page has
/// one, its Instagram business account, each publishing differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum SocialAccountKind {
    #[sea_orm(string_value = "facebook_page")]
    FacebookPage,
    #[sea_orm(string_value = "instagram")]
    Instagram,
    #[sea_orm(string_value = "tiktok")]
    Tiktok,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum SocialAccountStatus {
    #[sea_orm(string_value = "active")]
    Active,
    /// Disconnected by its owner or suspended by an admin: nothing is published through it.
    #[sea_orm(string_value = "revoked")]
    Revoked,
    /// The platform no longer accepts its tokens and they could not be renewed: the owner
    /// must connect it again.
    #[sea_orm(string_value = "expired")]
    Expired,
}

/// A social account a user connected over OAuth.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub platform: SocialPlatform,
    pub kind: SocialAccountKind,
    /// The platform's id of the Page, Instagram account or TikTok user.
    pub external_id: String,
    pub name: String,
    pub status: SocialAccountStatus,
    /// The account's tokens, sealed with the installation's key; never sent to clients.
    pub sealed_tokens: String,
    pub scope: Option<String>,
    /// When the token that needs renewing lapses; `None` when none does.
    pub token_expires_at: Option<DateTimeUtc>,
    pub last_refreshed_at: Option<DateTimeUtc>,
    /// Why the last refresh or publication through this account failed.
    pub last_error: Option<String>,
    /// Set while an admin has revoked the account: its owner reconnecting it does not lift
    /// that, only an admin does.
    pub suspended_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
