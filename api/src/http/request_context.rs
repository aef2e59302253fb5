//! The outermost layer of every surface: a request id (echoed when the client sent a usable
//! one), `X-Process-Time`, `X-Content-Type-Options: nosniff`, the request-latency metric, a
//! tracing span, the rendering of any error raised below into the envelope, and the refusal of
//! an `Idempotency-Key` that is not text: a handler would not see it, and would run the request
//! as if it had no key, so a retry would act twice.

use std::time::Instant;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::HeaderValue};
use poem_openapi::OperationId;
use tracing::Instrument;

use super::{client::RequestId, error::ApiError, idempotency::invalid_key};

const MAX_REQUEST_ID_LEN: usize = 128;

pub struct RequestContext;

impl<E: Endpoint> Middleware<E> for RequestContext {
    type Output = RequestContextEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RequestContextEndpoint { inner: ep }
    }
}

pub struct RequestContextEndpoint<E> {
    inner: E,
}

fn usable_request_id(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_REQUEST_ID_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

impl<E: Endpoint> Endpoint for RequestContextEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> Result<Self::Output> {
        let started = Instant::now();
        let request_id = req
            .header("X-Request-ID")
            .filter(|value| usable_request_id(value))
            .map(str::to_owned)
            .unwrap_or_else(|| ulid::Ulid::new().to_string());
        req.extensions_mut().insert(RequestId(request_id.clone()));
        let method = req.method().clone();
        let path = req.uri().path().to_owned();
        let span = tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);

        let unreadable_key = req.headers().get("Idempotency-Key").is_some_and(|key| key.to_str().is_err());
        let mut response = async {
            if unreadable_key {
                return invalid_key().render(&path);
            }
            match self.inner.call(req).await {
                Ok(output) => output.into_response(),
                Err(err) => {
                    let operation = err.data::<OperationId>().copied();
                    let mut response = ApiError::from_poem(&err, method.as_str(), &path).render(&path);
                    if let Some(operation) = operation {
                        response.set_data(operation);
                    }
                    response
                }
            }
        }
        .instrument(span.clone())
        .await;

        let elapsed = started.elapsed();
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("X-Request-ID", value);
        }
        if let Ok(value) = HeaderValue::from_str(&format!("{:.3}ms", elapsed.as_secs_f64() * 1000.0)) {
            headers.insert("X-Process-Time", value);
        }
        headers.insert("X-Content-Type-Options", HeaderValue::from_static("nosniff"));
        let route = response.data::<OperationId>().map(|id| id.0).unwrap_or("unmatched");
        let status = response.status().as_u16().to_string();
        metrics::histogram!(
            "http_request_duration_seconds",
            "method" => method.to_string(),
            "route" => route,
            "status" => status,
        )
        .record(elapsed.as_secs_f64());
        span.in_scope(|| {
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_ms = elapsed.as_millis() as u64,
                "handled"
            );
        });
        Ok(response)
    }
}
