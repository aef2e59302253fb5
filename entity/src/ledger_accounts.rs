use sea_orm::entity::prelude::*;

/// A ledger account. For an account that may not go negative, `balance_minor` is the running
/// sum of its postings, kept on the row so that a debit can be checked and applied in one
/// conditional update; it never changes without a posting, and a database CHECK refuses a
/// negative balance. A system account (`allow_negative`) keeps it at zero: its balance is the
/// sum of its postings (`ultra_domain::ledger::balance`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "ledger_accounts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Stable name such as `merchant:usr_…:available` or `provider:mvola:clearing`.
    #[sea_orm(unique)]
    pub code: String,
    pub owner_id: Option<String>,
    pub currency: String,
    pub balance_minor: i64,
    /// Only system accounts (the outside world, provider clearing) may go below zero.
    pub allow_negative: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
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
