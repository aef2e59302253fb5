//! Social posts and their publish log. A post changes only while it is a draft or scheduled;
//! publishing claims it (draft or scheduled → publishing) with a conditional update in the
//! transaction that enqueues its publish job, so a post is claimed once however many
//! schedulers, clients and retries race for it.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait},
};
use serde_json::{Value, json};
use ultra_entity::{
    jobs::{self, JobStatus},
    social_accounts,
    social_posts::{self, SocialPostStatus},
    social_publish_logs,
};

use super::accounts::truncate;
use crate::{DomainError, DomainResult, ids};

const EDITABLE: [SocialPostStatus; 2] = [SocialPostStatus::Draft, SocialPostStatus::Scheduled];

pub fn new_id() -> String {
    ids::new_id("spost")
}

pub fn media_of(post: &social_posts::Model) -> Vec<String> {
    serde_json::from_value(post.media_urls.clone()).unwrap_or_default()
}

/// A scheduled time must lie ahead; errors name `scheduledAt`.
pub fn check_schedule(at: DateTime<Utc>, now: DateTime<Utc>) -> DomainResult<()> {
    if at <= now {
        return Err(DomainError::validation("scheduledAt", "must be in the future"));
    }
    if at > now + chrono::Duration::days(365) {
        return Err(DomainError::validation("scheduledAt", "must be within a year"));
    }
    Ok(())
}

pub struct NewPost {
    pub content: String,
    pub media_urls: Vec<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
}

/// Writes a draft, or a scheduled post when it has a time.
pub async fn create(
    db: &impl ConnectionTrait,
    account: &social_accounts::Model,
    new: NewPost,
    now: DateTime<Utc>,
) -> DomainResult<social_posts::Model> {
    let status =
        if new.scheduled_at.is_some() { SocialPostStatus::Scheduled } else { SocialPostStatus::Draft };
    Ok(social_posts::ActiveModel {
        id: Set(new_id()),
        user_id: Set(account.user_id.clone()),
        social_account_id: Set(account.id.clone()),
        platform: Set(account.platform),
        content: Set(new.content),
        media_urls: Set(json!(new.media_urls)),
        status: Set(status),
        scheduled_at: Set(new.scheduled_at),
        publish_job_id: Set(None),
        publish_handle: Set(None),
        platform_post_id: Set(None),
        published_at: Set(None),
        error: Set(None),
        attempts: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?)
}

/// A post's new text, media and time; the status follows the time (scheduled with one, a
/// draft without).
pub struct Edit {
    pub content: String,
    pub media_urls: Vec<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
}

fn not_editable(post: &social_posts::Model, what: &str) -> DomainError {
    DomainError::Conflict {
        code: "social_post_not_editable",
        message: format!(
            "only draft or scheduled posts can be {what}; this post is {}",
            status_name(post.status)
        ),
    }
}

pub fn status_name(status: SocialPostStatus) -> &'static str {
    match status {
        SocialPostStatus::Draft => "draft",
        SocialPostStatus::Scheduled => "scheduled",
        SocialPostStatus::Publishing => "publishing",
        SocialPostStatus::Published => "published",
        SocialPostStatus::Failed => "failed",
    }
}

/// Applies `edit` if the post is still as the caller read it and still editable: an edit that
/// races a publication gets a 409 rather than changing a post being published.
pub async fn update(
    db: &impl ConnectionTrait,
    post: &social_posts::Model,
    edit: Edit,
    now: DateTime<Utc>,
) -> DomainResult<social_posts::Model> {
    let status =
        if edit.scheduled_at.is_some() { SocialPostStatus::Scheduled } else { SocialPostStatus::Draft };
    let updated = social_posts::Entity::update_many()
        .col_expr(social_posts::Column::Content, Expr::value(edit.content))
        .col_expr(social_posts::Column::MediaUrls, Expr::value(json!(edit.media_urls)))
        .col_expr(social_posts::Column::ScheduledAt, Expr::value(edit.scheduled_at))
        .col_expr(social_posts::Column::Status, Expr::value(status))
        .col_expr(social_posts::Column::UpdatedAt, Expr::value(now))
        .filter(social_posts::Column::Id.eq(post.id.as_str()))
        .filter(social_posts::Column::Status.is_in(EDITABLE))
        .filter(social_posts::Column::UpdatedAt.eq(post.updated_at))
        .exec(db)
        .await?;
    let current = reload(db, &post.id).await?;
    if updated.rows_affected == 1 {
        return Ok(current);
    }
    Err(if EDITABLE.contains(&current.status) {
        DomainError::Conflict {
            code: "social_post_changed",
            message: "the post changed while this edit was made: read it again".to_owned(),
        }
    } else {
        not_editable(&current, "updated")
    })
}

pub async fn delete(db: &impl ConnectionTrait, post: &social_posts::Model) -> DomainResult<()> {
    let deleted = social_posts::Entity::delete_many()
        .filter(social_posts::Column::Id.eq(post.id.as_str()))
        .filter(social_posts::Column::Status.is_in(EDITABLE))
        .exec(db)
        .await?;
    if deleted.rows_affected == 1 {
        social_publish_logs::Entity::delete_many()
            .filter(social_publish_logs::Column::PostId.eq(post.id.as_str()))
            .exec(db)
            .await?;
        return Ok(());
    }
    Err(not_editable(&reload(db, &post.id).await?, "deleted"))
}

/// Scheduled back to draft, with a `cancel` entry in the post's log.
pub async fn cancel(
    db: &impl ConnectionTrait,
    post: &social_posts::Model,
    user_id: &str,
    now: DateTime<Utc>,
) -> DomainResult<social_posts::Model> {
    let updated = social_posts::Entity::update_many()
        .col_expr(social_posts::Column::Status, Expr::value(SocialPostStatus::Draft))
        .col_expr(social_posts::Column::ScheduledAt, Expr::value(None::<DateTime<Utc>>))
        .col_expr(social_posts::Column::UpdatedAt, Expr::value(now))
        .filter(social_posts::Column::Id.eq(post.id.as_str()))
        .filter(social_posts::Column::Status.eq(SocialPostStatus::Scheduled))
        .exec(db)
        .await?;
    let current = reload(db, &post.id).await?;
    if updated.rows_affected != 1 {
        return Err(DomainError::Conflict {
            code: "social_post_not_scheduled",
            message: format!(
                "only scheduled posts can be cancelled; this post is {}",
                status_name(current.status)
            ),
        });
    }
    log(
        db,
        LogEntry {
            post_id: &post.id,
            action: "cancel",
            attempt: post.attempts,
            outcome: "cancelled",
            exchanges: None,
            error: None,
            job_id: None,
            user_id: Some(user_id),
        },
    )
    .await?;
    Ok(current)
}

/// Claims the post for publication by `job_id`: `false` when it is no longer a draft or
/// scheduled (or, for the schedule, no longer due).
pub async fn claim(
    db: &impl ConnectionTrait,
    post_id: &str,
    due_by: Option<DateTime<Utc>>,
    job_id: &str,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let mut update = social_posts::Entity::update_many()
        .col_expr(social_posts::Column::Status, Expr::value(SocialPostStatus::Publishing))
        .col_expr(social_posts::Column::PublishJobId, Expr::value(Some(job_id.to_owned())))
        .col_expr(social_posts::Column::PublishHandle, Expr::value(None::<String>))
        .col_expr(social_posts::Column::Error, Expr::value(None::<String>))
        .col_expr(social_posts::Column::UpdatedAt, Expr::value(now))
        .filter(social_posts::Column::Id.eq(post_id));
    update = match due_by {
        Some(at) => update
            .filter(social_posts::Column::Status.eq(SocialPostStatus::Scheduled))
            .filter(social_posts::Column::ScheduledAt.lte(at)),
        None => update.filter(social_posts::Column::Status.is_in(EDITABLE)),
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Scheduled posts whose time has come, oldest first.
pub async fn due(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> DomainResult<Vec<social_posts::Model>> {
    Ok(social_posts::Entity::find()
        .filter(social_posts::Column::Status.eq(SocialPostStatus::Scheduled))
        .filter(social_posts::Column::ScheduledAt.lte(now))
        .order_by_asc(social_posts::Column::ScheduledAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Posts left `publishing` by a job that ended without settling them (it crashed on its last
/// attempt, or was cancelled), with that job's id and last error.
pub async fn stranded(
    db: &impl ConnectionTrait,
    limit: u64,
) -> DomainResult<Vec<(social_posts::Model, String, Option<String>)>> {
    let publishing = social_posts::Entity::find()
        .filter(social_posts::Column::Status.eq(SocialPostStatus::Publishing))
        .filter(social_posts::Column::PublishJobId.is_not_null())
        .order_by_asc(social_posts::Column::UpdatedAt)
        .limit(limit)
        .all(db)
        .await?;
    let job_ids: Vec<String> = publishing.iter().filter_map(|post| post.publish_job_id.clone()).collect();
    if job_ids.is_empty() {
        return Ok(Vec::new());
    }
    let ended: std::collections::HashMap<String, Option<String>> = jobs::Entity::find()
        .filter(jobs::Column::Id.is_in(job_ids))
        .filter(jobs::Column::Status.is_in([JobStatus::Failed, JobStatus::Dead, JobStatus::Cancelled]))
        .all(db)
        .await?
        .into_iter()
        .map(|job| (job.id, job.last_error))
        .collect();
    Ok(publishing
        .into_iter()
        .filter_map(|post| {
            let job_id = post.publish_job_id.clone()?;
            let error = ended.get(&job_id)?.clone();
            Some((post, job_id, error))
        })
        .collect())
}

/// Counts an attempt by the job that holds the post; `false` when it no longer does.
pub async fn begin_attempt(db: &impl ConnectionTrait, post_id: &str, job_id: &str) -> DomainResult<bool> {
    let updated = social_posts::Entity::update_many()
        .col_expr(social_posts::Column::Attempts, Expr::col(social_posts::Column::Attempts).add(1))
        .filter(social_posts::Column::Id.eq(post_id))
        .filter(social_posts::Column::Status.eq(SocialPostStatus::Publishing))
        .filter(social_posts::Column::PublishJobId.eq(job_id))
        .exec(db)
        .await?;
    Ok(updated.rows_affected == 1)
}

/// Keeps the platform's handle on a publication still processing, for the retry to resume.
pub async fn keep_handle(db: &impl ConnectionTrait, post_id: &str, handle: &str) -> DomainResult<()> {
    social_posts::Entity::update_many()
        .col_expr(social_posts::Column::PublishHandle, Expr::value(Some(handle.to_owned())))
        .filter(social_posts::Column::Id.eq(post_id))
        .filter(social_posts::Column::Status.eq(SocialPostStatus::Publishing))
        .exec(db)
        .await?;
    Ok(())
}

/// How a publication ended.
pub enum Outcome<'a> {
    Published { platform_post_id: &'a str },
    Failed { error: &'a str },
}

/// Ends the publication held by `job_id`; `false` when the post is no longer this job's.
pub async fn conclude(
    db: &impl ConnectionTrait,
    post_id: &str,
    job_id: &str,
    outcome: Outcome<'_>,
    now: DateTime<Utc>,
) -> DomainResult<bool> {
    let update = social_posts::Entity::update_many()
        .col_expr(social_posts::Column::UpdatedAt, Expr::value(now))
        .filter(social_posts::Column::Id.eq(post_id))
        .filter(social_posts::Column::Status.eq(SocialPostStatus::Publishing))
        .filter(social_posts::Column::PublishJobId.eq(job_id));
    let update = match outcome {
        Outcome::Published { platform_post_id } => update
            .col_expr(social_posts::Column::Status, Expr::value(SocialPostStatus::Published))
            .col_expr(social_posts::Column::PlatformPostId, Expr::value(Some(platform_post_id.to_owned())))
            .col_expr(social_posts::Column::PublishedAt, Expr::value(Some(now))),
        Outcome::Failed { error } => {
            let mut error = error.to_owned();
            truncate(&mut error, 2000);
            update
                .col_expr(social_posts::Column::Status, Expr::value(SocialPostStatus::Failed))
                .col_expr(social_posts::Column::Error, Expr::value(Some(error)))
        }
    };
    Ok(update.exec(db).await?.rows_affected == 1)
}

pub struct LogEntry<'a> {
    pub post_id: &'a str,
    pub action: &'a str,
    pub attempt: i32,
    /// `published`, `processing`, `retrying`, `failed` or `cancelled`.
    pub outcome: &'a str,
    pub exchanges: Option<Value>,
    pub error: Option<&'a str>,
    pub job_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
}

pub async fn log(db: &impl ConnectionTrait, entry: LogEntry<'_>) -> DomainResult<social_publish_logs::Model> {
    Ok(social_publish_logs::ActiveModel {
        id: Set(ids::new_id("splog")),
        post_id: Set(entry.post_id.to_owned()),
        action: Set(entry.action.to_owned()),
        attempt: Set(entry.attempt),
        outcome: Set(entry.outcome.to_owned()),
        exchanges: Set(entry.exchanges),
        error: Set(entry.error.map(str::to_owned)),
        job_id: Set(entry.job_id.map(str::to_owned)),
        user_id: Set(entry.user_id.map(str::to_owned)),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await?)
}

/// A post's log, oldest first.
pub async fn logs(db: &impl ConnectionTrait, post_id: &str) -> DomainResult<Vec<social_publish_logs::Model>> {
    Ok(social_publish_logs::Entity::find()
        .filter(social_publish_logs::Column::PostId.eq(post_id))
        .order_by_asc(social_publish_logs::Column::CreatedAt)
        .order_by_asc(social_publish_logs::Column::Id)
        .all(db)
        .await?)
}

async fn reload(db: &impl ConnectionTrait, id: &str) -> DomainResult<social_posts::Model> {
    social_posts::Entity::find_by_id(id).one(db).await?.ok_or(DomainError::NotFound("social post"))
}
