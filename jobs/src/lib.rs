//! The job pipeline's shared half: job kinds and their handlers, the one enqueue path, and what
//! a worker does with each delivery.
//!
//! The database is the source of truth and Redis only carries. A job is a row written in the
//! caller's transaction; after commit a message naming the row is pushed to an apalis-redis
//! queue. A handler records the job's completion in the same transaction as its effect, guarded
//! by the id of the push it was started from, so a duplicate or stale delivery changes nothing.

mod batches;
mod completions;
pub mod enqueue;
mod env;
pub mod job;
pub mod kinds;
pub mod queue;
pub mod registry;
mod rows;
pub mod runner;
pub mod schedules;
pub mod wait;

pub use enqueue::{Enqueued, NewJob, enqueue, enqueue_now};
pub use env::JobEnv;
pub use job::{Completed, Job, JobContext, JobError};
pub use queue::{Delivery, QueueClient};
pub use registry::Registry;
