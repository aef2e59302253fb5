//! `GET jobs/{id}`: the status of an asynchronous operation, for its owner.

use std::time::Duration;

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{
    Enum, Object, OpenApi,
    param::{Header, Path},
};
use sea_orm::EntityTrait;
use ultra_entity::jobs::{self, JobStatus};

use super::ApiTags;
use crate::{
    AppState,
    http::{
        auth::{Auth, Principal},
        envelope::Reply,
        error::{ApiError, ApiResult},
    },
};

/// The longest `Prefer: wait` honoured; longer requests wait this long.
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Dead,
    Cancelled,
}

impl From<JobStatus> for JobState {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Running,
            JobStatus::Succeeded => Self::Succeeded,
            JobStatus::Failed => Self::Failed,
            JobStatus::Dead => Self::Dead,
            JobStatus::Cancelled => Self::Cancelled,
        }
    }
}

/// The resource a job works on.
#[derive(Object)]
pub struct ResourceLink {
    #[oai(rename = "type")]
    pub kind: String,
    pub id: String,
    pub url: String,
}

#[derive(Object)]
#[oai(rename_all = "camelCase")]
pub struct JobView {
    pub id: String,
    pub kind: String,
    pub status: JobState,
    pub attempts: i32,
    pub max_attempts: i32,
    pub created_at: DateTime<Utc>,
    /// When the job (next) runs.
    pub run_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub result: Option<serde_json::Value>,
    /// The last attempt's error.
    pub error: Option<String>,
    /// Each recent attempt's times, worker and error with what the provider answered; shown
    /// to admins only.
    pub attempt_log: Option<serde_json::Value>,
    pub resource: Option<ResourceLink>,
    pub status_url: String,
}

impl From<jobs::Model> for JobView {
    fn from(job: jobs::Model) -> Self {
        let resource = match (job.resource_type, job.resource_id) {
            (Some(kind), Some(id)) => Some(ResourceLink { url: format!("/api/v1/{kind}/{id}"), kind, id }),
            _ => None,
        };
        Self {
            status_url: format!("/api/v1/jobs/{}", job.id),
            id: job.id,
            kind: job.kind,
            status: job.status.into(),
            attempts: job.attempts,
            max_attempts: job.max_attempts,
            created_at: job.created_at,
            run_at: job.run_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
            result: job.result,
            error: job.last_error,
            attempt_log: job.attempt_log,
            resource,
        }
    }
}

/// The seconds of an RFC 7240 `wait` preference, e.g. `Prefer: respond-async, wait=10`.
pub fn preferred_wait(prefer: Option<&str>) -> Option<Duration> {
    prefer?.split([',', ';']).map(str::trim).find_map(|preference| {
        let (name, value) = preference.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("wait") {
            return None;
        }
        value.trim().trim_matches('"').parse::<u64>().ok().map(|s| Duration::from_secs(s).min(MAX_WAIT))
    })
}

fn visible_to(job: &jobs::Model, principal: &Principal) -> bool {
    principal.is_admin() || job.owner_id.as_deref().is_some_and(|owner| principal.may_see(owner))
}

pub struct JobsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Jobs")]
impl JobsApi {
    /// Get a job's status
    ///
    /// With `Prefer: wait=N`, waits up to N seconds (at most 60) for the job to finish and
    /// answers `Preference-Applied`.
    #[oai(path = "/jobs/:id", method = "get", operation_id = "getJob")]
    async fn get(
        &self,
        state: Data<&AppState>,
        auth: Auth,
        id: Path<String>,
        /// RFC 7240 preferences; `wait=N` waits for a terminal state.
        #[oai(name = "Prefer")]
        prefer: Header<Option<String>>,
    ) -> ApiResult<Reply<JobView>> {
        let job = jobs::Entity::find_by_id(id.0.as_str())
            .one(&state.db)
            .await?
            .filter(|job| visible_to(job, &auth.0))
            .ok_or_else(|| ApiError::not_found("job"))?;
        let admin = auth.0.is_admin();
        let view = |job: jobs::Model| {
            let mut view = JobView::from(job);
            if !admin {
                view.attempt_log = None;
            }
            view
        };
        let Some(wait) = preferred_wait(prefer.0.as_deref()) else {
            return Ok(Reply::new(view(job)));
        };
        let job = if job.status.is_terminal() {
            job
        } else {
            ultra_jobs::wait::until_finished(&state.db, &state.pubsub, &state.queue, &job.id, wait)
                .await?
                .ok_or_else(|| ApiError::not_found("job"))?
        };
        Ok(Reply::new(view(job)).with_header("Preference-Applied", format!("wait={}", wait.as_secs())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_wait_preference() {
        assert_eq!(preferred_wait(Some("wait=5")), Some(Duration::from_secs(5)));
        assert_eq!(preferred_wait(Some("respond-async, wait=10")), Some(Duration::from_secs(10)));
        assert_eq!(preferred_wait(Some("return=minimal; wait=\"3\"")), Some(Duration::from_secs(3)));
        assert_eq!(preferred_wait(Some("wait=3600")), Some(MAX_WAIT));
        assert_eq!(preferred_wait(Some("respond-async")), None);
        assert_eq!(preferred_wait(Some("wait=soon")), None);
        assert_eq!(preferred_wait(None), None);
    }
}
