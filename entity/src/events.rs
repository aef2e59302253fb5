use sea_orm::entity::prelude::*;

/// Something that happened to a merchant's resource (`payment.completed`…), recorded in the
/// same transaction as the change and delivered to the merchant's webhook endpoints.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub merchant_id: String,
    pub event_type: String,
    pub resource_type: String,
    pub resource_id: String,
    /// 1, 2, 3… per resource, so receivers can order events that arrive out of order.
    pub sequence: i64,
    pub payload: Json,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
