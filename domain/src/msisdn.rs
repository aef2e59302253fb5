//! Customer phone numbers: Malagasy ones checked against the provider's prefixes, and Kenyan
//! ones in the form Sellapay takes them.

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
        Provider::Mpesa => return kenyan("customerPhone", raw),
        Provider::Bank => {
            return Err(DomainError::validation("provider", "bank transfers have no customer phone"));
        }
        Provider::Vtpass | Provider::Onepipe => {
            return Err(DomainError::validation(
                "provider",
                "VTpass and OnePipe serve Maxtera wallets, not payments",
            ));
        }
        Provider::Meta | Provider::Tiktok => {
            return Err(DomainError::validation(
                "provider",
                "Meta and TikTok publish posts; they take no payments",
            ));
        }
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

/// A Safaricom number as Sellapay takes it: the nine local digits, starting with 7 or 1, with
/// no country code; `254` is added here, giving the `2547…`/`2541…` form Daraja takes.
pub fn kenyan(field: &str, raw: &str) -> DomainResult<String> {
    let invalid = |reason: &str| Err(DomainError::validation(field, reason));
    if !raw.bytes().all(|b| b.is_ascii_digit()) {
        return invalid("Phone must contain digits only");
    }
    if raw.len() != 9 {
        return invalid("Phone must be 9 digits, without the country code");
    }
    if !(raw.starts_with('7') || raw.starts_with('1')) {
        return invalid("Phone must start with 7 or 1");
    }
    Ok(format!("254{raw}"))
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

    #[test]
    fn kenyan_numbers_follow_the_sellapay_rule() {
        assert_eq!(kenyan("phone", "712345678").unwrap(), "254712345678");
        assert_eq!(kenyan("phone", "112345678").unwrap(), "254112345678");
        for bad in ["0712345678", "254712345678", "812345678", "71234567", "7123456789", "71234567a", ""] {
            assert!(kenyan("phone", bad).is_err(), "{bad}");
        }
    }
}
