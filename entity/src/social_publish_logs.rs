use sea_orm::entity::prelude::*;

/// One publish attempt or cancellation of a post, with what was sent to the platform and
/// what it answered (secrets redacted).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "social_publish_logs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub post_id: String,
    /// `publish` or `cancel`.
    pub action: String,
    pub attempt: i32,
    /// `published`, `processing`, `retrying`, `failed` or `cancelled`.
    pub outcome: String,
    /// The HTTP exchanges of the attempt: method, URL, request, status and response.
    pub exchanges: Option<Json>,
    pub error: Option<String>,
    pub job_id: Option<String>,
    /// Who cancelled, for a cancellation; workers publish on nobody's behalf.
    pub user_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
