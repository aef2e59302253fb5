//! Identifiers shaped like the ones each provider hands out, so that an adapter's parsing and
//! column sizes are exercised with realistic values.

use chrono::Utc;
use rand::{Rng, distr::Alphanumeric};

/// A random (version 4) UUID, MVola's `serverCorrelationId`.
pub fn uuid() -> String {
    let mut bytes: [u8; 16] = rand::rng().random();
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = hex(&bytes);
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// An opaque access token or pay token.
pub fn token(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

/// Random lowercase hex, Orange's `notif_token`.
pub fn hex_token(bytes: usize) -> String {
    let random: Vec<u8> = (0..bytes).map(|_| rand::rng().random()).collect();
    hex(&random)
}

/// MVola's settlement reference: a numeric string of about seven digits (§1, callback).
pub fn mvola_reference() -> String {
    rand::rng().random_range(1_000_000..10_000_000u32).to_string()
}

/// An Airtel Money id or Orange `txnid`, e.g. `MP261122.1341.A00073`.
pub fn receipt() -> String {
    let mut rng = rand::rng();
    let letter = char::from(b'A' + rng.random_range(0..26u8));
    let serial: u32 = rng.random_range(0..100_000);
    format!("MP{}.{letter}{serial:05}", Utc::now().format("%y%m%d.%H%M"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_have_the_canonical_shape() {
        let id = uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
    }

    #[test]
    fn receipts_look_like_provider_receipts() {
        let receipt = receipt();
        assert_eq!(receipt.len(), 20, "{receipt}");
        assert!(receipt.starts_with("MP"));
    }
}
