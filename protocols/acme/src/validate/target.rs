//! Where validation may connect. A challenge makes the server open connections to an
//! address the client chose (through its identifier, its DNS records and, for http-01,
//! its redirects), so the validator must not become a way into the server's own network:
//! every address is checked right before it is dialed (after resolution and after each
//! redirect, so a DNS answer that changes between a check and a connect cannot slip
//! through), and addresses in special-purpose ranges (loopback, private, link-local,
//! CGNAT, cloud metadata, documentation, multicast, reserved; IANA's special-purpose
//! address registries, RFC 6890) are refused unless the endpoint lists them in
//! `spec.acme.validation.allowedTargetRanges` (an internal PKI validating hosts on a
//! private network, or a test on loopback).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use ipnet::IpNet;

/// Special-purpose ranges, most specific first, with the words a refusal uses.
static SPECIAL: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    [
        ("169.254.169.254/32", "a cloud metadata service address"),
        ("100.100.100.200/32", "a cloud metadata service address"),
        ("fd00:ec2::254/128", "a cloud metadata service address"),
        ("0.0.0.0/8", "the \"this network\" range"),
        ("10.0.0.0/8", "a private range (RFC 1918)"),
        ("100.64.0.0/10", "the shared address space of carrier-grade NAT (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "a private range (RFC 1918)"),
        ("192.0.0.0/24", "the IETF protocol assignments range"),
        ("192.0.2.0/24", "a documentation range"),
        ("192.88.99.0/24", "the 6to4 relay anycast range"),
        ("192.168.0.0/16", "a private range (RFC 1918)"),
        ("198.18.0.0/15", "the benchmarking range"),
        ("198.51.100.0/24", "a documentation range"),
        ("203.0.113.0/24", "a documentation range"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "a reserved range"),
        ("::/128", "the unspecified address"),
        ("::1/128", "loopback"),
        ("::/96", "the deprecated IPv4-compatible range"),
        ("64:ff9b:1::/48", "the local-use NAT64 range"),
        ("100::/64", "the discard-only range"),
        ("2001:db8::/32", "a documentation range"),
        ("2001::/23", "the IETF protocol assignments range"),
        ("3fff::/20", "a documentation range"),
        ("fc00::/7", "a unique local range"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "the deprecated site-local range"),
        ("ff00::/8", "multicast"),
    ]
    .into_iter()
    .filter_map(|(net, what)| net.parse().ok().map(|n| (n, what)))
    .collect()
});

/// The IPv4 address an IPv6 address carries by a translation mechanism (IPv4-mapped,
/// NAT64 well-known prefix, 6to4), which decides where a connection really goes.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail);
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8));
    }
    None
}

/// The special-purpose range `ip` is in, in words; `None` for a globally routable address.
pub fn special_range(ip: IpAddr) -> Option<&'static str> {
    let ip = ip.to_canonical();
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = embedded_v4(v6)
        && let Some(what) = special_range(IpAddr::V4(v4))
    {
        return Some(what);
    }
    SPECIAL.iter().find(|(net, _)| net.contains(&ip)).map(|(_, what)| *what)
}

/// Why validation may not connect to `ip`, or `None` when it may: a globally routable
/// address, or one inside a range the endpoint allows.
pub fn refusal(ip: IpAddr, allowed: &[IpNet]) -> Option<String> {
    let canonical = ip.to_canonical();
    if allowed.iter().any(|n| n.contains(&canonical) || n.contains(&ip)) {
        return None;
    }
    special_range(ip).map(|what| {
        format!(
            "{ip} is {what}, which this endpoint does not validate against (spec.acme.validation.allowedTargetRanges)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(ip: &str, allowed: &[&str]) -> bool {
        let allowed: Vec<IpNet> = allowed.iter().map(|a| a.parse().unwrap()).collect();
        refusal(ip.parse().unwrap(), &allowed).is_some()
    }

    #[test]
    fn special_ranges_are_refused_unless_allowed() {
        for ip in [
            "127.0.0.1",
            "127.0.0.2",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.0.1",
            "169.254.169.254",
            "169.254.1.1",
            "100.64.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "192.0.2.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:c0a8:0001::1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            assert!(refused(ip, &[]), "{ip} must be refused by default");
        }
        assert!(refusal("169.254.169.254".parse().unwrap(), &[]).unwrap().contains("metadata"));
        assert!(refusal("::ffff:127.0.0.1".parse().unwrap(), &[]).unwrap().contains("loopback"));
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "64:ff9b::808:808", "2002:0808:0808::1"] {
            assert!(!refused(ip, &[]), "{ip} is public");
        }
        // Allowed ranges open exactly themselves.
        assert!(!refused("127.0.0.1", &["127.0.0.0/8"]));
        assert!(!refused("::ffff:127.0.0.1", &["127.0.0.0/8"]));
        assert!(refused("::1", &["127.0.0.0/8"]));
        assert!(!refused("10.1.2.3", &["10.0.0.0/8"]));
        assert!(refused("127.0.0.2", &["127.0.0.1/32"]));
        assert!(refused("169.254.169.254", &["10.0.0.0/8"]));
    }
}
