//! The job kinds a worker can run, looked up by the kind stored on the row.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc, time::Duration};

use serde_json::Value;

use crate::{
    job::{Completed, Job, JobContext, JobError},
    kinds,
};

type Run = dyn Fn(JobContext, Value) -> Pin<Box<dyn Future<Output = Result<Completed, JobError>> + Send>>
    + Send
    + Sync;

/// How to run one kind, and how long to wait between its attempts (their number is on the row).
#[derive(Clone)]
pub struct Handler {
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    run: Arc<Run>,
}

impl Handler {
    pub fn run(
        &self,
        ctx: JobContext,
        payload: Value,
    ) -> Pin<Box<dyn Future<Output = Result<Completed, JobError>> + Send>> {
        (self.run)(ctx, payload)
    }
}

#[derive(Clone, Default)]
pub struct Registry {
    handlers: HashMap<&'static str, Handler>,
}

impl Registry {
    /// Every job kind Ultra has.
    pub fn standard() -> Self {
        let mut registry = Self::default();
        kinds::register_all(&mut registry);
        registry
    }

    pub fn register<J: Job>(&mut self) {
        let run: Arc<Run> = Arc::new(|ctx, payload| {
            Box::pin(async move {
                let job: J = serde_json::from_value(payload)
                    .map_err(|err| JobError::Permanent(format!("payload does not decode: {err}")))?;
                job.run(ctx).await
            })
        });
        self.handlers
            .insert(J::KIND, Handler { base_backoff: J::BASE_BACKOFF, max_backoff: J::MAX_BACKOFF, run });
    }

    pub fn get(&self, kind: &str) -> Option<&Handler> {
        self.handlers.get(kind)
    }
}
