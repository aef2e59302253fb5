//! Rate limits counted in Redis, so that they hold across API replicas.
//!
//! While Redis cannot be reached (no answer within [`REDIS_BUDGET`]), the limits that guard
//! anonymous callers per client IP (login, Sellapay `authorize`, public checkout) refuse with
//! `503` and `Retry-After`: they stand between the world and passwords and payers' phones.
//! The limits on authenticated callers (requests and payments per account) let requests
//! through: those callers are known, the database is the source of truth, and a Redis outage
//! should not stop a merchant's payments. `rate_limit_unavailable_total` counts both.
//!
//! Each limit is a sliding window: a sorted set of the accepted requests' times, trimmed to the
//! window on every check. Unlike fixed windows it never lets twice the limit through around a
//! window boundary. Time comes from the Redis server so that replicas with skewed clocks agree.

use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, Method},
};
use poem_openapi::OperationId;
use ultra_domain::runtime_config::{RateLimitRule, RuntimeConfig};

use sha2::{Digest, Sha256};

use super::{auth::bearer_token, client::client_ip, error::ApiError};
use crate::AppState;

/// Counts one request against every key in `KEYS` at once (`ARGV` holds each key's window in
/// milliseconds and its limit, then the request's member): the request is admitted, and counted
/// by all of them, only if every one has room. Returns the time, whether it was admitted, and
/// each key's count and reset time.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[#KEYS * 2 + 1]
local allowed = 1
local counts = {}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i * 2 - 1])
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  counts[i] = redis.call('ZCARD', key)
  if counts[i] >= tonumber(ARGV[i * 2]) then allowed = 0 end
end
local out = {now, allowed}
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[i * 2 - 1])
  if allowed == 1 then
    redis.call('ZADD', key, now, member)
    counts[i] = counts[i] + 1
  end
  redis.call('PEXPIRE', key, window)
  local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  local reset = now + window
  if oldest[2] then reset = tonumber(oldest[2]) + window end
  table.insert(out, counts[i])
  table.insert(out, reset)
end
return out
";

/// Built once: a `Script` hashes its source when made, and every request is checked.
static CHECK: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(SCRIPT));

/// One limited route: requests to `method path` are counted per client IP under `rule`.
#[derive(Clone)]
pub struct IpRule {
    pub name: &'static str,
    pub method: Method,
    pub path: &'static str,
    pub rule: fn(&RuntimeConfig) -> RateLimitRule,
}

/// Requests under `prefix` that carry a bearer token are counted per token under `rule`,
/// except the routes in `except`, which have limits of their own.
#[derive(Clone)]
pub struct TokenRule {
    pub name: &'static str,
    pub prefix: &'static str,
    pub except: &'static [&'static str],
    pub rule: fn(&RuntimeConfig) -> RateLimitRule,
}

impl TokenRule {
    /// The counter key for this request, if the rule covers it: a digest of the token, so the
    /// token itself never reaches Redis.
    fn key(&self, req: &Request) -> Option<String> {
        let path = req.uri().path().trim_end_matches('/');
        if !path.starts_with(self.prefix) || self.except.contains(&path) {
            return None;
        }
        let token = bearer_token(req)?;
        Some(format!("{}:{}", self.name, &hex::encode(Sha256::digest(token.as_bytes()))[..32]))
    }
}

pub struct RateLimit {
    rules: Vec<IpRule>,
    token_rules: Vec<TokenRule>,
}

impl RateLimit {
    pub fn new(rules: Vec<IpRule>, token_rules: Vec<TokenRule>) -> Self {
        Self { rules, token_rules }
    }
}

impl<E: Endpoint> Middleware<E> for RateLimit {
    type Output = RateLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RateLimitEndpoint { inner: ep, rules: self.rules.clone(), token_rules: self.token_rules.clone() }
    }
}

pub struct RateLimitEndpoint<E> {
    inner: E,
    rules: Vec<IpRule>,
    token_rules: Vec<TokenRule>,
}

/// The outcome of one check, as the `X-RateLimit-*` headers report it.
#[derive(Clone)]
pub struct Verdict {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Unix time (seconds) at which a request will be accepted again.
    pub reset_at: u64,
    pub retry_after: u64,
}

impl Verdict {
    /// Whether this verdict, rather than `other`, is the one to report: a refusal before an
    /// admission, else the one with less room left.
    fn nearer_than(&self, other: &Verdict) -> bool {
        other.allowed && (!self.allowed || self.remaining < other.remaining)
    }

    pub fn apply_headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        headers.insert("X-RateLimit-Limit", HeaderValue::from(self.limit));
        headers.insert("X-RateLimit-Remaining", HeaderValue::from(self.remaining));
        headers.insert("X-RateLimit-Reset", HeaderValue::from(self.reset_at));
    }
}

/// The longest a rate-limit check waits for Redis before the outage policy applies.
const REDIS_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

/// Counts one request of an anonymous caller against `key` and says whether it may proceed;
/// while Redis cannot count it, a `503` asking to retry.
pub async fn check(state: &AppState, key: &str, rule: RateLimitRule) -> Result<Verdict, ApiError> {
    match check_all(state, &[(key.to_owned(), rule)]).await? {
        Some((_, verdict)) => Ok(verdict),
        None => {
            metrics::counter!("rate_limit_unavailable_total", "policy" => "refuse").increment(1);
            Err(ApiError::unavailable(
                "rate_limit_unavailable",
                "this operation is rate limited and its limits cannot be checked right now; retry shortly",
                1,
            ))
        }
    }
}

/// Counts one request against every limit in `limits` in one Redis call, and says whether it
/// may proceed: only if all of them have room. The verdict is the limit nearest to refusing.
/// `None` when Redis did not answer in time.
async fn check_all(
    state: &AppState,
    limits: &[(String, RateLimitRule)],
) -> Result<Option<(bool, Verdict)>, ApiError> {
    let mut invocation = CHECK.prepare_invoke();
    for (key, _) in limits {
        invocation.key(format!("{}ratelimit:{key}", state.config.redis_prefix));
    }
    for (_, rule) in limits {
        invocation.arg(u64::from(rule.window_seconds) * 1000).arg(rule.limit);
    }
    invocation.arg(ulid::Ulid::new().to_string());
    let mut redis = state.redis.clone();
    let answer: Vec<i64> = match tokio::time::timeout(REDIS_BUDGET, invocation.invoke_async(&mut redis)).await
    {
        Ok(Ok(answer)) => answer,
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "rate limits cannot be checked");
            return Ok(None);
        }
        Err(_) => {
            tracing::warn!("rate limits cannot be checked: Redis did not answer in time");
            return Ok(None);
        }
    };
    let (now_ms, allowed) = match answer.as_slice() {
        [now_ms, allowed, ..] => (*now_ms, *allowed == 1),
        _ => return Err(ApiError::internal("rate limit script answered too little")),
    };
    let verdicts = limits.iter().zip(answer[2..].chunks_exact(2)).map(|((_, rule), counted)| {
        let (count, reset_ms) = (counted[0], counted[1]);
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        let full = count >= rule.limit && !allowed;
        Verdict {
            allowed: allowed || !full,
            limit: rule.limit,
            remaining: rule.limit.saturating_sub(count),
            reset_at: u64::try_from((reset_ms + 999) / 1000).unwrap_or_default(),
            retry_after: u64::try_from((reset_ms - now_ms).max(0)).unwrap_or_default().div_ceil(1000).max(1),
        }
    });
    let nearest = verdicts
        .reduce(|kept, verdict| if verdict.nearer_than(&kept) { verdict } else { kept })
        .ok_or_else(|| ApiError::internal("no rate limit to check"))?;
    Ok(Some((allowed, nearest)))
}

/// Counts a request of an authenticated caller against `limits` and refuses it if any is full.
/// The middleware cannot make these checks, which need the caller's account (its tier, its
/// merchant), so it leaves a slot in the request where they report back for the
/// `X-RateLimit-*` headers.
pub async fn enforce(
    req: &Request,
    state: &AppState,
    limits: &[(String, RateLimitRule)],
) -> Result<(), ApiError> {
    let Some((allowed, verdict)) = check_all(state, limits).await? else {
        admitted_uncounted();
        return Ok(());
    };
    let refusal = (!allowed).then(|| ApiError::rate_limited(verdict.retry_after));
    if let Some(reported) = req.extensions().get::<Reported>() {
        reported.keep(verdict);
    }
    refusal.map_or(Ok(()), Err)
}

/// Counts an authenticated request let through because Redis could not count it.
fn admitted_uncounted() {
    metrics::counter!("rate_limit_unavailable_total", "policy" => "admit").increment(1);
}

/// The verdicts of [`enforce`] for one request; the headers report the one nearest its limit.
#[derive(Clone, Default)]
struct Reported(Arc<Mutex<Option<Verdict>>>);

impl Reported {
    fn keep(&self, verdict: Verdict) {
        let mut kept = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.as_ref().is_none_or(|kept| verdict.nearer_than(kept)) {
            *kept = Some(verdict);
        }
    }

    fn take(&self) -> Option<Verdict> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl<E: Endpoint> Endpoint for RateLimitEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let by_ip = self
            .rules
            .iter()
            .find(|rule| rule.method == req.method() && rule.path == req.uri().path().trim_end_matches('/'))
            .map(|rule| (format!("{}:{}", rule.name, client_ip(&req)), rule.rule));
        let by_token = || self.token_rules.iter().find_map(|rule| rule.key(&req).map(|key| (key, rule.rule)));
        let anonymous = by_ip.is_some();
        let Some((key, rule)) = by_ip.or_else(by_token) else {
            let reported = Reported::default();
            req.extensions_mut().insert(reported.clone());
            let (method, path) = (req.method().clone(), req.uri().path().to_owned());
            let outcome = self.inner.call(req).await;
            let Some(verdict) = reported.take() else {
                return outcome.map(IntoResponse::into_response);
            };
            let mut response = match outcome {
                Ok(output) => output.into_response(),
                Err(err) => {
                    let operation = err.data::<OperationId>().copied();
                    let mut response = ApiError::from_poem(&err, method.as_str(), &path).render(&path);
                    if let Some(operation) = operation {
                        response.set_data(operation);
                    }
                    response
                }
            };
            verdict.apply_headers(&mut response);
            return Ok(response);
        };
        let state = req.data::<AppState>().cloned().ok_or_else(|| ApiError::internal("state missing"))?;
        let config = state.runtime.current().await.map_err(ApiError::from)?;
        let (method, path) = (req.method().clone(), req.uri().path().to_owned());
        // `None`: Redis could not count the request, and the limit lets it through.
        let verdict = if anonymous {
            match check(&state, &key, rule(&config)).await {
                Ok(verdict) => Some(verdict),
                Err(err) => return Ok(err.render(&path)),
            }
        } else {
            let counted = check_all(&state, &[(key, rule(&config))]).await?;
            if counted.is_none() {
                admitted_uncounted();
            }
            counted.map(|(_, verdict)| verdict)
        };
        let mut response = match &verdict {
            Some(verdict) if !verdict.allowed => ApiError::rate_limited(verdict.retry_after).render(&path),
            _ => match self.inner.call(req).await {
                Ok(output) => output.into_response(),
                Err(err) => ApiError::from_poem(&err, method.as_str(), &path).render(&path),
            },
        };
        if let Some(verdict) = verdict {
            verdict.apply_headers(&mut response);
        }
        Ok(response)
    }
}
