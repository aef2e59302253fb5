//! Partial updates of the runtime config, as `PATCH admin/config` takes them.
//!
//! A patch is merged into the current values key by key (RFC 7396 style: objects merge, other
//! values replace, `null` removes an entry of an open map such as `schedules`). Every error
//! names the key at fault by its dotted path (`webhooks.maxAttempts`), because a config is
//! edited by hand and "invalid config" would leave an operator guessing. Values are checked
//! twice: for their shape, against the types the processes read them into, and for their
//! meaning (a limit of zero, a cron expression that never fires), since a value of the right
//! type can still stop payments or webhooks.

use std::{collections::BTreeMap, str::FromStr};

use chrono::Utc;
use rust_decimal::Decimal;
use sea_orm::{ActiveEnum, ConnectionTrait, DbBackend, EntityTrait};
use serde_json::{Map, Value};
use ultra_entity::users::{self, UserRole};

use crate::{
    DomainError, DomainResult,
    runtime_config::{AmountLimits, RateLimitRule, RuntimeConfig},
    tiers::TIERS,
};

/// Objects whose keys are data (a schedule's name, an endpoint, a currency) rather than fields:
/// a patch may add keys to them, and remove one with `null`.
const OPEN_MAPS: [&str; 3] = ["schedules", "idempotencyTtl.endpoints", "sellapay.fxRates"];

const DAY: u64 = 24 * 3600;
/// A rate-limit window longer than a day would hold a counter per client for that long.
const MAX_WINDOW_SECONDS: u32 = 86_400;
/// `Prefer: wait` is capped at a minute; a default wait beyond it would hold requests longer
/// than any client asking for itself could.
const MAX_WAIT_SECONDS: u64 = 60;
/// One KES is worth far less than a million of any currency; the bound keeps the product of a
/// balance and a rate inside a decimal's range.
const MAX_FX_RATE: Decimal = Decimal::from_parts(1_000_000, 0, 0, false, 0);
const MAX_RETRY_DELAYS: usize = 20;

/// The outcome of a valid patch.
pub struct ConfigUpdate {
    pub config: RuntimeConfig,
    /// The new value of each top-level key the patch changed; the keys to store.
    pub changed: BTreeMap<String, Value>,
    /// Each value the patch changed, by dotted path, as `{from, to}`: what the audit trail keeps.
    pub changes: BTreeMap<String, Value>,
}

/// Merges `patch` into `current` and checks the result. `schedules` are the names a
/// `schedules` entry may override. Only the values the patch touches are judged, so a value
/// stored before a check existed does not block unrelated changes.
pub async fn apply(
    db: &impl ConnectionTrait,
    current: &RuntimeConfig,
    patch: &Value,
    schedules: &[&str],
) -> DomainResult<ConfigUpdate> {
    let Value::Object(patch) = patch else {
        return Err(DomainError::validation("body", "must be a JSON object of runtime config keys"));
    };
    patch.iter().try_for_each(|(key, value)| refuse_nul(key, value))?;
    let before = to_json(current)?;
    let mut merged = before.clone();
    let mut touched = Vec::new();
    if let Value::Object(target) = &mut merged {
        merge(target, patch, "", &mut touched)?;
    }
    let defaults = to_json(&RuntimeConfig::default())?;
    for path in &touched {
        check_shape(&defaults, &merged, path)?;
    }
    let config: RuntimeConfig = serde_json::from_value(merged.clone())
        .map_err(|err| DomainError::validation("body", err.to_string()))?;
    let is_touched = |path: &str| {
        touched.iter().any(|leaf| {
            leaf == path || leaf.starts_with(&format!("{path}.")) || path.starts_with(&format!("{leaf}."))
        })
    };
    if let Some((path, message)) =
        violations(&config, schedules).into_iter().find(|(path, _)| is_touched(path))
    {
        return Err(DomainError::validation(path, message));
    }
    if is_touched("primaryMerchantId") {
        check_primary_merchant(db, config.primary_merchant_id.as_deref()).await?;
    }

    let mut changed = BTreeMap::new();
    if let (Value::Object(old), Value::Object(new)) = (&before, &merged) {
        for (key, value) in new {
            if old.get(key) != Some(value) {
                changed.insert(key.clone(), value.clone());
            }
        }
    }
    let changes = touched
        .iter()
        .filter_map(|path| {
            let (from, to) = (lookup(&before, path), lookup(&merged, path));
            (from != to).then(|| {
                let value = serde_json::json!({ "from": from.cloned(), "to": to.cloned() });
                (path.clone(), value)
            })
        })
        .collect();
    Ok(ConfigUpdate { config, changed, changes })
}

/// Serialises concurrent patches on PostgreSQL, where two of them could otherwise each read
/// the same object and write back a merge that loses the other's change. SQLite's write
/// transactions are serial already.
pub async fn lock(txn: &impl ConnectionTrait) -> DomainResult<()> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("SELECT pg_advisory_xact_lock(7368, 1)").await?;
    }
    Ok(())
}

fn to_json(config: &RuntimeConfig) -> DomainResult<Value> {
    serde_json::to_value(config).map_err(|err| DomainError::Internal(err.to_string()))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    split_path(path).into_iter().try_fold(value, |at, key| at.get(key))
}

/// Splits a dotted path into its keys; what follows an open map's path is one key, dots and all.
fn split_path(path: &str) -> Vec<&str> {
    for map in OPEN_MAPS {
        if let Some(entry) = path.strip_prefix(map).and_then(|rest| rest.strip_prefix('.')) {
            let mut keys: Vec<&str> = map.split('.').collect();
            keys.push(entry);
            return keys;
        }
    }
    path.split('.').collect()
}

/// Merges `patch` into `target`, the object at `path`, recording the path of every value it
/// sets or removes.
fn merge(
    target: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    path: &str,
    touched: &mut Vec<String>,
) -> DomainResult<()> {
    let open = OPEN_MAPS.contains(&path);
    for (key, value) in patch {
        let at = join(path, key);
        if open {
            if value.is_null() {
                target.remove(key);
            } else {
                target.insert(key.clone(), value.clone());
            }
            touched.push(at);
            continue;
        }
        let Some(existing) = target.get_mut(key) else {
            return Err(DomainError::validation(at, "is not a runtime config key"));
        };
        match (existing, value) {
            (Value::Object(inner), Value::Object(changes)) => merge(inner, changes, &at, touched)?,
            (Value::Object(_), _) => {
                return Err(DomainError::validation(at, "must be an object"));
            }
            (existing, Value::Null) if !existing.is_null() => {
                return Err(DomainError::validation(at, "must not be null"));
            }
            (existing, value) => {
                *existing = value.clone();
                touched.push(at);
            }
        }
    }
    Ok(())
}

/// PostgreSQL text cannot hold NUL, and no setting needs it.
fn refuse_nul(path: &str, value: &Value) -> DomainResult<()> {
    let nul = match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => return items.iter().try_for_each(|item| refuse_nul(path, item)),
        Value::Object(map) => {
            return map.iter().try_for_each(|(key, value)| refuse_nul(&join(path, key), value));
        }
        _ => false,
    };
    if nul || path.contains('\0') {
        return Err(DomainError::validation(path, "must not contain NUL characters"));
    }
    Ok(())
}

/// Checks the value at `path` alone against the type it is read into: the defaults with only
/// that value changed either parse, or the error is that value's.
fn check_shape(defaults: &Value, merged: &Value, path: &str) -> DomainResult<()> {
    let mut probe = defaults.clone();
    let keys = split_path(path);
    let Some((last, parents)) = keys.split_last() else { return Ok(()) };
    let mut source = merged;
    let mut target = &mut probe;
    for key in parents {
        source = &source[*key];
        let Value::Object(map) = target else { return Ok(()) };
        target = map.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
    }
    let Value::Object(map) = target else { return Ok(()) };
    match source.get(*last) {
        Some(value) => map.insert(last.to_string(), value.clone()),
        None => map.remove(*last),
    };
    serde_json::from_value::<RuntimeConfig>(probe)
        .map(drop)
        .map_err(|err| DomainError::validation(path, err.to_string()))
}

/// Every value whose meaning is wrong, by path.
fn violations(config: &RuntimeConfig, schedules: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut check = |path: &str, ok: bool, message: &str| {
        if !ok {
            found.push((path.to_owned(), message.to_owned()));
        }
    };
    let within = |value: u64, min: u64, max: u64| (min..=max).contains(&value);

    let ttl = &config.idempotency_ttl;
    check(
        "idempotencyTtl.defaultSeconds",
        within(ttl.default_seconds, 1, 90 * DAY),
        "must be 1 to 7776000 (90 days)",
    );
    for (endpoint, seconds) in &ttl.endpoints {
        let path = format!("idempotencyTtl.endpoints.{endpoint}");
        let named = endpoint.split_once(' ').is_some_and(|(method, route)| {
            ["POST", "PUT", "PATCH", "DELETE"].contains(&method) && route.starts_with("/api/v1/")
        });
        check(&path, named, "must be keyed `METHOD /api/v1/...`, e.g. `POST /api/v1/payments`");
        check(&path, within(*seconds, 1, 90 * DAY), "must be 1 to 7776000 (90 days)");
    }

    let mut rules: Vec<(String, RateLimitRule)> = vec![
        ("loginRateLimit".into(), config.login_rate_limit),
        ("checkoutRateLimit".into(), config.checkout_rate_limit),
        ("checkoutLinkRateLimit".into(), config.checkout_link_rate_limit),
        ("sellapay.authorizeRateLimit".into(), config.sellapay.authorize_rate_limit),
        ("sellapay.tokenRateLimit".into(), config.sellapay.token_rate_limit),
        ("maxtera.authRateLimit".into(), config.maxtera.auth_rate_limit),
    ];
    for tier in TIERS {
        let limits = config.rate_limits.for_tier(tier);
        let name = tier.to_value();
        rules.push((format!("rateLimits.{name}.payments"), limits.payments));
        rules.push((format!("rateLimits.{name}.requests"), limits.requests));
    }
    for (path, rule) in &rules {
        check(&format!("{path}.limit"), rule.limit >= 1, "must be at least 1");
        check(
            &format!("{path}.windowSeconds"),
            (1..=MAX_WINDOW_SECONDS).contains(&rule.window_seconds),
            "must be 1 to 86400 (a day)",
        );
    }

    check(
        "paymentExpirySeconds",
        within(config.payment_expiry_seconds, 1, 30 * DAY),
        "must be 1 to 2592000 (30 days)",
    );
    check("checkoutHoldSeconds", within(config.checkout_hold_seconds, 1, DAY), "must be 1 to 86400 (a day)");
    check("jobRetentionDays", config.job_retention_days <= 3650, "must be at most 3650");
    for (name, expression) in &config.schedules {
        let problem = if schedules.contains(&name.as_str()) {
            match cron::Schedule::from_str(expression) {
                Err(err) => Some(format!(
                    "must be a cron expression with a seconds field, e.g. `0 */5 * * * *`: {err}"
                )),
                Ok(parsed) if parsed.upcoming(Utc).next().is_none() => Some("never fires".to_owned()),
                Ok(_) => None,
            }
        } else {
            Some(format!("is not a schedule; the schedules are {}", schedules.join(", ")))
        };
        if let Some(problem) = problem {
            check(&format!("schedules.{name}"), false, &problem);
        }
    }

    let webhooks = &config.webhooks;
    check("webhooks.maxAttempts", within(webhooks.max_attempts.into(), 1, 50), "must be 1 to 50");
    check("webhooks.backoffBaseSeconds", within(webhooks.backoff_base_seconds, 1, DAY), "must be 1 to 86400");
    check(
        "webhooks.backoffMaxSeconds",
        within(webhooks.backoff_max_seconds, webhooks.backoff_base_seconds, 7 * DAY),
        "must be at least backoffBaseSeconds and at most 604800 (7 days)",
    );
    check(
        "webhooks.retryAfterMaxSeconds",
        webhooks.retry_after_max_seconds <= 7 * DAY,
        "must be at most 604800 (7 days)",
    );
    check("webhooks.timeoutMs", within(webhooks.timeout_ms, 100, 120_000), "must be 100 to 120000");
    check(
        "webhooks.disableAfterSeconds",
        within(webhooks.disable_after_seconds, 60, 365 * DAY),
        "must be 60 to 31536000 (a year)",
    );
    check(
        "webhooks.endpointConcurrency",
        within(webhooks.endpoint_concurrency.into(), 1, 256),
        "must be 1 to 256",
    );

    let sellapay = &config.sellapay;
    for (currency, rate) in &sellapay.fx_rates {
        let path = format!("sellapay.fxRates.{currency}");
        check(
            &path,
            currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase()),
            "must be keyed by an ISO 4217 currency code such as USD",
        );
        let parsed = Decimal::from_str(rate.trim()).ok();
        check(
            &path,
            parsed.is_some_and(|rate| rate > Decimal::ZERO && rate <= MAX_FX_RATE),
            "must be a positive decimal as a string, e.g. \"0.0085\", of at most 1000000",
        );
    }
    check("sellapay.waitSeconds", sellapay.wait_seconds <= MAX_WAIT_SECONDS, "must be 0 to 60");

    let maxtera = &config.maxtera;
    check("maxtera.accessTokenSeconds", within(maxtera.access_token_seconds, 60, DAY), "must be 60 to 86400");
    check(
        "maxtera.refreshTokenSeconds",
        within(maxtera.refresh_token_seconds, maxtera.access_token_seconds, 90 * DAY),
        "must be at least accessTokenSeconds and at most 7776000 (90 days)",
    );
    check("maxtera.waitSeconds", maxtera.wait_seconds <= MAX_WAIT_SECONDS, "must be 0 to 60");
    for (name, limits) in
        [("funding", maxtera.funding), ("airtime", maxtera.airtime), ("bills", maxtera.bills)]
    {
        let AmountLimits { min, max } = limits;
        check(&format!("maxtera.{name}.min"), min >= 1, "must be at least 1");
        check(&format!("maxtera.{name}.max"), max >= min, "must be at least min");
    }

    let delays = &config.subscriptions.retry_delays_seconds;
    check(
        "subscriptions.retryDelaysSeconds",
        (1..=MAX_RETRY_DELAYS).contains(&delays.len())
            && delays.iter().all(|delay| within(*delay, 1, 30 * DAY)),
        "must hold 1 to 20 delays, each 1 to 2592000 seconds (30 days)",
    );
    check("refunds.recheckSeconds", within(config.refunds.recheck_seconds, 1, DAY), "must be 1 to 86400");
    if let Some(url) = &config.marketing.frontend_url {
        let web = url::Url::parse(url).is_ok_and(|url| {
            matches!(url.scheme(), "http" | "https") && url.host().is_some() && url.as_str().len() <= 2048
        });
        check(
            "marketing.frontendUrl",
            web,
            "must be an absolute http(s) URL such as https://app.example.com",
        );
    }
    found
}

/// An admin under `X-App-Context: merchant` acts as this account, so it must be a merchant's.
async fn check_primary_merchant(db: &impl ConnectionTrait, id: Option<&str>) -> DomainResult<()> {
    let Some(id) = id else { return Ok(()) };
    let merchant = users::Entity::find_by_id(id).one(db).await?;
    if merchant.is_some_and(|user| user.role == UserRole::User) {
        Ok(())
    } else {
        Err(DomainError::validation("primaryMerchantId", format!("{id} is not a merchant account")))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const SCHEDULES: [&str; 2] = ["poll-refunds", "expire-payments"];

    async fn patched(patch: Value) -> DomainResult<ConfigUpdate> {
        // Nothing here names a merchant, so the database is never asked.
        let db = sea_orm::Database::connect("sqlite::memory:").await.unwrap();
        apply(&db, &RuntimeConfig::default(), &patch, &SCHEDULES).await
    }

    fn field(result: DomainResult<ConfigUpdate>) -> String {
        match result {
            Err(DomainError::Validation { field, .. }) => field,
            Err(other) => panic!("not a validation error: {other}"),
            Ok(_) => panic!("accepted"),
        }
    }

    #[tokio::test]
    async fn nested_objects_merge_key_by_key() {
        let update = patched(
            json!({ "webhooks": { "maxAttempts": 3 }, "sellapay": { "fxRates": { "NGN": "12.5" } } }),
        )
        .await
        .unwrap();
        assert_eq!(update.config.webhooks.max_attempts, 3);
        assert_eq!(update.config.webhooks.backoff_base_seconds, 60, "untouched siblings keep their value");
        assert_eq!(update.config.sellapay.fx_rates.len(), 4, "a map entry is added to the others");
        assert_eq!(update.changed.keys().collect::<Vec<_>>(), ["sellapay", "webhooks"]);
        assert_eq!(update.changes["webhooks.maxAttempts"], json!({ "from": 12, "to": 3 }));
        let removed = patched(json!({ "sellapay": { "fxRates": { "USD": null } } })).await.unwrap();
        assert!(!removed.config.sellapay.fx_rates.contains_key("USD"));
    }

    #[tokio::test]
    async fn every_refusal_names_the_key_at_fault() {
        let cases = [
            (json!({ "webhooks": { "maxAttempt": 3 } }), "webhooks.maxAttempt"),
            (json!({ "nope": 1 }), "nope"),
            (json!({ "webhooks": { "maxAttempts": "many" } }), "webhooks.maxAttempts"),
            (json!({ "webhooks": { "maxAttempts": 0 } }), "webhooks.maxAttempts"),
            (json!({ "webhooks": { "maxAttempts": -1 } }), "webhooks.maxAttempts"),
            (json!({ "webhooks": 5 }), "webhooks"),
            (json!({ "paymentExpirySeconds": null }), "paymentExpirySeconds"),
            (
                json!({ "rateLimits": { "pro": { "payments": { "limit": 0 } } } }),
                "rateLimits.pro.payments.limit",
            ),
            (json!({ "rateLimits": { "gold": {} } }), "rateLimits.gold"),
            (json!({ "schedules": { "poll-refunds": "every minute" } }), "schedules.poll-refunds"),
            (json!({ "schedules": { "make-coffee": "0 * * * * *" } }), "schedules.make-coffee"),
            (json!({ "sellapay": { "fxRates": { "USD": "-1" } } }), "sellapay.fxRates.USD"),
            (json!({ "sellapay": { "fxRates": { "USD": 0.5 } } }), "sellapay.fxRates.USD"),
            (json!({ "subscriptions": { "retryDelaysSeconds": [] } }), "subscriptions.retryDelaysSeconds"),
            (json!({ "maxtera": { "funding": { "min": 10, "max": 5 } } }), "maxtera.funding.max"),
            (
                json!({ "idempotencyTtl": { "endpoints": { "payments": 60 } } }),
                "idempotencyTtl.endpoints.payments",
            ),
            (json!({ "webhooks": { "timeoutMs": 4294967296000u64 } }), "webhooks.timeoutMs"),
            (json!({ "webhooks": { "maxAttempts": 4294967296u64 } }), "webhooks.maxAttempts"),
            (json!({ "webhooks": { "maxAttempts": 2.5 } }), "webhooks.maxAttempts"),
            (json!({ "schedules": { "poll-refunds": "0 * * * * *\u{0}" } }), "schedules.poll-refunds"),
        ];
        for (patch, key) in cases {
            assert_eq!(field(patched(patch.clone()).await), key, "{patch}");
        }
        assert_eq!(field(patched(json!([1])).await), "body");
    }

    #[tokio::test]
    async fn valid_schedules_and_rates_are_accepted() {
        let update = patched(json!({
            "schedules": { "poll-refunds": "*/5 * * * * *" },
            "rateLimits": { "starter": { "payments": { "limit": 2, "windowSeconds": 60 } } },
            "primaryMerchantId": null,
        }))
        .await
        .unwrap();
        assert_eq!(update.config.rate_limits.starter.payments.limit, 2);
        assert_eq!(update.config.schedules["poll-refunds"], "*/5 * * * * *");
        assert!(!update.changed.contains_key("primaryMerchantId"), "null over null changes nothing");
    }
}
