//! Sellapay credentials on the ultra surface: `GET/POST api-keys` and `DELETE api-keys/{id}`.
//! The secret is shown once, in the creation response, and stored only hashed.

use chrono::{DateTime, Utc};
use poem::{Request, web::Data};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use ultra_domain::api_keys;
use ultra_entity::api_keys as key_rows;

use super::ApiTags;
use crate::{
    AppState,
    http::{
        auth::Auth,
        client::actor,
        envelope::Reply,
        error::{ApiError, ApiResult},
        json_body::JsonBody,
        pagination::{PageRequest, paginate},
    },
};

#[derive(Object)]
pub struct CreateApiKeyRequest {
    /// What the key is for, e.g. "shop backend".
    #[oai(validator(min_length = 1, max_length = 100))]
    pub name: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct ApiKeyView {
    pub id: String,
    pub name: String,
    /// Sent as `X-API-KEY` to `POST /sellapay/api/v1/authorize`.
    pub key: String,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<key_rows::Model> for ApiKeyView {
    fn from(key: key_rows::Model) -> Self {
        Self {
            id: key.id,
            name: key.name,
            key: key.key,
            last_used_at: key.last_used_at,
            revoked_at: key.revoked_at,
            created_at: key.created_at,
        }
    }
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct CreatedApiKey {
    #[oai(flatten)]
    pub key: ApiKeyView,
    /// Sent as `X-API-SECRET`. Shown this once: only its hash is kept.
    pub secret: String,
    /// The Sellapay account id `authorize` returns and other accounts send funds to.
    pub account: String,
}

pub struct ApiKeysApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::ApiKeys")]
impl ApiKeysApi {
    /// List Sellapay API keys
    ///
    /// The caller's keys, newest first, revoked ones included; secrets are never shown again.
    #[oai(path = "/api-keys", method = "get", operation_id = "listApiKeys")]
    async fn list(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Reply<Vec<ApiKeyView>>> {
        let merchant = auth.0.merchant()?.id.clone();
        let request = PageRequest::from_query(page.0, per_page.0, None, None, None)?;
        let select = key_rows::Entity::find().filter(key_rows::Column::UserId.eq(merchant));
        let (rows, meta) = paginate(&state.db, select, key_rows::Column::Id, |k| &k.id, &request).await?;
        Ok(Reply::with_meta(rows.into_iter().map(ApiKeyView::from).collect(), meta))
    }

    /// Create a Sellapay API key
    ///
    /// Returns the key, its secret (shown only here) and the merchant's Sellapay account id.
    #[oai(path = "/api-keys", method = "post", operation_id = "createApiKey")]
    async fn create(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        body: JsonBody<CreateApiKeyRequest>,
    ) -> ApiResult<Reply<CreatedApiKey, 201>> {
        let principal = auth.0;
        let merchant =
            principal.merchant_in_person("create API keys, which pay out the merchant's balance")?.clone();
        let actor = actor(req, Some(&principal.user.id));
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let created = api_keys::create(&txn, &actor, &merchant, &body.value.name).await?;
        txn.commit().await?;
        Ok(Reply::new(CreatedApiKey {
            key: created.key.into(),
            secret: created.secret,
            account: created.account,
        }))
    }

    /// Revoke a Sellapay API key
    ///
    /// The key stops authorizing at once, and the tokens it was exchanged for stop working.
    #[oai(path = "/api-keys/:id", method = "delete", operation_id = "revokeApiKey")]
    async fn revoke(
        &self,
        req: &Request,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
    ) -> ApiResult<Reply<ApiKeyView>> {
        let principal = auth.0;
        let key = key_rows::Entity::find_by_id(&id.0)
            .one(&state.db)
            .await?
            .filter(|key| principal.may_see(&key.user_id))
            .ok_or_else(|| ApiError::not_found("API key"))?;
        let actor = actor(req, Some(&principal.user.id));
        let txn = ultra_domain::db::begin_write(&state.db).await?;
        let revoked = api_keys::revoke(&txn, &actor, &key).await?;
        txn.commit().await?;
        Ok(Reply::new(revoked.into()))
    }
}
