//! OAuth tokens, kept until shortly before they expire: Airtel's last three minutes, MVola's an
//! hour, Orange's ninety days, and none of them likes being asked for one per request.

use std::{collections::HashMap, future::Future, time::Duration};

use sha2::{Digest, Sha256};
use tokio::{sync::Mutex, time::Instant};

use crate::ProviderError;

#[derive(Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<String, Cached>>,
}

struct Cached {
    token: String,
    renew_at: Instant,
}

impl TokenCache {
    /// The key a token is cached under: the whole credential, the secret by its SHA-256. A
    /// token is issued to a client id and secret together, so one who knows only the client id
    /// (another merchant, with a configuration of their own) never gets the secret holder's.
    pub fn key(provider: &str, base: &str, client_id: &str, secret: &str) -> String {
        format!("{provider}|{base}|{client_id}|{}", hex::encode(Sha256::digest(secret.as_bytes())))
    }

    /// The cached token for `key`, or a new one from `fetch`. The lock is held while fetching
    /// so concurrent jobs wait for one token instead of each asking for their own.
    pub async fn get<F, Fut>(&self, key: &str, fetch: &F) -> Result<String, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<(String, Duration), ProviderError>>,
    {
        let mut tokens = self.tokens.lock().await;
        if let Some(cached) = tokens.get(key)
            && cached.renew_at > Instant::now()
        {
            return Ok(cached.token.clone());
        }
        let (token, ttl) = fetch().await?;
        let margin = (ttl / 10).min(Duration::from_secs(60));
        tokens
            .insert(key.to_owned(), Cached { token: token.clone(), renew_at: Instant::now() + ttl - margin });
        Ok(token)
    }

    pub async fn forget(&self, key: &str) {
        self.tokens.lock().await.remove(key);
    }
}
