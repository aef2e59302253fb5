//! Signing the Standard Webhooks way (<https://www.standardwebhooks.com>): the signature is
//! `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`, so that
//! receivers can use any Standard Webhooks library, and a captured delivery cannot be replayed
//! later with a new timestamp.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Standard Webhooks secrets are `whsec_` and base64 key bytes; any other secret is used as
/// its UTF-8 bytes, which is what a merchant who typed a passphrase expects.
pub const STANDARD_PREFIX: &str = "whsec_";

pub fn signing_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix(STANDARD_PREFIX)
        .and_then(|encoded| STANDARD.decode(encoded).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// The `webhook-signature` header value.
pub fn sign(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(&signing_key(secret)).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example from the Standard Webhooks specification's reference libraries.
    #[test]
    fn matches_the_specification_example() {
        let signature = sign(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_plain_secret_is_used_as_its_bytes() {
        assert_eq!(signing_key("a passphrase of 24 chars"), b"a passphrase of 24 chars".to_vec());
        assert_eq!(signing_key("whsec_not base64!"), b"whsec_not base64!".to_vec());
    }
}
