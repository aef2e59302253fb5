use ultra_domain::secrets::SecretBox;
use ultra_providers::Providers;

use crate::kinds::webhooks::WebhookSender;

/// What handlers need besides the database: the provider adapters, the key that opens stored
/// credentials and webhook secrets, the public URL providers send their callbacks to, and the
/// client that delivers webhooks.
pub struct JobEnv {
    pub providers: Providers,
    pub sealer: SecretBox,
    /// Ultra's API as providers reach it, e.g. `https://pay.example.com`.
    pub public_url: String,
    pub webhooks: WebhookSender,
}
