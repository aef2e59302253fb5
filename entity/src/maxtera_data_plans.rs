use sea_orm::entity::prelude::*;

/// A data bundle a Maxtera customer can buy: the `plan` name a client sends (`1GB`) and the
/// aggregator's variation code it is bought under.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "maxtera_data_plans")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `MTN`, `AIRTEL`, `GLO` or `9MOBILE`.
    pub network: String,
    pub plan: String,
    pub variation_code: String,
    pub description: String,
    pub amount_minor: i64,
    pub validity_days: i32,
    pub active: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
