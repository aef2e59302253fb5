//! Which addresses count as the public internet. The check runs on resolved addresses, both when
//! a URL is saved and when each call connects, so a name that later resolves elsewhere gains
//! nothing.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Whether `ip` is an ordinary address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        // "this network", carrier-grade NAT, IETF protocol assignments, benchmarking, reserved
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // 6to4 (2002::/16) carries an IPv4 address that the relay will reach: judge that one.
    if segments[0] == 0x2002 {
        let [a, b] = segments[1].to_be_bytes();
        let [c, d] = segments[2].to_be_bytes();
        return is_public_v4(Ipv4Addr::new(a, b, c, d));
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        // IPv4-compatible addresses (::/96, deprecated): `::127.0.0.1` is loopback to stacks
        // that still map them
        || segments[..6] == [0; 6]
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        // documentation (2001:db8::/32), the NAT64 prefix that embeds IPv4 (64:ff9b::/96),
        // discard-only (100::/64) and deprecated site-local (fec0::/10)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8)
        || (segments[0] == 0x0064 && segments[1] == 0xff9b)
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0])
        || (segments[0] & 0xffc0) == 0xfec0)
}

/// Resolves `host` and returns its addresses, or why a call may not reach it.
pub async fn resolve(host: &str, port: u16, allow_private: bool) -> Result<Vec<SocketAddr>, String> {
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = match literal.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|err| format!("{host} does not resolve: {err}"))?
            .collect(),
    };
    if addresses.is_empty() {
        return Err(format!("{host} does not resolve"));
    }
    if !allow_private && let Some(blocked) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(format!("{host} resolves to {}, a private or reserved address", blocked.ip()));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_reserved_addresses_are_not_public() {
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "198.18.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::8.8.8.8",
            "2002:7f00:1::1",
            "2002:a9fe:a9fe::1",
        ] {
            assert!(!is_public(blocked.parse().unwrap()), "{blocked} passed as public");
        }
        for allowed in ["8.8.8.8", "41.188.10.1", "2a00:1450:4001::1", "::ffff:8.8.8.8", "2002:808:808::1"] {
            assert!(is_public(allowed.parse().unwrap()), "{allowed} refused");
        }
    }

    #[tokio::test]
    async fn names_are_checked_on_their_resolved_addresses() {
        let refused = resolve("localhost", 80, false).await.unwrap_err();
        assert!(refused.contains("private or reserved"), "{refused}");
        assert!(resolve("localhost", 80, true).await.is_ok());
        assert!(resolve("[::1]", 80, false).await.is_err());
    }
}
