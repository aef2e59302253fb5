//! Lanes: each endpoint's deliveries are sent by one drain at a time, which holds the lane
//! with a lease on the endpoint row. A receiver that answers slowly or not at all therefore
//! occupies one worker slot, however many deliveries it has waiting, and never delays the
//! deliveries of other endpoints. Leases and claims live in the database, so they survive a
//! Redis flush; a worker that dies leaves them to expire.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    sea_query::{Expr, ExprTrait, Query},
};
use ultra_entity::{
    webhook_deliveries::{self, DeliveryStatus},
    webhook_endpoints,
};

use crate::DomainResult;

fn until(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or_else(|_| chrono::Duration::seconds(60))
}

fn free_or_expired<C: ColumnTrait>(column: C) -> Condition {
    Condition::any().add(column.is_null()).add(column.lt(Utc::now()))
}

/// Endpoints whose lane is free and that have a delivery due and nobody sending it. The
/// search starts from the endpoints, each asked about its deliveries through the lane index:
/// starting from the deliveries would read every pending delivery of a long backlog on every
/// dispatcher round.
pub async fn waiting_endpoints(db: &impl ConnectionTrait, limit: u64) -> DomainResult<Vec<String>> {
    let now = Utc::now();
    let due = Query::select()
        .expr(Expr::val(1))
        .from(webhook_deliveries::Entity)
        .and_where(
            Expr::col((webhook_deliveries::Entity, webhook_deliveries::Column::EndpointId))
                .equals((webhook_endpoints::Entity, webhook_endpoints::Column::Id)),
        )
        .and_where(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .and_where(webhook_deliveries::Column::NextAttemptAt.lte(now))
        .cond_where(free_or_expired(webhook_deliveries::Column::ClaimedUntil))
        .to_owned();
    Ok(webhook_endpoints::Entity::find()
        .select_only()
        .column(webhook_endpoints::Column::Id)
        .filter(free_or_expired(webhook_endpoints::Column::LaneUntil))
        .filter(Expr::exists(due))
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}

/// Takes the endpoint's lane for the drain `token` if it is free.
pub async fn acquire(
    db: &impl ConnectionTrait,
    endpoint_id: &str,
    token: &str,
    ttl: Duration,
) -> DomainResult<bool> {
    let taken = webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::LaneToken, Expr::value(token))
        .col_expr(webhook_endpoints::Column::LaneUntil, Expr::value(until(ttl)))
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .filter(free_or_expired(webhook_endpoints::Column::LaneUntil))
        .exec(db)
        .await?;
    Ok(taken.rows_affected == 1)
}

/// Returns the endpoint as it now is while the drain `token` holds its lane, extending the
/// lease once half of it has run; `None` when the lane was lost (the lease expired and
/// another drain took it) or the endpoint is gone. A drain asks before every batch, so the
/// lease is written only now and then: rewriting one row per batch would leave a busy
/// endpoint's row a long chain of dead versions.
pub async fn hold(
    db: &impl ConnectionTrait,
    endpoint_id: &str,
    token: &str,
    ttl: Duration,
) -> DomainResult<Option<webhook_endpoints::Model>> {
    let Some(endpoint) = webhook_endpoints::Entity::find_by_id(endpoint_id).one(db).await? else {
        return Ok(None);
    };
    if endpoint.lane_token.as_deref() != Some(token) {
        return Ok(None);
    }
    let half = chrono::Duration::from_std(ttl / 2).unwrap_or_else(|_| chrono::Duration::seconds(30));
    if endpoint.lane_until.is_some_and(|until| until - Utc::now() > half) {
        return Ok(Some(endpoint));
    }
    let renewed = until(ttl);
    let held = webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::LaneUntil, Expr::value(renewed))
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .filter(webhook_endpoints::Column::LaneToken.eq(token))
        .exec(db)
        .await?;
    if held.rows_affected == 0 {
        return Ok(None);
    }
    Ok(Some(webhook_endpoints::Model { lane_until: Some(renewed), ..endpoint }))
}

/// Frees the lane, if the drain still holds it.
pub async fn release(db: &impl ConnectionTrait, endpoint_id: &str, token: &str) -> DomainResult<()> {
    webhook_endpoints::Entity::update_many()
        .col_expr(webhook_endpoints::Column::LaneToken, Expr::value(Option::<String>::None))
        .col_expr(webhook_endpoints::Column::LaneUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(webhook_endpoints::Column::Id.eq(endpoint_id))
        .filter(webhook_endpoints::Column::LaneToken.eq(token))
        .exec(db)
        .await?;
    Ok(())
}

/// Claims up to `limit` of the endpoint's due deliveries, oldest first, for `ttl`: long
/// enough for one attempt, after which an unfinished claim (a dead worker's) lapses.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    endpoint_id: &str,
    limit: u64,
    ttl: Duration,
) -> DomainResult<Vec<webhook_deliveries::Model>> {
    let candidates = webhook_deliveries::Entity::find()
        .filter(webhook_deliveries::Column::EndpointId.eq(endpoint_id))
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .filter(webhook_deliveries::Column::NextAttemptAt.lte(Utc::now()))
        .filter(free_or_expired(webhook_deliveries::Column::ClaimedUntil))
        .order_by_asc(webhook_deliveries::Column::NextAttemptAt)
        .order_by_asc(webhook_deliveries::Column::Id)
        .limit(limit)
        .all(db)
        .await?;
    if candidates.is_empty() {
        return Ok(candidates);
    }
    // One statement claims them all; a candidate another drain claimed meanwhile is not
    // returned.
    let ids: Vec<String> = candidates.into_iter().map(|delivery| delivery.id).collect();
    let mut claimed = webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::ClaimedUntil, Expr::value(until(ttl)))
        .filter(webhook_deliveries::Column::Id.is_in(ids))
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .filter(free_or_expired(webhook_deliveries::Column::ClaimedUntil))
        .exec_with_returning(db)
        .await?;
    claimed.sort_by(|a, b| (a.next_attempt_at, &a.id).cmp(&(b.next_attempt_at, &b.id)));
    Ok(claimed)
}

/// Gives back claims a drain took but did not use, so the next drain sends those deliveries
/// without waiting for the claims to lapse.
pub async fn unclaim(db: &impl ConnectionTrait, delivery_ids: &[&str]) -> DomainResult<()> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    webhook_deliveries::Entity::update_many()
        .col_expr(webhook_deliveries::Column::ClaimedUntil, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(webhook_deliveries::Column::Id.is_in(delivery_ids.iter().copied()))
        .filter(webhook_deliveries::Column::Status.eq(DeliveryStatus::Pending))
        .exec(db)
        .await?;
    Ok(())
}
