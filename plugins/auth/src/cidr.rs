//! `trusted_proxies`: IP addresses and CIDR blocks whose forwarding headers
//! (`Forwarded`, `X-Forwarded-Proto`, `X-Forwarded-Host`) the plugin believes.

use std::net::{IpAddr, SocketAddr};

/// One address block: `10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `"10.0.0.0/8"`, `"192.168.1.7"`, `"fd00::/8"`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Cidr, String> {
        let text = text.trim();
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network: IpAddr = address.parse().map_err(|_| format!("`{text}` is not an IP address or CIDR block"))?;
        let network = canonical(network);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(format!("`{text}`: the prefix length must be 0 to {max}")),
            },
        };
        Ok(Cidr { network, prefix })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, canonical(address)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => same_prefix(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

/// Whether `address` (as the host or a `Forwarded: for=` gives it) is in any of `blocks`.
pub fn any_contains(blocks: &[Cidr], address: &str) -> bool {
    parse_address(address).is_some_and(|ip| blocks.iter().any(|b| b.contains(ip)))
}

/// An IP from `1.2.3.4`, `::1`, `[::1]`, `1.2.3.4:567` or `[::1]:567`.
pub fn parse_address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = text.parse::<SocketAddr>() {
        return Some(socket.ip());
    }
    text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).and_then(|t| t.parse().ok())
}

// An IPv4 client on a dual-stack socket shows up as `::ffff:a.b.c.d`; it
// must match the IPv4 blocks an operator writes.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_and_addresses() {
        let blocks: Vec<Cidr> = ["10.0.0.0/8", "192.168.1.7", "fd00::/8", "172.16.0.0/12"]
            .iter()
            .map(|t| Cidr::parse(t).unwrap())
            .collect();
        assert!(any_contains(&blocks, "10.1.2.3"));
        assert!(any_contains(&blocks, "::ffff:10.1.2.3"), "IPv4-mapped IPv6");
        assert!(any_contains(&blocks, "192.168.1.7:4000"));
        assert!(!any_contains(&blocks, "192.168.1.8"));
        assert!(any_contains(&blocks, "[fd12::1]:80"));
        assert!(any_contains(&blocks, "172.31.255.255"));
        assert!(!any_contains(&blocks, "172.32.0.0"));
        assert!(!any_contains(&blocks, "fe80::1"));
        assert!(!any_contains(&blocks, "not an address"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
    }

    #[test]
    fn bad_blocks_say_why() {
        assert!(Cidr::parse("10.0.0.0/33").unwrap_err().contains("0 to 32"));
        assert!(Cidr::parse("example.com").unwrap_err().contains("not an IP address"));
        assert!(Cidr::parse("10.0.0.0/x").is_err());
    }
}
