use thiserror::Error;

/// How a provider call went wrong, sorted by what the caller should do about it.
#[derive(Debug, Error)]
pub enum ProviderError {
    /// No answer in time: the request may or may not have reached the provider, so a retry
    /// must first ask what became of it.
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider could not be reached or answered 429/5xx: worth retrying later.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request for a business reason (insufficient funds, invalid
    /// number, barred account): retrying the same request cannot succeed.
    #[error("the provider refused: {message} ({code})")]
    Rejected { code: String, message: String },
    /// The provider already has a request with our reference: an earlier attempt got there.
    #[error("the provider already has this reference: {0}")]
    Duplicate(String),
    /// The provider knows nothing under this handle.
    #[error("the provider has no such transaction")]
    NotFound,
    /// Our credentials were refused: an operator must fix the provider configuration.
    #[error("the provider refused our credentials: {0}")]
    Credentials(String),
    /// The provider configuration lacks something this call needs.
    #[error("the provider configuration is incomplete: {0}")]
    Configuration(String),
    /// The provider has no API for this; it has to be done another way.
    #[error("{0}")]
    Unsupported(String),
    /// The provider answered something its protocol does not allow.
    #[error("the provider answered unexpectedly: {0}")]
    Protocol(String),
}

impl ProviderError {
    /// Worth retrying the same call later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::Unavailable(_) | Self::Protocol(_))
    }
}
