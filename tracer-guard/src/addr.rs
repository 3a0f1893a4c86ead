//! Addresses: strict parsing (v4-mapped IPv6 folded to IPv4), host names and their resolution
//! (fail2ban's `usedns`), CIDR networks and the ignore list.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::str::FromStr;

/// Parses one address as sshd prints it. `::ffff:1.2.3.4` becomes `1.2.3.4` so a client
/// cannot dodge a ban (or an ignore rule) by switching between the two spellings.
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(s);
    // Link-local scope ids ("fe80::1%eth0") cannot be matched by a firewall set: drop the scope.
    let s = s.split_once('%').map_or(s, |(a, _)| a);
    if s.is_empty() || s.len() > 45 {
        return None;
    }
    let ip: IpAddr = s.parse().ok()?;
    Some(normalize(ip))
}

/// What sshd wrote where a peer goes: an address, or (sshd's `UseDNS yes`) a host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    Ip(IpAddr),
    Name(String),
}

/// An address, else a DNS host name (letters, digits, `-`, `_`, dots; at least one letter; at
/// most 253 bytes), as fail2ban's `<HOST>` accepts.
pub fn parse_host(s: &str) -> Option<Host> {
    if let Some(ip) = parse_ip(s) {
        return Some(Host::Ip(ip));
    }
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c))
        && s.bytes().any(|c| c.is_ascii_alphabetic())
        && !s.starts_with(['.', '-'])
        && !s.contains("..");
    ok.then(|| Host::Name(s.trim_end_matches('.').to_ascii_lowercase()))
}

/// fail2ban's `usedns`: what to do with a host name where an address is expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum UseDns {
    /// Resolve it and count the failure for every address it resolves to.
    Yes,
    /// As `yes` (fail2ban also logs a warning); fail2ban's default.
    #[default]
    Warn,
    /// Do not resolve: the failure is not counted.
    No,
    /// fail2ban bans the name itself; a firewall set cannot hold a name, so as `no`.
    Raw,
}

impl FromStr for UseDns {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "yes" => Ok(UseDns::Yes),
            "warn" => Ok(UseDns::Warn),
            "no" => Ok(UseDns::No),
            "raw" => Ok(UseDns::Raw),
            other => Err(format!("unknown usedns {other:?} (yes, warn, no, raw)")),
        }
    }
}

impl fmt::Display for UseDns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UseDns::Yes => "yes",
            UseDns::Warn => "warn",
            UseDns::No => "no",
            UseDns::Raw => "raw",
        })
    }
}

/// Host names resolved through the system resolver (getaddrinfo: /etc/hosts, DNS), cached
/// for [`Resolver::TTL`] seconds and at most [`Resolver::MAX`] names, as fail2ban caches.
#[derive(Debug, Default)]
pub struct Resolver {
    cache: HashMap<String, (i64, Vec<IpAddr>)>,
}

impl Resolver {
    pub const TTL: i64 = 300;
    pub const MAX: usize = 1000;

    /// The addresses `host` stands for under `usedns` (empty: none).
    pub fn resolve(&mut self, host: &Host, usedns: UseDns, now: i64) -> Vec<IpAddr> {
        let name = match host {
            Host::Ip(ip) => return vec![*ip],
            Host::Name(_) if matches!(usedns, UseDns::No | UseDns::Raw) => return Vec::new(),
            Host::Name(n) => n,
        };
        if let Some((t, ips)) = self.cache.get(name)
            && now - t < Self::TTL
        {
            return ips.clone();
        }
        let mut ips: Vec<IpAddr> = match (name.as_str(), 0).to_socket_addrs() {
            Ok(it) => it.map(|sa| normalize(sa.ip())).collect(),
            Err(_) => Vec::new(),
        };
        ips.sort();
        ips.dedup();
        if self.cache.len() >= Self::MAX {
            self.cache.retain(|_, (t, _)| now - *t < Self::TTL);
            if self.cache.len() >= Self::MAX {
                self.cache.clear();
            }
        }
        self.cache.insert(name.clone(), (now, ips.clone()));
        ips
    }
}

/// Folds v4-mapped IPv6 to IPv4.
pub fn normalize(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// A CIDR network, e.g. `127.0.0.1/8` or `2001:db8::/32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    pub fn host(addr: IpAddr) -> Self {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpNet { addr, prefix }
    }

    /// Accepts `ADDR`, `ADDR/LEN` and (for IPv4) `ADDR/DOTTED.MASK`.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = parse_ip(a)?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) if p.bytes().all(|c| c.is_ascii_digit()) && !p.is_empty() => {
                let n: u32 = p.parse().ok()?;
                // "::ffff:10.0.0.0/104" style masks refer to the mapped form; fold them too.
                let n = if addr.is_ipv4() && a.contains(':') { n.checked_sub(96)? } else { n };
                if n > u32::from(max) {
                    return None;
                }
                n as u8
            }
            Some(p) => {
                let m: Ipv4Addr = p.parse().ok()?;
                let bits = u32::from(m);
                if !addr.is_ipv4() || bits.leading_ones() + bits.trailing_zeros() != 32 {
                    return None;
                }
                bits.leading_ones() as u8
            }
        };
        Some(IpNet { addr, prefix })
    }

    pub fn contains(&self, ip: &IpAddr) -> bool {
        match (self.addr, normalize(*ip)) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = if self.addr.is_ipv4() { 32 } else { 128 };
        if self.prefix == max { write!(f, "{}", self.addr) } else { write!(f, "{}/{}", self.addr, self.prefix) }
    }
}

/// Parses an `ignoreip` value: space and/or comma separated addresses and networks.
/// `localhost` is accepted as the loopback networks; other host names are refused
/// (resolving names at ban time would let DNS decide who is exempt).
pub fn parse_ignore_list(value: &str) -> Result<Vec<IpNet>, String> {
    let mut out = Vec::new();
    for tok in value.split(|c: char| c == ',' || c.is_whitespace()).filter(|t| !t.is_empty()) {
        if tok.eq_ignore_ascii_case("localhost") {
            out.push(IpNet { addr: IpAddr::V4(Ipv4Addr::LOCALHOST), prefix: 8 });
            out.push(IpNet::host(IpAddr::V6(Ipv6Addr::LOCALHOST)));
            continue;
        }
        match IpNet::parse(tok) {
            Some(n) => out.push(n),
            None => return Err(format!("{tok:?} is not an IP address or CIDR network")),
        }
    }
    Ok(out)
}

/// Why an address is exempt from banning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoreReason {
    /// Listed in `ignoreip`.
    Ip,
    /// One of this machine's own addresses (`ignoreself`).
    SelfAddr,
}

impl fmt::Display for IgnoreReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IgnoreReason::Ip => "ip",
            IgnoreReason::SelfAddr => "ignoreself rule",
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct IgnoreList {
    pub nets: Vec<IpNet>,
    pub ignore_self: bool,
    /// The machine's own addresses, read when the list is built (see [`local_addresses`]).
    pub self_addrs: Vec<IpAddr>,
}

impl IgnoreList {
    pub fn new(nets: Vec<IpNet>, ignore_self: bool) -> Self {
        let self_addrs = if ignore_self { local_addresses() } else { Vec::new() };
        IgnoreList { nets, ignore_self, self_addrs }
    }

    pub fn check(&self, ip: &IpAddr) -> Option<IgnoreReason> {
        let ip = normalize(*ip);
        if self.nets.iter().any(|n| n.contains(&ip)) {
            return Some(IgnoreReason::Ip);
        }
        if self.ignore_self && self.self_addrs.contains(&ip) {
            return Some(IgnoreReason::SelfAddr);
        }
        None
    }
}

/// Addresses configured on this machine's interfaces (getifaddrs), plus loopback.
pub fn local_addresses() -> Vec<IpAddr> {
    let mut out = vec![IpAddr::V4(Ipv4Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::LOCALHOST)];
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a linked list we walk read-only and free exactly once.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut cur = ifap;
        while !cur.is_null() {
            let sa = (*cur).ifa_addr;
            if !sa.is_null() {
                match i32::from((*sa).sa_family) {
                    libc::AF_INET => {
                        let sin = &*(sa as *const libc::sockaddr_in);
                        out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr))));
                    }
                    libc::AF_INET6 => {
                        let sin6 = &*(sa as *const libc::sockaddr_in6);
                        out.push(normalize(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr))));
                    }
                    _ => {}
                }
            }
            cur = (*cur).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_families() {
        assert_eq!(parse_ip("192.0.2.7"), Some("192.0.2.7".parse().unwrap()));
        assert_eq!(parse_ip("2001:db8::7"), Some("2001:db8::7".parse().unwrap()));
        assert_eq!(parse_ip("::ffff:1.2.3.4"), Some("1.2.3.4".parse().unwrap()));
        assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        for bad in ["", "1.2.3", "1.2.3.4.5", "host", "1.2.3.4:22", "01.2.3.4x"] {
            assert_eq!(parse_ip(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidr_and_ignore_list() {
        let l = parse_ignore_list("127.0.0.1/8 ::1, 10.0.0.0/255.255.0.0,192.0.2.1").unwrap();
        let il = IgnoreList { nets: l, ignore_self: false, self_addrs: vec![] };
        assert_eq!(il.check(&"127.9.9.9".parse().unwrap()), Some(IgnoreReason::Ip));
        assert_eq!(il.check(&"::1".parse().unwrap()), Some(IgnoreReason::Ip));
        assert_eq!(il.check(&"::ffff:127.0.0.2".parse().unwrap()), Some(IgnoreReason::Ip));
        assert_eq!(il.check(&"10.0.200.1".parse().unwrap()), Some(IgnoreReason::Ip));
        assert_eq!(il.check(&"10.1.0.1".parse().unwrap()), None);
        assert_eq!(il.check(&"192.0.2.1".parse().unwrap()), Some(IgnoreReason::Ip));
        assert_eq!(il.check(&"192.0.2.2".parse().unwrap()), None);
        assert!(parse_ignore_list("10.0.0.0/33").is_err());
        assert!(parse_ignore_list("example.com").is_err());
        assert!(parse_ignore_list("1.2.3.4/255.0.255.0").is_err());
        assert_eq!(IpNet::parse("::ffff:10.0.0.0/104").unwrap(), IpNet::parse("10.0.0.0/8").unwrap());
    }

    #[test]
    fn host_names() {
        assert_eq!(parse_host("::ffff:1.2.3.4"), Some(Host::Ip("1.2.3.4".parse().unwrap())));
        assert_eq!(parse_host("Example.COM."), Some(Host::Name("example.com".into())));
        for bad in ["", "1.2.3", "a b", "x\"y", "-a.com", "a..b", "192.0.2.1:22", "\u{e9}.com"] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn resolves_by_usedns() {
        // /etc/hosts names "localhost"; "nonexistent.invalid" never resolves (RFC 6761).
        let mut r = Resolver::default();
        let lh = Host::Name("localhost".into());
        assert!(r.resolve(&lh, UseDns::Warn, 0).contains(&"127.0.0.1".parse().unwrap()));
        assert!(r.resolve(&lh, UseDns::No, 0).is_empty());
        assert!(r.resolve(&lh, UseDns::Raw, 0).is_empty());
        assert!(r.resolve(&Host::Name("nonexistent.invalid".into()), UseDns::Yes, 0).is_empty());
        let ip = Host::Ip("192.0.2.1".parse().unwrap());
        assert_eq!(r.resolve(&ip, UseDns::No, 0), vec!["192.0.2.1".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn self_addresses_include_loopback() {
        let il = IgnoreList::new(vec![], true);
        assert_eq!(il.check(&"127.0.0.1".parse().unwrap()), Some(IgnoreReason::SelfAddr));
    }
}
