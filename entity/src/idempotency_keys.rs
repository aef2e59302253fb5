use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
#[serde(rename_all = "snake_case")]
pub enum IdempotencyState {
    #[sea_orm(string_value = "in_flight")]
    InFlight,
    #[sea_orm(string_value = "completed")]
    Completed,
}

/// A client's `Idempotency-Key`, scoped to the caller, with the response to replay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub scope: String,
    pub key: String,
    /// `METHOD path-template`: the same key on another endpoint is another request.
    pub endpoint: String,
    /// SHA-256 of the request body, to refuse a reused key carrying a different request.
    pub request_hash: String,
    pub state: IdempotencyState,
    pub response_status: Option<i32>,
    pub response_headers: Option<Json>,
    pub response_body: Option<Vec<u8>>,
    /// When the request holding the claim last showed it was alive; a claim not refreshed for a
    /// few seconds belongs to a request that died, and the next request with the key takes it.
    pub locked_at: DateTimeUtc,
    /// The holding request's own token: only its holder may record the response.
    pub claim_token: Option<String>,
    pub expires_at: DateTimeUtc,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
