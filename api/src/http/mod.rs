//! Cross-cutting HTTP machinery shared by every surface: nothing resource-specific lives here.

pub mod auth;
pub mod client;
pub mod csv;
pub mod envelope;
pub mod error;
pub mod idempotency;
pub mod json_body;
pub mod pagination;
pub mod rate_limit;
pub mod request_context;
