//! OnePipe PayWithTransfer (providers.md §6): `POST /v2/transact` with `request_type` "send
//! invoice" opens a virtual account that the customer transfers to, `POST /v2/transact/query`
//! reports the invoice by the merchant's `transaction_ref`, and a `transaction_notification` goes
//! to the app's webhook URL once the money has arrived.
//!
//! Every call carries `Authorization: Bearer <client id>` and `Signature: MD5(request_ref;client
//! secret)`, and a `request_ref` is good for one call; `auth.secure` is the customer's
//! `mobile_no` in TripleDES under the client secret. Bad credentials are HTTP 401, business
//! refusals HTTP 200 with `status: "Failed"`. The naira amount's last two digits are the test
//! number. What §6 leaves open (the query's shape, the notification's signature) is the
//! sandbox's choice, documented in the README.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, MutexGuard},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};
use chrono::{FixedOffset, Utc};
use des::TdesEde3;
use md5::{Digest, Md5};
use poem::{Body, Request, Route, handler, http::StatusCode, post, web::Data};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{
    app::App,
    callbacks::Callback,
    customer, ids,
    ledger::{Collection, Ledger, Phase},
    outcome::Outcome,
    provider::Provider,
    tokens::bearer,
    wire::{self, Reply, answer, header},
};

const AUTH_PROVIDER: &str = "PaywithAccount";
/// The bank the sandbox's virtual accounts are held at.
const BANK_CODE: &str = "035";
const BANK_NAME: &str = "Wema Bank";
const PROCESSED: &str = "Transaction processed successfully";

pub fn routes(route: Route) -> Route {
    route.at("/v2/transact", post(transact)).at("/v2/transact/query", post(query))
}

/// What OnePipe keeps beyond its invoices: the `request_ref`s it has seen, and the virtual
/// account each customer was given, since a customer keeps theirs across invoices (§6).
#[derive(Default)]
pub struct Registry {
    request_refs: HashSet<String>,
    accounts: HashMap<String, String>,
}

/// What OnePipe keeps about an invoice beyond the common ledger fields.
pub struct Invoice {
    kobo: u64,
    customer_ref: String,
    account_number: String,
    account_name: String,
    expires_at: String,
}

impl Provider for Invoice {
    const NAME: &'static str = "onepipe";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.onepipe()
    }

    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer | Phase::Confirmed => "Pending",
            Phase::Succeeded { .. } => "Successful",
            Phase::Failed | Phase::Expired => "Failed",
        }
    }

    /// The NIP session id of the customer's transfer.
    fn receipt(_collection: &Collection<Self>) -> String {
        ids::digits(30)
    }

    /// Only a credit is notified. The body is §6's; no signature formula is known, so the
    /// sandbox signs the way requests are signed: `Signature: MD5(request_ref;client secret)`.
    fn notification(app: &App, collection: &Collection<Self>) -> Option<Callback> {
        let Phase::Succeeded { .. } = collection.phase else { return None };
        let url = app.config.onepipe_webhook_url.clone()?;
        let request_ref = ids::uuid();
        let body = json!({
            "request_ref": request_ref,
            "request_type": "transaction_notification",
            "details": {
                "status": Self::status(&collection.phase),
                "transaction_ref": collection.reference,
                "amount": collection.details.kobo,
                "provider": AUTH_PROVIDER,
                "customer_ref": collection.details.customer_ref,
                "meta": { "payment_id": collection.handle, "event_type": "credit" },
            },
        });
        let headers = vec![("Signature", signature(&request_ref, &app.config.client_secret))];
        Some(Callback { method: Method::POST, url, body, headers })
    }
}

/// `data.provider_response.meta` of an invoice: where to transfer.
fn virtual_account(invoice: &Collection<Invoice>) -> Value {
    json!({
        "virtual_account_number": invoice.details.account_number,
        "virtual_account_name": invoice.details.account_name,
        "virtual_account_bank_name": BANK_NAME,
        "virtual_account_bank_code": BANK_CODE,
        "virtual_account_expiry_date": invoice.details.expires_at,
        "virtual_account_qr_code_url": null,
        "payment_id": invoice.handle,
    })
}

/// The answer to "send invoice", the same however often the invoice is asked for.
fn invoice_sent(invoice: &Collection<Invoice>) -> Value {
    envelope(json!({
        "reference": invoice.handle,
        "payment_id": invoice.handle,
        "transaction_ref": invoice.reference,
        "amount": invoice.details.kobo,
        "customer_ref": invoice.details.customer_ref,
        "meta": virtual_account(invoice),
    }))
}

/// The answer to a query: the query went through, and `provider_response.status` says where
/// the invoice stands.
fn invoice_status(invoice: &Collection<Invoice>) -> Value {
    let message = match invoice.phase {
        Phase::AwaitingCustomer | Phase::Confirmed => "Awaiting the customer's transfer",
        Phase::Succeeded { .. } => "Transfer received",
        Phase::Failed | Phase::Expired => "The invoice expired without payment",
    };
    let mut response = json!({
        "status": Invoice::status(&invoice.phase),
        "message": message,
        "reference": invoice.phase.receipt(),
        "payment_id": invoice.handle,
        "transaction_ref": invoice.reference,
        "amount": invoice.details.kobo,
        "customer_ref": invoice.details.customer_ref,
        "meta": virtual_account(invoice),
    });
    if invoice.phase.receipt().is_some() {
        response["transaction_final_amount"] = json!(invoice.details.kobo);
    }
    envelope(response)
}

fn envelope(provider_response: Value) -> Value {
    json!({
        "status": "Successful",
        "message": PROCESSED,
        "data": {
            "provider_response_code": "00",
            "provider": AUTH_PROVIDER,
            "errors": null,
            "error": null,
            "provider_response": provider_response,
        },
    })
}

#[handler]
async fn transact(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(send_invoice(req, body, app).await)
}

#[handler]
async fn query(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(query_invoice(req, body, app).await)
}

async fn send_invoice(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    let (body, request_ref) = authenticate(req, body, app).await?;
    if body["request_type"] != "send invoice" {
        return Err(failed(StatusCode::OK, "The sandbox only serves request_type \"send invoice\""));
    }
    let order =
        Order::parse(&body, &app.config.client_secret).map_err(|message| failed(StatusCode::OK, &message))?;
    let outcome = Outcome::for_amount(order.kobo / 100);
    let payment_id = ids::digits(9);
    let (sent, first_call) = {
        let mut ledger = app.onepipe();
        let calls = ledger.count_initiate(&order.transaction_ref);
        if let Some(earlier) = ledger.by_reference(&order.transaction_ref) {
            if !order.repeats(&earlier.details) {
                return Err(failed(
                    StatusCode::OK,
                    "transaction_ref was already used for a different transaction",
                ));
            }
            app.onepipe_registry().request_refs.insert(request_ref);
            return Ok(wire::json(StatusCode::OK, invoice_sent(earlier)));
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(failed(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"));
        }
        let account_number = {
            let mut registry = app.onepipe_registry();
            registry.request_refs.insert(request_ref);
            registry.accounts.entry(order.customer_ref.clone()).or_insert_with(|| ids::digits(10)).clone()
        };
        let lagos = FixedOffset::east_opt(3600).expect("UTC+1 is a valid offset");
        let expires_at = Utc::now().with_timezone(&lagos) + chrono::Duration::minutes(order.expires_in);
        let invoice = Collection::new(
            order.transaction_ref,
            payment_id.clone(),
            Some(order.mobile_no),
            naira(order.kobo),
            outcome,
            Invoice {
                kobo: order.kobo,
                customer_ref: order.customer_ref,
                account_number,
                account_name: order.account_name,
                expires_at: expires_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            },
        );
        let sent = invoice_sent(&invoice);
        ledger.record(invoice);
        (sent, calls == 1)
    };
    // The customer transfers after the settle delay (`01`: lets the invoice expire instead).
    customer::prompt::<Invoice>(app, &payment_id);
    if first_call && outcome.stalls_first_initiate() {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(StatusCode::OK, sent))
}

async fn query_invoice(req: &Request, body: Body, app: &App) -> Result<Reply, Reply> {
    let (body, request_ref) = authenticate(req, body, app).await?;
    let transaction_ref = body["transaction"]["transaction_ref"]
        .as_str()
        .filter(|reference| !reference.trim().is_empty())
        .ok_or_else(|| failed(StatusCode::OK, "transaction.transaction_ref is required"))?;
    let mut ledger = app.onepipe();
    app.onepipe_registry().request_refs.insert(request_ref);
    let invoice = ledger
        .by_reference(transaction_ref)
        .ok_or_else(|| failed(StatusCode::OK, "Transaction not found"))?;
    Ok(wire::json(StatusCode::OK, invoice_status(invoice)))
}

/// The API key, then the body, then its signature, then whether its `request_ref` is fresh.
/// The `request_ref` is only spent by a call that is answered, so that a refused or failed
/// call (test number `03`) leaves no trace.
async fn authenticate(req: &Request, body: Body, app: &App) -> Result<(Value, String), Reply> {
    if bearer(req.header("authorization")) != Some(app.config.client_id.as_str()) {
        return Err(failed(StatusCode::UNAUTHORIZED, "Invalid API key"));
    }
    let body = wire::json_body(body)
        .await
        .filter(Value::is_object)
        .ok_or_else(|| failed(StatusCode::BAD_REQUEST, "The request body must be a JSON object"))?;
    let request_ref = body["request_ref"]
        .as_str()
        .filter(|reference| !reference.trim().is_empty())
        .ok_or_else(|| failed(StatusCode::OK, "request_ref is required"))?
        .to_owned();
    let expected = signature(&request_ref, &app.config.client_secret);
    if !header(req, "signature").is_some_and(|sent| sent.eq_ignore_ascii_case(&expected)) {
        return Err(failed(StatusCode::UNAUTHORIZED, "Invalid signature"));
    }
    if app.onepipe_registry().request_refs.contains(&request_ref) {
        return Err(failed(
            StatusCode::OK,
            "request_ref has already been used: send a new one with every call",
        ));
    }
    Ok((body, request_ref))
}

/// `MD5(request_ref;client secret)` in lowercase hex (§6, auth).
fn signature(request_ref: &str, client_secret: &str) -> String {
    ids::hex(&Md5::digest(format!("{request_ref};{client_secret}")))
}

/// The plaintext of an `auth.secure`, or `None` if it is not TripleDES under `client_secret` as
/// OnePipe's sample makes it (§6): the key is the MD5 of the secret's UTF-16LE bytes with its
/// first 8 bytes appended, DES-EDE3-CBC with a zero IV and PKCS#7 padding, over UTF-16LE text.
fn reveal(secure: &str, client_secret: &str) -> Option<String> {
    let encrypted = STANDARD.decode(secure.trim()).ok()?;
    let secret: Vec<u8> = client_secret.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let digest = Md5::digest(secret);
    let mut key = [0u8; 24];
    key[..16].copy_from_slice(&digest);
    key[16..].copy_from_slice(&digest[..8]);
    let plain = cbc::Decryptor::<TdesEde3>::new(&key.into(), &[0u8; 8].into())
        .decrypt_padded_vec::<Pkcs7>(&encrypted)
        .ok()?;
    if plain.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = plain.chunks_exact(2).map(|pair| u16::from_le_bytes([pair[0], pair[1]])).collect();
    String::from_utf16(&units).ok()
}

/// A "send invoice" request that passed validation.
struct Order {
    transaction_ref: String,
    kobo: u64,
    customer_ref: String,
    mobile_no: String,
    account_name: String,
    expires_in: i64,
}

impl Order {
    /// The error is the `message` of the `Failed` envelope.
    fn parse(body: &Value, client_secret: &str) -> Result<Self, String> {
        let text = |value: &Value, field: &str| -> Result<String, String> {
            value[field]
                .as_str()
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| format!("{field} is required"))
        };
        let auth = &body["auth"];
        if auth["type"] != "msisdn" || auth["auth_provider"] != AUTH_PROVIDER {
            return Err(format!("auth.type must be msisdn and auth.auth_provider {AUTH_PROVIDER}"));
        }
        let transaction = &body["transaction"];
        let mock_mode = text(transaction, "mock_mode")?.to_ascii_lowercase();
        if mock_mode != "live" && mock_mode != "inspect" {
            return Err("mock_mode must be Live or Inspect".to_owned());
        }
        let transaction_ref = text(transaction, "transaction_ref")?;
        let kobo = transaction["amount"]
            .as_u64()
            .filter(|kobo| *kobo > 0)
            .ok_or("amount must be a positive whole number of kobo")?;
        let customer = &transaction["customer"];
        let customer_ref = text(customer, "customer_ref")?;
        let firstname = text(customer, "firstname")?;
        let surname = text(customer, "surname")?;
        if !text(customer, "email")?.contains('@') {
            return Err("email is not an email address".to_owned());
        }
        let mobile_no = text(customer, "mobile_no")?;
        let nigerian = mobile_no.len() == 13
            && mobile_no.starts_with("234")
            && mobile_no.bytes().all(|byte| byte.is_ascii_digit());
        if !nigerian {
            return Err("mobile_no must be 234 followed by 10 digits".to_owned());
        }
        if auth["secure"].as_str().and_then(|secure| reveal(secure, client_secret)).as_deref()
            != Some(&mobile_no)
        {
            return Err(
                "auth.secure is not the customer's mobile_no encrypted with the client secret".to_owned()
            );
        }
        let meta = &transaction["meta"];
        if meta["type"] != "single_payment" {
            return Err("The sandbox only issues meta.type single_payment invoices".to_owned());
        }
        let expires_in = meta["expires_in"]
            .as_i64()
            .filter(|minutes| *minutes > 0)
            .ok_or("meta.expires_in must be a positive number of minutes")?;
        Ok(Self {
            transaction_ref,
            kobo,
            customer_ref,
            mobile_no,
            account_name: format!("{firstname} {surname}"),
            expires_in,
        })
    }

    /// Whether this is the earlier invoice asked for again: the same money from the same
    /// customer. Anything else under a used `transaction_ref` is a different transaction.
    fn repeats(&self, earlier: &Invoice) -> bool {
        self.kobo == earlier.kobo && self.customer_ref == earlier.customer_ref
    }
}

fn naira(kobo: u64) -> String {
    format!("{}.{:02}", kobo / 100, kobo % 100)
}

/// OnePipe's refusal: `status: "Failed"` with the reason in `data.error` and `data.errors`, as
/// §6 says a client must read it.
fn failed(status: StatusCode, message: &str) -> Reply {
    wire::json(
        status,
        json!({
            "status": "Failed",
            "message": message,
            "data": {
                "provider_response_code": null,
                "provider": AUTH_PROVIDER,
                "errors": [{ "code": "Failed", "message": message }],
                "error": { "code": "Failed", "message": message },
                "provider_response": null,
            },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secure_reveals_what_openssl_encrypted() {
        // `openssl enc -des-ede3-cbc` of UTF-16LE "2348012345678" under the derived key.
        let secure = "d92HlAlMewuXF0jhRDyF+HHn8XV1LD/BhQECjbEd7/0=";
        assert_eq!(reveal(secure, "ultra-sandbox-secret").as_deref(), Some("2348012345678"));
        assert_eq!(reveal(secure, "another-secret"), None);
        assert_eq!(reveal("not base64!", "ultra-sandbox-secret"), None);
    }

    #[test]
    fn signatures_are_lowercase_md5_hex() {
        assert_eq!(signature("REQ-1", "ultra-sandbox-secret"), "ed53e6a07e44a6664609e2c92b656b35");
    }
}
