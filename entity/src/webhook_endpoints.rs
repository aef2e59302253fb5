use sea_orm::entity::prelude::*;

/// Where a merchant wants events sent. The signing secret is stored sealed; the lane columns
/// let one worker at a time send to the endpoint, so a slow receiver holds one worker slot.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhook_endpoints")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The merchant that owns the endpoint.
    pub user_id: String,
    pub url: String,
    pub secret_sealed: String,
    /// The secret's last characters, enough for its owner to tell which one is set.
    pub secret_hint: String,
    /// The event types sent here, as a JSON array of strings.
    pub events: Json,
    pub is_active: bool,
    /// Why Ultra turned the endpoint off (it kept failing); cleared when its owner turns it on.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTimeUtc>,
    /// The first failure since the last success; the endpoint is disabled once it is too old.
    pub failing_since: Option<DateTimeUtc>,
    pub last_success_at: Option<DateTimeUtc>,
    pub last_failure_at: Option<DateTimeUtc>,
    /// The drain job that holds the endpoint's lane, and until when.
    pub lane_token: Option<String>,
    pub lane_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl Model {
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.events.as_array().is_some_and(|events| events.iter().any(|e| e.as_str() == Some(event_type)))
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
