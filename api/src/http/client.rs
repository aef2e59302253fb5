//! Who is calling, as far as the network says: the client IP and the request id.

use std::{net::IpAddr, str::FromStr};

use ipnet::IpNet;
use poem::{Request, web::RemoteAddr};
use ultra_domain::audit::Actor;

use crate::AppState;

/// The request id, set by the request-context middleware for every request.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// Which hops in front of the API may say who the client is, through `X-Forwarded-For`.
///
/// Proxies append the address they were reached from to whatever `X-Forwarded-For` the client
/// sent, so only the rightmost entries are facts: the leftmost is anything the client chose.
/// The client is found by walking from the right, past the proxies trusted here, as Express's
/// `trust proxy`, Rails' `RemoteIp` and Go's `realip` do.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustedProxies {
    /// The peer is the client; `X-Forwarded-For` is ignored.
    #[default]
    None,
    /// This many proxies stand in front of the API; the client is the address the outermost
    /// one appended.
    Hops(usize),
    /// Every hop whose address lies in one of these networks is a proxy of ours.
    Networks(Vec<IpNet>),
}

impl FromStr for TrustedProxies {
    type Err = String;

    /// `""` or `none`, a hop count (`1`), or a comma-separated list of addresses and CIDR
    /// networks (`10.0.0.0/8, 192.0.2.7`).
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("none") {
            return Ok(Self::None);
        }
        if let Ok(hops) = value.parse::<usize>() {
            return Ok(if hops == 0 { Self::None } else { Self::Hops(hops) });
        }
        value
            .split(',')
            .map(str::trim)
            .map(|entry| {
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{entry}` is neither an IP address nor a CIDR network"))
            })
            .collect::<Result<_, _>>()
            .map(Self::Networks)
    }
}

impl TrustedProxies {
    /// The client's address given the peer's and the `X-Forwarded-For` entries, leftmost first.
    pub fn client(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        // Nearest first: the peer, then each entry from the right.
        let chain = std::iter::once(Some(peer)).chain(forwarded.iter().rev().map(|entry| parse_hop(entry)));
        let mut client = peer;
        match self {
            Self::None => {}
            Self::Hops(hops) => {
                for hop in chain.skip(1).take(*hops) {
                    match hop {
                        Some(address) => client = address,
                        None => break,
                    }
                }
            }
            Self::Networks(networks) => {
                for hop in chain {
                    match hop {
                        Some(address) => {
                            client = address;
                            if !networks.iter().any(|network| network.contains(&address)) {
                                break;
                            }
                        }
                        // A trusted proxy vouched for something that is not an address: the
                        // proxy itself is the best-known hop.
                        None => break,
                    }
                }
            }
        }
        client
    }
}

/// One `X-Forwarded-For` entry: an address, possibly with a port or IPv6 brackets.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|addr| addr.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
}

pub fn client_ip(req: &Request) -> String {
    let RemoteAddr(poem::Addr::SocketAddr(peer)) = req.remote_addr() else {
        return req.remote_addr().to_string();
    };
    let Some(state) = req.data::<AppState>() else {
        return peer.ip().to_string();
    };
    let trusted = &state.config.trusted_proxies;
    if *trusted == TrustedProxies::None {
        return peer.ip().to_string();
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("X-Forwarded-For")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter(|entry| !entry.trim().is_empty())
        .collect();
    trusted.client(peer.ip(), &forwarded).to_string()
}

/// The audit actor for a request, before or after authentication.
pub fn actor(req: &Request, user_id: Option<&str>) -> Actor {
    Actor {
        user_id: user_id.map(str::to_owned),
        ip: Some(client_ip(req)),
        request_id: req.extensions().get::<RequestId>().map(|id| id.0.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn the_client_is_found_from_the_right_past_trusted_proxies() {
        let proxies: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        // The client sent `6.6.6.6`; the proxy appended the address it saw.
        assert_eq!(proxies.client(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.7"]), ip("198.51.100.7"));
        // Two proxies of ours in a row are both skipped.
        assert_eq!(
            proxies.client(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.7", "10.1.1.1"]),
            ip("198.51.100.7")
        );
        // A peer that is not ours is the client, whatever it says.
        assert_eq!(proxies.client(ip("203.0.113.9"), &["198.51.100.7"]), ip("203.0.113.9"));
    }

    #[test]
    fn a_hop_count_takes_the_entry_the_outermost_proxy_appended() {
        let proxies: TrustedProxies = "1".parse().unwrap();
        assert_eq!(proxies.client(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.7"]), ip("198.51.100.7"));
        let two: TrustedProxies = "2".parse().unwrap();
        assert_eq!(two.client(ip("10.0.0.2"), &["6.6.6.6", "198.51.100.7", "10.1.1.1"]), ip("198.51.100.7"));
        // A header shorter than the hop count gives its leftmost entry.
        assert_eq!(two.client(ip("10.0.0.2"), &["198.51.100.7"]), ip("198.51.100.7"));
        // No header: the peer.
        assert_eq!(two.client(ip("10.0.0.2"), &[]), ip("10.0.0.2"));
    }

    #[test]
    fn entries_with_ports_or_brackets_are_read_and_garbage_stops_the_walk() {
        let proxies: TrustedProxies = "127.0.0.1, ::1".parse().unwrap();
        assert_eq!(proxies.client(ip("::1"), &["198.51.100.7:4711"]), ip("198.51.100.7"));
        assert_eq!(proxies.client(ip("::1"), &["[2001:db8::1]"]), ip("2001:db8::1"));
        assert_eq!(proxies.client(ip("::1"), &["6.6.6.6", "not-an-address"]), ip("::1"));
    }

    #[test]
    fn settings_are_read_or_refused_by_name() {
        assert_eq!("".parse::<TrustedProxies>(), Ok(TrustedProxies::None));
        assert_eq!("0".parse::<TrustedProxies>(), Ok(TrustedProxies::None));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().unwrap_err().contains("10.0.0.0/33"));
    }
}
