//! Argon2id password hashing.

use std::sync::LazyLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};

use crate::{DomainError, DomainResult};

pub const MIN_PASSWORD_LEN: usize = 8;

pub fn hash(password: &str) -> DomainResult<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(DomainError::validation(
            "password",
            format!("must be at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|err| DomainError::Internal(format!("password hashing failed: {err}")))
}

/// Checks a password against a stored hash. With no stored hash it still spends the time of a
/// real verification, so that an unknown email cannot be told from a wrong password by timing.
pub fn verify(password: &str, stored_hash: Option<&str>) -> bool {
    static DECOY: LazyLock<String> = LazyLock::new(|| {
        Argon2::default()
            .hash_password(b"decoy password never matches")
            .expect("argon2 hashes a constant")
            .to_string()
    });
    match stored_hash {
        Some(hash) => Argon2::default().verify_password(password.as_bytes(), hash).is_ok(),
        None => {
            let _ = Argon2::default().verify_password(password.as_bytes(), DECOY.as_str());
            false
        }
    }
}
