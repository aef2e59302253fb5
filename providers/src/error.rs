use thiserror::Error;

/// How a provider call went wrong, sorted by what the caller should do about it.
///
/// What it displays is Ultra's own words, which merchants may see in job results and failure
/// reasons. What the provider (or whatever answered at its address) said is kept apart in
/// [`ProviderError::detail`], for the job's attempt log and the worker's log only: a
/// configuration pointing somewhere else must not turn workers into a way to read it.
#[derive(Debug, Error)]
pub enum ProviderError {
    /// No answer in time: the request may or may not have reached the provider, so a retry
    /// must first ask what became of it.
    #[error("the provider did not answer in time")]
    Timeout,
    /// The provider could not be reached or answered 429/5xx: worth retrying later.
    #[error("the provider is unavailable")]
    Unavailable(String),
    /// The provider refused the request for a business reason (insufficient funds, invalid
    /// number, barred account): retrying the same request cannot succeed.
    #[error("the provider refused: {message} ({code})")]
    Rejected { code: String, message: String },
    /// The provider already has a request with our reference: an earlier attempt got there.
    #[error("the provider already has this reference")]
    Duplicate(String),
    /// The provider knows nothing under this handle.
    #[error("the provider has no such transaction")]
    NotFound,
    /// Our credentials were refused: an operator must fix the provider configuration.
    #[error("the provider refused the configured credentials")]
    Credentials(String),
    /// The provider configuration lacks something this call needs, or names an address calls
    /// may not go to.
    #[error("the provider configuration cannot be used: {0}")]
    Configuration(String),
    /// The provider has no API for this; it has to be done another way.
    #[error("{0}")]
    Unsupported(String),
    /// The provider answered something its protocol does not allow.
    #[error("the provider answered unexpectedly")]
    Protocol(String),
}

impl ProviderError {
    /// Worth retrying the same call later.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Timeout | Self::Unavailable(_) | Self::Protocol(_))
    }

    /// What the provider said, for operators: it may quote the answer's body.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Unavailable(detail)
            | Self::Duplicate(detail)
            | Self::Credentials(detail)
            | Self::Protocol(detail) => Some(detail),
            _ => None,
        }
    }

    /// The error with its detail, for the attempt log and the worker's log.
    pub fn for_operators(&self) -> String {
        match self.detail() {
            Some(detail) if !detail.is_empty() => format!("{self}: {detail}"),
            _ => self.to_string(),
        }
    }
}
