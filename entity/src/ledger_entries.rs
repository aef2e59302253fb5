use sea_orm::entity::prelude::*;

/// One balanced movement of money: its postings sum to zero per currency.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub kind: String,
    /// Unique business reference (`payment:pay_…:settle`): a job run twice cannot move money twice.
    #[sea_orm(unique)]
    pub reference: String,
    pub description: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::ledger_postings::Entity")]
    Postings,
}

impl Related<super::ledger_postings::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Postings.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
