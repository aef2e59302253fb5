//! The audit trail: every mutation writes a row, in the same transaction as the mutation.

use chrono::Utc;
use sea_orm::{ConnectionTrait, EntityTrait, Set};
use ultra_entity::audit_logs;

use crate::{DomainResult, ids};

/// Who acted and from where; the API fills it from the request.
#[derive(Clone, Debug, Default)]
pub struct Actor {
    pub user_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
}

pub struct AuditEvent<'a> {
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: Option<&'a str>,
    pub details: Option<serde_json::Value>,
}

pub async fn record(db: &impl ConnectionTrait, actor: &Actor, event: AuditEvent<'_>) -> DomainResult<()> {
    audit_logs::Entity::insert(row(actor, event)).exec_without_returning(db).await?;
    Ok(())
}

/// The row [`record`] writes, for a caller that writes many in one insert.
pub fn row(actor: &Actor, event: AuditEvent<'_>) -> audit_logs::ActiveModel {
    audit_logs::ActiveModel {
        id: Set(ids::new_id("aud")),
        action: Set(event.action.to_owned()),
        entity_type: Set(event.entity_type.to_owned()),
        entity_id: Set(event.entity_id.map(str::to_owned)),
        actor_id: Set(actor.user_id.clone()),
        ip: Set(actor.ip.clone()),
        request_id: Set(actor.request_id.clone()),
        details: Set(event.details),
        created_at: Set(Utc::now()),
    }
}
