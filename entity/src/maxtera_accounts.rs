use sea_orm::entity::prelude::*;

/// A Maxtera customer: the integer `user_id` the seed shows, for a `customer` user, and the
/// phone given at registration, which vendors receive with every purchase.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maxtera_accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub user_id: String,
    /// Local eleven-digit form, `08012345678`.
    pub phone: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
