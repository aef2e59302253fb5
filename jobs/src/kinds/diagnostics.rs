//! A probe through the whole pipeline, for operators checking a deployment, for the pipeline's
//! own tests and for its benchmarks: it waits, then succeeds (writing an audit row in the same
//! transaction as its completion, so a double run would show), completes with no effect (the
//! pipeline's own cost), fails before or after its write, or panics, as asked.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use ultra_domain::audit::{self, Actor, AuditEvent};

use crate::job::{Completed, Job, JobContext, JobError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeOutcome {
    Succeed,
    /// Records its completion and nothing else.
    Complete,
    Fail,
    /// Writes its audit row, then fails in the same transaction, for good: the row must not
    /// survive, nor harm the jobs committed with it.
    FailAfterWrite,
    /// As `FailAfterWrite` on its first attempt, with a retryable error; later attempts write
    /// and succeed: a retry of an effect that failed inside a group.
    FailAfterWriteOnce,
    Panic,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Probe {
    pub sleep_ms: u64,
    pub outcome: ProbeOutcome,
}

pub const PROBE_AUDIT_ACTION: &str = "diagnostics.probe_completed";

impl Job for Probe {
    const KIND: &'static str = "diagnostics.probe";
    const MAX_ATTEMPTS: i32 = 4;
    /// Long enough that the growing gaps between retries are plain to see.
    const BASE_BACKOFF: Duration = Duration::from_secs(3);

    async fn run(self, ctx: JobContext) -> Result<Completed, JobError> {
        tokio::time::sleep(Duration::from_millis(self.sleep_ms)).await;
        match self.outcome {
            ProbeOutcome::Fail => {
                Err(JobError::Transient(format!("probe failure on attempt {}", ctx.attempt)))
            }
            ProbeOutcome::Panic => panic!("probe panic on attempt {}", ctx.attempt),
            ProbeOutcome::Complete => ctx.conclude(json!({})).await,
            ProbeOutcome::Succeed | ProbeOutcome::FailAfterWrite | ProbeOutcome::FailAfterWriteOnce => {
                let (job_id, worker) = (ctx.job.id.clone(), ctx.worker_id.clone());
                let (slept_ms, outcome, attempt) = (self.sleep_ms, self.outcome, ctx.attempt);
                ctx.finish(move |txn| {
                    Box::pin(async move {
                        let event = AuditEvent {
                            action: PROBE_AUDIT_ACTION,
                            entity_type: "job",
                            entity_id: Some(&job_id),
                            details: Some(json!({ "worker": worker })),
                        };
                        audit::record(txn, &Actor::default(), event).await?;
                        if outcome == ProbeOutcome::FailAfterWrite {
                            return Err(JobError::Permanent("probe failure after its write".to_owned()));
                        }
                        if outcome == ProbeOutcome::FailAfterWriteOnce && attempt == 1 {
                            return Err(JobError::Transient(
                                "probe failure after its first write".to_owned(),
                            ));
                        }
                        Ok(json!({ "slept_ms": slept_ms }))
                    })
                })
                .await
            }
        }
    }
}
