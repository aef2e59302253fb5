//! `/healthz` and `/readyz`, for load balancers; `/metrics` is on the operator address only.

use poem_openapi::{ApiResponse, Object, OpenApi, payload::Json};

use poem::web::Data;

use ultra_domain::health::Dependencies;

use super::ApiTags;
use crate::AppState;

#[derive(Object)]
pub struct Health {
    pub status: String,
}

#[derive(Object)]
pub struct Readiness {
    pub status: String,
    pub database: String,
    pub redis: String,
}

#[derive(ApiResponse)]
pub enum ReadyResponse {
    /// The database and Redis both answer.
    #[oai(status = 200)]
    Ready(Json<Readiness>),
    /// The database or Redis does not answer; the body says which.
    #[oai(status = 503)]
    NotReady(Json<Readiness>),
}

pub struct PlatformApi;

#[OpenApi(tag = "ApiTags::Platform")]
impl PlatformApi {
    /// Liveness: the process is up and serving.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> Json<Health> {
        Json(Health { status: "ok".to_owned() })
    }

    /// Readiness: the database and Redis answer.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyResponse {
        let dependencies = Dependencies::check(&state.db, &state.redis).await;
        let verdict = |result: &Result<(), String>, name: &str| match result {
            Ok(()) => "ok".to_owned(),
            Err(err) => {
                tracing::warn!(error = %err, "readiness: {name} unavailable");
                "unavailable".to_owned()
            }
        };
        let body = Readiness {
            status: if dependencies.ready() { "ok" } else { "unavailable" }.to_owned(),
            database: verdict(&dependencies.database, "database"),
            redis: verdict(&dependencies.redis, "redis"),
        };
        if dependencies.ready() {
            ReadyResponse::Ready(Json(body))
        } else {
            ReadyResponse::NotReady(Json(body))
        }
    }
}
