//! The HTTP API: authenticates, validates, writes state and (from the job pipeline on) enqueues
//! work. It never calls a payment provider on the request path.

pub mod app;
pub mod caches;
pub mod http;
pub mod maxtera;
pub mod sellapay;
pub mod state;
pub mod ultra;

pub use app::{openapi_spec, route, serve};
pub use state::{ApiConfig, AppState};
