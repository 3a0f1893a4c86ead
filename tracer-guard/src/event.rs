//! What the jail did, and its fail2ban-style log line.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

use crate::addr::IgnoreReason;
use crate::duration::Hms;
use crate::sshd::Kind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A failure was counted for `ip`.
    Found { ip: IpAddr, kind: Kind, user: Option<String>, time: i64 },
    /// A failure from an exempt address (`ignoreip` / `ignoreself`).
    Ignored {
        ip: IpAddr,
        #[serde(serialize_with = "ser_reason")]
        reason: IgnoreReason,
    },
    /// `ip` is banned from `time` for `bantime` seconds (negative: permanent); `count` is
    /// this address's ban number (1 for a first offence).
    Ban { ip: IpAddr, time: i64, bantime: i64, count: u32, restored: bool },
    /// The ban on `ip` ended (expired or lifted by hand).
    Unban { ip: IpAddr },
    /// A ban was asked for an address that is already banned.
    AlreadyBanned { ip: IpAddr },
}

fn ser_reason<S: serde::Serializer>(r: &IgnoreReason, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&r.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Info,
    Notice,
    Warning,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Notice => "NOTICE",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
        }
    }
}

/// `NOTICE  [sshd] Ban 192.0.2.7`: fail2ban pads the level name to 8 columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: Level,
    pub text: String,
}

impl fmt::Display for LogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<8}{}", self.level.as_str(), self.text)
    }
}

impl Event {
    pub fn ip(&self) -> IpAddr {
        match self {
            Event::Found { ip, .. }
            | Event::Ignored { ip, .. }
            | Event::Ban { ip, .. }
            | Event::Unban { ip }
            | Event::AlreadyBanned { ip } => *ip,
        }
    }

    pub fn log_line(&self, jail: &str) -> LogLine {
        let (level, text) = match self {
            Event::Found { ip, time, .. } => (Level::Info, format!("[{jail}] Found {ip} - {}", local_time(*time))),
            Event::Ignored { ip, reason } => (Level::Info, format!("[{jail}] Ignore {ip} by {reason}")),
            Event::Ban { ip, restored: true, .. } => (Level::Notice, format!("[{jail}] Restore Ban {ip}")),
            Event::Ban { ip, .. } => (Level::Notice, format!("[{jail}] Ban {ip}")),
            Event::Unban { ip } => (Level::Notice, format!("[{jail}] Unban {ip}")),
            Event::AlreadyBanned { ip } => (Level::Notice, format!("[{jail}] {ip} already banned")),
        };
        LogLine { level, text }
    }

    /// Extra detail fail2ban logs at INFO for increased ban times, if any.
    pub fn detail(&self, jail: &str) -> Option<LogLine> {
        match self {
            Event::Ban { ip, count, bantime, restored: false, .. } if *count > 1 => Some(LogLine {
                level: Level::Info,
                text: format!("[{jail}] {ip} was already banned: {} # - ban time {}", count - 1, Hms(*bantime)),
            }),
            _ => None,
        }
    }
}

/// `2026-11-24 13:22:29` in the machine's local time zone, as fail2ban prints.
pub fn local_time(t: i64) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => local(ts, "%Y-%m-%d %H:%M:%S"),
        Err(_) => t.to_string(),
    }
}

/// The one local-time helper (this log line and the daemon's stamps): `ts` in the machine's
/// time zone (TZ, else /etc/localtime), formatted with strftime's `format`.
pub fn local(ts: jiff::Timestamp, format: &str) -> String {
    ts.to_zoned(jiff::tz::TimeZone::system()).strftime(format).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fail2ban_log_layout() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let ban = Event::Ban { ip, time: 0, bantime: 600, count: 1, restored: false };
        assert_eq!(ban.log_line("sshd").to_string(), "NOTICE  [sshd] Ban 192.0.2.7");
        let rb = Event::Ban { ip, time: 0, bantime: 600, count: 1, restored: true };
        assert_eq!(rb.log_line("sshd").to_string(), "NOTICE  [sshd] Restore Ban 192.0.2.7");
        assert_eq!(Event::Unban { ip }.log_line("sshd").to_string(), "NOTICE  [sshd] Unban 192.0.2.7");
        let found =
            Event::Found { ip, kind: Kind::Failed, user: None, time: 1_700_000_000 }.log_line("sshd").to_string();
        assert!(found.starts_with("INFO    [sshd] Found 192.0.2.7 - 20"), "{found}");
        assert_eq!(found.len(), "INFO    [sshd] Found 192.0.2.7 - 2023-11-14 22:13:20".len());
        let ig = Event::Ignored { ip: "127.0.0.1".parse().unwrap(), reason: IgnoreReason::Ip };
        assert_eq!(ig.log_line("sshd").to_string(), "INFO    [sshd] Ignore 127.0.0.1 by ip");
    }
}
