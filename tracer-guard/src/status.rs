//! `fail2ban-client status sshd` layout.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JailStatus {
    pub jail: String,
    pub currently_failed: u64,
    pub total_failed: u64,
    /// Log files read, or `kernel (eBPF)`.
    pub file_list: Vec<String>,
    pub currently_banned: u64,
    pub total_banned: u64,
    pub banned: Vec<IpAddr>,
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
        writeln!(f, "   `- Banned IP list:\t{}", ips.join(" "))
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
        };
        assert_eq!(
            s.to_string(),
            "Status for the jail: sshd\n|- Filter\n|  |- Currently failed:\t0\n|  |- Total failed:\t5\n|  `- File list:\t/var/log/auth.log\n`- Actions\n   |- Currently banned:\t1\n   |- Total banned:\t1\n   `- Banned IP list:\t192.0.2.7\n"
        );
    }
}
