//! Whether a process's dependencies answer: what `/readyz` reports and what every process
//! checks before it starts work.

use redis::aio::ConnectionManager;
use sea_orm::DatabaseConnection;

pub struct Dependencies {
    pub database: Result<(), String>,
    pub redis: Result<(), String>,
}

impl Dependencies {
    pub async fn check(db: &DatabaseConnection, redis: &ConnectionManager) -> Self {
        let mut redis = redis.clone();
        let database = crate::db::ping(db).await.map_err(|err| err.to_string());
        let redis = ::redis::cmd("PING")
            .query_async::<String>(&mut redis)
            .await
            .map(|_| ())
            .map_err(|err| err.to_string());
        Self { database, redis }
    }

    pub fn ready(&self) -> bool {
        self.database.is_ok() && self.redis.is_ok()
    }

    /// An error naming what does not answer, for a process that cannot start without it.
    pub fn require(self) -> crate::DomainResult<()> {
        match (self.database, self.redis) {
            (Ok(()), Ok(())) => Ok(()),
            (Err(err), _) => {
                Err(crate::DomainError::Internal(format!("the database does not answer: {err}")))
            }
            (_, Err(err)) => Err(crate::DomainError::Internal(format!("Redis does not answer: {err}"))),
        }
    }
}
