//! `ultra users create`: how an operator bootstraps the first accounts of a fresh install.

use sea_orm::DatabaseConnection;
use ultra_domain::{
    audit::{self, Actor, AuditEvent},
    db::begin_write,
    passwords,
    users::{self, NewUser},
};
use ultra_entity::users::{Model as User, Tier, UserRole};

use crate::settings::{RoleArg, TierArg};

pub struct Create {
    pub email: String,
    pub name: String,
    pub role: RoleArg,
    pub password: Option<String>,
    pub tier: TierArg,
    pub super_admin: bool,
    pub phone: Option<String>,
}

pub async fn create(db: &DatabaseConnection, request: Create) -> anyhow::Result<User> {
    let role = match request.role {
        RoleArg::Admin => UserRole::Admin,
        RoleArg::User => UserRole::User,
        RoleArg::Customer => UserRole::Customer,
    };
    if request.super_admin && role != UserRole::Admin {
        anyhow::bail!("--super-admin needs --role admin");
    }
    let tier = match request.tier {
        TierArg::Starter => Tier::Starter,
        TierArg::Pro => Tier::Pro,
        TierArg::ProPlus => Tier::ProPlus,
        TierArg::Enterprise => Tier::Enterprise,
    };
    let password_hash = request.password.as_deref().map(passwords::hash).transpose()?;
    let txn = begin_write(db).await?;
    let user = users::create(
        &txn,
        NewUser {
            email: request.email,
            name: request.name,
            role,
            tier,
            is_super_admin: request.super_admin,
            password_hash,
            phone: request.phone,
        },
    )
    .await?;
    audit::record(
        &txn,
        &Actor::default(),
        AuditEvent {
            action: "user.created",
            entity_type: "user",
            entity_id: Some(&user.id),
            details: Some(serde_json::json!({ "via": "cli" })),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(user)
}
