//! Which addresses are public: globally reachable unicast per the IANA special-purpose address
//! registries, with IPv4 carried inside IPv6 judged by the IPv4 address it reaches. A webhook
//! must never reach the gateway's own host, its network or a cloud metadata service, however
//! the address is spelled.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An address block: a network address and its prefix length.
type Block<A> = (A, u32);

/// IPv4 blocks that are not globally reachable (IANA IPv4 Special-Purpose Address Registry).
const V4_REFUSED: [Block<Ipv4Addr>; 15] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network"
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private use
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link local, cloud metadata services among them
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private use
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private use
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, with the broadcast 255.255.255.255
];

/// The registry's globally reachable exceptions inside `V4_REFUSED`: PCP and TURN anycast.
const V4_GLOBAL_WITHIN: [Block<Ipv4Addr>; 2] = [
    (Ipv4Addr::new(192, 0, 0, 9), 32),
    (Ipv4Addr::new(192, 0, 0, 10), 32),
];

/// IPv6 forms whose last 32 bits are the IPv4 address reached: IPv4-mapped, IPv4-compatible
/// (deprecated, but still routed to the IPv4 host by some stacks) and the NAT64 well-known prefix.
const V6_CARRYING_V4_LAST: [Block<Ipv6Addr>; 3] = [
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 96),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96),
];

/// 6to4: the IPv4 address of the site follows the 16-bit prefix.
const V6_6TO4: Block<Ipv6Addr> = (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16);

/// Global unicast space (IANA IPv6 Address Space). Everything else (unspecified, loopback,
/// the local-use NAT64 prefix 64:ff9b:1::/48 whose IPv4 placement each network chooses,
/// discard-only 100::/64, SRv6 5f00::/16, unique local, link local, site local and multicast)
/// lies outside it.
const V6_GLOBAL_UNICAST: Block<Ipv6Addr> = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);

/// Blocks inside global unicast space that are not globally reachable (IANA IPv6
/// Special-Purpose Address Registry).
const V6_REFUSED: [Block<Ipv6Addr>; 3] = [
    // IETF protocol assignments. Teredo (2001::/32) is among them: its client address is
    // obfuscated and reached through a relay, so it cannot be judged.
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),     // documentation
];

/// The registry's globally reachable exceptions inside 2001::/23: PCP, TURN and DNS-SD SRP
/// anycast, AMT, AS112-v6 and ORCHIDv2 / DRIP.
const V6_GLOBAL_WITHIN: [Block<Ipv6Addr>; 7] = [
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1), 128),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 2), 128),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 3), 128),
    (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32),
    (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48),
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28),
    (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28),
];

/// Whether `ip` is a globally reachable unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match carried_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => {
                in_v6(v6, &[V6_GLOBAL_UNICAST])
                    && (!in_v6(v6, &V6_REFUSED) || in_v6(v6, &V6_GLOBAL_WITHIN))
            }
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !in_v4(ip, &V4_REFUSED) || in_v4(ip, &V4_GLOBAL_WITHIN)
}

/// The IPv4 address that `ip` reaches, for the IPv6 forms that carry one.
fn carried_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = ip.to_bits();
    if in_v6(ip, &V6_CARRYING_V4_LAST) {
        Some(Ipv4Addr::from_bits(bits as u32))
    } else if in_v6(ip, &[V6_6TO4]) {
        Some(Ipv4Addr::from_bits((bits >> 80) as u32))
    } else {
        None
    }
}

fn in_v4(ip: Ipv4Addr, blocks: &[Block<Ipv4Addr>]) -> bool {
    blocks
        .iter()
        .any(|&(net, len)| same_prefix(ip.to_bits().into(), net.to_bits().into(), 32 - len))
}

fn in_v6(ip: Ipv6Addr, blocks: &[Block<Ipv6Addr>]) -> bool {
    blocks
        .iter()
        .any(|&(net, len)| same_prefix(ip.to_bits(), net.to_bits(), 128 - len))
}

/// Whether `a` and `b` differ at most in their last `host_bits` bits.
fn same_prefix(a: u128, b: u128, host_bits: u32) -> bool {
    (a ^ b).checked_shr(host_bits).unwrap_or(0) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn judge(addresses: &[&str], public: bool) {
        for address in addresses {
            let ip: IpAddr = address.parse().unwrap();
            assert_eq!(is_public(ip), public, "{address}");
        }
    }

    #[test]
    fn ipv4_special_blocks_are_refused_to_their_edges() {
        judge(
            &[
                "0.0.0.0",
                "0.255.255.255",
                "10.0.0.0",
                "10.255.255.255",
                "100.64.0.0",
                "100.127.255.255",
                "127.0.0.0",
                "127.0.0.1",
                "127.255.255.255",
                "169.254.0.0",
                "169.254.169.254",
                "169.254.255.255",
                "172.16.0.0",
                "172.31.255.255",
                "192.0.0.0",
                "192.0.0.8",
                "192.0.0.11",
                "192.0.0.255",
                "192.0.2.0",
                "192.0.2.255",
                "192.88.99.0",
                "192.88.99.255",
                "192.168.0.0",
                "192.168.255.255",
                "198.18.0.0",
                "198.18.0.1",
                "198.19.255.255",
                "198.51.100.0",
                "198.51.100.255",
                "203.0.113.0",
                "203.0.113.255",
                "224.0.0.0",
                "224.0.0.1",
                "239.255.255.255",
                "240.0.0.0",
                "255.255.255.254",
                "255.255.255.255",
            ],
            false,
        );
    }

    #[test]
    fn ipv4_neighbours_of_special_blocks_are_public() {
        judge(
            &[
                "1.0.0.0",
                "1.1.1.1",
                "8.8.8.8",
                "9.255.255.255",
                "11.0.0.0",
                "100.63.255.255",
                "100.128.0.0",
                "126.255.255.255",
                "128.0.0.0",
                "169.253.255.255",
                "169.255.0.0",
                "172.15.255.255",
                "172.32.0.0",
                "191.255.255.255",
                "192.0.0.9",
                "192.0.0.10",
                "192.0.1.0",
                "192.0.1.255",
                "192.0.3.0",
                "192.88.98.255",
                "192.88.100.0",
                "192.167.255.255",
                "192.169.0.0",
                "198.17.255.255",
                "198.20.0.0",
                "198.51.99.255",
                "198.51.101.0",
                "203.0.112.255",
                "203.0.114.0",
                "223.255.255.255",
            ],
            true,
        );
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_by_the_ipv4_address() {
        judge(
            &[
                // IPv4-mapped
                "::ffff:0.0.0.0",
                "::ffff:127.0.0.1",
                "::ffff:10.0.0.1",
                "::ffff:169.254.169.254",
                "::ffff:255.255.255.255",
                // IPv4-compatible, unspecified and loopback among them
                "::",
                "::1",
                "::127.0.0.1",
                "::10.0.0.1",
                "::198.18.0.1",
                // NAT64
                "64:ff9b::",
                "64:ff9b::127.0.0.1",
                "64:ff9b::192.168.1.1",
                "64:ff9b::224.0.0.1",
                "64:ff9b::ffff:ffff",
                // 6to4
                "2002::",
                "2002:7f00:1::",
                "2002:a00:1::1",
                "2002:c0a8:101:ffff:ffff:ffff:ffff:ffff",
                "2002:e000:1::",
                "2002:ffff:ffff::",
            ],
            false,
        );
        judge(
            &[
                "::ffff:8.8.8.8",
                "::8.8.8.8",
                "::1.0.0.0",
                "64:ff9b::8.8.8.8",
                "64:ff9b::100:0",
                "64:ff9b::dfff:ffff",
                "2002:808:808::",
                "2002:808:808:ffff:ffff:ffff:ffff:ffff",
            ],
            true,
        );
    }

    #[test]
    fn ipv6_outside_global_unicast_is_refused() {
        judge(
            &[
                // Just outside the /96 forms, where no IPv4 address is carried.
                "::1:0:0",
                "::fffe:ffff:ffff",
                "::ffff:0:808:808",
                "64:ff9a:ffff:ffff:ffff:ffff:ffff:ffff",
                "64:ff9b::1:0:0",
                // Local-use NAT64, whatever it carries.
                "64:ff9b:1::",
                "64:ff9b:1::808:808",
                "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
                "100::",
                "100::ffff:ffff:ffff:ffff",
                "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "4000::",
                "5f00::",
                "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "fc00::",
                "fd00::1",
                "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "fe80::",
                "fe80::1",
                "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "fec0::1",
                "ff00::",
                "ff02::1",
                "ff0e::1",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ],
            false,
        );
    }

    #[test]
    fn ipv6_special_blocks_in_global_unicast_are_refused_to_their_edges() {
        judge(
            &[
                "2001::",
                "2001:0:4136:e378:8000:63bf:3fff:fdd2",
                "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:1::",
                "2001:1::4",
                "2001:2::1",
                "2001:2:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:4::",
                "2001:4:111:ffff:ffff:ffff:ffff:ffff",
                "2001:4:113::",
                "2001:10::1",
                "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:40::",
                "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:db8::",
                "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
                "3fff::",
                "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
            ],
            false,
        );
    }

    #[test]
    fn ipv6_global_unicast_is_public_to_its_edges() {
        judge(
            &[
                "2000::",
                "2001:1::1",
                "2001:1::2",
                "2001:1::3",
                "2001:3::",
                "2001:3:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:4:112::",
                "2001:4:112:ffff:ffff:ffff:ffff:ffff",
                "2001:20::",
                "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:200::",
                "2001:4860:4860::8888",
                "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
                "2001:db9::",
                "2003::",
                "2606:4700::1111",
                "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
                "3fff:1000::",
                "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ],
            true,
        );
    }
}
