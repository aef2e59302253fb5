//! Nigerian mobile numbers, and the network a number's prefix was allocated to.

use super::catalogue::Network;
use crate::{DomainError, DomainResult};

/// Prefixes as the NCC allocated them. Numbers ported since keep their prefix, which is why a
/// client may say a number is ported and skip the check.
const PREFIXES: &[(&str, Network)] = &[
    ("07025", Network::Mtn),
    ("07026", Network::Mtn),
    ("0703", Network::Mtn),
    ("0704", Network::Mtn),
    ("0706", Network::Mtn),
    ("0803", Network::Mtn),
    ("0806", Network::Mtn),
    ("0810", Network::Mtn),
    ("0813", Network::Mtn),
    ("0814", Network::Mtn),
    ("0816", Network::Mtn),
    ("0903", Network::Mtn),
    ("0906", Network::Mtn),
    ("0913", Network::Mtn),
    ("0916", Network::Mtn),
    ("0701", Network::Airtel),
    ("0708", Network::Airtel),
    ("0802", Network::Airtel),
    ("0808", Network::Airtel),
    ("0812", Network::Airtel),
    ("0901", Network::Airtel),
    ("0902", Network::Airtel),
    ("0904", Network::Airtel),
    ("0907", Network::Airtel),
    ("0912", Network::Airtel),
    ("0705", Network::Glo),
    ("0805", Network::Glo),
    ("0807", Network::Glo),
    ("0811", Network::Glo),
    ("0815", Network::Glo),
    ("0905", Network::Glo),
    ("0915", Network::Glo),
    ("0809", Network::NineMobile),
    ("0817", Network::NineMobile),
    ("0818", Network::NineMobile),
    ("0908", Network::NineMobile),
    ("0909", Network::NineMobile),
];

/// Reads `08012345678`, `+2348012345678`, `2348012345678` or `0801 234 5678` as the local
/// eleven digits vendors take.
pub fn nigerian(field: &str, raw: &str) -> DomainResult<String> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    let local = match digits.strip_prefix("+234").or_else(|| digits.strip_prefix("234")) {
        Some(rest) if rest.len() == 10 => format!("0{rest}"),
        _ => digits,
    };
    let bytes = local.as_bytes();
    let valid = bytes.len() == 11
        && bytes.iter().all(u8::is_ascii_digit)
        && bytes[0] == b'0'
        && matches!(bytes[1], b'7' | b'8' | b'9')
        && matches!(bytes[2], b'0' | b'1');
    if valid {
        Ok(local)
    } else {
        Err(DomainError::validation(
            field,
            "Enter a Nigerian mobile number of 11 digits such as 08012345678, or +2348012345678",
        ))
    }
}

/// The network `local` was allocated to, when its prefix is a known one.
pub fn network_of(local: &str) -> Option<Network> {
    PREFIXES.iter().find(|(prefix, _)| local.starts_with(prefix)).map(|(_, network)| *network)
}

/// Refuses a number whose prefix belongs to another network than the one chosen: airtime sent
/// to the wrong network is lost. Unallocated prefixes pass, for the vendor to route.
pub fn check_network(field: &str, local: &str, chosen: Network) -> DomainResult<()> {
    match network_of(local) {
        Some(actual) if actual != chosen => Err(DomainError::validation(
            field,
            format!(
                "{local} is on {}, not {}; choose network {} or set \"ported\": true if the number was ported",
                actual.name(),
                chosen.name(),
                actual.name()
            ),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_local_and_international_forms() {
        assert_eq!(nigerian("phone", "08012345678").unwrap(), "08012345678");
        assert_eq!(nigerian("phone", "+2348031234567").unwrap(), "08031234567");
        assert_eq!(nigerian("phone", "234 803 123 4567").unwrap(), "08031234567");
        for bad in ["0801234567", "080123456789", "06012345678", "08212345678", "0801234567x", ""] {
            assert!(nigerian("phone", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn knows_the_networks_of_allocated_prefixes() {
        assert_eq!(network_of("08031234567"), Some(Network::Mtn));
        assert_eq!(network_of("07025123456"), Some(Network::Mtn));
        assert_eq!(network_of("08021234567"), Some(Network::Airtel));
        assert_eq!(network_of("08051234567"), Some(Network::Glo));
        assert_eq!(network_of("09091234567"), Some(Network::NineMobile));
        assert_eq!(network_of("08012345678"), None);
    }

    #[test]
    fn refuses_a_number_of_another_network() {
        assert!(check_network("phone_number", "08031234567", Network::Mtn).is_ok());
        assert!(check_network("phone_number", "08012345678", Network::Airtel).is_ok());
        let err = check_network("phone_number", "08031234567", Network::Glo).unwrap_err();
        assert!(err.to_string().contains("is on MTN, not GLO"), "{err}");
    }
}
