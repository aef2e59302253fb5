//! Notifications from a provider to the merchant, retried the way providers retry an
//! unacknowledged push.

use std::{sync::Arc, time::Duration};

use reqwest::Method;
use serde_json::Value;

use crate::{app::App, provider::Provider};

const ATTEMPTS: u32 = 4;
const RETRY_PAUSE: Duration = Duration::from_secs(1);
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

pub struct Callback {
    pub method: Method,
    pub url: String,
    pub body: Value,
    /// Headers beyond the JSON content type, such as a signature.
    pub headers: Vec<(&'static str, String)>,
}

/// Sends `callback` for the collection with provider handle `handle` in the background: a
/// non-2xx answer or a connection error is retried three more times.
pub fn deliver<P: Provider>(app: Arc<App>, handle: String, callback: Callback) {
    tokio::spawn(async move {
        for attempt in 1..=ATTEMPTS {
            // Counted before sending, so that a merchant who has just received the callback
            // already sees it counted when it asks.
            if let Some(collection) = P::ledger(&app).by_handle(&handle) {
                collection.callbacks_sent += 1;
            }
            let request =
                callback.headers.iter().fold(
                    app.http.request(callback.method.clone(), &callback.url),
                    |request, (name, value)| request.header(*name, value),
                );
            let sent = request.json(&callback.body).timeout(ATTEMPT_TIMEOUT).send().await;
            match sent {
                Ok(answer) if answer.status().is_success() => {
                    tracing::info!(provider = P::NAME, %handle, url = %callback.url, attempt, status = %answer.status(), "callback delivered");
                    return;
                }
                Ok(answer) => {
                    tracing::warn!(provider = P::NAME, %handle, url = %callback.url, attempt, status = %answer.status(), "callback refused");
                }
                Err(error) => {
                    tracing::warn!(provider = P::NAME, %handle, url = %callback.url, attempt, %error, "callback failed");
                }
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
        tracing::warn!(provider = P::NAME, %handle, url = %callback.url, "callback abandoned");
    });
}
