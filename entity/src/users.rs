use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// What a user may do: `admin` runs the platform, `user` is a merchant, `customer` pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "customer")]
    Customer,
}

/// The SLA tier a merchant pays for; it sets rate limits and unlocks features.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    #[sea_orm(string_value = "starter")]
    Starter,
    #[sea_orm(string_value = "pro")]
    Pro,
    #[sea_orm(string_value = "pro_plus")]
    ProPlus,
    #[sea_orm(string_value = "enterprise")]
    Enterprise,
}

impl Tier {
    /// The name the SLA tiers are sold under.
    pub fn label(self) -> &'static str {
        match self {
            Self::Starter => "Starter",
            Self::Pro => "Pro",
            Self::ProPlus => "Pro+",
            Self::Enterprise => "Enterprise",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Stored lower-cased so that lookups and the unique index ignore case.
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    pub role: UserRole,
    pub is_super_admin: bool,
    pub tier: Tier,
    /// Argon2id PHC string; `None` for accounts that log in by email alone when allowed.
    pub password_hash: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::tokens::Entity")]
    Tokens,
}

impl Related<super::tokens::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Tokens.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
