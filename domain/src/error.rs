use sea_orm::DbErr;

/// The one error type of the domain crate. The API maps each variant to a status code in one
/// place; database and Redis details are logged there, never shown to a client.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Validation { field: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Understood and valid, but not something this resource can do (a refund through a
    /// provider without a refund API).
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error("insufficient funds: {required} required, {available} available")]
    InsufficientFunds { required: i64, available: i64 },
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("redis error: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("{0}")]
    Internal(String),
}

impl DomainError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }
}

pub type DomainResult<T> = Result<T, DomainError>;
