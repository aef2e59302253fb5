//! OAuth client-credentials tokens. Each provider only honours its own tokens, and every token
//! request is counted so that tests can prove an adapter reuses its token instead of asking
//! for one per call.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};

use crate::config::SandboxConfig;

#[derive(Default)]
pub struct Tokens {
    issued: HashMap<String, Issued>,
    requests: HashMap<&'static str, u64>,
}

struct Issued {
    provider: &'static str,
    expires: Instant,
}

impl Tokens {
    pub fn count_request(&mut self, provider: &'static str) {
        *self.requests.entry(provider).or_default() += 1;
    }

    pub fn requests(&self, provider: &'static str) -> u64 {
        self.requests.get(provider).copied().unwrap_or_default()
    }

    pub fn issue(&mut self, provider: &'static str, token: String, lifetime: Duration) -> String {
        self.issued.retain(|_, issued| issued.expires > Instant::now());
        self.issued.insert(token.clone(), Issued { provider, expires: Instant::now() + lifetime });
        token
    }

    /// Whether `token` was issued by `provider` and has not expired.
    pub fn accepts(&self, provider: &'static str, token: &str) -> bool {
        self.issued
            .get(token)
            .is_some_and(|issued| issued.provider == provider && issued.expires > Instant::now())
    }
}

/// Whether an `Authorization: Basic base64(id:secret)` header names the configured client.
pub fn basic_matches(authorization: Option<&str>, config: &SandboxConfig) -> bool {
    let Some(encoded) = authorization.and_then(|value| value.strip_prefix("Basic ")) else {
        return false;
    };
    let Ok(decoded) = STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let expected = format!("{}:{}", config.client_id, config.client_secret);
    decoded == expected.as_bytes()
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    let value = authorization?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim()).filter(|token| !token.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_only_works_for_its_provider_until_it_expires() {
        let mut tokens = Tokens::default();
        let live = tokens.issue("mvola", "live".to_owned(), Duration::from_secs(60));
        let dead = tokens.issue("mvola", "dead".to_owned(), Duration::ZERO);
        assert!(tokens.accepts("mvola", &live));
        assert!(!tokens.accepts("airtel", &live));
        assert!(!tokens.accepts("mvola", &dead));
    }

    #[test]
    fn basic_credentials_must_name_the_configured_client() {
        let config = SandboxConfig::default();
        let good = format!("Basic {}", STANDARD.encode("ultra-sandbox:ultra-sandbox-secret"));
        let bad = format!("Basic {}", STANDARD.encode("ultra-sandbox:wrong"));
        assert!(basic_matches(Some(&good), &config));
        assert!(!basic_matches(Some(&bad), &config));
        assert!(!basic_matches(None, &config));
    }
}
