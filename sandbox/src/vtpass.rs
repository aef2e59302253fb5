//! VTpass (providers.md §5) under `/api`, where its hosts serve it, so that an adapter's base URL
//! is `http://<sandbox>/api` as it would be `https://sandbox.vtpass.com/api`: purchases keyed by
//! the merchant's `request_id`, requeries, customer verification, the plan catalogue and the
//! wallet balance. Every answer is HTTP 200 with VTpass's `code`, refusals included; only test
//! number `03` answers otherwise.
//!
//! POST calls authenticate with `api-key` and `secret-key` (the sandbox's client id and secret),
//! GET calls with `api-key` and `public-key` (the client id for both). The smartcard or meter
//! number (`billersCode`), else the phone, carries the test digits.

mod catalogue;

use std::{
    collections::HashMap,
    sync::{Arc, MutexGuard},
};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use poem::{Body, Request, Route, get, handler, http::StatusCode, post, web::Data};
use serde_json::{Value, json};

use self::catalogue::{Kind, Service, service_by_id};
use crate::{
    app::App,
    callbacks::Callback,
    ids,
    ledger::{Collection, Ledger, Phase},
    outcome::{Outcome, Refusal},
    provider::Provider,
    wire::{self, Reply, answer, header},
};

/// A smartcard or meter number ending so is unknown to its biller: verification says
/// `WrongBillersCode` and a purchase fails.
const WRONG_BILLERS_CODE: &str = "09";
/// A purchase whose number ends so is refused, and the refusal answered only after the stall:
/// a failure whose answer the client may never see.
const FAILS_LATE: &str = "08";
const AIRTIME_NAIRA: std::ops::RangeInclusive<u64> = 50..=50_000;
const ELECTRICITY_NAIRA: std::ops::RangeInclusive<u64> = 500..=500_000;
/// What `/api/balance` reports. The sandbox keeps no VTpass wallet, so it never runs low and
/// never answers `018`.
const WALLET_BALANCE_NAIRA: u64 = 1_000_000;
/// The email VTpass shows on sandbox purchases.
const SANDBOX_EMAIL: &str = "sandbox@sandbox.vtpass.com";
const CUSTOMER_NAME: &str = "ULTRA SANDBOX CUSTOMER";
const CUSTOMER_ADDRESS: &str = "1 SANDBOX CLOSE, IKEJA";
const TARIFF: &str = "R2 SINGLE PHASE RESIDENTIAL";
/// Naira per kWh, for the units a prepaid token buys.
const NAIRA_PER_KWH: u64 = 25;

/// A refusal as VTpass words it: its `code` and `response_description` (§5, response codes).
type Refused = (&'static str, &'static str);
const INVALID_ARGUMENTS: Refused = ("011", "INVALID ARGUMENTS");
const NO_SUCH_PRODUCT: Refused = ("012", "PRODUCT DOES NOT EXIST");
const NO_SUCH_VARIATION: Refused = ("010", "VARIATION CODE DOES NOT EXIST");
const BELOW_MINIMUM: Refused = ("013", "BELOW MINIMUM AMOUNT ALLOWED");
const ABOVE_MAXIMUM: Refused = ("017", "ABOVE MAXIMUM AMOUNT ALLOWED");
const REQUEST_ID_USED: Refused = ("014", "REQUEST ID ALREADY EXIST");
const UNKNOWN_REQUEST_ID: Refused = ("015", "INVALID REQUEST ID");
const INVALID_CREDENTIALS: Refused = ("087", "INVALID CREDENTIALS");

pub fn routes(route: Route) -> Route {
    route
        .at("/api/pay", post(pay))
        .at("/api/requery", post(requery))
        .at("/api/merchant-verify", post(merchant_verify))
        .at("/api/service-variations", get(service_variations))
        .at("/api/balance", get(balance))
}

/// What VTpass keeps about a purchase beyond the common ledger fields.
pub struct VtpassPurchase {
    service: &'static Service,
    /// The smartcard, meter or phone number served.
    unique_element: String,
    kobo: u64,
    phone: String,
    meter: Option<Meter>,
    transaction_date: String,
}

/// What vending to an electricity meter produces.
struct Meter {
    /// Only a prepaid meter gets a token.
    token: Option<String>,
    exchange_reference: String,
}

impl Provider for VtpassPurchase {
    const NAME: &'static str = "vtpass";

    fn ledger(app: &App) -> MutexGuard<'_, Ledger<Self>> {
        app.vtpass()
    }

    /// `content.transactions.status`; a reversal is how VTpass ends a purchase the biller
    /// gave up on, so an expired one reads `reversed` too.
    fn status(phase: &Phase) -> &'static str {
        match phase {
            Phase::AwaitingCustomer | Phase::Confirmed => "pending",
            Phase::Succeeded { .. } => "delivered",
            Phase::Failed => "failed",
            Phase::Expired => "reversed",
        }
    }

    fn receipt(collection: &Collection<Self>) -> String {
        collection.handle.clone()
    }

    /// VTpass posts updates to a URL set on its dashboard, which the sandbox has no equivalent
    /// of; a requery tells instead.
    fn notification(_app: &App, _collection: &Collection<Self>) -> Option<Callback> {
        None
    }
}

/// VTpass's `code` and `response_description` for a purchase in `phase`.
fn code_of(phase: &Phase) -> (&'static str, &'static str) {
    match phase {
        Phase::AwaitingCustomer | Phase::Confirmed => ("000", "TRANSACTION PROCESSED"),
        Phase::Succeeded { .. } => ("000", "TRANSACTION SUCCESSFUL"),
        Phase::Failed => ("016", "TRANSACTION FAILED"),
        Phase::Expired => ("040", "TRANSACTION REVERSAL"),
    }
}

/// The purchase as `/api/pay` and `/api/requery` show it (§5, response; the IKEDC samples).
fn transaction(purchase: &Collection<VtpassPurchase>, code: &str, description: &str, status: &str) -> Value {
    let details = &purchase.details;
    let rate = details.service.kind.commission_basis_points();
    let commission = details.kobo * rate / 10_000;
    let mut body = json!({
        "code": code,
        "content": { "transactions": {
            "status": status,
            "product_name": details.service.name,
            "unique_element": details.unique_element,
            "unit_price": naira(details.kobo),
            "quantity": 1,
            "service_verification": null,
            "channel": "api",
            "commission": naira_number(commission),
            "total_amount": naira_number(details.kobo - commission),
            "discount": null,
            "type": details.service.kind.label(),
            "email": SANDBOX_EMAIL,
            "phone": details.phone,
            "name": null,
            "convinience_fee": 0,
            "amount": naira(details.kobo),
            "platform": "api",
            "method": "api",
            "transactionId": purchase.handle,
            "commission_details": {
                "amount": naira_number(commission),
                "rate": format!("{}.{:02}", rate / 100, rate % 100),
                "rate_type": "percent",
                "computation_type": "default",
            },
        }},
        "response_description": description,
        "requestId": purchase.reference,
        "amount": naira_number(details.kobo),
        "transaction_date": details.transaction_date,
        "purchased_code": "",
    });
    if let (Phase::Succeeded { .. }, Some(meter)) = (&purchase.phase, &details.meter) {
        body["customerName"] = json!(CUSTOMER_NAME);
        body["customerAddress"] = json!(CUSTOMER_ADDRESS);
        body["meterNumber"] = json!(details.unique_element);
        body["exchangeReference"] = json!(meter.exchange_reference);
        if let Some(token) = &meter.token {
            let token = format!("Token : {token}");
            let tenths_of_kwh = details.kobo * 10 / (NAIRA_PER_KWH * 100);
            body["purchased_code"] = json!(token);
            body["token"] = json!(token);
            body["tokenAmount"] = naira_number(details.kobo);
            body["units"] = json!(format!("{}.{} kWh", tenths_of_kwh / 10, tenths_of_kwh % 10));
            body["tariff"] = json!(TARIFF);
        }
    }
    body
}

#[handler]
async fn pay(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(purchase(req, body, app).await)
}

#[handler]
async fn requery(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(requery_purchase(req, body, app).await)
}

#[handler]
async fn merchant_verify(req: &Request, body: Body, Data(app): Data<&Arc<App>>) -> Reply {
    answer(verify_customer(req, body, app).await)
}

#[handler]
fn service_variations(req: &Request, Data(app): Data<&Arc<App>>) -> Reply {
    answer(variations(req, app))
}

#[handler]
fn balance(req: &Request, Data(app): Data<&Arc<App>>) -> Reply {
    answer(authorize(req, app, "public-key", &app.config.client_id).map(|()| {
        wire::json(StatusCode::OK, json!({ "code": 1, "contents": { "balance": WALLET_BALANCE_NAIRA } }))
    }))
}

async fn purchase(req: &Request, body: Body, app: &Arc<App>) -> Result<Reply, Reply> {
    authorize(req, app, "secret-key", &app.config.client_secret)?;
    let order = Order::parse(&json_body(body).await?, lagos_now().date_naive()).map_err(refusal)?;
    let subject = order.billers_code.clone().unwrap_or_else(|| order.phone.clone());
    let unknown_to_biller =
        matches!(order.service.kind, Kind::Tv | Kind::Electricity) && subject.ends_with(WRONG_BILLERS_CODE);
    let outcome = Outcome::with_refusals_for_msisdn(&subject);
    let fails_late = subject.ends_with(FAILS_LATE);
    let handle = ids::vtpass_transaction_id();
    let (body, first_call, pending) = {
        let mut ledger = app.vtpass();
        let calls = ledger.count_initiate(&order.request_id);
        if ledger.contains(&order.request_id) {
            return Err(refusal(REQUEST_ID_USED));
        }
        if calls == 1 && outcome == Outcome::FailsFirstInitiate {
            return Err(wire::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "code": "083", "response_description": "SYSTEM ERROR" }),
            ));
        }
        let mut purchase = Collection::new(
            order.request_id,
            handle.clone(),
            Some(order.phone.clone()),
            naira(order.kobo),
            outcome,
            VtpassPurchase {
                service: order.service,
                unique_element: subject,
                kobo: order.kobo,
                phone: order.phone,
                meter: order.prepaid.map(|prepaid| Meter {
                    token: prepaid.then(|| ids::digits(20)),
                    exchange_reference: ids::digits(8),
                }),
                transaction_date: Utc::now().format("%Y-%m-%dT%H:%M:%S.000000Z").to_string(),
            },
        );
        purchase.phase = match outcome {
            _ if unknown_to_biller || fails_late => Phase::Failed,
            Outcome::InsufficientFunds => Phase::Failed,
            Outcome::NeverAnswers | Outcome::SilentSuccess | Outcome::Refused(Refusal::Counterparty) => {
                Phase::AwaitingCustomer
            }
            _ => Phase::Succeeded { receipt: handle.clone() },
        };
        let pending = purchase.phase == Phase::AwaitingCustomer;
        let (code, description, status) = if pending && outcome == Outcome::SilentSuccess {
            ("099", "TRANSACTION IS PROCESSING", "initiated")
        } else {
            let (code, description) = code_of(&purchase.phase);
            (code, description, VtpassPurchase::status(&purchase.phase))
        };
        let body = transaction(&purchase, code, description, status);
        tracing::info!(provider = VtpassPurchase::NAME, reference = %purchase.reference, %handle, status, "purchase recorded");
        ledger.record(purchase);
        (body, calls == 1, pending)
    };
    if pending {
        settle(app, handle);
    }
    if first_call && (outcome == Outcome::StallsFirstInitiate || fails_late) {
        tokio::time::sleep(app.config.stall).await;
    }
    Ok(wire::json(StatusCode::OK, body))
}

/// The biller's word on a purchase left pending, after the settle delay: delivered, or
/// reversed for test number `06`.
fn settle(app: &Arc<App>, handle: String) {
    let app = Arc::clone(app);
    tokio::spawn(async move {
        tokio::time::sleep(app.config.settle_delay).await;
        let mut ledger = app.vtpass();
        let Some(purchase) = ledger.by_handle(&handle) else { return };
        if purchase.phase != Phase::AwaitingCustomer {
            return;
        }
        purchase.phase = if purchase.outcome == Outcome::Refused(Refusal::Counterparty) {
            Phase::Expired
        } else {
            Phase::Succeeded { receipt: handle.clone() }
        };
        tracing::info!(provider = VtpassPurchase::NAME, reference = %purchase.reference, %handle, status = VtpassPurchase::status(&purchase.phase), "purchase settled");
    });
}

async fn requery_purchase(req: &Request, body: Body, app: &App) -> Result<Reply, Reply> {
    authorize(req, app, "secret-key", &app.config.client_secret)?;
    let body = json_body(body).await?;
    let request_id = text(&body, "request_id").ok_or_else(|| refusal(INVALID_ARGUMENTS))?;
    let mut ledger = app.vtpass();
    let purchase = ledger.by_reference(&request_id).ok_or_else(|| refusal(UNKNOWN_REQUEST_ID))?;
    let (code, description) = code_of(&purchase.phase);
    let status = VtpassPurchase::status(&purchase.phase);
    Ok(wire::json(StatusCode::OK, transaction(purchase, code, description, status)))
}

/// Smartcards and meters only (§5, verify customer); an electricity meter needs its `type`.
async fn verify_customer(req: &Request, body: Body, app: &App) -> Result<Reply, Reply> {
    authorize(req, app, "secret-key", &app.config.client_secret)?;
    let body = json_body(body).await?;
    let service = text(&body, "serviceID")
        .and_then(|id| service_by_id(&id))
        .filter(|service| matches!(service.kind, Kind::Tv | Kind::Electricity))
        .ok_or_else(|| refusal(NO_SUCH_PRODUCT))?;
    let billers_code = text(&body, "billersCode").ok_or_else(|| refusal(INVALID_ARGUMENTS))?;
    let content = if service.kind == Kind::Electricity {
        let meter_type = text(&body, "type")
            .filter(|kind| kind == "prepaid" || kind == "postpaid")
            .ok_or_else(|| refusal(INVALID_ARGUMENTS))?;
        if billers_code.ends_with(WRONG_BILLERS_CODE) {
            json!({
                "error": format!("This meter is not correct or is not a valid {} {meter_type} meter", service.name),
                "WrongBillersCode": true,
            })
        } else {
            json!({
                "Customer_Name": CUSTOMER_NAME,
                "Address": CUSTOMER_ADDRESS,
                "Meter_Number": billers_code,
                "Customer_Arrears": "",
                "Minimum_Amount": "",
                "Min_Purchase_Amount": ELECTRICITY_NAIRA.start().to_string(),
                "Can_Vend": "yes",
                "Business_Unit": "",
                "Customer_Account_Type": "NMD",
                "Meter_Type": meter_type.to_ascii_uppercase(),
                "WrongBillersCode": false,
                "commission_details": commission_details(service.kind),
            })
        }
    } else if billers_code.ends_with(WRONG_BILLERS_CODE) {
        json!({ "error": "Please check the Smartcard Number and try again", "WrongBillersCode": true })
    } else {
        let bouquet = service.variations.first();
        json!({
            "Customer_Name": CUSTOMER_NAME,
            "Status": "ACTIVE",
            "Due_Date": (Utc::now() + chrono::Duration::days(30)).format("%Y-%m-%dT00:00:00").to_string(),
            "Customer_Number": billers_code,
            "Customer_Type": service.id.to_ascii_uppercase(),
            "Current_Bouquet": bouquet.map(|plan| plan.name),
            "Renewal_Amount": bouquet.map(|plan| plan.naira),
            "WrongBillersCode": false,
            "commission_details": commission_details(service.kind),
        })
    };
    Ok(wire::json(StatusCode::OK, json!({ "code": "000", "content": content })))
}

fn commission_details(kind: Kind) -> Value {
    let rate = kind.commission_basis_points();
    json!({
        "amount": null,
        "rate": format!("{}.{:02}", rate / 100, rate % 100),
        "rate_type": "percent",
        "computation_type": "default",
    })
}

/// The plans of a service, under VTpass's misspelt `varations` (§5, endpoints).
fn variations(req: &Request, app: &App) -> Result<Reply, Reply> {
    authorize(req, app, "public-key", &app.config.client_id)?;
    let query = req.params::<HashMap<String, String>>().unwrap_or_default();
    let service =
        query.get("serviceID").and_then(|id| service_by_id(id)).ok_or_else(|| refusal(NO_SUCH_PRODUCT))?;
    let fixed_price = if service.kind == Kind::Electricity { "No" } else { "Yes" };
    let plans: Vec<Value> = service
        .variations
        .iter()
        .map(|plan| {
            json!({
                "variation_code": plan.code,
                "name": plan.name,
                "variation_amount": format!("{}.00", plan.naira),
                "fixedPrice": fixed_price,
            })
        })
        .collect();
    Ok(wire::json(
        StatusCode::OK,
        json!({
            "response_description": "000",
            "content": {
                "ServiceName": service.name,
                "serviceID": service.id,
                "convinience_fee": "0 %",
                "varations": plans,
            },
        }),
    ))
}

/// `api-key` always, with `secret-key` on POST calls and `public-key` on GET calls.
fn authorize(req: &Request, app: &App, key_header: &str, key: &str) -> Result<(), Reply> {
    let known =
        header(req, "api-key") == Some(app.config.client_id.as_str()) && header(req, key_header) == Some(key);
    if known { Ok(()) } else { Err(refusal(INVALID_CREDENTIALS)) }
}

/// A purchase request that passed validation.
struct Order {
    request_id: String,
    service: &'static Service,
    kobo: u64,
    phone: String,
    billers_code: Option<String>,
    /// For electricity: whether the meter is prepaid.
    prepaid: Option<bool>,
}

impl Order {
    fn parse(body: &Value, today: NaiveDate) -> Result<Self, Refused> {
        let request_id = text(body, "request_id").ok_or(INVALID_ARGUMENTS)?;
        check_request_id(&request_id, today).map_err(|description| ("085", description))?;
        let service = text(body, "serviceID").and_then(|id| service_by_id(&id)).ok_or(NO_SUCH_PRODUCT)?;
        let phone = text(body, "phone")
            .filter(|phone| {
                (10..=15).contains(&phone.len()) && phone.bytes().all(|byte| byte.is_ascii_digit())
            })
            .ok_or(INVALID_ARGUMENTS)?;
        let billers_code = text(body, "billersCode");
        let amount = amount(body)?;
        let variation = text(body, "variation_code");
        let plan = || variation.as_deref().and_then(|code| service.variation(code)).ok_or(NO_SUCH_VARIATION);
        let within = |naira: &std::ops::RangeInclusive<u64>| {
            let kobo = amount.ok_or(INVALID_ARGUMENTS)?;
            if kobo < naira.start() * 100 {
                Err(BELOW_MINIMUM)
            } else if kobo > naira.end() * 100 {
                Err(ABOVE_MAXIMUM)
            } else {
                Ok(kobo)
            }
        };
        let mut prepaid = None;
        let kobo = match service.kind {
            Kind::Airtime => within(&AIRTIME_NAIRA)?,
            // Plans have fixed prices: whatever `amount` says, the plan's is charged.
            Kind::Data => plan()?.naira * 100,
            Kind::Tv => {
                billers_code.as_ref().ok_or(INVALID_ARGUMENTS)?;
                match text(body, "subscription_type").as_deref() {
                    Some("change") => plan()?.naira * 100,
                    Some("renew") => amount.filter(|kobo| *kobo > 0).ok_or(INVALID_ARGUMENTS)?,
                    _ => return Err(INVALID_ARGUMENTS),
                }
            }
            Kind::Electricity => {
                billers_code.as_ref().ok_or(INVALID_ARGUMENTS)?;
                prepaid = Some(plan()?.code == "prepaid");
                within(&ELECTRICITY_NAIRA)?
            }
        };
        Ok(Self { request_id, service, kobo, phone, billers_code, prepaid })
    }
}

/// VTpass's `request_id` rule (§5): the first 12 characters are Lagos time as `YYYYMMDDHHmm`,
/// of today. The error is the `response_description` of its `085`.
fn check_request_id(request_id: &str, today: NaiveDate) -> Result<(), &'static str> {
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        request_id.get(range).filter(|part| part.bytes().all(|byte| byte.is_ascii_digit()))?.parse().ok()
    };
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(4..6), number(6..8)) else {
        return Err("IMPROPER REQUEST ID: DOES NOT CONTAIN DATE");
    };
    let date = i32::try_from(year).ok().and_then(|year| NaiveDate::from_ymd_opt(year, month, day));
    let time_valid =
        number(8..10).is_some_and(|hour| hour < 24) && number(10..12).is_some_and(|minute| minute < 60);
    let Some(date) = date.filter(|_| time_valid) else {
        return Err(
            "IMPROPER REQUEST ID: NOT PROPER DATE FORMAT - FIRST 8 CHARACTERS MUST BE DATE (TODAY'S DATE - YYYYMMDD)",
        );
    };
    if date != today {
        return Err(
            "IMPROPER REQUEST ID: DATE NOT TODAY'S DATE - FIRST 8 CHARACTERS MUST BE TODAY'S DATE IN THIS FORMAT: YYYYMMDD",
        );
    }
    Ok(())
}

/// Nigeria keeps UTC+1 all year.
fn lagos_now() -> DateTime<FixedOffset> {
    Utc::now().with_timezone(&FixedOffset::east_opt(3600).expect("UTC+1 is a valid offset"))
}

async fn json_body(body: Body) -> Result<Value, Reply> {
    wire::json_body(body).await.filter(Value::is_object).ok_or_else(|| refusal(INVALID_ARGUMENTS))
}

/// A field VTpass takes as a string or a number alike (`phone`, `billersCode`), as text.
fn text(body: &Value, field: &str) -> Option<String> {
    match &body[field] {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `amount` in naira, a number or a string, with at most two decimals; in kobo.
fn amount(body: &Value) -> Result<Option<u64>, Refused> {
    match &body["amount"] {
        Value::Null => Ok(None),
        Value::Number(number) => wire::hundredths(&number.to_string()).map(Some).ok_or(INVALID_ARGUMENTS),
        Value::String(text) => wire::hundredths(text.trim()).map(Some).ok_or(INVALID_ARGUMENTS),
        _ => Err(INVALID_ARGUMENTS),
    }
}

/// Naira as VTpass writes amounts in text: whole, or with the kobo.
fn naira(kobo: u64) -> String {
    if kobo.is_multiple_of(100) {
        (kobo / 100).to_string()
    } else {
        format!("{}.{:02}", kobo / 100, kobo % 100)
    }
}

fn naira_number(kobo: u64) -> Value {
    if kobo.is_multiple_of(100) { json!(kobo / 100) } else { json!(kobo as f64 / 100.0) }
}

/// VTpass refuses with HTTP 200 and a code.
fn refusal((code, description): Refused) -> Reply {
    wire::json(StatusCode::OK, json!({ "code": code, "response_description": description }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2025, 3, 10).unwrap()
    }

    #[test]
    fn request_ids_must_start_with_todays_lagos_date_and_time() {
        assert_eq!(check_request_id("202503101430YUs83meikd", today()), Ok(()));
        assert!(check_request_id("MXT-1", today()).unwrap_err().contains("DOES NOT CONTAIN DATE"));
        assert!(check_request_id("20250310", today()).unwrap_err().contains("NOT PROPER DATE FORMAT"));
        assert!(check_request_id("202503102460abc", today()).unwrap_err().contains("NOT PROPER DATE FORMAT"));
        assert!(check_request_id("202503091430abc", today()).unwrap_err().contains("NOT TODAY"));
    }

    fn order(body: Value) -> Result<Order, &'static str> {
        Order::parse(&body, today()).map_err(|(code, _)| code)
    }

    #[test]
    fn purchases_are_checked_the_vtpass_way() {
        let base = json!({ "request_id": "202503101430ab", "phone": "08011111111" });
        let with = |fields: Value| {
            let mut body = base.clone();
            body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
            order(body)
        };
        assert_eq!(with(json!({ "serviceID": "mtn", "amount": 100 })).unwrap().kobo, 10_000);
        assert_eq!(with(json!({ "serviceID": "mtn", "amount": "100.5" })).unwrap().kobo, 10_050);
        assert_eq!(with(json!({ "serviceID": "mtn", "amount": 20 })).err(), Some("013"));
        assert_eq!(
            with(json!({ "serviceID": "mtn-data", "variation_code": "mtn-1gb-500" })).unwrap().kobo,
            50_000
        );
        assert_eq!(with(json!({ "serviceID": "mtn-data", "variation_code": "nope" })).err(), Some("010"));
        assert_eq!(with(json!({ "serviceID": "spectranet", "amount": 100 })).err(), Some("012"));
        let meter = with(json!({
            "serviceID": "ikeja-electric", "billersCode": "1111111111111", "variation_code": "prepaid", "amount": 2000,
        }))
        .unwrap();
        assert_eq!(meter.prepaid, Some(true));
        assert_eq!(
            with(json!({ "serviceID": "dstv", "billersCode": "1212121212", "amount": 4400 })).err(),
            Some("011")
        );
    }

    #[test]
    fn amounts_are_written_in_naira() {
        assert_eq!(naira(200_000), "2000");
        assert_eq!(naira(200_050), "2000.50");
        assert_eq!(naira_number(200_050), json!(2000.5));
    }
}
