//! Secrets at rest (provider credentials, later webhook secrets and social tokens): sealed with
//! AES-256-GCM under a key from the environment, and shown to clients only masked.

use aes_gcm::{Aes256Gcm, KeyInit, Nonce, aead::Aead};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::{DomainError, DomainResult};

/// A value sent back starting with this keeps the stored secret: clients can PUT back what a
/// GET returned without knowing the secret.
pub const MASK: &str = "****";
const VERSION: &str = "v1:";
const NONCE_LEN: usize = 12;

#[derive(Clone)]
pub struct SecretBox {
    cipher: Aes256Gcm,
    /// Derived from the same key, so a leaked path token reveals nothing about the cipher key.
    token_key: [u8; 32],
}

/// Path tokens are this many bytes of HMAC, hex-encoded: 80 bits, short enough for Orange's
/// 120-character notification URLs.
const PATH_TOKEN_BYTES: usize = 10;

impl SecretBox {
    /// `key` is 32 random bytes, base64-encoded (`openssl rand -base64 32`).
    pub fn from_base64(key: &str) -> DomainResult<Self> {
        let bytes = STANDARD
            .decode(key.trim())
            .map_err(|_| DomainError::validation("ULTRA_ENCRYPTION_KEY", "must be base64"))?;
        let cipher = Aes256Gcm::new_from_slice(&bytes).map_err(|_| {
            DomainError::validation("ULTRA_ENCRYPTION_KEY", "must decode to exactly 32 bytes")
        })?;
        let token_key =
            Sha256::new().chain_update(b"ultra path tokens").chain_update(&bytes).finalize().into();
        Ok(Self { cipher, token_key })
    }

    /// A new random key, base64-encoded, for `ultra dev`.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        rand::rng().fill(&mut key);
        STANDARD.encode(key)
    }

    /// An unguessable token naming `id` in a URL path, such as a provider callback URL: the
    /// providers that do not sign their callbacks can at least only reach the URL we gave them.
    pub fn path_token(&self, purpose: &str, id: &str) -> String {
        let tag = self.path_mac(purpose, id).finalize().into_bytes();
        hex::encode(&tag[..PATH_TOKEN_BYTES])
    }

    /// Checks a path token in constant time.
    pub fn verify_path_token(&self, purpose: &str, id: &str, token: &str) -> bool {
        match hex::decode(token) {
            Ok(tag) if tag.len() == PATH_TOKEN_BYTES => {
                self.path_mac(purpose, id).verify_truncated_left(&tag).is_ok()
            }
            _ => false,
        }
    }

    fn path_mac(&self, purpose: &str, id: &str) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.token_key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b":");
        mac.update(id.as_bytes());
        mac
    }

    pub fn seal(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill(&mut nonce);
        let ciphertext =
            self.cipher.encrypt(&Nonce::from(nonce), plaintext).expect("AES-GCM encrypts any input");
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        format!("{VERSION}{}", STANDARD.encode(sealed))
    }

    pub fn open(&self, sealed: &str) -> DomainResult<Vec<u8>> {
        let unreadable = || DomainError::Internal("a stored secret cannot be decrypted with this key".into());
        let bytes =
            sealed.strip_prefix(VERSION).and_then(|b64| STANDARD.decode(b64).ok()).ok_or_else(unreadable)?;
        if bytes.len() <= NONCE_LEN {
            return Err(unreadable());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| unreadable())?;
        self.cipher.decrypt(&Nonce::from(nonce), ciphertext).map_err(|_| unreadable())
    }
}

/// How a secret is shown: the mask, plus its last four characters when it is long enough that
/// they give nothing away, so an operator can tell which credential is stored.
pub fn mask(secret: &str) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() >= 12 {
        format!("{MASK}{}", chars[chars.len() - 4..].iter().collect::<String>())
    } else {
        MASK.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let sealer = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let sealed = sealer.seal(b"consumer-secret");
        assert!(!sealed.contains("consumer-secret"));
        assert_ne!(sealed, sealer.seal(b"consumer-secret"), "a fresh nonce each time");
        assert_eq!(sealer.open(&sealed).unwrap(), b"consumer-secret");
        let other = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert!(other.open(&sealed).is_err());
        assert!(SecretBox::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn path_tokens_name_one_id_under_one_key() {
        let sealer = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        let token = sealer.path_token("callback", "pay_1");
        assert_eq!(token.len(), 20);
        assert!(sealer.verify_path_token("callback", "pay_1", &token));
        assert!(!sealer.verify_path_token("callback", "pay_2", &token));
        assert!(!sealer.verify_path_token("other", "pay_1", &token));
        assert!(!sealer.verify_path_token("callback", "pay_1", "not-hex"));
        let other = SecretBox::from_base64(&SecretBox::generate_key()).unwrap();
        assert!(!other.verify_path_token("callback", "pay_1", &token));
    }

    #[test]
    fn masks_keep_only_a_hint() {
        assert_eq!(mask("abcdefghijkl1234"), "****1234");
        assert_eq!(mask("short"), "****");
    }
}
