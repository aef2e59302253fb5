use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::social_accounts::SocialPlatform;

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum SocialPostStatus {
    #[sea_orm(string_value = "draft")]
    Draft,
    #[sea_orm(string_value = "scheduled")]
    Scheduled,
    #[sea_orm(string_value = "publishing")]
    Publishing,
    #[sea_orm(string_value = "published")]
    Published,
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_posts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub social_account_id: String,
    pub platform: SocialPlatform,
    pub content: String,
    /// A JSON array of URLs.
    pub media_urls: Json,
    pub status: SocialPostStatus,
    pub scheduled_at: Option<DateTimeUtc>,
    pub publish_job_id: Option<String>,
    /// The platform's handle on a publication still processing (an Instagram container, a
    /// TikTok publish id), so a retry resumes it instead of posting again.
    pub publish_handle: Option<String>,
    pub platform_post_id: Option<String>,
    pub published_at: Option<DateTimeUtc>,
    pub error: Option<String>,
    /// Publication attempts made, over every publish of this post.
    pub attempts: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
