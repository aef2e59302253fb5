//! Registering, changing and removing webhook endpoints.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
};
use serde_json::json;
use ultra_entity::{
    webhook_deliveries::{self, DeliveryStatus},
    webhook_endpoints,
};
use ultra_outbound::addresses;

use super::{EVENT_TYPES, signature::STANDARD_PREFIX};
use crate::{
    DomainError, DomainResult,
    audit::{self, Actor, AuditEvent},
    ids,
    runtime_config::WebhookSettings,
    secrets::{self, SecretBox},
};

const MIN_SECRET_CHARS: usize = 16;
const MAX_SECRET_CHARS: usize = 256;
const MAX_URL_CHARS: usize = 2048;

/// What a create or update sets; `None` leaves a field as it is.
#[derive(Default)]
pub struct EndpointChanges {
    pub url: Option<String>,
    pub secret: Option<String>,
    pub events: Option<Vec<String>>,
    pub is_active: Option<bool>,
}

/// Checks a URL a merchant gave: `https` (or `http` where private URLs are allowed), a host,
/// no credentials, and only public addresses behind the name.
pub async fn check_url(raw: &str, settings: &WebhookSettings) -> DomainResult<String> {
    let invalid = |message: String| DomainError::validation("url", message);
    if raw.len() > MAX_URL_CHARS {
        return Err(invalid(format!("must be at most {MAX_URL_CHARS} characters")));
    }
    let url = url::Url::parse(raw.trim()).map_err(|err| invalid(format!("is not a URL: {err}")))?;
    match url.scheme() {
        "https" => {}
        "http" if settings.allow_private_urls => {}
        "http" => return Err(invalid("must use https".into())),
        other => return Err(invalid(format!("must use https, not {other}"))),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not carry credentials; sign with the secret instead".into()));
    }
    let host = url.host_str().ok_or_else(|| invalid("has no host".into()))?;
    let port = url.port_or_known_default().unwrap_or(443);
    addresses::resolve(host, port, settings.allow_private_urls).await.map_err(invalid)?;
    Ok(url.to_string())
}

fn check_secret(secret: &str) -> DomainResult<()> {
    let chars = secret.chars().count();
    if !(MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&chars) {
        return Err(DomainError::validation(
            "secret",
            format!("must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters"),
        ));
    }
    if let Some(encoded) = secret.strip_prefix(STANDARD_PREFIX) {
        use base64::Engine;
        let key = base64::engine::general_purpose::STANDARD.decode(encoded).map_err(|_| {
            DomainError::validation("secret", "starts with whsec_ but the rest is not base64")
        })?;
        if key.len() < MIN_SECRET_CHARS {
            return Err(DomainError::validation("secret", "a whsec_ key must hold at least 16 bytes"));
        }
    }
    Ok(())
}

fn check_events(events: &[String]) -> DomainResult<Vec<String>> {
    if events.is_empty() {
        return Err(DomainError::validation("events", "must name at least one event"));
    }
    let mut unique: Vec<String> = Vec::new();
    for event in events {
        if !EVENT_TYPES.contains(&event.as_str()) {
            return Err(DomainError::validation(
                "events",
                format!("{event} is not an event; expected one of {}", EVENT_TYPES.join(", ")),
            ));
        }
        if !unique.contains(event) {
            unique.push(event.clone());
        }
    }
    Ok(unique)
}

pub struct NewEndpoint<'a> {
    pub owner_id: &'a str,
    /// Already through [`check_url`].
    pub url: String,
    pub secret: &'a str,
    pub events: &'a [String],
    pub is_active: bool,
}

pub async fn create(
    db: &impl ConnectionTrait,
    sealer: &SecretBox,
    actor: &Actor,
    new: NewEndpoint<'_>,
) -> DomainResult<webhook_endpoints::Model> {
    let NewEndpoint { owner_id, url, secret, events, is_active } = new;
    check_secret(secret)?;
    let events = check_events(events)?;
    let now = Utc::now();
    let endpoint = webhook_endpoints::ActiveModel {
        id: Set(ids::new_id("whe")),
        user_id: Set(owner_id.to_owned()),
        url: Set(url),
        secret_sealed: Set(sealer.seal(secret.as_bytes())),
        secret_hint: Set(secrets::mask(secret)),
        events: Set(json!(events)),
        is_active: Set(is_active),
        disabled_reason: Set(None),
        disabled_at: Set(None),
        failing_since: Set(None),
        last_success_at: Set(None),
        last_failure_at: Set(None),
        lane_token: Set(None),
        lane_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "webhook_endpoint.created",
            entity_type: "webhook_endpoint",
            entity_id: Some(&endpoint.id),
            details: Some(json!({ "url": endpoint.url, "events": endpoint.events, "owner": owner_id })),
        },
    )
    .await?;
    Ok(endpoint)
}

/// Applies `changes`; a URL in them must already have passed [`check_url`]. Turning an
/// endpoint back on forgets why it was disabled and its failing streak.
pub async fn update(
    db: &impl ConnectionTrait,
    sealer: &SecretBox,
    actor: &Actor,
    endpoint: webhook_endpoints::Model,
    changes: EndpointChanges,
) -> DomainResult<webhook_endpoints::Model> {
    let id = endpoint.id.clone();
    let mut row: webhook_endpoints::ActiveModel = endpoint.into();
    let mut changed = Vec::new();
    if let Some(url) = changes.url {
        row.url = Set(url);
        changed.push("url");
    }
    if let Some(secret) = changes.secret.as_deref() {
        check_secret(secret)?;
        row.secret_sealed = Set(sealer.seal(secret.as_bytes()));
        row.secret_hint = Set(secrets::mask(secret));
        changed.push("secret");
    }
    if let Some(events) = changes.events.as_deref() {
        row.events = Set(json!(check_events(events)?));
        changed.push("events");
    }
    if let Some(active) = changes.is_active {
        row.is_active = Set(active);
        if active {
            row.disabled_reason = Set(None);
            row.disabled_at = Set(None);
            row.failing_since = Set(None);
        }
        changed.push("isActive");
    }
    if changed.is_empty() {
        return Err(DomainError::validation(
            "body",
            "must change at least one of url, secret, events, isActive",
        ));
    }
    row.updated_at = Set(Utc::now());
    let endpoint = row.update(db).await?;
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "webhook_endpoint.updated",
            entity_type: "webhook_endpoint",
            entity_id: Some(&id),
            details: Some(json!({ "changed": changed, "isActive": endpoint.is_active })),
        },
    )
    .await?;
    Ok(endpoint)
}

/// Removes an endpoint. Its deliveries stay as history; those still pending are cancelled,
/// since there is nowhere left to send them.
pub async fn delete(
    db: &impl ConnectionTrait,
    actor: &Actor,
    endpoint: &webhook_endpoints::Model,
) -> DomainResult<()> {
    let now = Utc::now();
    webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::Status, Expr::value(DeliveryStatus::Cancelled))
        .col_expr(webhook_deliveries::Column::LastError, Expr::value("the endpoint was deleted"))
        .col_expr(
            webhook_deliveries::Column::NextAttemptAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(webhook_deliveries::Column::UpdatedAt, Expr::value(now))
        .filter(webhook_deliveries::Column::EndpointId.eq(&endpoint.id))
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .exec(db)
        .await?;
    webhook_endpoints::Entity::delete_by_id(&endpoint.id).exec(db).await?;
    audit::record(
        db,
        actor,
        AuditEvent {
            action: "webhook_endpoint.deleted",
            entity_type: "webhook_endpoint",
            entity_id: Some(&endpoint.id),
            details: Some(json!({ "url": endpoint.url })),
        },
    )
    .await
}

/// The endpoint's signing secret, opened for a delivery attempt.
pub fn secret(sealer: &SecretBox, endpoint: &webhook_endpoints::Model) -> DomainResult<String> {
    String::from_utf8(sealer.open(&endpoint.secret_sealed)?)
        .map_err(|_| DomainError::Internal("a webhook secret is not UTF-8".into()))
}
