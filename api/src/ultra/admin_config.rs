//! `GET/PATCH admin/config`: the runtime config, for super-admins.

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Header};
use serde_json::{Value, json};
use ultra_domain::{
    audit::{self, AuditEvent},
    config_patch,
    runtime_config::RuntimeConfig,
};
use ultra_jobs::schedules::SCHEDULES;

use super::ApiTags;
use crate::{
    AppState,
    http::{
        auth::Auth,
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        idempotency::{self, Idempotent},
        json_body::JsonBody,
    },
};

pub struct AdminConfigApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Admin")]
impl AdminConfigApi {
    /// Get system configuration
    ///
    /// Super-admin only. Returns every runtime configuration value, stored or default.
    #[oai(path = "/admin/config", method = "get", operation_id = "getConfig")]
    async fn get(&self, state: Data<&AppState>, auth: Auth) -> ApiResult<Reply<Value>> {
        auth.0.require_super_admin()?;
        Ok(Reply::new(as_json(&RuntimeConfig::load(&state.db).await?)?))
    }

    /// Update system configuration
    ///
    /// Super-admin only. A partial update: objects merge key by key, other values replace, and
    /// `null` removes an entry of `schedules`, `idempotencyTtl.endpoints` or
    /// `sellapay.fxRates`. An unknown key or a bad value is a 400 naming it by its dotted path
    /// (`webhooks.maxAttempts`). Every API process and worker uses the new values within a few
    /// seconds. Answers the whole configuration. Idempotent with the `Idempotency-Key` header.
    #[oai(path = "/admin/config", method = "patch", operation_id = "updateConfig")]
    async fn update(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        /// Replays the first response for retries of the same request.
        #[oai(name = "Idempotency-Key")]
        idempotency_key: Header<Option<String>>,
        body: JsonBody<Value>,
    ) -> ApiResult<Reply<Value>> {
        let principal = auth.0;
        principal.require_super_admin()?;
        let patch = body.value;
        let actor = actor(req, Some(&principal.user.id));
        let admin_id = principal.user.id.clone();
        let reply = idempotency::run(
            &state,
            Idempotent {
                scope: &principal.user.id,
                key: idempotency_key.0.as_deref(),
                endpoint: "PATCH /api/v1/admin/config",
                fingerprint: &body.fingerprint,
            },
            move |txn| {
                Box::pin(async move {
                    config_patch::lock(txn).await?;
                    let current = RuntimeConfig::load(txn).await?;
                    let names: Vec<&str> = SCHEDULES.iter().map(|schedule| schedule.name).collect();
                    let update = config_patch::apply(txn, &current, &patch, &names).await?;
                    if !update.changed.is_empty() {
                        for (key, value) in &update.changed {
                            RuntimeConfig::set(txn, key, value.clone(), Some(admin_id.clone())).await?;
                        }
                        let keys: Vec<&String> = update.changed.keys().collect();
                        audit::record(
                            txn,
                            &actor,
                            AuditEvent {
                                action: "config.updated",
                                entity_type: "config",
                                entity_id: None,
                                details: Some(json!({ "keys": keys, "changes": update.changes })),
                            },
                        )
                        .await?;
                    }
                    Ok(Reply::new(as_json(&update.config)?))
                })
            },
        )
        .await?;
        state.runtime.forget().await;
        Ok(reply)
    }
}

fn as_json(config: &RuntimeConfig) -> ApiResult<Value> {
    serde_json::to_value(config).map_err(ApiError::internal)
}
