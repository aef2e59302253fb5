//! Firing the cron schedules. Only the leader fires; each tick enqueues its job under a
//! unique key naming the tick, so even an overlap of two leaders makes one job. Ticks missed
//! while no scheduler ran are not replayed.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use ultra_domain::{db::begin_write, runtime_config::RuntimeConfig};
use ultra_jobs::{
    QueueClient,
    schedules::{SCHEDULES, enqueue_tick},
};

use crate::leader::Leadership;

/// The next tick of every schedule, with expressions from runtime config over the defaults.
async fn next_ticks(db: &DatabaseConnection, after: DateTime<Utc>) -> Vec<(&'static str, DateTime<Utc>)> {
    let overrides = match RuntimeConfig::load(db).await {
        Ok(config) => config.schedules,
        Err(err) => {
            tracing::warn!(error = %err, "runtime config unreadable; using default schedules");
            Default::default()
        }
    };
    SCHEDULES
        .iter()
        .filter_map(|schedule| {
            let expression = overrides.get(schedule.name).map_or(schedule.default_cron, String::as_str);
            let parsed = cron::Schedule::from_str(expression)
                .or_else(|err| {
                    tracing::warn!(schedule = schedule.name, expression, error = %err, "bad cron expression; using the default");
                    cron::Schedule::from_str(schedule.default_cron)
                })
                .ok()?;
            parsed.after(&after).next().map(|tick| (schedule.name, tick))
        })
        .collect()
}

pub async fn run(
    db: DatabaseConnection,
    queue: QueueClient,
    leadership: Leadership,
    shutdown: CancellationToken,
) {
    let mut after = Utc::now();
    while !shutdown.is_cancelled() {
        let ticks = next_ticks(&db, after).await;
        let Some(tick) = ticks.iter().map(|(_, at)| *at).min() else { break };
        let wait = (tick - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(wait) => {}
        }
        after = tick;
        if !leadership.is_leader() {
            continue;
        }
        for (name, _) in ticks.iter().filter(|(_, at)| *at == tick) {
            if let Err(err) = fire(&db, &queue, name, tick).await {
                tracing::warn!(schedule = name, error = %err, "could not enqueue a scheduled job");
            }
        }
    }
}

async fn fire(
    db: &DatabaseConnection,
    queue: &QueueClient,
    name: &str,
    tick: DateTime<Utc>,
) -> anyhow::Result<()> {
    let txn = begin_write(db).await?;
    let enqueued = enqueue_tick(&txn, name, tick.timestamp()).await?;
    txn.commit().await?;
    enqueued.dispatch(queue).await;
    metrics::counter!("schedule_fired_total", "schedule" => name.to_owned()).increment(1);
    Ok(())
}
