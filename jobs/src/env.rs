use ultra_domain::secrets::SecretBox;
use ultra_providers::Providers;

/// What handlers need besides the database: the provider adapters, the key that opens stored
/// provider credentials, and the public URL providers send their callbacks to.
pub struct JobEnv {
    pub providers: Providers,
    pub sealer: SecretBox,
    /// Ultra's API as providers reach it, e.g. `https://pay.example.com`.
    pub public_url: String,
}
