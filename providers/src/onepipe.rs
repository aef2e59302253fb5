//! OnePipe PayWithTransfer (providers.md §6): a "send invoice" opens a virtual account that the
//! customer transfers to, and a query by our `transaction_ref` says whether the money arrived.
//! Every call is the same `transact` envelope with a fresh `request_ref`, signed with it.
//!
//! OnePipe answers refusals with HTTP 200 and `status: "Failed"`, so the body decides. Its
//! notification is unsigned as far as anyone knows: only the query moves money.

use base64::{Engine, engine::general_purpose::STANDARD};
use cbc::cipher::{BlockModeEncrypt, KeyIvInit, block_padding::Pkcs7};
use des::TdesEde3;
use md5::{Digest, Md5};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    Fund, FundingOrder, FundingState, ProviderError, Settings, VirtualAccount,
    http::{Answer, Client},
};

const AUTH_PROVIDER: &str = "PaywithAccount";
/// OnePipe wants the customer's first name and surname, which a wallet owner registered with an
/// email and a phone number never gave; the virtual account's name shows them.
const FIRSTNAME: &str = "Wallet";
const SURNAME: &str = "Owner";

pub struct Onepipe {
    client: Client,
    base: String,
    api_key: String,
    client_secret: String,
    mock_mode: &'static str,
}

impl Onepipe {
    /// `mockMode` is `Live` unless set to `Inspect`, OnePipe's simulated mode: a configuration
    /// that forgot it must move real money, not hand customers accounts that do not exist.
    pub(crate) fn new(client: Client, settings: &Settings) -> Result<Self, ProviderError> {
        let mock_mode = match settings.optional("mockMode").as_deref() {
            None | Some("Live") => "Live",
            Some("Inspect") => "Inspect",
            Some(other) => {
                return Err(ProviderError::Configuration(format!("mockMode {other} is not Live or Inspect")));
            }
        };
        Ok(Self {
            client,
            base: settings.base_url()?,
            api_key: settings.required("apiKey")?,
            client_secret: settings.required("clientSecret")?,
            mock_mode,
        })
    }

    /// Sends the "send invoice" envelope for `order` to `path`, under a new `request_ref`.
    async fn transact(&self, path: &str, order: &FundingOrder<'_>) -> Result<Answer, ProviderError> {
        let request_ref = ulid::Ulid::new().to_string();
        let body = json!({
            "request_ref": request_ref,
            "request_type": "send invoice",
            "auth": {
                "type": "msisdn",
                "secure": secure(order.mobile, &self.client_secret),
                "auth_provider": AUTH_PROVIDER,
                "route_mode": null,
            },
            "transaction": {
                "mock_mode": self.mock_mode,
                "transaction_ref": order.reference,
                "transaction_desc": order.description,
                "transaction_ref_parent": null,
                "amount": order.amount_minor,
                "customer": {
                    "customer_ref": order.customer_ref,
                    "firstname": FIRSTNAME,
                    "surname": SURNAME,
                    "email": order.email,
                    "mobile_no": order.mobile,
                },
                "meta": {
                    "type": "single_payment",
                    "expires_in": order.expires_in_minutes,
                    "skip_messaging": true,
                },
                "details": null,
            },
        });
        let request = self
            .client
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.api_key)
            .header("Signature", signature(&request_ref, &self.client_secret))
            .json(&body);
        self.client.send(request).await
    }
}

/// The `Signature` header: MD5 of `request_ref;client_secret`, in lowercase hex.
fn signature(request_ref: &str, client_secret: &str) -> String {
    hex::encode(Md5::digest(format!("{request_ref};{client_secret}")))
}

/// `auth.secure`: TripleDES as OnePipe's .NET sample does it (§6). The key is the MD5 of the
/// client secret's UTF-16LE bytes, its first 8 bytes appended to make 24; DES-EDE3-CBC with a zero
/// IV and PKCS#7 padding over the UTF-16LE plaintext, in Base64.
fn secure(plaintext: &str, client_secret: &str) -> String {
    let digest = Md5::digest(utf16le(client_secret));
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&digest);
    key[16..].copy_from_slice(&digest[..8]);
    let cipher = cbc::Encryptor::<TdesEde3>::new(&key.into(), &[0u8; 8].into());
    STANDARD.encode(cipher.encrypt_padded_vec::<Pkcs7>(&utf16le(plaintext)))
}

fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A status word in lowercase: OnePipe capitalises it (`Successful`), some answers do not.
fn status_word(answer: &Answer, pointer: &str) -> Option<String> {
    answer.str(pointer).map(str::to_ascii_lowercase)
}

fn message_of(answer: &Answer) -> String {
    answer
        .str("/data/error/message")
        .or_else(|| answer.str("/data/errors/0/message"))
        .or_else(|| answer.str("/message"))
        .unwrap_or("OnePipe refused the request")
        .to_owned()
}

/// A value OnePipe sends as a string or as a number, as text.
fn text(answer: &Answer, pointer: &str) -> Option<String> {
    match answer.body.pointer(pointer)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// Trouble seen on the status line, before the envelope is read.
fn check_http(answer: &Answer) -> Result<(), ProviderError> {
    if answer.is_unavailable() {
        return Err(answer.unavailable());
    }
    if answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::FORBIDDEN {
        return Err(ProviderError::Credentials(message_of(answer)));
    }
    if answer.status.is_client_error() {
        return Err(ProviderError::Rejected {
            code: answer.status.as_u16().to_string(),
            message: message_of(answer),
        });
    }
    if !answer.status.is_success() {
        return Err(answer.unexpected());
    }
    Ok(())
}

/// The virtual account in `data.provider_response.meta`, when there is one.
fn account_of(answer: &Answer) -> Option<VirtualAccount> {
    let field = |name: &str| text(answer, &format!("/data/provider_response/meta/{name}"));
    Some(VirtualAccount {
        number: field("virtual_account_number")?,
        name: field("virtual_account_name").unwrap_or_default(),
        bank_name: field("virtual_account_bank_name").unwrap_or_default(),
        bank_code: field("virtual_account_bank_code").unwrap_or_default(),
        expires_at: field("virtual_account_expiry_date"),
    })
}

fn refusal(answer: &Answer) -> ProviderError {
    let code = text(answer, "/data/provider_response_code").unwrap_or_else(|| "Failed".to_owned());
    ProviderError::Rejected { code, message: message_of(answer) }
}

fn invoice_state(answer: &Answer) -> Result<FundingState, ProviderError> {
    match status_word(answer, "/status").as_deref() {
        Some(status @ ("successful" | "pending" | "processing")) => {
            let account = account_of(answer);
            if account.is_none() && status == "successful" {
                return Err(answer.unexpected());
            }
            Ok(FundingState::AwaitingTransfer { account })
        }
        Some("failed") => Err(refusal(answer)),
        _ => Err(answer.unexpected()),
    }
}

/// The query's answer. Its top-level `status` says how the query went and
/// `data.provider_response.status` how the transaction stands; a `Successful` query without the
/// latter says nothing about the money, so it is not read as a payment.
fn query_state(answer: &Answer, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
    let top = status_word(answer, "/status");
    let transaction = status_word(answer, "/data/provider_response/status");
    let state = match (top.as_deref(), transaction.as_deref()) {
        (_, Some(state)) => state,
        (Some("failed"), None) => {
            let message = message_of(answer).to_ascii_lowercase();
            let unknown = ["not found", "does not exist", "no transaction"];
            return Err(if unknown.iter().any(|words| message.contains(words)) {
                ProviderError::NotFound
            } else {
                refusal(answer)
            });
        }
        (Some(state @ ("pending" | "processing")), None) => state,
        _ => return Err(answer.unexpected()),
    };
    match state {
        "successful" => Ok(FundingState::Completed {
            provider_reference: text(answer, "/data/provider_response/reference")
                .or_else(|| text(answer, "/data/provider_response/meta/payment_id")),
            amount_minor: ["transaction_final_amount", "amount"]
                .iter()
                .find_map(|field| text(answer, &format!("/data/provider_response/{field}"))?.parse().ok())
                .unwrap_or(order.amount_minor),
        }),
        "pending" | "processing" => Ok(FundingState::AwaitingTransfer { account: account_of(answer) }),
        "failed" => Ok(FundingState::Failed {
            reason: answer
                .str("/data/provider_response/message")
                .map_or_else(|| message_of(answer), str::to_owned),
        }),
        _ => Err(answer.unexpected()),
    }
}

impl Fund for Onepipe {
    async fn open(&self, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
        let answer = self.transact("/v2/transact", order).await?;
        check_http(&answer)?;
        invoice_state(&answer)
    }

    async fn status(&self, order: &FundingOrder<'_>) -> Result<FundingState, ProviderError> {
        let answer = self.transact("/v2/transact/query", order).await?;
        check_http(&answer)?;
        query_state(&answer, order)
    }
}

#[cfg(test)]
mod tests {
    use cbc::cipher::BlockModeDecrypt;

    use super::*;

    const SECRET: &str = "ultra-sandbox-secret";

    fn order() -> FundingOrder<'static> {
        FundingOrder {
            reference: "MPX-23019482",
            amount_minor: 200_000,
            customer_ref: "maxtera-23",
            email: "user@example.com",
            mobile: "2348012345678",
            description: "Wallet funding",
            expires_in_minutes: 30,
        }
    }

    fn answer(body: Value) -> Answer {
        Answer { status: StatusCode::OK, body }
    }

    #[test]
    fn the_signature_is_the_md5_of_the_request_ref_and_the_secret() {
        // printf '%s' 'REQ-1;ultra-sandbox-secret' | md5sum
        assert_eq!(signature("REQ-1", SECRET), "ed53e6a07e44a6664609e2c92b656b35");
    }

    #[test]
    fn secure_is_standard_triple_des() {
        // The key is MD5(UTF-16LE secret) + its first 8 bytes; the same plaintext through
        // `openssl enc -des-ede3-cbc -K 8ea760feccb7e7faa07b654e589138398ea760feccb7e7fa
        // -iv 0000000000000000` gives this.
        assert_eq!(secure("2348012345678", SECRET), "d92HlAlMewuXF0jhRDyF+HHn8XV1LD/BhQECjbEd7/0=");
    }

    #[test]
    fn secure_round_trips() {
        let encrypted = STANDARD.decode(secure("2348012345678", SECRET)).unwrap();
        let digest = Md5::digest(utf16le(SECRET));
        let mut key = [0u8; 24];
        key[..16].copy_from_slice(&digest);
        key[16..].copy_from_slice(&digest[..8]);
        let plain = cbc::Decryptor::<TdesEde3>::new(&key.into(), &[0u8; 8].into())
            .decrypt_padded_vec::<Pkcs7>(&encrypted)
            .unwrap();
        assert_eq!(plain, utf16le("2348012345678"));
    }

    #[test]
    fn an_open_invoice_names_its_virtual_account() {
        let sent = answer(json!({
            "status": "Successful",
            "message": "Transaction processed successfully",
            "data": { "provider_response_code": "00", "provider_response": { "meta": {
                "virtual_account_number": "9912345678",
                "virtual_account_name": "Wallet Owner",
                "virtual_account_bank_name": "Wema Bank",
                "virtual_account_bank_code": "035",
                "virtual_account_expiry_date": "2025-03-10 14:00:00",
                "payment_id": 123,
            }}},
        }));
        let FundingState::AwaitingTransfer { account: Some(account) } = invoice_state(&sent).unwrap() else {
            panic!("no account");
        };
        assert_eq!(account.number, "9912345678");
        assert_eq!(account.bank_code, "035");
        assert_eq!(account.expires_at.as_deref(), Some("2025-03-10 14:00:00"));
    }

    #[test]
    fn a_failed_envelope_is_a_refusal_with_its_message() {
        let failed = answer(json!({
            "status": "Failed",
            "message": "Transaction failed",
            "data": { "errors": [{ "code": "ERR", "message": "Invalid email" }] },
        }));
        let Err(ProviderError::Rejected { message, .. }) = invoice_state(&failed) else {
            panic!("not a refusal");
        };
        assert_eq!(message, "Invalid email");
    }

    #[test]
    fn the_query_reads_the_transaction_not_the_query() {
        let paid = answer(json!({
            "status": "Successful",
            "data": { "provider_response": { "status": "Successful", "reference": "NIP-1", "amount": 200_000 } },
        }));
        assert_eq!(
            query_state(&paid, &order()).unwrap(),
            FundingState::Completed { provider_reference: Some("NIP-1".to_owned()), amount_minor: 200_000 }
        );
        let unpaid = answer(json!({
            "status": "Successful",
            "data": { "provider_response": { "status": "Pending" } },
        }));
        assert_eq!(query_state(&unpaid, &order()).unwrap(), FundingState::AwaitingTransfer { account: None });
        let expired = answer(json!({
            "status": "Successful",
            "data": { "provider_response": { "status": "Failed", "message": "expired" } },
        }));
        assert_eq!(
            query_state(&expired, &order()).unwrap(),
            FundingState::Failed { reason: "expired".to_owned() }
        );
        let silent = answer(json!({ "status": "Successful", "data": {} }));
        assert!(matches!(query_state(&silent, &order()), Err(ProviderError::Protocol(_))));
    }

    #[test]
    fn an_unknown_transaction_ref_is_not_found() {
        let unknown = answer(json!({
            "status": "Failed",
            "message": "Transaction not found",
            "data": { "error": { "message": "Transaction not found" } },
        }));
        assert!(matches!(query_state(&unknown, &order()), Err(ProviderError::NotFound)));
    }

    #[test]
    fn http_trouble_is_sorted_before_the_envelope() {
        let down = Answer { status: StatusCode::BAD_GATEWAY, body: Value::Null };
        assert!(check_http(&down).is_err_and(|err| err.is_transient()));
        let refused =
            Answer { status: StatusCode::UNAUTHORIZED, body: json!({ "message": "Invalid signature" }) };
        assert!(matches!(check_http(&refused), Err(ProviderError::Credentials(_))));
    }
}
