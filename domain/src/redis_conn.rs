//! The Redis connection shared by a process.

use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// Connects with a 5 s response timeout: the client's 500 ms default turns one slow Lua script
/// into a failed request.
pub async fn connect(url: &str) -> Result<ConnectionManager, ::redis::RedisError> {
    let client = ::redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_response_timeout(Some(Duration::from_secs(5)))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    client.get_connection_manager_with_config(config).await
}
