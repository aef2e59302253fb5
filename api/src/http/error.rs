//! The one error type of the API crate and its mapping to status codes and the envelope.

use poem::{
    IntoResponse, Response,
    error::ResponseError,
    http::{HeaderValue, StatusCode},
};
use poem_openapi::{
    ApiResponse, Object,
    registry::{MetaMediaType, MetaResponse, MetaResponses, Registry},
    types::{ToJSON, Type},
};
use ultra_domain::DomainError;

/// An error a client sees: a status, a stable machine-readable `code`, a message that names the
/// problem, and the offending field for validation errors. Each surface renders it in its own
/// shape ([`ApiError::render`]); a surface whose seed fixes an exact body for an error sets it
/// in `body`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<u64>,
    pub body: Option<serde_json::Value>,
}

/// `{success: false, data: null, error, meta: {code, field}}`.
#[derive(Object)]
#[oai(rename = "ErrorResponse")]
pub struct ErrorEnvelope {
    pub success: bool,
    pub data: Option<serde_json::Value>,
    /// What went wrong, in words.
    pub error: String,
    pub meta: ErrorMeta,
}

#[derive(Object)]
pub struct ErrorMeta {
    /// Stable code to match on, such as `validation_error` or `idempotency_key_reused`.
    pub code: String,
    /// The request field at fault, for validation errors.
    pub field: Option<String>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), field: None, retry_after: None, body: None }
    }

    /// An error whose body is fixed by its surface's seed, e.g. Sellapay's `{"error": "Missing
    /// API key or secret code"}`.
    pub fn with_body(status: StatusCode, code: &'static str, body: serde_json::Value) -> Self {
        let message = body["message"].as_str().or(body["error"].as_str()).unwrap_or_default().to_owned();
        Self { body: Some(body), ..Self::new(status, code, message) }
    }

    /// The response for a request to `path`: Sellapay's `{error, message, details}` under
    /// `/sellapay/`, Maxtera's Django REST Framework shapes under `/maxtera/`, the
    /// `{success, data, error, meta}` envelope everywhere else.
    pub fn render(&self, path: &str) -> Response {
        let body = if path.starts_with(SELLAPAY_PREFIX) {
            self.sellapay_body()
        } else if path.starts_with(MAXTERA_PREFIX) {
            self.maxtera_body()
        } else {
            return self.as_response();
        };
        let mut response = poem::web::Json(body).into_response();
        response.set_status(self.status);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert("Retry-After", HeaderValue::from(seconds));
        }
        response
    }

    /// The reason alone, without the `field: ` prefix validation messages carry.
    fn reason(&self) -> &str {
        self.field
            .as_deref()
            .and_then(|f| self.message.strip_prefix(&format!("{f}: ")))
            .unwrap_or(&self.message)
    }

    /// `{field: [reason]}` for a field at fault, as DRF serializers answer, else
    /// `{detail, code}` as its exceptions and Simple JWT do.
    fn maxtera_body(&self) -> serde_json::Value {
        self.body.clone().unwrap_or_else(|| match &self.field {
            Some(field) => serde_json::json!({ field: [self.reason()] }),
            None => serde_json::json!({ "detail": self.message, "code": self.code }),
        })
    }

    fn sellapay_body(&self) -> serde_json::Value {
        self.body.clone().unwrap_or_else(|| {
            let field = self.field.as_deref();
            let reason = self.reason();
            serde_json::json!({
                "error": sellapay_title(self.status),
                "message": self.message,
                "details": match field {
                    Some(field) => serde_json::json!({ "field": field, "reason": reason }),
                    None => serde_json::json!({ "code": self.code }),
                },
            })
        })
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            message: format!("{field}: {message}"),
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "validation_error", "")
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!("too many requests: retry in {retry_after} s"),
            )
        }
    }

    /// Logs the cause and answers a bare 500: internals never reach a client.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "internal error")
    }

    pub fn unavailable(code: &'static str, message: impl Into<String>, retry_after: u64) -> Self {
        Self { retry_after: Some(retry_after), ..Self::new(StatusCode::SERVICE_UNAVAILABLE, code, message) }
    }

    /// Maps an error poem or poem-openapi raised before a handler ran (no route, bad query
    /// parameter, wrong content type, body too large) to the envelope.
    pub fn from_poem(err: &poem::Error, method: &str, path: &str) -> Self {
        if let Some(api) = err.downcast_ref::<ApiError>() {
            return api.clone();
        }
        let status = err.status();
        match status {
            StatusCode::NOT_FOUND => {
                Self::new(status, "route_not_found", format!("no route for {method} {path}"))
            }
            StatusCode::METHOD_NOT_ALLOWED => {
                Self::new(status, "method_not_allowed", format!("{method} is not allowed on {path}"))
            }
            StatusCode::PAYLOAD_TOO_LARGE => {
                Self::new(status, "payload_too_large", "request body is too large")
            }
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                Self::new(status, "unsupported_media_type", err.to_string())
            }
            StatusCode::UNAUTHORIZED => {
                Self::unauthorized("authentication required: send a bearer token or the auth_token cookie")
            }
            status if status.is_client_error() => {
                let message = err.to_string();
                let field = backticked_name(&message);
                Self { field, ..Self::new(status, "validation_error", message) }
            }
            _ => Self::internal(err),
        }
    }

    fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            success: false,
            data: None,
            error: self.message.clone(),
            meta: ErrorMeta { code: self.code.to_owned(), field: self.field.clone() },
        }
    }
}

const SELLAPAY_PREFIX: &str = "/sellapay/";
const MAXTERA_PREFIX: &str = "/maxtera/";

/// Sellapay's `error` is a short title of the kind of failure.
fn sellapay_title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Validation error",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::PAYMENT_REQUIRED => "Insufficient balance",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::TOO_MANY_REQUESTS => "Too many requests",
        StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
        status if status.is_server_error() => "Server error",
        _ => "Request error",
    }
}

/// poem-openapi names a failing field or parameter in backticks ("field `name` verification
/// failed", "failed to parse parameter `page`"); the name is lifted into `meta.field`.
fn backticked_name(message: &str) -> Option<String> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(message[start..start + len].to_owned()).filter(|name| !name.is_empty())
}

impl From<DomainError> for ApiError {
    fn from(err: DomainError) -> Self {
        match err {
            DomainError::Validation { field, message } => Self::validation(field, message),
            DomainError::NotFound(what) => Self::not_found(what),
            DomainError::Conflict { code, message } => Self::conflict(code, message),
            DomainError::Unprocessable { code, message } => Self::unprocessable(code, message),
            DomainError::InsufficientFunds { .. } => {
                Self::new(StatusCode::PAYMENT_REQUIRED, "insufficient_funds", err.to_string())
            }
            DomainError::Database(err) => err.into(),
            DomainError::Redis(_) | DomainError::Internal(_) => Self::internal(err),
        }
    }
}

/// A database error the server reported as rolled back, or a connection that could not be had,
/// is a `503` with `Retry-After`: nothing the request asked for took effect, so retrying is
/// safe even without an `Idempotency-Key`. Anything else, a connection lost while a `COMMIT`
/// was on the wire included, may or may not have taken effect, and stays a `500`.
impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if ultra_domain::db::is_retryable(&err) {
            tracing::warn!(error = %err, "database unavailable; the request changed nothing");
            return Self::unavailable(
                "database_unavailable",
                "the database could not complete the request and nothing was changed; retry shortly",
                1,
            );
        }
        Self::internal(err)
    }
}

impl ResponseError for ApiError {
    fn status(&self) -> StatusCode {
        self.status
    }

    fn as_response(&self) -> Response {
        let mut response = poem::web::Json(self.envelope().to_json()).into_response();
        response.set_status(self.status);
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert("Retry-After", HeaderValue::from(seconds));
        }
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

impl ApiResponse for ApiError {
    fn meta() -> MetaResponses {
        let responses = [
            (400, "The request is malformed or a field is invalid; `meta.field` names it"),
            (401, "Missing, invalid, expired or revoked credentials"),
            (403, "Authenticated but not allowed"),
            (404, "No such resource, or not yours"),
            (409, "Conflicts with the current state, or the same idempotency key is in flight"),
            (422, "The idempotency key was used with a different request"),
            (429, "Rate limited; see `Retry-After` and `X-RateLimit-*`"),
        ];
        MetaResponses {
            responses: responses
                .into_iter()
                .map(|(status, description)| MetaResponse {
                    description,
                    status: Some(status),
                    status_range: None,
                    content: vec![MetaMediaType {
                        content_type: "application/json; charset=utf-8",
                        schema: ErrorEnvelope::schema_ref(),
                    }],
                    headers: vec![],
                })
                .collect(),
        }
    }

    fn register(registry: &mut Registry) {
        ErrorEnvelope::register(registry);
    }
}
