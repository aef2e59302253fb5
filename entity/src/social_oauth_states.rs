use sea_orm::entity::prelude::*;

use crate::social_accounts::SocialPlatform;

/// An authorization a user started: the `state` sent to the platform names it, and the
/// callback spends it once.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_oauth_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    pub platform: SocialPlatform,
    /// Where the user's browser goes once the connection is made or refused.
    pub redirect_uri: String,
    pub expires_at: DateTimeUtc,
    pub used_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
