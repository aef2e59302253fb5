//! Identifiers shaped like the ones each provider hands out, so that an adapter's parsing and
//! column sizes are exercised with realistic values.

use chrono::{DateTime, FixedOffset, Utc};
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

/// Daraja's gateway `requestId` and STK `MerchantRequestID`, e.g. `22759-3566117-1`.
pub fn daraja_request_id() -> String {
    let mut rng = rand::rng();
    format!("{}-{}-1", rng.random_range(1_000..100_000u32), rng.random_range(1_000_000..100_000_000u32))
}

/// An STK `CheckoutRequestID`: `ws_CO_`, the Nairobi time to the millisecond (`ddMMyyyyHHmmssSSS`)
/// and the local part of the number prompted, e.g. `ws_CO_04072024151523730722724071`.
pub fn checkout_request_id(at: DateTime<FixedOffset>, phone_number: &str) -> String {
    let local = phone_number.strip_prefix("254").unwrap_or(phone_number);
    format!("ws_CO_{}{local}", at.format("%d%m%Y%H%M%S%3f"))
}

/// A B2C `ConversationID`, e.g. `AG_20191219_00005797af5d7d75f652`.
pub fn conversation_id() -> String {
    format!("AG_{}_{}", Utc::now().format("%Y%m%d"), hex_token(10))
}

/// An M-Pesa receipt (`MpesaReceiptNumber`, B2C `TransactionID`): ten capitals and digits that
/// start with letters, e.g. `NLJ7RT61SV`.
pub fn mpesa_receipt() -> String {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const CHARACTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|position| {
            let set = if position < 3 { LETTERS } else { CHARACTERS };
            char::from(set[rng.random_range(0..set.len())])
        })
        .collect()
}

/// The bank rail's id for a transfer, e.g. `TRF260717K3J9QX2M`.
pub fn transfer_id() -> String {
    format!("TRF{}{}", Utc::now().format("%y%m%d"), token(8).to_ascii_uppercase())
}

/// The twelve-digit reference the interbank switch gives a settled bank transfer.
pub fn rail_reference() -> String {
    rand::rng().random_range(100_000_000_000..1_000_000_000_000u64).to_string()
}

/// `len` random decimal digits, the first never `0`: meter tokens, account numbers and the
/// like, which are numbers in their owners' systems.
pub fn digits(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|position| char::from(b'0' + rng.random_range(u8::from(position == 0)..10))).collect()
}

/// VTpass's `transactionId`: the Unix time in seconds and sixteen more digits, e.g.
/// `17416102247366731230557150` (§5, IKEDC samples).
pub fn vtpass_transaction_id() -> String {
    format!("{}{}", Utc::now().timestamp(), digits(16))
}

/// The lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
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
    fn daraja_ids_have_daraja_shapes() {
        let at = DateTime::parse_from_rfc3339("2024-07-04T15:15:23.730+03:00").unwrap();
        assert_eq!(checkout_request_id(at, "254722724071"), "ws_CO_04072024151523730722724071");
        let receipt = mpesa_receipt();
        assert_eq!(receipt.len(), 10);
        assert!(receipt[..3].bytes().all(|byte| byte.is_ascii_uppercase()), "{receipt}");
        assert_eq!(conversation_id().len(), "AG_20191219_00005797af5d7d75f652".len());
        assert!(daraja_request_id().ends_with("-1"));
    }

    #[test]
    fn digit_strings_have_their_length_and_no_leading_zero() {
        let number = digits(10);
        assert_eq!(number.len(), 10);
        assert!(number.bytes().all(|byte| byte.is_ascii_digit()) && !number.starts_with('0'), "{number}");
        assert_eq!(vtpass_transaction_id().len(), 26);
    }

    #[test]
    fn receipts_look_like_provider_receipts() {
        let receipt = receipt();
        assert_eq!(receipt.len(), 20, "{receipt}");
        assert!(receipt.starts_with("MP"));
    }
}
