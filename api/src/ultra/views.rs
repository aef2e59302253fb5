//! Response shapes shared by several resources.

use chrono::{DateTime, Utc};
use poem_openapi::{Enum, Object};
use ultra_entity::users::{self, Tier as EntityTier, UserRole};

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Customer,
}

impl From<UserRole> for Role {
    fn from(role: UserRole) -> Self {
        match role {
            UserRole::Admin => Self::Admin,
            UserRole::User => Self::User,
            UserRole::Customer => Self::Customer,
        }
    }
}

impl From<Role> for UserRole {
    fn from(role: Role) -> Self {
        match role {
            Role::Admin => Self::Admin,
            Role::User => Self::User,
            Role::Customer => Self::Customer,
        }
    }
}

/// SLA tier: sets rate limits and unlocks features (`pro_plus` and up: CSV exports, DLQ bulk replay).
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum Tier {
    Starter,
    Pro,
    ProPlus,
    Enterprise,
}

impl From<EntityTier> for Tier {
    fn from(tier: EntityTier) -> Self {
        match tier {
            EntityTier::Starter => Self::Starter,
            EntityTier::Pro => Self::Pro,
            EntityTier::ProPlus => Self::ProPlus,
            EntityTier::Enterprise => Self::Enterprise,
        }
    }
}

impl From<Tier> for EntityTier {
    fn from(tier: Tier) -> Self {
        match tier {
            Tier::Starter => Self::Starter,
            Tier::Pro => Self::Pro,
            Tier::ProPlus => Self::ProPlus,
            Tier::Enterprise => Self::Enterprise,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub tier: Tier,
    pub is_super_admin: bool,
    /// False for accounts that can only log in by email when passwordless login is enabled.
    pub has_password: bool,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl From<users::Model> for UserView {
    fn from(user: users::Model) -> Self {
        Self {
            has_password: user.password_hash.is_some(),
            id: user.id,
            email: user.email,
            name: user.name,
            role: user.role.into(),
            tier: user.tier.into(),
            is_super_admin: user.is_super_admin,
            phone: user.phone,
            created_at: user.created_at,
        }
    }
}

/// What a DELETE answers.
#[derive(Object)]
pub struct Deleted {
    pub deleted: bool,
}
