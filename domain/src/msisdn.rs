//! Customer phone numbers, checked against the provider's Malagasy prefixes.

use crate::{DomainError, DomainResult, provider_configs::Provider};

/// Normalises `0341234567`, `261341234567` or `+261 34 12 345 67` to the local ten digits the
/// providers take, and checks the operator prefix: MVola 034/038, Airtel 033, Orange 032/037.
pub fn normalize(provider: Provider, raw: &str) -> DomainResult<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).collect();
    let local = if let Some(rest) = digits.strip_prefix("+261").or_else(|| digits.strip_prefix("261")) {
        format!("0{rest}")
    } else {
        digits
    };
    let (prefixes, name): (&[&str], &str) = match provider {
        Provider::Mvola => (&["034", "038"], "an MVola number (034 or 038)"),
        Provider::Airtel => (&["033"], "an Airtel Money number (033)"),
        Provider::Orange => (&["032", "037"], "an Orange Money number (032 or 037)"),
    };
    let valid = local.len() == 10
        && local.bytes().all(|b| b.is_ascii_digit())
        && prefixes.iter().any(|p| local.starts_with(p));
    if valid {
        Ok(local)
    } else {
        Err(DomainError::validation(
            "customerPhone",
            format!("must be {name} followed by 7 digits, e.g. {}0000000", prefixes[0]),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_local_and_international_forms() {
        assert_eq!(normalize(Provider::Mvola, "0340000000").unwrap(), "0340000000");
        assert_eq!(normalize(Provider::Mvola, "+261 34 00 000 01").unwrap(), "0340000001");
        assert_eq!(normalize(Provider::Airtel, "261331234567").unwrap(), "0331234567");
        assert!(normalize(Provider::Airtel, "0340000000").is_err());
        assert!(normalize(Provider::Orange, "03212345").is_err());
        assert!(normalize(Provider::Orange, "032123456a").is_err());
    }
}
