use std::collections::BTreeMap;

use crate::ProviderError;

/// A provider configuration's settings and revealed secrets, by the names the configuration
/// API uses (`baseUrl`, `clientId`, ...).
#[derive(Clone, Debug, Default)]
pub struct Settings(pub BTreeMap<String, String>);

impl Settings {
    pub fn required(&self, name: &str) -> Result<String, ProviderError> {
        self.optional(name).ok_or_else(|| ProviderError::Configuration(format!("{name} is not set")))
    }

    pub fn optional(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// The base URL without a trailing slash, so paths can be appended as written in the docs.
    pub fn base_url(&self) -> Result<String, ProviderError> {
        Ok(self.required("baseUrl")?.trim_end_matches('/').to_owned())
    }
}
