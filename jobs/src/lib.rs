//! Job payloads, their handlers (what a worker executes) and the one enqueue path: a job row
//! written in the caller's transaction, pushed to Redis after commit. The `jobs` table is in
//! place; job kinds are added here with the features that need them.
