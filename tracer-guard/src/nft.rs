//! nftables enforcement: the tool's own `inet` table, one timeout set per address family and an
//! input-hook chain rejecting those sources on the jail's tcp ports. Bans are set elements with
//! a timeout, so the kernel lifts them even if the daemon dies; permanent bans have none.
//! Every change is one `nft -f -` script, applied atomically.

use std::net::IpAddr;

use crate::fw::{CommandRunner, Firewall, FirewallError, FwBan};
use crate::ports::PortSpec;

pub const DEFAULT_TABLE: &str = "tracer_guard";

/// The longest element timeout nft accepts (`timeout 100000000s` is "value too large").
/// Longer and permanent-by-increment bans carry this and are refreshed by `Guard::tick`.
pub const MAX_TIMEOUT: u64 = 99_999_999;

#[derive(Debug, Clone)]
pub struct NftFirewall {
    runner: CommandRunner,
    table: String,
    jail: String,
    ports: PortSpec,
}

/// A set element as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftElement {
    pub ip: IpAddr,
    /// Timeout given when added (seconds).
    pub timeout: Option<u64>,
    /// Seconds left.
    pub expires: Option<u64>,
}

impl NftFirewall {
    pub fn new(runner: CommandRunner, table: &str, jail: &str, ports: PortSpec) -> Self {
        NftFirewall { runner, table: table.into(), jail: jail.into(), ports }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Set holding banned addresses of `ip`'s family.
    pub fn set_name(&self, ip: &IpAddr) -> String {
        format!("{}_{}", self.jail.replace('-', "_"), if ip.is_ipv4() { "v4" } else { "v6" })
    }

    fn element(b: &FwBan) -> String {
        match b.timeout {
            // The kernel rejects a zero timeout; a ban with under a second left gets one second.
            Some(t) => format!("{} timeout {}s", b.ip, t.clamp(1, MAX_TIMEOUT)),
            None => b.ip.to_string(),
        }
    }

    fn apply(&self, script: &str) -> Result<(), FirewallError> {
        self.runner.run("nft", &["-f", "-"], Some(script)).map(|_| ())
    }

    /// Elements of both sets, read with `nft -j`.
    pub fn elements(&self) -> Result<Vec<NftElement>, FirewallError> {
        let mut out = Vec::new();
        for fam in ["v4", "v6"] {
            let set = format!("{}_{fam}", self.jail.replace('-', "_"));
            let json = self.runner.run("nft", &["-j", "list", "set", "inet", &self.table, &set], None)?;
            let v: serde_json::Value = serde_json::from_str(&json)
                .map_err(|e| FirewallError::Output { program: "nft".into(), message: e.to_string() })?;
            let items = v["nftables"].as_array().cloned().unwrap_or_default();
            for item in items {
                let Some(elems) = item["set"]["elem"].as_array() else {
                    continue;
                };
                for e in elems {
                    let (val, timeout, expires) = match e {
                        serde_json::Value::String(s) => (s.clone(), None, None),
                        other => {
                            let inner = &other["elem"];
                            (
                                inner["val"].as_str().unwrap_or_default().to_string(),
                                inner["timeout"].as_u64(),
                                inner["expires"].as_u64(),
                            )
                        }
                    };
                    if let Ok(ip) = val.parse() {
                        out.push(NftElement { ip, timeout, expires });
                    }
                }
            }
        }
        Ok(out)
    }
}

impl Firewall for NftFirewall {
    fn start(&mut self, bans: &[FwBan]) -> Result<(), FirewallError> {
        let t = &self.table;
        let j = self.jail.replace('-', "_");
        let elems = |v4: bool| {
            let e: Vec<String> = bans.iter().filter(|b| b.ip.is_ipv4() == v4).map(Self::element).collect();
            if e.is_empty() { String::new() } else { format!("\t\telements = {{ {} }}\n", e.join(", ")) }
        };
        let dport = match &self.ports {
            PortSpec::All => "meta l4proto tcp".to_string(),
            p => format!("tcp dport {{ {} }}", p.nft()),
        };
        // "add table" first so "delete table" cannot fail: a leftover table from a crashed run
        // is replaced in the same transaction.
        let script = format!(
            "add table inet {t}\ndelete table inet {t}\n\
             table inet {t} {{\n\
             \tset {j}_v4 {{\n\t\ttype ipv4_addr\n\t\tflags timeout\n{e4}\t}}\n\
             \tset {j}_v6 {{\n\t\ttype ipv6_addr\n\t\tflags timeout\n{e6}\t}}\n\
             \tchain input {{\n\t\ttype filter hook input priority filter - 1; policy accept;\n\
             \t\t{dport} ip saddr @{j}_v4 reject\n\
             \t\t{dport} ip6 saddr @{j}_v6 reject\n\
             \t}}\n}}\n",
            e4 = elems(true),
            e6 = elems(false),
        );
        self.apply(&script)
    }

    fn ban(&mut self, ban: FwBan) -> Result<(), FirewallError> {
        let (t, s, ip) = (&self.table, self.set_name(&ban.ip), ban.ip);
        // add+delete+add replaces an existing element's timeout in one transaction.
        self.apply(&format!(
            "add element inet {t} {s} {{ {ip} }}\ndelete element inet {t} {s} {{ {ip} }}\nadd element inet {t} {s} {{ {} }}\n",
            Self::element(&ban)
        ))
    }

    fn unban(&mut self, ip: IpAddr) -> Result<(), FirewallError> {
        let (t, s) = (&self.table, self.set_name(&ip));
        self.apply(&format!("add element inet {t} {s} {{ {ip} }}\ndelete element inet {t} {s} {{ {ip} }}\n"))
    }

    fn stop(&mut self) -> Result<(), FirewallError> {
        let t = &self.table;
        self.apply(&format!("add table inet {t}\ndelete table inet {t}\n"))
    }

    fn kernel_expires(&self) -> bool {
        true
    }

    fn is_running(&self) -> bool {
        self.runner.ok("nft", &["list", "table", "inet", &self.table])
    }

    fn max_timeout(&self) -> Option<u64> {
        Some(MAX_TIMEOUT)
    }

    fn describe(&self) -> String {
        format!("nftables table inet {}", self.table)
    }

    fn list(&self) -> Result<Vec<FwBan>, FirewallError> {
        Ok(self.elements()?.into_iter().map(|e| FwBan { ip: e.ip, timeout: e.expires.or(e.timeout) }).collect())
    }
}
