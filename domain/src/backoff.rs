//! When failed work runs again (a job, a webhook delivery): exponential backoff with jitter,
//! so that work failing together (a provider outage) does not all retry in the same second.
//! The jitter takes up to a quarter off, which keeps every delay longer than the one before it.

use std::time::Duration;

use rand::Rng;

/// The delay before attempt `failed_attempts + 1`: `base · 2^(failed_attempts − 1)`, capped,
/// then a random point between three quarters of that and all of it.
pub fn delay(base: Duration, cap: Duration, failed_attempts: u32) -> Duration {
    let exponent = failed_attempts.saturating_sub(1).min(30);
    let full = base.saturating_mul(1 << exponent).min(cap);
    full.mul_f64(0.75 + 0.25 * rand::rng().random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_and_stay_within_the_cap() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(60);
        for attempt in 1..12 {
            let bound = base.saturating_mul(1 << (attempt - 1)).min(cap);
            let d = delay(base, cap, attempt);
            assert!(d >= bound.mul_f64(0.75) && d <= bound, "attempt {attempt}: {d:?} outside {bound:?}");
        }
        assert!(delay(base, cap, 40) <= cap);
    }
}
