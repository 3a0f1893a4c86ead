//! The jail's `port` value: names (`ssh`), numbers, comma lists and `a:b` ranges.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// `*-allports` actions: every port.
    All,
    /// Inclusive ranges, in the order written.
    List(Vec<(u16, u16)>),
}

impl PortSpec {
    pub fn ssh() -> Self {
        PortSpec::List(vec![(22, 22)])
    }

    pub fn parse(value: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        for tok in value.split([',', ' ', '\t', '\n']).filter(|t| !t.is_empty()) {
            let range = match tok.split_once(':') {
                Some((a, b)) => (port(a)?, port(b)?),
                None => {
                    let p = port(tok)?;
                    (p, p)
                }
            };
            if range.0 > range.1 {
                return Err(format!("port range {tok:?} is reversed"));
            }
            out.push(range);
        }
        if out.is_empty() {
            return Err("no port given".into());
        }
        if out == [(0, 65535)] {
            return Ok(PortSpec::All);
        }
        Ok(PortSpec::List(out))
    }

    /// `22,2200:2210` for iptables' multiport match.
    pub fn iptables(&self) -> String {
        self.render(":", ",")
    }

    /// `22, 2200-2210` for an nftables anonymous set.
    pub fn nft(&self) -> String {
        self.render("-", ", ")
    }

    /// Single ports as numbers, ranges as `a{range}b`, joined by `sep`.
    fn render(&self, range: &str, sep: &str) -> String {
        let list = match self {
            PortSpec::All => return format!("0{range}65535"),
            PortSpec::List(l) => l,
        };
        list.iter()
            .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}{range}{b}") })
            .collect::<Vec<_>>()
            .join(sep)
    }

    /// Number of multiport "slots" (a range takes two); iptables allows 15.
    pub fn multiport_slots(&self) -> usize {
        match self {
            PortSpec::All => 2,
            PortSpec::List(l) => l.iter().map(|&(a, b)| if a == b { 1 } else { 2 }).sum(),
        }
    }

    pub fn contains(&self, p: u16) -> bool {
        match self {
            PortSpec::All => true,
            PortSpec::List(l) => l.iter().any(|&(a, b)| (a..=b).contains(&p)),
        }
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.iptables())
    }
}

/// A port number or a tcp service name (a few built in, then /etc/services).
fn port(tok: &str) -> Result<u16, String> {
    let tok = tok.trim();
    if let Ok(n) = tok.parse::<u16>() {
        return Ok(n);
    }
    let builtin = match tok.to_ascii_lowercase().as_str() {
        "ssh" => Some(22),
        "ftp" => Some(21),
        "smtp" => Some(25),
        "http" | "www" => Some(80),
        "https" => Some(443),
        "pop3" => Some(110),
        "imap" | "imap2" => Some(143),
        "imaps" => Some(993),
        "pop3s" => Some(995),
        "submission" => Some(587),
        _ => None,
    };
    if let Some(p) = builtin {
        return Ok(p);
    }
    if !tok.is_empty()
        && tok.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        && let Ok(services) = std::fs::read_to_string("/etc/services")
    {
        for line in services.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let (Some(name), Some(pp)) = (words.next(), words.next()) else {
                continue;
            };
            let Some((num, proto)) = pp.split_once('/') else {
                continue;
            };
            if proto == "tcp"
                && (name == tok || words.any(|alias| alias == tok))
                && let Ok(n) = num.parse()
            {
                return Ok(n);
            }
        }
    }
    Err(format!("{tok:?} is not a port number or known service name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fail2ban_port_values() {
        assert_eq!(PortSpec::parse("ssh").unwrap(), PortSpec::ssh());
        let p = PortSpec::parse("ssh, 2222,3000:3005").unwrap();
        assert_eq!(p.iptables(), "22,2222,3000:3005");
        assert_eq!(p.nft(), "22, 2222, 3000-3005");
        assert!(p.contains(3003) && !p.contains(23));
        assert_eq!(PortSpec::parse("0:65535").unwrap(), PortSpec::All);
        assert!(PortSpec::parse("nosuchservice").is_err());
        assert!(PortSpec::parse("70000").is_err());
        assert!(PortSpec::parse("30:20").is_err());
        assert!(PortSpec::parse("").is_err());
    }
}
