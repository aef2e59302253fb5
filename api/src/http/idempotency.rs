//! `Idempotency-Key` handling: the first response to a key is stored, in the same database
//! transaction as the request's effect, and replayed byte for byte for the key's lifetime.
//!
//! A key is claimed by inserting its row before the effect runs (`in_flight`), outside the
//! effect's transaction so that a concurrent request with the same key sees the claim at once
//! and gets 409 instead of waiting or running the effect a second time. If the effect fails the
//! claim is released, so the client may retry. While the effect runs, its request refreshes the
//! claim every second; if the process dies, the claim goes stale within [`STALE_CLAIM`] and the
//! next request with the key takes it over under a new token. Only the holder of the current
//! token records the response, in its effect's transaction, so a request whose claim was taken
//! over (one so starved it could not refresh) rolls back instead of committing a second effect.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
};

use chrono::{Duration as ChronoDuration, Utc};
use poem::http::StatusCode;
use poem_openapi::types::ToJSON;
use sea_orm::{
    ColumnTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, OnConflict},
};
use ultra_domain::db::begin_write;
use ultra_entity::{
    idempotency_keys::{self, IdempotencyState},
    jobs,
};
use ultra_jobs::{Enqueued, QueueClient};

use super::{
    envelope::Reply,
    error::{ApiError, ApiResult},
};
use crate::AppState;

/// A claim not refreshed for this long belongs to a request that died mid-way; its effect
/// rolled back with its connection.
const STALE_CLAIM: ChronoDuration = ChronoDuration::seconds(5);
/// How often a running request refreshes its claim: well inside [`STALE_CLAIM`].
const REFRESH_CLAIM: std::time::Duration = std::time::Duration::from_secs(1);
const MAX_KEY_LEN: usize = 255;

pub type Effect<'t, R> = Pin<Box<dyn Future<Output = ApiResult<R>> + Send + 't>>;

/// A job an effect wrote in its transaction, handed out of the effect's closure so the handler
/// can push it once [`run`] has committed (a replayed response wrote none, and pushes nothing).
#[derive(Clone, Default)]
pub struct PendingPush(Arc<Mutex<Option<Enqueued>>>);

impl PendingPush {
    pub fn hold(&self, enqueued: Enqueued) {
        *self.0.lock().expect("pending push lock") = Some(enqueued);
    }

    /// Pushes the held job, if any, and returns its row.
    pub async fn dispatch(&self, queue: &QueueClient) -> Option<jobs::Model> {
        let enqueued = self.0.lock().expect("pending push lock").take()?;
        Some(enqueued.dispatch(queue).await)
    }
}

#[derive(Clone, Copy)]
pub struct Idempotent<'a> {
    /// Whose key this is: keys are private to the caller.
    pub scope: &'a str,
    pub key: Option<&'a str>,
    /// `METHOD /path/template`, also the key of the per-endpoint TTL in runtime config.
    pub endpoint: &'static str,
    pub fingerprint: &'a str,
}

/// Runs `effect` in a write transaction, at most once per idempotency key.
pub async fn run<T, const STATUS: u16, F>(
    state: &AppState,
    request: Idempotent<'_>,
    effect: F,
) -> ApiResult<Reply<T, STATUS>>
where
    T: ToJSON + Send,
    F: for<'t> FnOnce(&'t DatabaseTransaction) -> Effect<'t, Reply<T, STATUS>>,
{
    let Some(key) = request.key else {
        let txn = begin_write(&state.db).await?;
        let reply = effect(&txn).await?;
        txn.commit().await?;
        return Ok(reply);
    };
    if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(invalid_key());
    }
    let (claim_id, token) = match claim(state, &request, key).await? {
        Claim::Replay(bytes) => return Ok(Reply::stored(bytes, true)),
        Claim::Claimed { id, token } => (id, token),
    };
    let refresh = Refresh::start(state.db.clone(), claim_id, token.clone());

    let outcome: ApiResult<Vec<u8>> = async {
        let txn = begin_write(&state.db).await?;
        let reply = effect(&txn).await?;
        let bytes = reply.to_bytes();
        let recorded = idempotency_keys::Entity::update_many()
            .col_expr(idempotency_keys::Column::State, Expr::value(IdempotencyState::Completed))
            .col_expr(idempotency_keys::Column::ResponseStatus, Expr::value(i32::from(STATUS)))
            .col_expr(idempotency_keys::Column::ResponseBody, Expr::value(bytes.clone()))
            .filter(idempotency_keys::Column::Id.eq(claim_id))
            .filter(idempotency_keys::Column::ClaimToken.eq(token.as_str()))
            .exec(&txn)
            .await?;
        if recorded.rows_affected == 0 {
            // Another request took the claim over: its effect is the one that counts.
            txn.rollback().await?;
            return Err(in_flight());
        }
        txn.commit().await?;
        Ok(bytes)
    }
    .await;
    drop(refresh);

    match outcome {
        Ok(bytes) => Ok(Reply::stored(bytes, false)),
        Err(err) => {
            let released = idempotency_keys::Entity::delete_many()
                .filter(idempotency_keys::Column::Id.eq(claim_id))
                .filter(idempotency_keys::Column::ClaimToken.eq(token.as_str()))
                .exec(&state.db)
                .await;
            if let Err(release_err) = released {
                tracing::warn!(error = %release_err, "could not release an idempotency claim; it will go stale");
            }
            Err(err)
        }
    }
}

/// Replaces the stored response of a completed key with `reply`: what a request that waited
/// (`Prefer: wait`) finally answered, so that a retry replays that answer rather than the one
/// recorded with the effect before the wait. A retry arriving during the wait replays the
/// earlier answer, which is what the database said then.
pub async fn restate<T: ToJSON + Send, const STATUS: u16>(
    state: &AppState,
    request: &Idempotent<'_>,
    reply: &Reply<T, STATUS>,
) -> ApiResult<()> {
    let Some(key) = request.key else { return Ok(()) };
    idempotency_keys::Entity::update_many()
        .col_expr(idempotency_keys::Column::ResponseBody, Expr::value(reply.to_bytes()))
        .filter(idempotency_keys::Column::Scope.eq(request.scope))
        .filter(idempotency_keys::Column::Key.eq(key))
        .filter(idempotency_keys::Column::Endpoint.eq(request.endpoint))
        .filter(idempotency_keys::Column::State.eq(IdempotencyState::Completed))
        .exec(&state.db)
        .await?;
    Ok(())
}

/// The refusal of an `Idempotency-Key` that is present but unusable: never run as keyless.
pub fn invalid_key() -> ApiError {
    ApiError::validation("Idempotency-Key", format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"))
}

fn in_flight() -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_in_flight",
        "a request with this Idempotency-Key is still being processed; retry shortly",
    )
}

/// Keeps a claim fresh while its request runs, until dropped.
struct Refresh(tokio::task::JoinHandle<()>);

impl Refresh {
    fn start(db: sea_orm::DatabaseConnection, claim_id: i64, token: String) -> Self {
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_CLAIM).await;
                let refreshed = idempotency_keys::Entity::update_many()
                    .col_expr(idempotency_keys::Column::LockedAt, Expr::value(Utc::now()))
                    .filter(idempotency_keys::Column::Id.eq(claim_id))
                    .filter(idempotency_keys::Column::ClaimToken.eq(token.as_str()))
                    .exec(&db)
                    .await;
                if let Err(err) = refreshed {
                    tracing::warn!(error = %err, "could not refresh an idempotency claim");
                }
            }
        }))
    }
}

impl Drop for Refresh {
    fn drop(&mut self) {
        self.0.abort();
    }
}

enum Claim {
    Claimed { id: i64, token: String },
    Replay(Vec<u8>),
}

async fn claim(state: &AppState, request: &Idempotent<'_>, key: &str) -> ApiResult<Claim> {
    use idempotency_keys::Column;
    let config = state.runtime.current().await?;
    let ttl = ChronoDuration::from_std(config.idempotency_ttl.for_endpoint(request.endpoint))
        .unwrap_or(ChronoDuration::days(1));
    // Two rounds at most: the second after clearing an expired row for the same key.
    for _ in 0..2 {
        let now = Utc::now();
        let token = ulid::Ulid::new().to_string();
        let inserted = idempotency_keys::Entity::insert(idempotency_keys::ActiveModel {
            scope: Set(request.scope.to_owned()),
            key: Set(key.to_owned()),
            endpoint: Set(request.endpoint.to_owned()),
            request_hash: Set(request.fingerprint.to_owned()),
            state: Set(IdempotencyState::InFlight),
            locked_at: Set(now),
            claim_token: Set(Some(token.clone())),
            expires_at: Set(now + ttl),
            created_at: Set(now),
            ..Default::default()
        })
        .on_conflict(OnConflict::columns([Column::Scope, Column::Key]).do_nothing().to_owned())
        .exec_without_returning(&state.db)
        .await?;
        let existing = idempotency_keys::Entity::find()
            .filter(Column::Scope.eq(request.scope))
            .filter(Column::Key.eq(key))
            .one(&state.db)
            .await?;
        let Some(existing) = existing else { continue };
        if inserted == 1 {
            return Ok(Claim::Claimed { id: existing.id, token });
        }
        if existing.expires_at <= now {
            idempotency_keys::Entity::delete_many()
                .filter(Column::Id.eq(existing.id))
                .filter(Column::ExpiresAt.lte(now))
                .exec(&state.db)
                .await?;
            continue;
        }
        if existing.endpoint != request.endpoint || existing.request_hash != request.fingerprint {
            return Err(ApiError::unprocessable(
                "idempotency_key_reused",
                "this Idempotency-Key was already used with a different request",
            ));
        }
        if existing.state == IdempotencyState::Completed {
            return existing
                .response_body
                .map(Claim::Replay)
                .ok_or_else(|| ApiError::internal("completed idempotency key without a response"));
        }
        if existing.locked_at > now - STALE_CLAIM {
            return Err(in_flight());
        }
        let taken = idempotency_keys::Entity::update_many()
            .col_expr(Column::LockedAt, Expr::value(now))
            .col_expr(Column::ClaimToken, Expr::value(token.as_str()))
            .filter(Column::Id.eq(existing.id))
            .filter(Column::LockedAt.eq(existing.locked_at))
            .filter(Column::State.eq(IdempotencyState::InFlight))
            .exec(&state.db)
            .await?;
        if taken.rows_affected == 1 {
            return Ok(Claim::Claimed { id: existing.id, token });
        }
    }
    Err(in_flight())
}
