//! `fail2ban-client status sshd` layout, followed by what fail2ban-client has no lines for:
//! whether a daemon runs the jail and whether the firewall holds every ban.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::duration::Hms;

/// The daemon running the jail (`tracer guard run`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub pid: u32,
    /// Start time (seconds since the epoch) and seconds since.
    pub started: i64,
    pub uptime: i64,
    /// `kernel (eBPF)` or the followed log files.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JailStatus {
    pub jail: String,
    pub currently_failed: u64,
    pub total_failed: u64,
    /// Log files read, or `kernel (eBPF)`.
    pub file_list: Vec<String>,
    pub currently_banned: u64,
    pub total_banned: u64,
    pub banned: Vec<IpAddr>,
    /// None: no daemon runs; the bans listed are those of the state database.
    pub daemon: Option<DaemonInfo>,
    /// What holds the bans (`nftables table inet tracer_guard`).
    pub firewall: String,
    /// Bans the firewall does not hold, and other firewall failures not yet repaired.
    pub firewall_errors: Vec<String>,
    /// `bansync`: banned addresses that another host banned -> that host.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fleet: BTreeMap<IpAddr, String>,
}

impl fmt::Display for JailStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ips: Vec<String> = self.banned.iter().map(IpAddr::to_string).collect();
        writeln!(f, "Status for the jail: {}", self.jail)?;
        writeln!(f, "|- Filter")?;
        writeln!(f, "|  |- Currently failed:\t{}", self.currently_failed)?;
        writeln!(f, "|  |- Total failed:\t{}", self.total_failed)?;
        writeln!(f, "|  `- File list:\t{}", self.file_list.join(" "))?;
        writeln!(f, "`- Actions")?;
        writeln!(f, "   |- Currently banned:\t{}", self.currently_banned)?;
        writeln!(f, "   |- Total banned:\t{}", self.total_banned)?;
        writeln!(f, "   `- Banned IP list:\t{}", ips.join(" "))?;
        match &self.daemon {
            Some(d) => writeln!(
                f,
                "Daemon:\trunning (pid {}, up {}, source {}, firewall {})",
                d.pid,
                Hms(d.uptime.max(0)),
                d.source,
                self.firewall
            )?,
            None => writeln!(f, "Daemon:\tnot running (firewall {})", self.firewall)?,
        }
        if !self.fleet.is_empty() {
            let from: Vec<String> = self.fleet.iter().map(|(ip, h)| format!("{ip} (by {h})")).collect();
            writeln!(f, "From the fleet:\t{}", from.join(" "))?;
        }
        if self.firewall_errors.is_empty() {
            writeln!(f, "Firewall errors:\tnone")
        } else {
            writeln!(f, "Firewall errors:\t{}", self.firewall_errors.len())?;
            self.firewall_errors.iter().try_for_each(|e| writeln!(f, "  {e}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        let s = JailStatus {
            jail: "sshd".into(),
            currently_failed: 0,
            total_failed: 5,
            file_list: vec!["/var/log/auth.log".into()],
            currently_banned: 1,
            total_banned: 1,
            banned: vec!["192.0.2.7".parse().unwrap()],
            daemon: Some(DaemonInfo { pid: 42, started: 0, uptime: 3661, source: "kernel (eBPF)".into() }),
            firewall: "nftables table inet tracer_guard".into(),
            firewall_errors: vec![],
            fleet: BTreeMap::new(),
        };
        assert_eq!(
            s.to_string(),
            "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t0\n|  |- Total failed:\t5\n|  `- File list:\t/var/log/auth.log\n`- Actions\n   |- Currently banned:\t1\n   |- Total banned:\t1\n   `- Banned IP list:\t192.0.2.7\n\
             Daemon:\trunning (pid 42, up 1:01:01, source kernel (eBPF), firewall nftables table inet tracer_guard)\n\
             Firewall errors:\tnone\n"
        );
    }
}
