use std::time::Duration;

/// How the sandbox behaves. One set of credentials serves every provider so that a developer
/// configures each adapter with the same pair.
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// The only OAuth client id (MVola consumer key) accepted, for every provider; also VTpass's
    /// `api-key` and `public-key`, OnePipe's API key, Meta's app id and TikTok's client key.
    pub client_id: String,
    /// Also VTpass's `secret-key`, OnePipe's client secret, Meta's app secret and TikTok's
    /// client secret.
    pub client_secret: String,
    /// The WebPay merchant key an Orange order must carry (8 hex characters).
    pub orange_merchant_key: String,
    /// Airtel's callback destination is set once per app on its portal, not per request, so
    /// without it Airtel sends no callbacks at all.
    pub airtel_callback_url: Option<String>,
    /// When set, Airtel callbacks carry `hash`, as with "Callback Authentication" enabled.
    pub airtel_callback_key: Option<String>,
    /// Where OnePipe posts its transaction notifications: set once per app, so without it
    /// OnePipe sends none.
    pub onepipe_webhook_url: Option<String>,
    /// How long the simulated customer takes to answer the payment prompt.
    pub settle_delay: Duration,
    /// How long a stalling initiate call (test number `04`) hangs before answering.
    pub stall: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            client_id: "ultra-sandbox".to_owned(),
            client_secret: "ultra-sandbox-secret".to_owned(),
            orange_merchant_key: "0a1b2c3d".to_owned(),
            airtel_callback_url: None,
            airtel_callback_key: None,
            onepipe_webhook_url: None,
            settle_delay: Duration::from_secs(1),
            stall: Duration::from_secs(15),
        }
    }
}
